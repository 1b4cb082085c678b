package detect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func newTestStuffing(t *testing.T, nets []Network, edit ...func(*CredentialStuffingConfig)) *CredentialStuffing {
	t.Helper()
	cfg := defaultCredentialStuffingConfig()
	for _, f := range edit {
		f(&cfg)
	}
	d, err := NewCredentialStuffing(cfg, newNetworks(nets))
	require.NoError(t, err)
	return d
}

// csVictim is the pseudonym of the i-th account tried.
func csVictim(i int) string { return fmt.Sprintf("k1:victim%015d", i) }

// csFails returns n failures of distinct accounts every step, from place
// p (prefix from the i-th result of prefix, when given).
func csFails(n int, step time.Duration, p engPlace, prefix func(int) string) []*schemas.Event {
	var out []*schemas.Event
	for i := range n {
		q := p
		if prefix != nil {
			q.prefix = prefix(i)
		}
		out = append(out, engEv(fmt.Sprintf("c%d", i), time.Duration(i)*step, engType(schemas.LoginFailed), engSession(""),
			engSubject(csVictim(i)), engFrom(q.withoutGeo())))
	}
	return out
}

func TestCredentialStuffingObserve(t *testing.T) {
	t.Parallel()
	ids := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("c%d", i))
		}
		return out
	}
	perPrefix := func(i int) string { return fmt.Sprintf("100.72.%d.0/24", i) }
	for _, tc := range []struct {
		name    string
		edit    func(*CredentialStuffingConfig)
		events  []*schemas.Event
		want    []engFinding
		sources []schemas.Source
	}{
		{
			name:    "stuffing/twenty accounts from one prefix",
			events:  csFails(20, 3*time.Second, engSaoPaulo, nil),
			want:    []engFinding{{Key: "ip_prefix:100.64.5.0/24", Evidence: ids(0, 20)}},
			sources: []schemas.Source{{IPPrefix: "100.64.5.0/24"}},
		},
		{
			name:   "stuffing/nineteen accounts stay below the threshold",
			events: csFails(19, 3*time.Second, engSaoPaulo, nil),
		},
		{
			name:   "stuffing/one account failing twenty times is not stuffing",
			events: append(csFails(1, 0, engSaoPaulo, nil), bfFails(19, time.Second, time.Second)...),
		},
		{
			name:   "stuffing/twenty accounts over more than the window",
			events: csFails(20, 40*time.Second, engSaoPaulo, nil),
		},
		{
			name:   "stuffing/many users of one carrier, each on its own prefix",
			events: csFails(30, 20*time.Second, engMobile, perPrefix),
		},
		{
			name:    "stuffing/one ASN over its own threshold",
			edit:    func(c *CredentialStuffingConfig) { c.ASNThreshold = 25 },
			events:  csFails(25, 2*time.Second, engMobile, perPrefix),
			want:    []engFinding{{Key: "asn:AS3209", Evidence: ids(0, 25)}},
			sources: []schemas.Source{{ASN: 3209}},
		},
		{
			name:   "stuffing/asn_threshold 0 turns the ASN check off",
			edit:   func(c *CredentialStuffingConfig) { c.ASNThreshold = 0 },
			events: csFails(120, time.Second, engMobile, perPrefix),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var edits []func(*CredentialStuffingConfig)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			alerts := engObserve(newTestStuffing(t, nil, edits...), tc.events...)
			require.Equal(t, tc.want, engFindings(alerts))
			var sources []schemas.Source
			for _, a := range alerts {
				sources = append(sources, *a.Source)
				require.Empty(t, a.Subject)
			}
			require.Equal(t, tc.sources, sources)
		})
	}
}

