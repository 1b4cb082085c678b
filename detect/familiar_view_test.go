package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// What the familiarity fixtures use: an office network eight colleagues
// sign in from steadily (a shared egress), and the owner's home network,
// used in three different hours, plus one visit to a cafe's network.
const (
	famOwner     = "k1:owner-FamiliarAAAA"
	famDevice    = "k1:dev-FamiliarLaptop01"
	famHome      = "203.0.113.0/24"
	famHomeASN   = 64500
	famOffice    = "198.51.100.0/24"
	famOfficeASN = 64501
	famCafe      = "192.0.2.0/24"
	famCafeASN   = 64502
)

// famEvent is an event of subject from prefix/asn at at.
func famEvent(id string, typ schemas.Type, subject, prefix string, asn uint32, at time.Time) *schemas.Event {
	return &schemas.Event{
		ID: id, SchemaVersion: schemas.SchemaVersion, Type: typ, Time: schemas.At(at.UTC().Truncate(time.Millisecond)),
		App: "shop", Subject: subject, Session: "k1:ses-" + strings.ReplaceAll(id, "-", ""),
		Client: &schemas.Client{Device: famDevice, IPPrefix: prefix, ASN: asn},
	}
}

// famEvents are the fixture's events from start on: the colleagues over
// 40 minutes, then the owner at home in three different hours and once
// at the cafe.
func famEvents(start time.Time) []*schemas.Event {
	var evs []*schemas.Event
	for i := range 8 {
		evs = append(evs, famEvent(fmt.Sprintf("office-%02d", i), schemas.LoginSucceeded,
			fmt.Sprintf("k1:colleague-%08d", i), famOffice, famOfficeASN, start.Add(time.Duration(i)*5*time.Minute+time.Minute)))
	}
	for i := range 3 {
		evs = append(evs, famEvent(fmt.Sprintf("home-%d", i), schemas.LoginSucceeded, famOwner, famHome, famHomeASN,
			start.Add(time.Duration(i+1)*time.Hour+10*time.Minute)))
	}
	evs = append(evs, famEvent("cafe-1", schemas.SessionActivity, famOwner, famCafe, famCafeASN, start.Add(3*time.Hour+20*time.Minute)))
	return evs
}

func newFamiliarEngine(t *testing.T) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	dets, err := NewDetectors(cfg)
	require.NoError(t, err)
	eng, err := NewEngine(cfg, dets, WithClock(func() time.Time { return time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) }))
	require.NoError(t, err)
	return eng
}

func TestEngineFamiliarAndSharedEgresses(t *testing.T) {
	t.Parallel()
	eng := newFamiliarEngine(t)
	start := time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)
	for _, e := range famEvents(start) {
		eng.Process(e)
	}
	eng.Flush()

	shared := eng.SharedEgresses(10)
	require.Len(t, shared, 1, "only the office is used by many accounts")
	require.Equal(t, []string{"shop"}, shared[0].Apps)
	require.Equal(t, famOffice, shared[0].Prefix)
	require.Equal(t, uint32(famOfficeASN), shared[0].ASN)
	require.Equal(t, uint32(8), shared[0].Succeeded)
	require.NotEmpty(t, shared[0].Why)
	require.Equal(t, engineTravel(t, eng).SharedEgresses(10), shared, "the detector's list, with its why")
	require.Empty(t, eng.SharedEgresses(0), "the limit applies")

	f := eng.Familiar(famOwner)
	require.Equal(t, 2, f.MinHours)
	require.Len(t, f.Networks, 2)
	home, cafe := f.Networks[0], f.Networks[1]
	require.Equal(t, FamiliarEntry{Kind: FamiliarKindNetwork, Label: famHome, Apps: []string{"shop"}, Prefix: famHome, ASN: famHomeASN,
		Hours: 3, LastActive: time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC), Familiar: true,
		Why: "active in 3 different hours, last 2026-11-20 14:00 UTC; familiar from 2 hours"}, home)
	require.Equal(t, famCafe, cafe.Label)
	require.False(t, cafe.Familiar)
	require.Equal(t, 1, cafe.Hours)
	require.Equal(t, "active in 1 hour, last 2026-11-20 14:00 UTC; familiar from 2 hours", cafe.Why)
	// A network the egress table no longer holds (evicted or expired)
	// still counts for the subject, without a name.
	travel := engineTravel(t, eng)
	travel.egress.tab.delete(egressKey(famCafe))
	cafe = eng.Familiar(famOwner).Networks[1]
	require.Equal(t, FamiliarEntry{Kind: FamiliarKindNetwork, Label: "a network no longer tracked",
		Hours: 1, LastActive: time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC), Familiar: false,
		Why: "active in 1 hour, last 2026-11-20 14:00 UTC; familiar from 2 hours"}, cafe)

	require.Len(t, f.ASNs, 2)
	require.Equal(t, "AS64500", f.ASNs[0].Label)
	require.True(t, f.ASNs[0].Familiar)
	require.Equal(t, 3, f.ASNs[0].Hours)
	require.Equal(t, "AS64502", f.ASNs[1].Label)
	require.False(t, f.ASNs[1].Familiar)

	require.Len(t, f.Devices, 1)
	dev := f.Devices[0]
	require.Equal(t, fmt.Sprintf("%08x", uint32(pseudonymHash(famDevice))), dev.Device)
	require.True(t, dev.Familiar)
	require.Equal(t, 3, dev.Hours, "hours 12, 13 and 14: the cafe visit was in the same hour as the last sign-in")
	require.Equal(t, "active in 3 different hours, last 2026-11-20 14:00 UTC; a device is known once seen", dev.Why)
	b, err := json.Marshal(f)
	require.NoError(t, err)
	require.NotContains(t, string(b), "Laptop", "never the device pseudonym")

	colleague := eng.Familiar("k1:colleague-00000003")
	require.Len(t, colleague.Networks, 1)
	require.True(t, colleague.Networks[0].SharedEgress)
	require.Contains(t, colleague.Networks[0].Why, "also a shared egress")
	require.False(t, colleague.Networks[0].Familiar, "one sign-in is one hour")

	require.True(t, eng.Familiar("k1:stranger-00000000").Empty())

	// Erasure.
	eng.Forget(famOwner)
	f = eng.Familiar(famOwner)
	require.True(t, f.Empty(), "nothing about the subject after Forget: %+v", f)
	require.Len(t, eng.SharedEgresses(10), 1, "shared egresses keep only counts, which name no one")
}

