package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`
dashboard_url: https://sessionmon.example.com
retry_min: 1s
webhooks:
  - name: ops
    url: https://hooks.example.com/sessionmon
    secret: ` + kaSecret + `
    previous_secrets: [` + otherSecret + `]
    min_severity: high
    detectors: [brute_force, session_hijack]
    apps: [shop]
    timeout: 5s
    rate_limit: 2
    give_up_after: 1h
  - name: slack
    url: https://hooks.slack.com/services/T/B/X
    secret_file: /run/secrets/slack
    format: slack
`))
	require.NoError(t, err)
	require.Equal(t, time.Second, cfg.RetryMin)
	require.Equal(t, DefaultRetryMax, cfg.RetryMax)
	require.Len(t, cfg.Webhooks, 2)
	ops, slack := cfg.Webhooks[0], cfg.Webhooks[1]
	require.Equal(t, schemas.SeverityHigh, ops.MinSeverity)
	require.Equal(t, 5*time.Second, ops.Timeout)
	require.Equal(t, 1, ops.Burst, "burst defaults to 1 with a rate limit")
	require.Equal(t, FormatJSON, ops.Format)
	require.Equal(t, time.Hour, ops.GiveUpAfter)
	require.Equal(t, FormatSlack, slack.Format)
	require.Equal(t, schemas.SeverityLow, slack.MinSeverity)
	require.Equal(t, DefaultTimeout, slack.Timeout)
	require.Equal(t, DefaultGiveUpAfter, slack.GiveUpAfter)

	red := cfg.Redacted()
	require.Equal(t, "REDACTED", red.Webhooks[0].Secret)
	require.Equal(t, []string{"REDACTED"}, red.Webhooks[0].PreviousSecrets)
	require.Equal(t, "https://hooks.slack.com/…", red.Webhooks[1].URL)
	require.Equal(t, kaSecret, cfg.Webhooks[0].Secret, "Redacted copies")

	empty, err := ParseConfig(nil)
	require.NoError(t, err)
	require.Empty(t, empty.Webhooks)
}