func TestCredentialStuffingAlert(t *testing.T) {
	t.Parallel()
	nets := []Network{{Prefix: netip.MustParsePrefix("100.64.0.0/16"), Kind: NetworkCorporate, Note: "office proxy"}}
	for _, tc := range []struct {
		name     string
		nets     []Network
		severity schemas.Severity
	}{
		{name: "stuffing alert/unknown network", severity: schemas.SeverityHigh},
		{name: "stuffing alert/known corporate network", nets: nets, severity: schemas.SeverityLow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alerts := engObserve(newTestStuffing(t, tc.nets), csFails(20, 3*time.Second, engSaoPaulo, nil)...)
			require.Len(t, alerts, 1)
			a := alerts[0]
			require.Equal(t, "credential_stuffing", a.Detector)
			require.Equal(t, tc.severity, a.Severity)
			require.Equal(t, "Credential stuffing", a.Title)
			require.Equal(t, "20 different accounts failed to log in from 100.64.5.0/24 in 57s (threshold 20 in 10m).", a.Summary)
			require.Equal(t, 20, a.Details["distinct_subjects"])
			require.Equal(t, "ip_prefix", a.Details["by"])
			if tc.nets != nil {
				require.Equal(t, map[string]any{"kind": "corporate", "note": "office proxy"}, a.Details["network"])
			} else {
				require.NotContains(t, a.Details, "network")
			}
		})
	}
}

func TestCredentialStuffingState(t *testing.T) {
	t.Parallel()
	// Only the short window: state lives as long as the longest window.
	d := newTestStuffing(t, nil, func(c *CredentialStuffingConfig) { c.LongWindows = nil })
	engObserve(d, csFails(3, time.Second, engSaoPaulo, nil)...)
	require.Equal(t, 2, d.StateKeys(), "one prefix and one ASN")
	d.Forget(csVictim(0))
	d.Forget(csVictim(1))
	require.Equal(t, 2, d.StateKeys())
	d.Forget(csVictim(2))
	require.Zero(t, d.StateKeys(), "sources without subjects are dropped")

	engObserve(d, csFails(3, time.Second, engSaoPaulo, nil)...)
	d.Expire(engEv("x", 12*time.Minute).Time.Time)
	require.Zero(t, d.StateKeys())
}

func TestCredentialStuffingConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*CredentialStuffingConfig)
		want string
	}{
		{name: "config/threshold", edit: func(c *CredentialStuffingConfig) { c.Threshold = 1 }, want: "detectors.credential_stuffing.threshold: must be between 2 and 10000 (got 1)"},
		{name: "config/asn threshold", edit: func(c *CredentialStuffingConfig) { c.ASNThreshold = 1 }, want: "detectors.credential_stuffing.asn_threshold: must be 0 (off) or between 2 and 10000 (got 1)"},
		{name: "config/window", edit: func(c *CredentialStuffingConfig) { c.Window = 0 }, want: "detectors.credential_stuffing.window: must be positive"},
		{name: "config/network severity", edit: func(c *CredentialStuffingConfig) { c.NetworkSeverity = "" }, want: "detectors.credential_stuffing.network_severity"},
		{name: "config/max keys", edit: func(c *CredentialStuffingConfig) { c.MaxKeys = 0 }, want: "detectors.credential_stuffing.max_keys: must be positive"},
		{name: "config/long window not longer", edit: func(c *CredentialStuffingConfig) { c.LongWindows[0].Window = c.Window },
			want: "detectors.credential_stuffing.long_windows[0].window: must be longer than 10m0s (got 10m0s)"},
		{name: "config/long window threshold", edit: func(c *CredentialStuffingConfig) { c.LongWindows[0].Threshold = 0 },
			want: "detectors.credential_stuffing.long_windows[0].threshold: must be between 2 and 10000 (got 0)"},
		{name: "config/long window asn threshold", edit: func(c *CredentialStuffingConfig) { c.LongWindows[1].ASNThreshold = 1 },
			want: "detectors.credential_stuffing.long_windows[1].asn_threshold: must be 0 (off) or between 2 and 10000 (got 1)"},
		{name: "config/success ratio", edit: func(c *CredentialStuffingConfig) { c.MaxSuccessRatio = 1.5 },
			want: "detectors.credential_stuffing.max_success_ratio: must be between 0 and 1 (got 1.5)"},
		{name: "config/unknown share", edit: func(c *CredentialStuffingConfig) { c.UnknownShare = -0.1 },
			want: "detectors.credential_stuffing.unknown_share: must be 0 (off) or up to 1 (got -0.1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultCredentialStuffingConfig()
			tc.edit(&cfg)
			_, err := NewCredentialStuffing(cfg, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
