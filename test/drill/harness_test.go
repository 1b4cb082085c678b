package drill

import (
	"bytes"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/notify"
)

func TestReceiverVerifiesSignatures(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	signer, err := notify.NewSigner(r.Secret())
	require.NoError(t, err)
	other, err := NewReceiver()
	require.NoError(t, err)
	defer other.Close()
	forger, err := notify.NewSigner(other.Secret())
	require.NoError(t, err)
	now := time.Now()
	body := []byte(`{"id":"a1"}`)

	tests := []struct {
		name   string
		id     string
		signer *notify.Signer
		body   []byte
		at     time.Time
		want   int
	}{
		{name: "valid", id: "a1", signer: signer, body: body, at: now, want: http.StatusNoContent},
		{name: "valid/repeat", id: "a1", signer: signer, body: body, at: now, want: http.StatusNoContent},
		{name: "other secret", id: "a2", signer: forger, body: body, at: now, want: http.StatusUnauthorized},
		{name: "stale timestamp", id: "a3", signer: signer, body: body, at: now.Add(-time.Hour), want: http.StatusUnauthorized},
		{name: "no id", id: "", signer: signer, body: body, at: now, want: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		ts := strconv.FormatInt(tc.at.Unix(), 10)
		req, err := http.NewRequest(http.MethodPost, r.URL(), bytes.NewReader(tc.body))
		require.NoError(t, err)
		req.Header.Set("webhook-id", tc.id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", tc.signer.Signature(tc.id, tc.at, tc.body))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, tc.name)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, tc.name)
	}
	st := r.Stats()
	require.Equal(t, ReceiverStats{Distinct: 1, Deliveries: 2, BadSignatures: 3, Requests: 5}, st)
}

func TestSumMetric(t *testing.T) {
	t.Parallel()
	text := `# HELP sessionmon_ingest_rejected_total x
# TYPE sessionmon_ingest_rejected_total counter
sessionmon_ingest_rejected_total{reason="pii"} 2
sessionmon_ingest_rejected_total{reason="schema"} 3
sessionmon_ingest_rejected_total_extra 100
sessionmon_ingest_events_total 7e+06
`
	n, err := SumMetric(strings.NewReader(text), "sessionmon_ingest_rejected_total")
	require.NoError(t, err)
	require.Equal(t, 5.0, n)
	n, err = SumMetric(strings.NewReader(text), "sessionmon_ingest_events_total")
	require.NoError(t, err)
	require.Equal(t, 7e6, n)
	_, err = SumMetric(strings.NewReader("sessionmon_x{a=\"b\"} nope\n"), "sessionmon_x")
	require.ErrorContains(t, err, "sessionmon_x")
}

func TestResultsRoundTrip(t *testing.T) {
	path := t.TempDir() + "/results.jsonl"
	t.Setenv(EnvResults, path)
	in := []Result{
		{Scenario: "a", Published: 10, Stored: 10, Outcome: "pass", Duration: 3 * time.Second},
		{Scenario: "b", Published: 5, Refused: 2, Stored: 4, Outcome: "FAIL: stored 4 of 5"},
	}
	for _, r := range in {
		require.NoError(t, Record(r))
	}
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out, err := ReadResults(f)
	require.NoError(t, err)
	require.Equal(t, in, out)
	var b strings.Builder
	require.NoError(t, Table(&b, out))
	require.Contains(t, b.String(), "| a | 10 | 0 | 10 | 0 | 0 | 0 | 3s | pass |")
	require.Contains(t, b.String(), "| b | 5 | 2 | 4 |")
}
