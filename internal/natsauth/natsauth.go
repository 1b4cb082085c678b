// Package natsauth makes and keeps sessionmon's NATS credentials, using
// NATS's decentralized authentication: an operator signs two accounts
// (sessionmon's and the system account), and the sessionmon account signs
// one user JWT per credentials file. The servers trust the operator and
// know the accounts from a memory resolver, so a user is anyone holding a
// .creds file the account signed, with the permissions written in it.
//
// The keys live in one directory (mode 0700, seeds 0600): the embedded
// server of serve keeps them in <data-dir>/nats/keys, `sessionmon creds
// init` writes them where an external nats-server's configuration is made.
// A directory that holds keys is reused, so credentials made before a
// restart stay valid.
package natsauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Names of the credentials files, without ".creds".
const (
	// AdminUser may do everything in the sessionmon account: operators,
	// the nats CLI and sessionmon's command-line tools use it.
	AdminUser = "admin"
	// ServiceUser is sessionmon's own processes: JetStream, its streams
	// and buckets, its control subjects, and replies on _INBOX.>.
	ServiceUser = "sessionmon"
	// AppUser is shared by applications: publish events, receive the
	// acknowledgements on AppInboxPrefix.
	AppUser = "app"
)

// AppInboxPrefix is the reply subject prefix of AppUser's credentials
// (nats.CustomInboxPrefix, sdk.WithInboxPrefix). Per-app credentials use
// AppInbox(name), which starts with "_INBOX_": this prefix cannot be one
// of them.
const AppInboxPrefix = "_APPS_INBOX"

// AppInbox returns the reply subject prefix of the credentials made for
// one app by AppCreds.
func AppInbox(app string) string { return "_INBOX_" + app }

// Dir returns the directory of the embedded server's keys and
// credentials files in a data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// CredsFile returns the path of user's credentials file in dir.
func CredsFile(dir, user string) string { return filepath.Join(dir, user+".creds") }

// Modes of what this package writes.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// Authority holds the operator, sessionmon account and system account
// keys, and the JWTs they sign.
type Authority struct {
	operator, account, system          nkeys.KeyPair
	operatorJWT, accountJWT, systemJWT string
}

// LoadOrCreate reads the keys in dir/keys, or creates them there (the
// directories with mode 0700, the seed files 0600) when there are none.
// A partial set of keys is an error: new keys would invalidate every
// credentials file made with the old ones.
func LoadOrCreate(dir string) (*Authority, error) { return load(dir, true) }

// Load reads the keys in dir/keys; it fails with ErrNoKeys when there are
// none.
func Load(dir string) (*Authority, error) { return load(dir, false) }

func load(dir string, mayCreate bool) (*Authority, error) {
	keyDir := filepath.Join(dir, "keys")
	names := []string{"operator", "account", "system"}
	create := []func() (nkeys.KeyPair, error){nkeys.CreateOperator, nkeys.CreateAccount, nkeys.CreateAccount}
	var found, missing []string
	for _, n := range names {
		if _, err := os.Stat(seedFile(keyDir, n)); err == nil {
			found = append(found, n)
		} else if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, n)
		} else {
			return nil, fmt.Errorf("nats keys: %w", err)
		}
	}
	if len(found) > 0 && len(missing) > 0 {
		return nil, fmt.Errorf("nats keys in %s: %v present but %v missing; restore them from a backup (or remove the directory to make new keys, which invalidates every credentials file)", keyDir, found, missing)
	}
	if len(found) == 0 && !mayCreate {
		return nil, fmt.Errorf("%w in %s", ErrNoKeys, keyDir)
	}
	for _, d := range []string{dir, keyDir} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("nats keys directory: %w", err)
		}
		// MkdirAll keeps the mode of an existing directory, and the umask
		// applies to a new one.
		if err := os.Chmod(d, dirMode); err != nil {
			return nil, fmt.Errorf("nats keys directory: %w", err)
		}
	}
	kps := make([]nkeys.KeyPair, len(names))
	for i, n := range names {
		var err error
		if len(found) > 0 {
			kps[i], err = readSeed(seedFile(keyDir, n))
		} else {
			kps[i], err = create[i]()
			if err == nil {
				err = writeSeed(seedFile(keyDir, n), kps[i])
			}
		}
		if err != nil {
			return nil, fmt.Errorf("nats %s key: %w", n, err)
		}
	}
	return newAuthority(kps[0], kps[1], kps[2])
}

