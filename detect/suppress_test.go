package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/internal/testutil/schematest"
	"github.com/sessionmon/sessionmon/schemas"
)

// testRule is a valid rule silencing brute_force for app shop from an hour
// ago for a day.
func testRule(id string) *schemas.SuppressionRule {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &schemas.SuppressionRule{
		ID: id, Detector: "brute_force", App: "shop", Action: schemas.SuppressSilence,
		Owner: "anna", Reason: "load test", CreatedAt: schemas.At(now.Add(-time.Hour)), ExpiresAt: schemas.At(now.Add(24 * time.Hour)),
	}
}

func testSuppressedAlert(severity schemas.Severity) schemas.Alert {
	return schemas.Alert{ID: "a1", Detector: "brute_force", App: "shop", Severity: severity,
		DetectedAt: schemas.At(time.Now()), Source: &schemas.Source{IPPrefix: "203.0.113.0/24", ASN: 64500}}
}

func TestSuppressionSetApply(t *testing.T) {
	t.Parallel()
	lowerTo := func(id string, s schemas.Severity) *schemas.SuppressionRule {
		r := testRule(id)
		r.Action, r.Severity = schemas.SuppressLower, s
		return r
	}
	expired := testRule("expired00")
	expired.ExpiresAt = schemas.At(time.Now().Add(-time.Second))
	future := testRule("future000")
	future.CreatedAt = schemas.At(time.Now().Add(time.Hour))
	otherApp := testRule("otherapp0")
	otherApp.App = "bank"
	allDetectors := lowerTo("alldet000", schemas.SeverityLow)
	allDetectors.Detector = "*"
	for _, tc := range []struct {
		name     string
		rules    []*schemas.SuppressionRule
		severity schemas.Severity
		// want is the rule and action that should mark the alert ("" for
		// none), and the alert's severity after.
		wantRule string
		wantSev  schemas.Severity
		wantOrig schemas.Severity
	}{
		{name: "no rules", severity: schemas.SeverityHigh, wantSev: schemas.SeverityHigh},
		{name: "silence", rules: []*schemas.SuppressionRule{testRule("silence00")}, severity: schemas.SeverityHigh,
			wantRule: "silence00", wantSev: schemas.SeverityHigh},
		{name: "lower", rules: []*schemas.SuppressionRule{lowerTo("lower0000", schemas.SeverityLow)}, severity: schemas.SeverityHigh,
			wantRule: "lower0000", wantSev: schemas.SeverityLow, wantOrig: schemas.SeverityHigh},
		{name: "lower never raises", rules: []*schemas.SuppressionRule{lowerTo("lower0000", schemas.SeverityMedium)},
			severity: schemas.SeverityLow, wantSev: schemas.SeverityLow},
		{name: "silence beats lower", rules: []*schemas.SuppressionRule{lowerTo("aaaaaaaa", schemas.SeverityLow), testRule("zzzzzzzz")},
			severity: schemas.SeverityHigh, wantRule: "zzzzzzzz", wantSev: schemas.SeverityHigh},
		{name: "lowest lower wins", rules: []*schemas.SuppressionRule{lowerTo("aaaaaaaa", schemas.SeverityMedium), lowerTo("zzzzzzzz", schemas.SeverityLow)},
			severity: schemas.SeverityCritical, wantRule: "zzzzzzzz", wantSev: schemas.SeverityLow, wantOrig: schemas.SeverityCritical},
		{name: "every detector", rules: []*schemas.SuppressionRule{allDetectors}, severity: schemas.SeverityMedium,
			wantRule: "alldet000", wantSev: schemas.SeverityLow, wantOrig: schemas.SeverityMedium},
		{name: "expired", rules: []*schemas.SuppressionRule{expired}, severity: schemas.SeverityHigh, wantSev: schemas.SeverityHigh},
		{name: "not yet created", rules: []*schemas.SuppressionRule{future}, severity: schemas.SeverityHigh, wantSev: schemas.SeverityHigh},
		{name: "other app", rules: []*schemas.SuppressionRule{otherApp}, severity: schemas.SeverityHigh, wantSev: schemas.SeverityHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]*schemas.SuppressionRule{}
			for _, r := range tc.rules {
				require.NoError(t, r.Validate(nil))
				m[r.ID] = r
			}
			set := newSuppressionSet(m)
			require.Equal(t, len(tc.rules), set.len())
			a := testSuppressedAlert(tc.severity)
			marked := set.apply(&a)
			require.Equal(t, tc.wantRule != "", marked)
			require.Equal(t, tc.wantSev, a.Severity)
			if tc.wantRule == "" {
				require.Nil(t, a.Suppression)
				return
			}
			require.Equal(t, tc.wantRule, a.Suppression.Rule)
			require.Equal(t, tc.wantOrig, a.Suppression.OriginalSeverity)
			// A second pass (a publish retry) changes nothing.
			before := *a.Suppression
			require.False(t, set.apply(&a))
			require.Equal(t, before, *a.Suppression)
			require.Equal(t, tc.wantSev, a.Severity)
		})
	}
	var none *suppressionSet
	a := testSuppressedAlert(schemas.SeverityHigh)
	require.False(t, none.apply(&a), "no set yet: nothing applies")
}