// engineTravel returns the engine's impossible_travel detector.
func engineTravel(t *testing.T, eng *Engine) *ImpossibleTravel {
	t.Helper()
	for _, d := range eng.dets {
		if it, ok := d.(*ImpossibleTravel); ok {
			return it
		}
	}
	t.Fatal("no impossible_travel detector")
	return nil
}

func TestFamiliarWhyWording(t *testing.T) {
	t.Parallel()
	last := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		hours int
		want  string
	}{
		{name: "why/one hour", hours: 1, want: "active in 1 hour, last 2026-11-20 14:00 UTC; r"},
		{name: "why/several", hours: 5, want: "active in 5 different hours, last 2026-11-20 14:00 UTC; r"},
		{name: "why/saturated", hours: maxKnownHours, want: "active in at least 63 different hours, last 2026-11-20 14:00 UTC; r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, familiarWhy(tc.hours, last, "r"))
		})
	}
}

// TestServiceOwnerOfSubject: a partitioned service answers only for the
// subjects of its partitions; the whole service for every subject.
func TestServiceOwnerOfSubject(t *testing.T) {
	t.Parallel()
	whole, err := NewService(nil, svcConfig(), DefaultConfig())
	require.NoError(t, err)
	require.NotNil(t, whole.owner(famOwner))

	p := schemas.EventPartition(famOwner, 4)
	cfg := svcConfig()
	no := false
	cfg.Partitions = Partitions{Count: 4, Owned: []int{p}, SourceDetectors: &no}
	mine, err := NewService(nil, cfg, DefaultConfig())
	require.NoError(t, err)
	require.NotNil(t, mine.owner(famOwner))
	require.Equal(t, "p"+fmt.Sprint(p), mine.owner(famOwner).unitName())

	cfg.Partitions = Partitions{Count: 4, Owned: []int{(p + 1) % 4}, SourceDetectors: &no}
	other, err := NewService(nil, cfg, DefaultConfig())
	require.NoError(t, err)
	require.Nil(t, other.owner(famOwner))
}

