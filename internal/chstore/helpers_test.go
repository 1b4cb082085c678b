package chstore_test

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// baseTime is the event time of testRows(…)[0].
var baseTime = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// testEvent returns a full, valid event; i varies the id, subject and time.
func testEvent(i int) *schemas.Event {
	at := schemas.At(baseTime.Add(time.Duration(i) * 1500 * time.Millisecond))
	return &schemas.Event{
		ID:            fmt.Sprintf("ev-%08d", i),
		SchemaVersion: schemas.SchemaVersion,
		Type:          schemas.TokenUsed,
		Time:          at,
		App:           "shop",
		Subject:       fmt.Sprintf("sub_%04d", i%100),
		Session:       fmt.Sprintf("ses_%04d", i%1000),
		Client: &schemas.Client{
			Device:    "dev_1",
			IPPrefix:  "203.0.113.0/24",
			IPHash:    "iph_abc",
			ASN:       64500,
			Country:   "DE",
			City:      "Berlin",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) RawAgent/1.0",
		},
		Token: &schemas.Token{
			ID:     "tok_1",
			Kind:   schemas.TokenAccess,
			Family: "fam_1",
			KID:    "k1",
			Alg:    "ES256",
			Claims: []string{"sub", "exp"},
		},
		Attrs: map[string]string{"plan": "pro", "region": "eu"},
	}
}

// testRows returns n rows for distinct events, ingested at ingestedAt.
func testRows(n int, ingestedAt time.Time) []chstore.EventRow {
	rows := make([]chstore.EventRow, n)
	for i := range rows {
		rows[i] = chstore.NewEventRow(testEvent(i), ingestedAt)
	}
	return rows
}