func TestParseConfigOCSF(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte("webhooks:\n  - name: siem\n    url: https://siem.example.com/ocsf\n    secret_file: /run/secrets/siem\n    format: ocsf\n"))
	require.NoError(t, err)
	require.Len(t, cfg.Webhooks, 1)
	require.Equal(t, FormatOCSF, cfg.Webhooks[0].Format)
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{name: "unknown key", yaml: "webhooks:\n  - name: a\n    urll: https://x.example\n", want: []string{"urll"}},
		{name: "empty secret", yaml: "webhooks:\n  - name: a\n    url: https://x.example\n    secret: \"\"\n",
			want: []string{"webhooks[0].secret: a secret (or secret_file) is required"}},
		{name: "bad secret", yaml: "webhooks:\n  - name: a\n    url: https://x.example\n    secret: hunter2hunter2\n",
			want: []string{"webhooks[0].secret", "whsec_"}},
		{name: "ocsf with a template", yaml: "webhooks:\n  - name: a\n    url: https://x.example\n    secret: " + kaSecret + "\n    format: ocsf\n    template: x\n",
			want: []string{"webhooks[0].template: only used with format: template"}},
		{name: "unknown format", yaml: "webhooks:\n  - name: a\n    url: https://x.example\n    secret: " + kaSecret + "\n    format: cef\n",
			want: []string{"webhooks[0].format: must be json, slack, ocsf or template"}},
		{name: "secret and file", yaml: "webhooks:\n  - name: a\n    url: https://x.example\n    secret: " + kaSecret + "\n    secret_file: /x\n",
			want: []string{"webhooks[0].secret: set secret or secret_file, not both"}},
		{name: "everything wrong", yaml: `
ack_wait: 1s
webhooks:
  - name: Bad Name
    url: http://127.0.0.1:8080/hook
    secret: ` + kaSecret + `
    format: xml
    min_severity: urgent
    detectors: ["a.b", "a.b"]
    timeout: 10m
    rate_limit: -1
    concurrency: 100
  - name: dup
    url: https://10.0.0.1/x
    secret_file: /s
  - name: dup
    url: https://localhost/x
    secret_file: /s
    format: template
    template: "{{.Nope"
`, want: []string{
			"webhooks[0].name", "webhooks[0].url: plain http needs allow_http", "webhooks[0].format",
			"webhooks[0].min_severity", "webhooks[0].detectors[0]", "webhooks[0].detectors[1]",
			"webhooks[0].timeout", "webhooks[0].rate_limit", "webhooks[0].concurrency",
			"webhooks[1].url", "internal address", "webhooks[2].name: \"dup\" is also webhooks[1].name",
			"webhooks[2].url", "loopback", "webhooks[2].template", "ack_wait",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig([]byte(tt.yaml))
			require.ErrorIs(t, err, ErrInvalidConfig)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "MfKQ9r8", "errors never echo a secret")
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                    string
		url                     string
		allowHTTP, allowPrivate bool
		wantErr                 string
	}{
		{name: "https", url: "https://hooks.example.com/x"},
		{name: "public ip", url: "https://8.8.8.8/x"},
		{name: "documentation ip", url: "https://203.0.113.7/x", wantErr: "internal"},
		{name: "http refused", url: "http://hooks.example.com/x", wantErr: "allow_http"},
		{name: "http allowed", url: "http://hooks.example.com/x", allowHTTP: true},
		{name: "ftp", url: "ftp://hooks.example.com/x", wantErr: "scheme"},
		{name: "relative", url: "/hook", wantErr: "scheme"},
		{name: "no host", url: "https:///x", wantErr: "host"},
		{name: "user info", url: "https://u:p@hooks.example.com/", wantErr: "user info"},
		{name: "loopback", url: "https://127.0.0.1/x", wantErr: "internal"},
		{name: "loopback v6", url: "https://[::1]/x", wantErr: "internal"},
		{name: "mapped loopback", url: "https://[::ffff:127.0.0.1]/x", wantErr: "internal"},
		{name: "private", url: "https://192.168.1.10/x", wantErr: "internal"},
		{name: "unique local v6", url: "https://[fd00::1]/x", wantErr: "internal"},
		{name: "link local metadata", url: "https://169.254.169.254/latest", wantErr: "internal"},
		{name: "cgnat", url: "https://100.64.1.1/x", wantErr: "internal"},
		{name: "unspecified", url: "https://0.0.0.0/x", wantErr: "internal"},
		{name: "decimal ipv4", url: "https://2130706433/x", wantErr: "decimal form"},
		{name: "octal ipv4", url: "https://0177.0.0.1/x", wantErr: "decimal form"},
		{name: "short ipv4", url: "https://127.1/x", wantErr: "decimal form"},
		{name: "hex ipv4", url: "https://0x7f.1/x", wantErr: "decimal form"},
		{name: "digits in a name", url: "https://1password.example.com/x"},
		{name: "localhost", url: "https://localhost:8443/x", wantErr: "loopback"},
		{name: "sub.localhost", url: "https://a.localhost./x", wantErr: "loopback"},
		{name: "private allowed", url: "http://127.0.0.1:8080/x", allowHTTP: true, allowPrivate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckURL(tt.url, tt.allowHTTP, tt.allowPrivate)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// TestDialRefusesInternalAddress: a URL that passed configuration (here
// built directly) but whose address turns out internal is refused when
// connecting, permanently, and the receiver never sees a request.
func TestDialRefusesInternalAddress(t *testing.T) {
	t.Parallel()
	hits := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits <- struct{}{} }))
	t.Cleanup(srv.Close)
	signer, err := NewSigner(kaSecret)
	require.NoError(t, err)
	// "localhost" resolves to loopback: only the dial-time check sees it.
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/services/T0/B0/s3cr3t-token"
	tg := newTarget(Webhook{Name: "x", URL: url, Timeout: time.Second, Concurrency: 1}, signer, jsonFormat{})
	m, err := decodeAlert(testAlertJSON(t, testAlert(1)))
	require.NoError(t, err)
	res := tg.deliver(context.Background(), m)
	var de *DeliveryError
	require.ErrorAs(t, res.err, &de)
	require.True(t, de.Permanent)
	require.ErrorIs(t, res.err, ErrForbiddenAddress)
	require.NotContains(t, res.err.Error(), "s3cr3t-token", "the URL's secret path must not reach logs or the delivery log")
	require.Empty(t, hits)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		ok         bool
		permanent  bool
		wantAfter  time.Duration
	}{
		{name: "200", status: 200, ok: true},
		{name: "204", status: 204, ok: true},
		{name: "301 permanent", status: 301, permanent: true},
		{name: "400 permanent", status: 400, permanent: true},
		{name: "410 permanent", status: 410, permanent: true},
		{name: "408 retried", status: 408},
		{name: "429 retry-after seconds", status: 429, retryAfter: "7", wantAfter: 7 * time.Second},
		{name: "503 retry-after date", status: 503, retryAfter: now.Add(90 * time.Second).Format(http.TimeFormat), wantAfter: 90 * time.Second},
		{name: "503 retry-after capped", status: 503, retryAfter: "999999", wantAfter: maxRetryAfter},
		{name: "500 garbage retry-after", status: 500, retryAfter: "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
			err := classify(resp, now)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			var de *DeliveryError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tt.permanent, de.Permanent)
			require.Equal(t, tt.status, de.StatusCode)
			require.Equal(t, tt.wantAfter, de.RetryAfter)
		})
	}
}

// TestSlackNeedsNoSecret: Slack checks no signature, so a Slack webhook
// may have no secret and is delivered unsigned; every other format still
// needs one.
func TestSlackNeedsNoSecret(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte("webhooks:\n  - name: chat\n    url: https://hooks.slack.com/services/T/B/X\n    format: slack\n"))
	require.NoError(t, err)
	require.Len(t, cfg.Webhooks, 1)
	_, err = ParseConfig([]byte("webhooks:\n  - name: siem\n    url: https://siem.example.com/x\n    format: ocsf\n"))
	require.ErrorContains(t, err, "webhooks[0].secret: a secret (or secret_file) is required")

	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	w := cfg.Webhooks[0]
	w.URL, w.AllowHTTP, w.AllowPrivate = srv.URL, true, true
	tg, err := prepare(w, "", "webhooks[0]")
	require.NoError(t, err)
	m, err := decodeAlert(testAlertJSON(t, testAlert(1)))
	require.NoError(t, err)
	res := tg.deliver(context.Background(), m)
	require.NoError(t, res.err)
	h := <-got
	require.Empty(t, h.Get("webhook-signature"), "sent unsigned")
	require.Equal(t, "application/json", h.Get("Content-Type"))
}
