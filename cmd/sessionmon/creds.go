package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sessionmon/sessionmon/internal/natsauth"
)

func credsCommand() *command {
	return &command{
		name:  "creds",
		short: "make NATS credentials: per-app files, or keys and config for an external nats-server",
		usage: "sessionmon creds app NAME [--output FILE] [--dir DIR]\n       sessionmon creds init --dir DIR",
		summary: `Make NATS credentials files (.creds: a user JWT and its NKey seed, the format
of 'nats --creds FILE', sessionmon's --nats-creds and the SDK's
WithCredentialsFile).

creds app NAME
  Credentials for one application, whose SDK client uses WithApp(NAME): it
  may publish only its own events (sessionmon.events.NAME.<subject>) and receive
  only its own acknowledgements, on the inbox prefix _INBOX_NAME (set
  sdk.WithInboxPrefix("_INBOX_NAME"), or nats.CustomInboxPrefix). NAME is
  1-64 characters of A-Z a-z 0-9 _ -. The file goes to standard output, or
  to --output (created with mode 0600; an existing file is not replaced).
  The keys are the embedded server's, in <data-dir>/nats (start
  'sessionmon serve' once first), or those of --dir.

creds init --dir DIR
  For an external nats-server (docker-compose.yml does this): makes the
  operator, account and system account keys in DIR/keys (kept when they
  exist), writes DIR/auth.conf, to include in nats-server's configuration
  (operator, system account, memory resolver with both accounts), and the
  missing credentials files DIR/admin.creds (everything: operators and the
  nats CLI), DIR/sessionmon.creds (sessionmon's processes:
  SESSIONMON_NATS_CREDS) and DIR/app.creds (applications: publish events,
  inbox prefix _APPS_INBOX). Running it again changes nothing that works.

Keep the keys directory and the .creds files secret: anyone holding a
file can do what it allows.`,
		options: []string{"data-dir", "dir", "output", "log-format", "log-level"},
		run:     runCreds,
	}
}

func runCreds(_ context.Context, e *env) error {
	usage := errors.New("usage: sessionmon creds app NAME [--output FILE] | sessionmon creds init --dir DIR")
	if len(e.args) == 0 {
		return usage
	}
	dir := e.cfg.Creds.Dir
	switch e.args[0] {
	case "init":
		if len(e.args) != 1 {
			return usage
		}
		if dir == "" {
			return errors.New("creds init: --dir is required (the embedded server of serve makes its own in <data-dir>/nats)")
		}
		if _, err := natsauth.Init(dir); err != nil {
			return fmt.Errorf("creds init: %w", err)
		}
		fmt.Fprintf(e.stdout, "NATS keys and credentials in %s: include %s in nats-server's configuration; give sessionmon %s, applications %s (or 'sessionmon creds app NAME --dir %s')\n",
			dir, natsauth.ServerConfigFile, natsauth.CredsFile(dir, natsauth.ServiceUser), natsauth.CredsFile(dir, natsauth.AppUser), dir)
		return nil
	case "app":
		if len(e.args) != 2 {
			return usage
		}
		p, err := natsauth.NamedApp(e.args[1])
		if err != nil {
			return fmt.Errorf("creds app: %w", err)
		}
		if dir == "" {
			dir = natsauth.Dir(e.cfg.DataDir)
		}
		a, err := natsauth.Load(dir)
		if errors.Is(err, natsauth.ErrNoKeys) {
			return fmt.Errorf("creds app: %w: start 'sessionmon serve' once with this data-dir, or run 'sessionmon creds init --dir DIR' and pass --dir DIR", err)
		}
		if err != nil {
			return fmt.Errorf("creds app: %w", err)
		}
		if e.cfg.Output == "" || e.cfg.Output == "-" {
			b, err := a.Creds(p)
			if err != nil {
				return fmt.Errorf("creds app: %w", err)
			}
			_, err = e.stdout.Write(b)
			return err
		}
		if err := a.WriteCreds(e.cfg.Output, p); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("creds app: --output %s exists; remove it first (its credentials stay valid)", e.cfg.Output)
			}
			return fmt.Errorf("creds app: %w", err)
		}
		fmt.Fprintf(e.stderr, "credentials of app %s written to %s (inbox prefix %s)\n", e.args[1], e.cfg.Output, natsauth.AppInbox(e.args[1]))
		return nil
	}
	return usage
}