func seedFile(keyDir, name string) string { return filepath.Join(keyDir, name+".nk") }

func readSeed(file string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return kp, nil
}

func writeSeed(file string, kp nkeys.KeyPair) error {
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	return writeFile(file, append(seed, '\n'))
}

// writeFile writes b to a new file of mode 0600; it never replaces a file.
func writeFile(file string, b []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func newAuthority(operator, account, system nkeys.KeyPair) (*Authority, error) {
	a := &Authority{operator: operator, account: account, system: system}
	opPub, err := operator.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("operator key: %w", err)
	}
	sysPub, err := system.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("system account key: %w", err)
	}
	accPub, err := account.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "sessionmon"
	oc.SystemAccount = sysPub
	if a.operatorJWT, err = oc.Encode(operator); err != nil {
		return nil, fmt.Errorf("operator jwt: %w", err)
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	if a.systemJWT, err = sc.Encode(operator); err != nil {
		return nil, fmt.Errorf("system account jwt: %w", err)
	}
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = "SESSIONMON"
	// JetStream is on for the account, bounded by the server's limits
	// (max_file_store, max_memory_store) only.
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{
		MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit,
		Streams: jwt.NoLimit, Consumer: jwt.NoLimit,
	}
	if a.accountJWT, err = ac.Encode(operator); err != nil {
		return nil, fmt.Errorf("account jwt: %w", err)
	}
	return a, nil
}

// AccountKey returns the public key of the sessionmon account, which is
// also its name in the server (and its directory in the JetStream store).
func (a *Authority) AccountKey() string {
	k, _ := a.account.PublicKey()
	return k
}

// SystemAccountKey returns the public key of the system account.
func (a *Authority) SystemAccountKey() string {
	k, _ := a.system.PublicKey()
	return k
}

// Creds returns a credentials file (user JWT and seed, the format of
// `nats --creds`) for a new user with p's permissions.
func (a *Authority) Creds(p Profile) ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("user key: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("user key: %w", err)
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = p.Name
	uc.Permissions = p.Permissions
	tok, err := uc.Encode(a.account)
	if err != nil {
		return nil, fmt.Errorf("user %s jwt: %w", p.Name, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("user key: %w", err)
	}
	b, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		return nil, fmt.Errorf("user %s credentials: %w", p.Name, err)
	}
	return b, nil
}

// WriteCreds writes a new credentials file of p to file (mode 0600). It
// never replaces an existing file.
func (a *Authority) WriteCreds(file string, p Profile) error {
	b, err := a.Creds(p)
	if err != nil {
		return err
	}
	if err := writeFile(file, b); err != nil {
		return fmt.Errorf("credentials file: %w", err)
	}
	return nil
}

// EnsureCreds writes admin.creds, sessionmon.creds and app.creds into dir
// when they are missing. Existing files signed by the account are kept:
// they stay valid as long as the keys do. A file signed by other keys
// (the keys were made anew) is useless and is replaced.
func (a *Authority) EnsureCreds(dir string) error {
	for _, p := range []Profile{Admin(), Service(), App()} {
		file := CredsFile(dir, p.Name)
		if b, err := os.ReadFile(file); err == nil {
			if a.signed(b) {
				continue
			}
			if err := os.Remove(file); err != nil {
				return fmt.Errorf("replace credentials file of other keys: %w", err)
			}
		}
		if err := a.WriteCreds(file, p); err != nil {
			return err
		}
	}
	return nil
}

// signed reports whether creds holds a user JWT the account issued.
func (a *Authority) signed(creds []byte) bool {
	tok, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return false
	}
	uc, err := jwt.DecodeUserClaims(tok)
	return err == nil && uc.Issuer == a.AccountKey()
}