// The watcher reads the bucket's rules at start and follows changes;
// values that are not valid rules (forged, malformed, under the wrong key,
// for an unknown detector) are ignored and counted.
func TestSuppressionsFollowBucketAndIgnoreInvalid(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := t.Context()
	kv, err := natsconn.EnsureSuppressionBucket(ctx, js, 1)
	require.NoError(t, err)
	put := func(key string, v any) {
		t.Helper()
		b, ok := v.([]byte)
		if !ok {
			b, err = json.Marshal(v)
			require.NoError(t, err)
		}
		_, err := kv.Put(ctx, key, b)
		require.NoError(t, err)
	}
	put("good0001", testRule("good0001"))
	put("broken01", []byte(`{"id":`))
	wrongKey := testRule("elsewhere")
	put("wrongkey", wrongKey)
	unknown := testRule("unknown1")
	unknown.Detector = "no_such_detector"
	put("unknown1", unknown)
	// A rule with a field the contract does not know (decoded strictly).
	extra := map[string]any{"id": "extra001", "detector": "brute_force", "app": "shop", "action": "silence",
		"owner": "x", "reason": "y", "created_at": schemas.At(time.Now().Add(-time.Hour)),
		"expires_at": schemas.At(time.Now().Add(time.Hour)), "match_everything": true}
	put("extra001", extra)
	noReason := testRule("noreason")
	noReason.Reason = ""
	put("noreason", noReason)
	tooLong := testRule("toolong1")
	tooLong.ExpiresAt = schemas.At(tooLong.CreatedAt.Add(91 * 24 * time.Hour))
	put("toolong1", tooLong)

	m := newSuppressionMetrics()
	sp := newSuppressions(kv, slog.New(slog.DiscardHandler), m)
	require.NoError(t, sp.load(ctx))
	set := sp.cur.Load()
	require.Equal(t, 1, set.len(), "only the valid rule")
	require.Equal(t, "good0001", set.byDetector["brute_force"][0].ID)
	require.Equal(t, 6.0, testutil.ToFloat64(m.invalid))

	done := make(chan error, 1)
	runCtx, cancel := context.WithCancel(context.Background())
	go func() { done <- sp.run(runCtx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	waitRules := func(want ...string) {
		t.Helper()
		poll.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			var got []string
			set := sp.cur.Load()
			for _, rs := range set.byDetector {
				for _, r := range rs {
					got = append(got, r.ID)
				}
			}
			for _, r := range set.all {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("rules %v, want %v", got, want)
			}
			return nil
		})
	}
	// A new rule applies; a valid update replaces.
	second := testRule("second01")
	second.Detector = "*"
	put("second01", second)
	waitRules("good0001", "second01")
	require.Equal(t, 2.0, testutil.ToFloat64(m.rules))
	// A forged update of a valid rule removes it: the bucket holds no
	// valid rule under that key any more.
	put("good0001", []byte(`{"id":"good0001","detector":"brute_force","action":"silence"}`))
	waitRules("second01")
	require.Equal(t, 7.0, testutil.ToFloat64(m.invalid))
	// Deleting and purging remove.
	require.NoError(t, kv.Delete(ctx, "second01"))
	waitRules()
	put("third001", testRule("third001"))
	waitRules("third001")
	require.NoError(t, kv.Purge(ctx, "third001"))
	waitRules()
}

