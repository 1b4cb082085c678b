package dashboard

import "fmt"

// Role is what a signed-in user or an API token may do. Roles are ordered:
// each includes everything the one before it may do.
type Role int

// Roles, from the least to the most privileged. RoleNone is anonymous.
const (
	RoleNone Role = iota
	// RoleViewer reads every page.
	RoleViewer
	// RoleAnalyst also triages alerts and exports a subject's data.
	RoleAnalyst
	// RoleAdmin also files erasures and legal holds, redelivers webhooks
	// and manages API tokens.
	RoleAdmin
)

var roleNames = map[Role]string{RoleNone: "anonymous", RoleViewer: "viewer", RoleAnalyst: "analyst", RoleAdmin: "admin"}

// String returns the role's name as written in the config.
func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Allows reports whether r includes need.
func (r Role) Allows(need Role) bool { return r >= need }

// ParseRole parses a role name: viewer, analyst or admin.
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if n == s && r != RoleNone {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("role must be viewer, analyst or admin (got %q)", s)
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a role name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
