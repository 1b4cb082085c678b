package pii_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// demoMessages returns n demo events as the SDK publishes them, and the
// NATS subject of each.
func demoMessages(tb testing.TB, n int) (subjects []string, bodies [][]byte) {
	tb.Helper()
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	require.NoError(tb, err)
	events := demo.Generate(p, demo.Options{Users: n/25 + 10, Seed: 9, End: time.Now()})
	subjects, bodies = make([]string, n), make([][]byte, n)
	for i := range n {
		b, err := events[i%len(events)].MarshalJSONFor(demo.App)
		require.NoError(tb, err)
		var e struct{ Subject string }
		require.NoError(tb, json.Unmarshal(b, &e))
		subjects[i], bodies[i] = schemas.EventSubject(demo.App, e.Subject), b
	}
	return subjects, bodies
}

// BenchmarkAdmit measures the gate on demo traffic: decode, app and
// subject binding, Check and CoarsenLocation.
func BenchmarkAdmit(b *testing.B) {
	subjects, bodies := demoMessages(b, 10000)
	var size int
	for _, body := range bodies {
		size += len(body)
	}
	b.SetBytes(int64(size / len(bodies)))
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % len(bodies)
		if _, err := pii.Admit(subjects[k], bodies[k], now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCheckDemo measures Check alone on demo traffic.
func BenchmarkCheckDemo(b *testing.B) {
	_, bodies := demoMessages(b, 10000)
	now := time.Now()
	events := make([]*schemas.Event, len(bodies))
	for i, body := range bodies {
		e, err := schemas.Decode(body, now)
		require.NoError(b, err)
		events[i] = e
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if f := pii.Check(events[i%len(events)]); f != nil {
			b.Fatal(f)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
