package detect_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// fakeDetect stands for one detect process: it answers forget requests on
// its own connection and records the subjects it was asked to forget.
type fakeDetect struct {
	mu     sync.Mutex
	err    error
	delay  time.Duration
	forgot []string
}

func (f *fakeDetect) forget(ctx context.Context, subject string) error {
	f.mu.Lock()
	err, delay := f.err, f.delay
	f.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, subject)
	return nil
}

func (f *fakeDetect) set(err error, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.delay = err, delay
}

func (f *fakeDetect) subjects() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.forgot...)
}

// startFakeDetect subscribes a fake detect process named process to
// forget requests on a connection of its own.
func startFakeDetect(t *testing.T, url, process, partitions string, sources bool) *fakeDetect {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	f := &fakeDetect{}
	require.NoError(t, detect.RespondForget(nc, detect.ForgetResponder{Process: process, Partitions: partitions, Sources: sources, Forget: f.forget},
		slog.New(slog.DiscardHandler)))
	require.NoError(t, nc.Flush())
	return f
}

func TestAskToForgetGathersEveryDetectProcess(t *testing.T) {
	t.Parallel()
	const subject = "k1:AAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		name string
		// a and b: error and delay of the two processes.
		aErr, bErr     error
		aDelay, bDelay time.Duration
		wantErr        string
		wantDone       int
	}{
		{name: "forget/both forget", wantDone: 2},
		{name: "forget/one fails", bErr: errors.New("engine p8 stopped"), wantDone: 1,
			wantErr: "1 of 2 detect processes could not forget the subject: detect-b (partitions 8-15): engine p8 stopped"},
		{name: "forget/a slow process is waited for", bDelay: 3 * detect.ForgetQuietPeriod, wantDone: 2},
		{name: "forget/both fail", aErr: errors.New("replay"), bErr: errors.New("closed"), wantErr: "2 of 2 detect processes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			nc, _ := natstest.Connect(t, s)
			a := startFakeDetect(t, s.ClientURL(), "detect-a", "0-7", true)
			b := startFakeDetect(t, s.ClientURL(), "detect-b", "8-15", false)
			a.set(tc.aErr, tc.aDelay)
			b.set(tc.bErr, tc.bDelay)

			res, err := detect.AskToForget(t.Context(), nc, subject)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
				require.Equal(t, "forgotten by 2 of 2 detect processes: detect-a (partitions 0-7, source detectors), detect-b (partitions 8-15)", res.String())
			}
			require.Len(t, res.Done, tc.wantDone)
			require.Len(t, res.Done, len(a.subjects())+len(b.subjects()))
			for _, f := range []*fakeDetect{a, b} {
				for _, got := range f.subjects() {
					require.Equal(t, subject, got)
				}
			}
		})
	}
}

func TestAskToForgetWithoutDetectors(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, _ := natstest.Connect(t, s)
	start := time.Now()
	// No responders is known at once: had AskToForget waited for answers
	// instead, it would have ended at ForgetTimeout with a deadline error.
	res, err := detect.AskToForget(t.Context(), nc, "k1:AAAAAAAAAAAAAAAAAAAAAA")
	require.NoError(t, err)
	require.Equal(t, "no detector is running, nothing to purge", res.String())
	t.Logf("no responders known after %s", time.Since(start))
}

// TestEraseWithTwoDetectProcesses files an erasure request while two
// detect processes run: it fails while one of them cannot forget the
// subject, and is done once both can.
func TestEraseWithTwoDetectProcesses(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	ctx := t.Context()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	const subject = "k1:BBBBBBBBBBBBBBBBBBBBBB"
	require.NoError(t, store.InsertEvents(ctx, []chstore.EventRow{chstore.NewEventRow(&schemas.Event{
		ID: "ev-1", SchemaVersion: schemas.SchemaVersion, Type: schemas.LoginFailed,
		Time: schemas.At(at), App: "shop", Subject: subject,
	}, at)}))

	s := natstest.RunServer(t)
	nc, _ := natstest.Connect(t, s)
	a := startFakeDetect(t, s.ClientURL(), "detect-a", "0-7", true)
	b := startFakeDetect(t, s.ClientURL(), "detect-b", "8-15", false)
	b.set(errors.New("engine p9 is replaying"), 0)

	eraser := retention.NewEraser(store, detect.ForgetVia(nc), slog.New(slog.DiscardHandler))
	req, err := eraser.Request(ctx, subject, "dpo")
	require.NoError(t, err)
	req, err = eraser.Process(ctx, req.ID)
	require.ErrorContains(t, err, "detect-b (partitions 8-15): engine p9 is replaying")
	require.Equal(t, chstore.ErasureFailed, req.Status)
	stored, _, err := store.ErasureRequest(ctx, req.ID)
	require.NoError(t, err)
	require.Equal(t, chstore.ErasureFailed, stored.Status)
	require.Contains(t, stored.Error, "1 of 2 detect processes could not forget the subject")
	require.NotContains(t, stored.Error, subject)

	b.set(nil, 0)
	req, err = eraser.Process(ctx, req.ID)
	require.NoError(t, err)
	require.Equal(t, chstore.ErasureDone, req.Status)
	require.Equal(t, []string{subject, subject}, a.subjects(), "asked at each attempt")
	require.Equal(t, []string{subject}, b.subjects())
}

// TestForgetReachesEveryPartitionedDetectService runs two real detect
// services, each owning half the partitions and one with the source
// detectors, as two `sessionmon detect` processes would.
func TestForgetReachesEveryPartitionedDetectService(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	cfg := config.Default()
	_, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.StreamConfig{
		MaxAge: time.Hour, Duplicates: time.Minute, Partitions: cfg.Stream.Partitions})
	require.NoError(t, err)
	_, err = natsconn.EnsureAlertStream(t.Context(), js, natsconn.DefaultAlertStreamConfig)
	require.NoError(t, err)
	yes, no := true, false
	for _, half := range []struct {
		owned   []int
		sources *bool
	}{{owned: []int{0, 1, 2, 3, 4, 5, 6, 7}, sources: &yes}, {owned: []int{8, 9, 10, 11, 12, 13, 14, 15}, sources: &no}} {
		sc := detect.DefaultServiceConfig()
		sc.Partitions = detect.Partitions{Count: cfg.Stream.Partitions, Owned: half.owned, SourceDetectors: half.sources}
		pnc, pjs := natstest.Connect(t, s)
		svc, err := detect.NewService(pjs, sc, detect.DefaultConfig())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		poll.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error { return svc.Ready(t.Context()) })
		require.NoError(t, detect.ServeForget(pnc, svc, slog.New(slog.DiscardHandler)))
	}
	res, err := detect.AskToForget(t.Context(), nc, "k1:CCCCCCCCCCCCCCCCCCCCCC")
	require.NoError(t, err)
	require.Len(t, res.Done, 2, res.String())
	var labels []string
	for _, d := range res.Done {
		labels = append(labels, d.Partitions)
		require.Equal(t, d.Partitions == "0-7", d.Sources, "the process of partitions 0-7 has the source detectors")
	}
	require.ElementsMatch(t, []string{"0-7", "8-15"}, labels)
}
