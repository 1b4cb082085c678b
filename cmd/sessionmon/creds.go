package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/intake"
	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

func credsCommand() *command {
	return &command{
		name:  "creds",
		short: "make NATS credentials: per-app files, or keys and config for an external nats-server",
		usage: "sessionmon creds app NAME [--output FILE] [--dir DIR]\n       sessionmon creds app NAME --http [--token-name LABEL] [--expires 365d]\n       sessionmon creds http-tokens\n       sessionmon creds revoke-http ID\n       sessionmon creds init --dir DIR",
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

creds app NAME --http
  An HTTP intake token for the application (the JavaScript and Python SDKs,
  or any HTTP client posting to /v1/events): it may publish only NAME's
  events. The token (smi_...) is printed once on standard output; sessionmon
  keeps only its SHA-256 hash, with a MAC made with the dashboard record key,
  in the NATS bucket SESSIONMON_INTAKE_TOKENS. It expires after --expires
  (default 365d). Needs the NATS server: a running 'sessionmon serve' on this
  data-dir, or --nats-url.

creds http-tokens
  List the intake tokens: id, app, name, created, expires (never the token).

creds revoke-http ID
  Revoke the intake token with that id (from http-tokens). A running intake
  stops taking it within 10 seconds.

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
		options: join([]string{"data-dir", "dir", "output", "log-format", "log-level", "http", "token-name", "expires", "nats-listen", "dashboard-record-key", "format"}, natsOptions, secretOptions),
		words:   true,
		run:     runCreds,
	}
}

func runCreds(ctx context.Context, e *env) error {
	if len(e.args) == 0 {
		return wantWord(e.args, "app", "http-tokens", "revoke-http", "init")
	}
	// wantArgs checks the words after the subcommand: n of them, named.
	wantArgs := func(n int, what string) error {
		switch {
		case len(e.args)-1 < n:
			return usagef("%s: missing %s", e.args[0], what)
		case len(e.args)-1 > n:
			return usagef("%s: too many arguments", e.args[0])
		}
		return nil
	}
	switch {
	case e.args[0] == "app" && e.cfg.Creds.HTTP:
		if err := wantArgs(1, "the app's NAME"); err != nil {
			return err
		}
		return createIntakeToken(ctx, e, e.args[1])
	case e.args[0] == "http-tokens":
		if err := wantArgs(0, ""); err != nil {
			return err
		}
		return listIntakeTokens(ctx, e)
	case e.args[0] == "revoke-http":
		if err := wantArgs(1, "the token's ID"); err != nil {
			return err
		}
		return revokeIntakeToken(ctx, e, e.args[1])
	}
	dir := e.cfg.Creds.Dir
	switch e.args[0] {
	case "init":
		if err := wantArgs(0, ""); err != nil {
			return err
		}
		if dir == "" {
			return usagef("init: --dir is required (the embedded server of serve makes its own in <data-dir>/nats)")
		}
		if _, err := natsauth.Init(dir); err != nil {
			return fmt.Errorf("creds init: %w", err)
		}
		fmt.Fprintf(e.stdout, "NATS keys and credentials in %s: include %s in nats-server's configuration; give sessionmon %s, applications %s (or 'sessionmon creds app NAME --dir %s')\n",
			dir, natsauth.ServerConfigFile, natsauth.CredsFile(dir, natsauth.ServiceUser), natsauth.CredsFile(dir, natsauth.AppUser), dir)
		return nil
	case "app":
		if err := wantArgs(1, "the app's NAME"); err != nil {
			return err
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
	return wantWord(e.args, "app", "http-tokens", "revoke-http", "init")
}

// intakeTokens connects to NATS and opens the intake token store with the
// dashboard record key of this data-dir (or dashboard-record-key).
func intakeTokens(ctx context.Context, e *env) (*intake.Tokens, func(), error) {
	recordKey, err := dashboard.LoadRecordKey(e.cfg.Dashboard.RecordKey, e.cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	nc, err := natsconn.Connect(e.cfg.NATS.ClientURL(), e.cfg.NATS, "sessionmon-creds", e.logger)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	tokens, err := intake.OpenTokens(ctx, js, recordKey)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return tokens, nc.Close, nil
}

func createIntakeToken(ctx context.Context, e *env, app string) error {
	if _, err := natsauth.NamedApp(app); err != nil {
		return fmt.Errorf("creds app: %w", err)
	}
	tokens, closeNATS, err := intakeTokens(ctx, e)
	if err != nil {
		return fmt.Errorf("creds app --http: %w", err)
	}
	defer closeNATS()
	raw, tok, err := tokens.Create(ctx, app, e.cfg.Creds.TokenName, e.cfg.Creds.Expires, requester(""), time.Now())
	if err != nil {
		return fmt.Errorf("creds app --http: %w", err)
	}
	fmt.Fprintln(e.stdout, raw)
	fmt.Fprintf(e.stderr, "intake token %s for app %s, valid until %s: send it as 'Authorization: Bearer <token>' to POST /v1/events. It is shown only now.\n",
		tok.ID, tok.App, tok.Expires.Format(time.RFC3339))
	return nil
}

func listIntakeTokens(ctx context.Context, e *env) error {
	tokens, closeNATS, err := intakeTokens(ctx, e)
	if err != nil {
		return fmt.Errorf("creds http-tokens: %w", err)
	}
	defer closeNATS()
	list, refused, err := tokens.List(ctx)
	if err != nil {
		return fmt.Errorf("creds http-tokens: %w", err)
	}
	now := time.Now()
	if formatJSON(e) {
		out := make([]intakeTokenJSON, 0, len(list))
		for _, t := range list {
			out = append(out, intakeTokenJSON{ID: t.ID, App: t.App, Name: t.Name, Created: t.Created.UTC(), Expires: t.Expires.UTC(),
				Expired: t.Expired(now), CreatedBy: t.CreatedBy})
		}
		if err := printJSON(e.stdout, out); err != nil {
			return err
		}
	} else if err := printIntakeTokens(e.stdout, list, now); err != nil {
		return err
	}
	if refused > 0 {
		fmt.Fprintf(e.stderr, "%d record(s) in %s do not verify with this record key and authenticate nothing\n", refused, schemas.IntakeTokenBucket)
	}
	return nil
}

// intakeTokenJSON is a row of creds http-tokens -o json: the columns of the
// table (never the token).
type intakeTokenJSON struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	Expired   bool      `json:"expired"`
	CreatedBy string    `json:"created_by"`
}

func printIntakeTokens(out io.Writer, list []intake.Token, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tAPP\tNAME\tCREATED\tEXPIRES\tCREATED BY")
	for _, t := range list {
		expires := t.Expires.Format(time.RFC3339)
		if t.Expired(now) {
			expires += " (expired)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.App, t.Name, t.Created.Format(time.RFC3339), expires, t.CreatedBy)
	}
	return w.Flush()
}

func revokeIntakeToken(ctx context.Context, e *env, id string) error {
	tokens, closeNATS, err := intakeTokens(ctx, e)
	if err != nil {
		return fmt.Errorf("creds revoke-http: %w", err)
	}
	defer closeNATS()
	if err := tokens.Revoke(ctx, id); err != nil {
		return fmt.Errorf("creds revoke-http: %w", err)
	}
	fmt.Fprintf(e.stderr, "intake token %s revoked\n", id)
	return nil
}