// TestServiceServesFamiliarity runs a detect service on real NATS: the
// shared egress it learns is published into the networks bucket, the
// owner's familiar networks are answered over NATS, refused for a
// malformed subject, and empty after an erasure.
func TestServiceServesFamiliarity(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	nc := js.Conn()
	ctx := t.Context()

	_, err := AskFamiliar(ctx, nc, "shop", famOwner)
	require.ErrorIs(t, err, ErrNoFamiliarAnswer, "no detect process yet")

	svc, _ := startService(t, js, closedDSN, svcConfig(), func(s *Service) { s.networksEvery = 100 * time.Millisecond })
	publishEvents(t, js, famEvents(time.Now().Add(-5*time.Hour))...)

	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		rep, err := AskFamiliar(ctx, nc, "shop", famOwner)
		if err != nil {
			return err
		}
		if len(rep.Familiar.Networks) != 2 || !rep.Familiar.Networks[0].Familiar || rep.Familiar.Networks[0].Prefix != famHome {
			return fmt.Errorf("not learned yet: %+v", rep.Familiar.Networks)
		}
		if rep.Unit != "all" || rep.Process == "" {
			return fmt.Errorf("reply names no process or unit: %+v", rep)
		}
		return nil
	})

	kv, err := js.KeyValue(ctx, schemas.NetworkBucket)
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, natsconn.NetworkMaxAge, st.TTL(), "a stopped unit's list expires")
	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		e, err := kv.Get(ctx, NetworkListKey("all"))
		if err != nil {
			return err
		}
		var l NetworkList
		if err := json.Unmarshal(e.Value(), &l); err != nil {
			return err
		}
		if l.Unit != "all" || len(l.Networks) != 1 || l.Networks[0].Prefix != famOffice || l.UpdatedAt.IsZero() {
			return fmt.Errorf("published: %+v", l)
		}
		return nil
	})

	_, err = AskFamiliar(ctx, nc, "shop", "not a pseudonym!")
	require.ErrorContains(t, err, "subject: must be a pseudonym")
	m, err := nc.Request(schemas.DetectFamiliarSubject, []byte(`{"subject":"`+famOwner+`","extra":1}`), FamiliarTimeout)
	require.NoError(t, err)
	require.Contains(t, string(m.Data), "must be JSON {app, subject}")

	require.NoError(t, svc.Forget(ctx, famOwner))
	rep, err := AskFamiliar(ctx, nc, "shop", famOwner)
	require.NoError(t, err)
	require.True(t, rep.Familiar.Empty(), "nothing after an erasure: %+v", rep.Familiar)
}

// TestAskFamiliarTimesOutWithoutOwner: processes that do not own the
// subject's partition stay silent, and the requester says so.
func TestAskFamiliarTimesOutWithoutOwner(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	nc := js.Conn()
	// A responder that owns nothing: subscribed, never answering.
	sub, err := nc.Subscribe(schemas.DetectFamiliarSubject, func(*nats.Msg) {})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	began := time.Now()
	_, err = AskFamiliar(t.Context(), nc, "", famOwner)
	require.True(t, errors.Is(err, ErrNoFamiliarAnswer), "%v", err)
	require.ErrorContains(t, err, "owning the subject's partition")
	require.GreaterOrEqual(t, time.Since(began), FamiliarTimeout-100*time.Millisecond)
}

// TestPartitionedServicesAnswerForTheirSubjects: with two detect processes
// splitting the partitions, the one owning a subject's partition answers
// for it, the other stays silent.
func TestPartitionedServicesAnswerForTheirSubjects(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	n := natsconn.DefaultStreamConfig.Partitions
	mine := schemas.EventPartition(famOwner, n)
	var rest []int
	for p := range n {
		if p != mine {
			rest = append(rest, p)
		}
	}
	no, yes := false, true
	a := svcConfig()
	a.Partitions = Partitions{Count: n, Owned: []int{mine}, SourceDetectors: &no}
	b := svcConfig()
	b.Partitions = Partitions{Count: n, Owned: rest, SourceDetectors: &yes}
	startService(t, js, closedDSN, a)
	startService(t, js, closedDSN, b)
	publishEvents(t, js, famEvents(time.Now().Add(-5*time.Hour))...)

	colleague := "k1:colleague-00000000"
	if schemas.EventPartition(colleague, n) == mine {
		colleague = "k1:colleague-00000001"
	}
	for _, tc := range []struct {
		name, subject, unit string
	}{
		{name: "partitions/owner's process", subject: famOwner, unit: fmt.Sprintf("p%d", mine)},
		{name: "partitions/other process", subject: colleague, unit: fmt.Sprintf("p%d", schemas.EventPartition(colleague, n))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
				rep, err := AskFamiliar(t.Context(), js.Conn(), "shop", tc.subject)
				if err != nil {
					return err
				}
				if rep.Unit != tc.unit {
					return fmt.Errorf("answered by %s, want %s", rep.Unit, tc.unit)
				}
				if len(rep.Familiar.Networks) == 0 {
					return errors.New("not learned yet")
				}
				return nil
			})
		})
	}
}