// The live service marks the alerts a rule matches, whether the rule was
// there at start or added while it runs, and leaves the others alone; a
// forged rule changes nothing.
func TestServiceAppliesSuppressionsWithoutRestart(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	ctx := t.Context()
	kv, err := natsconn.EnsureSuppressionBucket(ctx, js, 1)
	require.NoError(t, err)
	atStart := testRule("atstart1")
	atStart.Detector, atStart.App, atStart.Subject = "session_fixation", "", "k1:sentinel-first"
	b, err := json.Marshal(atStart)
	require.NoError(t, err)
	_, err = kv.Put(ctx, atStart.ID, b)
	require.NoError(t, err)
	m := NewMetrics(nil)
	startService(t, js, closedDSN, svcConfig(), WithMetrics(m))

	byName := func(alerts []schemas.Alert, name string) schemas.Alert {
		for _, a := range alerts {
			if a.Subject == "k1:sentinel-"+name {
				return a
			}
		}
		t.Fatalf("no alert for %s", name)
		return schemas.Alert{}
	}
	a := byName(waitForSentinel(t, js, "first"), "first")
	require.Equal(t, &schemas.AlertSuppression{Rule: "atstart1", Action: schemas.SuppressSilence}, a.Suppression)

	// Added while running: applies within seconds, no restart.
	live := testRule("addedlive")
	live.Detector, live.App, live.Subject = "*", "", "k1:sentinel-second"
	live.Action, live.Severity = schemas.SuppressLower, schemas.SeverityLow
	b, err = json.Marshal(live)
	require.NoError(t, err)
	_, err = kv.Put(ctx, live.ID, b)
	require.NoError(t, err)
	// A forged value that would silence everything of the third sentinel.
	_, err = kv.Put(ctx, "forged01", []byte(`{"id":"forged01","detector":"*","subject":"k1:sentinel-third","action":"silence"}`))
	require.NoError(t, err)
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.ToFloat64(m.suppression.invalid); n != 1 {
			return fmt.Errorf("%v invalid rules seen", n)
		}
		if n := testutil.ToFloat64(m.suppression.rules); n != 2 {
			return fmt.Errorf("%v rules held", n)
		}
		return nil
	})
	a = byName(waitForSentinel(t, js, "second"), "second")
	require.NotNil(t, a.Suppression)
	require.Equal(t, schemas.SuppressLower, a.Suppression.Action)
	require.Equal(t, schemas.SeverityLow, a.Severity)
	require.NotEqual(t, schemas.SeverityLow, a.Suppression.OriginalSeverity)

	a = byName(waitForSentinel(t, js, "third"), "third")
	require.Nil(t, a.Suppression, "the forged rule is ignored")

	require.Equal(t, 1.0, testutil.ToFloat64(m.suppression.suppressed.WithLabelValues("session_fixation", "silence")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.suppression.suppressed.WithLabelValues("session_fixation", "lower")))

	// Deleted: the next alert is not marked.
	require.NoError(t, kv.Delete(ctx, atStart.ID))
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.ToFloat64(m.suppression.rules); n != 1 {
			return fmt.Errorf("%v rules held", n)
		}
		return nil
	})
}

// A marked alert, as published, validates against alert.v1.schema.json.
func TestSuppressedAlertMatchesSchema(t *testing.T) {
	t.Parallel()
	rule := testRule("lower001")
	rule.Action, rule.Severity = schemas.SuppressLower, schemas.SeverityLow
	set := newSuppressionSet(map[string]*schemas.SuppressionRule{rule.ID: rule})
	a := testSuppressedAlert(schemas.SeverityHigh)
	a.ID, a.Time, a.Title, a.Summary, a.Evidence = schemas.AlertID("brute_force", "k", "ev-1"), a.DetectedAt, "t", "s", []string{"ev-1"}
	require.True(t, set.apply(&a))
	m, err := alertbus.Message(&a)
	require.NoError(t, err)
	require.Equal(t, "sessionmon.alerts.low.brute_force", m.Subject, "published at the lowered severity")
	require.Contains(t, string(m.Data), `"suppression":{"rule":"lower001","action":"lower","original_severity":"high"}`)
	require.NoError(t, schematest.ValidateAlert(m.Data))
	bad := strings.Replace(string(m.Data), `"action":"lower"`, `"action":"drop"`, 1)
	require.Error(t, schematest.ValidateAlert([]byte(bad)), "the schema checks the action")
}
