package bench

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/sdk"
)

// TestHeldEventsRebuildSameJSON: every demo event, held and rebuilt,
// encodes to the same JSON as the event generated, and so do events with
// the parts the demo does not use.
func TestHeldEventsRebuildSameJSON(t *testing.T) {
	events := demoEvents(20000)
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	if err != nil {
		t.Fatal(err)
	}
	yes, no, lat := true, false, 52.5
	at := time.Date(2026, 12, 7, 10, 0, 0, 123_000_000, time.UTC)
	events = append(events,
		sdk.Event{ID: "extra-1", Type: sdk.TokenIssued, Time: at, Subject: p.Subject("u"),
			Token: &sdk.Token{ID: p.TokenID("t"), Kind: "access", IssuedAt: at, ExpiresAt: at.Add(time.Hour), Claims: []string{}},
			Attrs: map[string]string{"plan": "pro", "region": "eu"}},
		sdk.Event{ID: "extra-2", Type: sdk.SessionStarted, Time: at, Subject: p.Subject("u"), Session: p.Session("s"),
			Cookie: &sdk.Cookie{Name: "sid", Secure: &yes, HTTPOnly: &no}, Auth: &sdk.Auth{Method: "password", MFA: &no}},
		sdk.Event{ID: "extra-3", Type: sdk.LoginFailed, Time: at, Subject: p.Subject("v"), Reason: "bad_password",
			Client: &sdk.ClientInfo{Country: "DE", Lat: &lat, Lon: &lat}},
		sdk.Event{ID: "extra-4", Type: sdk.LoginFailed, Time: at, Subject: p.Subject("w"),
			Client: &sdk.ClientInfo{IPPrefix: netip.MustParsePrefix("2001:db8:1::/48"), IPHash: p.IPHash(netip.MustParseAddr("2001:db8:1::7"))}},
	)
	want := make([][]byte, len(events))
	for i := range events {
		if want[i], err = events[i].MarshalJSONFor(demo.App); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	held := holdEvents(events)
	if held.len() != len(events) {
		t.Fatalf("held %d events of %d", held.len(), len(events))
	}
	var r rebuilt
	for i := range held.len() {
		got, err := held.event(i, &r).MarshalJSONFor(demo.App)
		if err != nil {
			t.Fatalf("event %d rebuilt: %v", i, err)
		}
		if string(got) != string(want[i]) {
			t.Fatalf("event %d rebuilt as\n%s\nwant\n%s", i, got, want[i])
		}
	}
}
