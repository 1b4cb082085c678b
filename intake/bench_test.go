package intake_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionmon/sessionmon/intake"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/sdk"
)

// benchBatch is the batch size the SDKs send under load.
const benchBatch = 100

// BenchmarkIntake posts NDJSON batches of 100 events through the intake
// (loopback HTTP, an embedded nats-server with a file-backed stream) and
// reports events/s; with -cpu N, N clients post at once. Compare it with
// BenchmarkSDKPublish (scripts/bench-intake.sh runs both next to nats
// bench).
func BenchmarkIntake(b *testing.B) {
	ns := natstest.RunServer(b)
	_, js := natstest.Connect(b, ns)
	if _, err := natsconn.EnsureEventStream(b.Context(), js, natsconn.StreamConfig{Duplicates: 2 * time.Minute, Replicas: 1, Partitions: 16}); err != nil {
		b.Fatal(err)
	}
	tokens, err := intake.OpenTokens(b.Context(), js, []byte("a record key of at least 32 bytes!"))
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := tokens.Create(b.Context(), "shop", "bench", time.Hour, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	h, err := intake.New(js, tokens, intake.Config{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+intake.Path, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var seq atomic.Int64
	at := time.Now().UTC().Add(-time.Second).Format("2006-01-02T15:04:05.000Z")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var body bytes.Buffer
		for pb.Next() {
			body.Reset()
			for range benchBatch {
				n := seq.Add(1)
				fmt.Fprintf(&body, `{"id":"BENCH%021d","schema_version":1,"type":"session.activity","time":%q,"app":"shop","subject":"k1:%s","session":"k1:SSSSSSSSSSSSSSSSSSSSSS","client":{"ip_prefix":"203.0.113.0/24","ip_hash":"k1:HHHHHHHHHHHHHHHHHHHHHH","user_agent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"}}`+"\n",
					n, at, subjectOf(n%5000))
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+intake.Path, bytes.NewReader(body.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/x-ndjson")
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSDKPublish publishes the same events straight to JetStream with
// the Go SDK (PublishAsync, in batched messages, acknowledgements awaited
// by Flush at the end):
// what an app that speaks NATS gets, next to BenchmarkIntake.
func BenchmarkSDKPublish(b *testing.B) {
	ns := natstest.RunServer(b)
	nc, js := natstest.Connect(b, ns)
	if _, err := natsconn.EnsureEventStream(b.Context(), js, natsconn.StreamConfig{Duplicates: 2 * time.Minute, Replicas: 1, Partitions: 16}); err != nil {
		b.Fatal(err)
	}
	// As ingest does, tell the SDK the partition count, so that it
	// batches (its default).
	stop, err := natsconn.ServeLayout(b.Context(), nc, js, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	client, err := sdk.NewClient(nc, sdk.WithApp("shop"), sdk.WithBlockOnFull(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close(context.Background())
	for deadline := time.Now().Add(5 * time.Second); !client.Batching(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the SDK got no layout answer")
		}
	}
	p, err := sdk.NewPseudonymizer("k1", []byte("a pseudonymization key of 32+ bytes"))
	if err != nil {
		b.Fatal(err)
	}
	session := p.Session("s")
	ci := &sdk.ClientInfo{IPPrefix: netip.MustParsePrefix("203.0.113.0/24"), IPHash: p.IPHash(netip.MustParseAddr("203.0.113.7")),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"}
	subjects := make([]sdk.Pseudonym, 5000)
	for i := range subjects {
		subjects[i] = p.Subject(strconv.Itoa(i))
	}
	sample := sdk.Event{Type: sdk.SessionActivity, Subject: subjects[0], Session: session, Client: ci}
	enc, err := sample.MarshalJSONFor("shop")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		ev := sdk.Event{Type: sdk.SessionActivity, Subject: subjects[n%len(subjects)], Session: session, Client: ci}
		if err := client.PublishAsync(b.Context(), &ev); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := client.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(enc)), "bytes/event")
}

// subjectOf returns a pseudonym-shaped subject for n.
func subjectOf(n int64) string {
	s := strconv.FormatInt(n, 10)
	return s + string(bytes.Repeat([]byte("A"), 22-len(s)))
}
