package detect

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// Test fixtures of the policy detectors' tests. Names carry a pol prefix so
// they cannot clash with the other detectors' test helpers.

// polBase is time zero of the policy detectors' test timelines.
var polBase = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

const (
	polApp      = "shop"
	polSubject  = "k1:SubjectAAAAAAAAAAAAAA"
	polSubject2 = "k1:SubjectBBBBBBBBBBBBBB"
	polSessA    = "k1:SessionAAAAAAAAAAAAAA"
	polSessB    = "k1:SessionBBBBBBBBBBBBBB"
	polAnon     = "k1:AnonymousAAAAAAAAAAAA"
	polTokenA   = "k1:TokenAAAAAAAAAAAAAAAA"
	polTokenB   = "k1:TokenBBBBBBBBBBBBBBBB"
)

// polEv returns a schema v1 event of subject polSubject in session polSessA
// at polBase+at; opts adjust it.
func polEv(id string, typ schemas.Type, at time.Duration, opts ...func(*schemas.Event)) *schemas.Event {
	e := &schemas.Event{
		ID: id, SchemaVersion: schemas.SchemaVersion, Type: typ,
		Time: schemas.At(polBase.Add(at)), App: polApp, Subject: polSubject, Session: polSessA,
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func polSession(s string) func(*schemas.Event) { return func(e *schemas.Event) { e.Session = s } }

func polSubjectOf(s string) func(*schemas.Event) { return func(e *schemas.Event) { e.Subject = s } }

func polPrevious(s string) func(*schemas.Event) {
	return func(e *schemas.Event) { e.PreviousSession = s }
}

func polPolicy(idleS, absoluteS, reauthS int64) func(*schemas.Event) {
	return func(e *schemas.Event) {
		e.Policy = &schemas.Policy{IdleTimeoutS: idleS, AbsoluteTimeoutS: absoluteS, ReauthWindowS: reauthS}
	}
}

func polLastAuth(at time.Duration) func(*schemas.Event) {
	return func(e *schemas.Event) {
		t := schemas.At(polBase.Add(at))
		e.Auth = &schemas.Auth{LastAuthAt: &t}
	}
}

func polAction(name string, sensitive bool) func(*schemas.Event) {
	return func(e *schemas.Event) { e.Action = &schemas.Action{Name: name, Sensitive: sensitive} }
}

// polToken sets a token block; issuedAt/expiresAt are offsets from polBase,
// and a negative life leaves both unset.
func polToken(id, kind, kid string, issued, life time.Duration, claims ...string) func(*schemas.Event) {
	return func(e *schemas.Event) {
		t := &schemas.Token{ID: id, Kind: kind, KID: kid, Claims: claims}
		if life >= 0 {
			iat, exp := schemas.At(polBase.Add(issued)), schemas.At(polBase.Add(issued+life))
			t.IssuedAt, t.ExpiresAt = &iat, &exp
		}
		e.Token = t
	}
}

// polRun checks that every event is valid schema v1, feeds them to d in
// order and returns the alerts it raised, each checked against the
// detector contract.
func polRun(t *testing.T, d Detector, events ...*schemas.Event) []schemas.Alert {
	t.Helper()
	var out []schemas.Alert
	for _, e := range events {
		require.NoError(t, e.Validate(polBase.Add(365*24*time.Hour)), "event %s", e.ID)
		d.Observe(e, func(a schemas.Alert) {
			require.Equal(t, d.Name(), a.Detector)
			require.Empty(t, a.ID, "the engine sets ID")
			require.True(t, a.DetectedAt.IsZero(), "the engine sets DetectedAt")
			require.NotZero(t, a.Severity.Rank())
			require.Equal(t, e.Time, a.Time, "alert time is the trigger's event time")
			require.Equal(t, e.App, a.App)
			require.Equal(t, e.Subject, a.Subject)
			require.NotEmpty(t, a.Title)
			require.NotEmpty(t, a.Summary)
			require.NotEmpty(t, a.Key)
			require.Contains(t, a.Evidence, e.ID, "evidence names the trigger")
			out = append(out, a)
		})
	}
	return out
}

// polHit is the part of an alert most table tests compare.
type polHit struct {
	Key      string
	At       time.Duration
	Evidence []string
}

func polHits(alerts []schemas.Alert) []polHit {
	out := []polHit{}
	for _, a := range alerts {
		out = append(out, polHit{Key: a.Key, At: a.Time.Sub(polBase), Evidence: a.Evidence})
	}
	return out
}

// polDetectors returns the eight policy detectors with their defaults and
// DefaultPolicy, sorted by name as the engine runs them.
func polDetectors(t *testing.T) []Detector {
	t.Helper()
	policy := DefaultPolicy
	idle, err := NewIdleTimeout(defaultIdleTimeoutConfig(), policy)
	require.NoError(t, err)
	absolute, err := NewAbsoluteTimeout(defaultAbsoluteTimeoutConfig(), policy)
	require.NoError(t, err)
	reauth, err := NewMissingReauth(defaultMissingReauthConfig(), policy)
	require.NoError(t, err)
	fixation, err := NewSessionFixation(defaultSessionFixationConfig())
	require.NoError(t, err)
	cookie, err := NewInsecureCookie(defaultInsecureCookieConfig())
	require.NoError(t, err)
	long, err := NewLongLivedToken(defaultLongLivedTokenConfig())
	require.NoError(t, err)
	pii, err := NewTokenPIIClaims(defaultTokenPIIClaimsConfig())
	require.NoError(t, err)
	retired, err := NewRetiredSigningKey(defaultRetiredSigningKeyConfig())
	require.NoError(t, err)
	dets := []Detector{idle, absolute, reauth, fixation, cookie, long, pii, retired}
	slices.SortFunc(dets, func(a, b Detector) int { return strings.Compare(a.Name(), b.Name()) })
	return dets
}

// polScenarioHit is what the scenario tests compare of an alert.
type polScenarioHit struct {
	Detector string
	Key      string
	Time     string
	Evidence []string
}

// polScenario decodes testdata/<name>/events.ndjson strictly, runs it
// through all eight policy detectors and returns their alerts. The engine's
// scenario runner checks the same files against alerts.golden.json with
// every detector; this test pins down what the policy detectors raise.
func polScenario(t *testing.T, name string) []polScenarioHit {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name, "events.ndjson"))
	require.NoError(t, err)
	dets := polDetectors(t)
	out := []polScenarioHit{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		e, err := schemas.Decode(line, polBase.Add(30*24*time.Hour))
		require.NoError(t, err, "%s line %d", name, n)
		for _, d := range dets {
			d.Observe(e, func(a schemas.Alert) {
				out = append(out, polScenarioHit{Detector: a.Detector, Key: a.Key, Time: msTime(a.Time.UnixMilli()), Evidence: a.Evidence})
			})
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func TestPolicyDurationText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		d    time.Duration
		want string
	}{
		{"seconds", 45 * time.Second, "45s"},
		{"minutes and seconds", 4*time.Minute + 10*time.Second, "4m10s"},
		{"whole minutes", 30 * time.Minute, "30m"},
		{"hours and minutes", 2*time.Hour + 5*time.Minute, "2h05m"},
		{"whole hours", 12 * time.Hour, "12h"},
		{"a day and a half in hours", 36 * time.Hour, "36h"},
		{"whole days", 30 * 24 * time.Hour, "30d"},
		{"days and hours", 3*24*time.Hour + 4*time.Hour, "3d04h"},
		{"rounded to the second", 1500 * time.Millisecond, "2s"},
		{"rounded, then cut to two units", 8*time.Hour + 19*time.Minute + 59*time.Second + 980*time.Millisecond, "8h20m"},
		{"cut, not rounded, below the second", 2*time.Hour + 5*time.Minute + 40*time.Second, "2h05m"},
		{"zero", 0, "0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, durationText(tc.d))
		})
	}
}

