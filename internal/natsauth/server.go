package natsauth

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// Configure makes opts trust the operator and know both accounts from a
// memory resolver, so that the server accepts only users the sessionmon
// account signed.
func (a *Authority) Configure(opts *server.Options) error {
	oc, err := jwt.DecodeOperatorClaims(a.operatorJWT)
	if err != nil {
		return fmt.Errorf("operator jwt: %w", err)
	}
	res := &server.MemAccResolver{}
	if err := res.Store(a.AccountKey(), a.accountJWT); err != nil {
		return fmt.Errorf("account resolver: %w", err)
	}
	if err := res.Store(a.SystemAccountKey(), a.systemJWT); err != nil {
		return fmt.Errorf("account resolver: %w", err)
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{oc}
	opts.AccountResolver = res
	opts.SystemAccount = a.SystemAccountKey()
	return nil
}

// ServerConfig returns a nats-server configuration fragment, for an
// include in the server's configuration file: the operator, the system
// account and a memory resolver preloaded with both accounts.
func (a *Authority) ServerConfig() string {
	return fmt.Sprintf(`# sessionmon's NATS authentication, written by 'sessionmon creds init'.
# Include it in nats-server's configuration: include auth.conf
# Users are the .creds files next to it; the sessionmon account (%s)
# has JetStream enabled.
operator: %s
system_account: %s
resolver: MEMORY
resolver_preload: {
  %s: %s
  %s: %s
}
`, a.AccountKey(), a.operatorJWT, a.SystemAccountKey(),
		a.AccountKey(), a.accountJWT, a.SystemAccountKey(), a.systemJWT)
}

// ServerConfigFile is the name of the configuration fragment Init writes.
const ServerConfigFile = "auth.conf"

// Init makes (or reuses) the keys in dir, writes ServerConfigFile
// (replaced on every run: it holds no secret and the same accounts) and
// the admin, sessionmon and app credentials files that are missing.
func Init(dir string) (*Authority, error) {
	a, err := LoadOrCreate(dir)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, ServerConfigFile)
	tmp := file + ".tmp"
	// The server reads the file, possibly as another user than the one
	// running this command: it holds only public keys and signed JWTs.
	if err := os.WriteFile(tmp, []byte(a.ServerConfig()), 0o644); err != nil {
		return nil, fmt.Errorf("nats server config: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return nil, fmt.Errorf("nats server config: %w", err)
	}
	if err := a.EnsureCreds(dir); err != nil {
		return nil, err
	}
	return a, nil
}
