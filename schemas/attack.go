package schemas

import (
	"regexp"
	"strings"
)

// Tactic is a MITRE ATT&CK tactic (https://attack.mitre.org/tactics/).
type Tactic struct {
	// ID is the tactic's ATT&CK id, e.g. "TA0006".
	ID string `json:"id"`
	// Name is its ATT&CK name, e.g. "Credential Access".
	Name string `json:"name"`
}

// Technique is a MITRE ATT&CK (Enterprise) technique or sub-technique
// (https://attack.mitre.org/techniques/), with the tactic sessionmon reports
// it under.
type Technique struct {
	// ID is the technique's ATT&CK id, e.g. "T1110.001".
	ID string `json:"id"`
	// Name is its ATT&CK name, e.g. "Brute Force: Password Guessing".
	Name string `json:"name"`
	// Tactic is the adversary goal the technique serves in sessionmon's
	// findings (ATT&CK lists several for some techniques).
	Tactic Tactic `json:"tactic"`
}

// ATT&CK tactics of sessionmon's findings.
var (
	TacticInitialAccess    = Tactic{ID: "TA0001", Name: "Initial Access"}
	TacticDefenseEvasion   = Tactic{ID: "TA0005", Name: "Defense Evasion"}
	TacticCredentialAccess = Tactic{ID: "TA0006", Name: "Credential Access"}
)

// techniques are the ATT&CK techniques sessionmon's detectors report.
var techniques = map[string]Technique{
	"T1078":     {ID: "T1078", Name: "Valid Accounts", Tactic: TacticInitialAccess},
	"T1110.001": {ID: "T1110.001", Name: "Brute Force: Password Guessing", Tactic: TacticCredentialAccess},
	"T1110.004": {ID: "T1110.004", Name: "Brute Force: Credential Stuffing", Tactic: TacticCredentialAccess},
	"T1539":     {ID: "T1539", Name: "Steal Web Session Cookie", Tactic: TacticCredentialAccess},
	"T1550.001": {ID: "T1550.001", Name: "Use Alternate Authentication Material: Application Access Token", Tactic: TacticDefenseEvasion},
	"T1550.004": {ID: "T1550.004", Name: "Use Alternate Authentication Material: Web Session Cookie", Tactic: TacticDefenseEvasion},
	"T1606":     {ID: "T1606", Name: "Forge Web Credentials", Tactic: TacticCredentialAccess},
}

// TechniqueByID returns the technique with ATT&CK id id, and false for an
// id sessionmon does not report.
func TechniqueByID(id string) (Technique, bool) {
	t, ok := techniques[id]
	return t, ok
}

// techniqueIDPattern is the form of ATT&CK technique ids.
var techniqueIDPattern = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

// ValidTechniqueID reports whether id has the form of an ATT&CK technique
// or sub-technique id ("T1539", "T1110.001").
func ValidTechniqueID(id string) bool { return techniqueIDPattern.MatchString(id) }

// URL returns the technique's page on attack.mitre.org
// ("https://attack.mitre.org/techniques/T1110/001/"), or "" when its id is
// not an ATT&CK technique id.
func (t Technique) URL() string {
	if !ValidTechniqueID(t.ID) {
		return ""
	}
	return "https://attack.mitre.org/techniques/" + strings.Replace(t.ID, ".", "/", 1) + "/"
}