func TestPolicyPseudonymHint(t *testing.T) {
	t.Parallel()
	require.Equal(t, "k1:Sessi…", pseudonymHint(polSessA))
	require.Equal(t, "short", pseudonymHint("short"))
}

// TestPolicyDetectorsYAML checks that the policy detectors' settings are
// read from the detect: section and validated with their YAML paths.
func TestPolicyDetectorsYAML(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		yaml   string
		errors []string
	}{
		{
			name: "yaml/every setting",
			yaml: `
policy: {idle_timeout: 15m, absolute_timeout: 8h, reauth_window: 5m}
detectors:
  idle_timeout_exceeded: {state_ttl: 48h, max_sessions: 1000, severity: high}
  absolute_timeout_exceeded: {state_ttl: 12h, max_sessions: 1000}
  missing_reauth: {state_ttl: 12h, max_sessions: 1000, dedup_window: 30m}
  session_fixation: {severity: critical}
  insecure_cookie: {allow_same_site_none: true}
  long_lived_token: {max_lifetime: 15m}
  token_pii_claims: {claims: [email, employee_number], skip_id_tokens: true}
  retired_signing_key: {state_ttl: 90d, max_keys: 100, per_app: true}
`,
		},
		{
			name: "yaml/invalid settings are named",
			yaml: `
detectors:
  idle_timeout_exceeded: {state_ttl: 10m}
  long_lived_token: {max_lifetime: 0s}
  token_pii_claims: {claims: []}
  retired_signing_key: {max_keys: 0}
`,
			errors: []string{
				"detectors.idle_timeout_exceeded.state_ttl: must be longer than the default idle timeout policy.idle_timeout (30m0s)",
				"detectors.long_lived_token.max_lifetime: must be positive",
				"detectors.token_pii_claims.claims: must list at least one claim name",
				"detectors.retired_signing_key.max_keys: must be positive",
			},
		},
		{
			name:   "yaml/unknown settings are named",
			yaml:   "detectors:\n  insecure_cookie: {allow_samesite_none: true}\n",
			errors: []string{"line 2: detectors.insecure_cookie.allow_samesite_none: unknown key"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig([]byte(tc.yaml))
			if len(tc.errors) > 0 {
				for _, msg := range tc.errors {
					require.ErrorContains(t, err, msg)
				}
				return
			}
			require.NoError(t, err)
			dets, err := NewDetectors(cfg)
			require.NoError(t, err)
			byName := map[string]Detector{}
			for _, d := range dets {
				byName[d.Name()] = d
			}
			idle := byName["idle_timeout_exceeded"].(*IdleTimeout)
			require.Equal(t, Duration(48*time.Hour), idle.cfg.StateTTL)
			require.Equal(t, schemas.SeverityHigh, idle.cfg.Severity)
			require.Equal(t, Duration(15*time.Minute), idle.policy.IdleTimeout)
			require.Equal(t, Duration(5*time.Minute), byName["missing_reauth"].(*MissingReauth).policy.ReauthWindow)
			require.True(t, byName["insecure_cookie"].(*InsecureCookie).cfg.AllowSameSiteNone)
			require.Equal(t, Duration(15*time.Minute), byName["long_lived_token"].(*LongLivedToken).cfg.MaxLifetime)
			pii := byName["token_pii_claims"].(*TokenPIIClaims)
			require.Equal(t, []string{"email", "employee_number"}, pii.cfg.Claims)
			require.True(t, pii.cfg.SkipIDTokens)
			retired := byName["retired_signing_key"].(*RetiredSigningKey)
			require.Equal(t, Duration(90*24*time.Hour), retired.cfg.StateTTL)
			require.True(t, retired.cfg.PerApp)
		})
	}
}

// polScenarioCase is a scenario directory and the alerts expected of it.
type polScenarioCase struct {
	name string
	want []polScenarioHit
}

// polCheckScenarios runs each case's scenario and compares its alerts.
func polCheckScenarios(t *testing.T, cases []polScenarioCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := tc.want
			if want == nil {
				want = []polScenarioHit{}
			}
			require.Equal(t, want, polScenario(t, tc.name))
		})
	}
}
