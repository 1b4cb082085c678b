package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leases. Every unit of a Service (a partition, the source role, or
// everything) is processed by one process at a time: the process holds a
// lease on it, a key of the bucket schemas.DetectLeaseBucket, which it
// creates only when the key does not exist and then renews every quarter of
// the bucket's TTL, each renewal naming the revision it last wrote. A
// process that dies stops renewing and the key ages out of the bucket after
// the TTL; a second process asking for it meanwhile waits. The server
// counts the TTL from when it stored a renewal, which is after the holder
// sent it, so the holder treats a lease as its own only until three
// quarters of the TTL after sending its last successful renewal: it stops
// taking deliveries (and writing snapshots) a quarter of the TTL before
// anyone else can take the key, even when it was paused or cut off from
// NATS and could not learn that it lost it.

// errLeaseLost ends a run whose leases could not be kept.
var errLeaseLost = errors.New("lease lost")

// wrongLastSequence is JetStream's error code for an update that names a
// revision the key no longer has.
const wrongLastSequence = 10071

// leaseKeys returns the lease bucket's keys a service with units must
// hold, in the one order every process takes them in: "<durable>" for
// everything, then the partitions by number, then the source role. A
// service that runs everything also holds every partition of a stream of
// count partitions and the source role, so that it and partitioned
// processes never run at once either.
func leaseKeys(durable string, count int, units []*unit) []string {
	var keys []string
	for _, u := range units {
		if u.name != "" {
			keys = append(keys, durable+"."+u.name)
			continue
		}
		keys = append(keys, durable)
		if count == 0 {
			continue
		}
		for n := range count {
			keys = append(keys, durable+".p"+strconv.Itoa(n))
		}
		keys = append(keys, durable+".sources")
	}
	return keys
}

// leaseHolder is the value of a held lease: who holds it, for people
// reading the bucket and for the waiting process's readiness reason.
type leaseHolder struct {
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
}

// leaseSet is the leases of one run of a Service's units, taken in the
// order of leaseKeys, so that two processes asking for overlapping sets
// never each wait for the other.
type leaseSet struct {
	kv      jetstream.KeyValue
	ttl     time.Duration
	keys    []string
	units   []*unit
	value   []byte
	logger  *slog.Logger
	metrics *Metrics

	mu       sync.Mutex
	rev      map[string]uint64
	deadline map[string]time.Time
	// until is the earliest deadline of the held leases once all are held;
	// nil: not all held, or lost.
	until atomic.Pointer[time.Time]
}

func newLeaseSet(kv jetstream.KeyValue, ttl time.Duration, keys []string, units []*unit, logger *slog.Logger, m *Metrics) *leaseSet {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d", host, os.Getpid())
	value, _ := json.Marshal(leaseHolder{Holder: holder, Since: time.Now().UTC()})
	return &leaseSet{kv: kv, ttl: ttl, keys: keys, units: units, value: value, logger: logger, metrics: m,
		rev: map[string]uint64{}, deadline: map[string]time.Time{}}
}

// valid reports whether every lease is held and will be for a while yet:
// the units may take deliveries and write snapshots.
func (ls *leaseSet) valid() bool {
	if ls == nil {
		return false
	}
	until := ls.until.Load()
	return until != nil && time.Now().Before(*until)
}

// acquire takes every lease, in order, waiting while another process holds
// one (the units say so in their readiness) and renewing those it has
// meanwhile. It returns once all are held, or ctx's error.
func (ls *leaseSet) acquire(ctx context.Context) error {
	poll := min(ls.ttl/4, time.Second)
	t := time.NewTicker(poll)
	defer t.Stop()
	waitingFor := ""
	for {
		ls.renew(ctx)
		next := ""
		for _, key := range ls.keys {
			if _, ok := ls.rev[key]; ok {
				continue
			}
			sent := time.Now()
			rev, err := ls.kv.Create(ctx, key, ls.value)
			if err == nil {
				ls.held(key, rev, sent)
				continue
			}
			next = key
			holder := "another process"
			if errors.Is(err, jetstream.ErrKeyExists) {
				if e, gerr := ls.kv.Get(ctx, key); gerr == nil {
					var h leaseHolder
					if json.Unmarshal(e.Value(), &h) == nil && h.Holder != "" {
						holder = h.Holder
					}
				}
			} else if ctx.Err() == nil {
				holder = "nobody known (" + err.Error() + ")"
			}
			reason := fmt.Sprintf("waiting for the lease %s, held by %s (it expires %s after its holder stops renewing it)", key, holder, ls.ttl)
			for _, u := range ls.units {
				u.state.Set(reason)
			}
			if waitingFor != key {
				ls.logger.Info("detect waits for a lease", slog.String("lease", key), slog.String("holder", holder), slog.Duration("ttl", ls.ttl))
				waitingFor = key
			}
			break
		}
		if next == "" {
			ls.publishUntil()
			ls.logger.Info("detect holds its leases", slog.Any("leases", ls.keys), slog.Duration("ttl", ls.ttl))
			return nil
		}
		select {
		case <-ctx.Done():
			ls.release()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// held records a lease taken or renewed with revision rev, in a request
// sent at sent.
func (ls *leaseSet) held(key string, rev uint64, sent time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, ok := ls.rev[key]; !ok {
		ls.metrics.leasesHeld.Inc()
	}
	ls.rev[key] = rev
	ls.deadline[key] = sent.Add(ls.ttl * 3 / 4)
}

// drop forgets a lease that could not be renewed in time.
func (ls *leaseSet) drop(key string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, ok := ls.rev[key]; ok {
		ls.metrics.leasesHeld.Dec()
	}
	delete(ls.rev, key)
	delete(ls.deadline, key)
}

// publishUntil sets until to the earliest deadline when every lease is
// held.
func (ls *leaseSet) publishUntil() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.rev) < len(ls.keys) {
		ls.until.Store(nil)
		return
	}
	var until time.Time
	for _, d := range ls.deadline {
		if until.IsZero() || d.Before(until) {
			until = d
		}
	}
	ls.until.Store(&until)
}

// renew renews every held lease. It returns the key of one that is lost:
// another process took it, or it could not be renewed before its deadline.
func (ls *leaseSet) renew(ctx context.Context) (lost string) {
	ls.mu.Lock()
	revs := make(map[string]uint64, len(ls.rev))
	for k, r := range ls.rev {
		revs[k] = r
	}
	ls.mu.Unlock()
	for _, key := range ls.keys {
		rev, ok := revs[key]
		if !ok {
			continue
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, ls.ttl/4)
		next, err := ls.kv.Update(rctx, key, ls.value, rev)
		cancel()
		if err == nil {
			ls.held(key, next, sent)
			continue
		}
		var apiErr *jetstream.APIError
		taken := errors.As(err, &apiErr) && apiErr.ErrorCode == wrongLastSequence
		ls.mu.Lock()
		late := !time.Now().Before(ls.deadline[key])
		ls.mu.Unlock()
		if taken || late {
			ls.drop(key)
			if lost == "" {
				lost = key
			}
			ls.logger.Warn("detect lease lost", slog.String("lease", key), slog.Bool("taken_over", taken), slog.Any("error", err))
			continue
		}
		if ctx.Err() == nil {
			ls.logger.Warn("detect lease not renewed; retrying", slog.String("lease", key), slog.Any("error", err))
		}
	}
	return lost
}

// keep renews the leases every quarter of the TTL until ctx ends (then it
// returns nil and stops renewing: the caller releases them once done), or
// until one is lost: then no unit may go on, and it returns errLeaseLost.
func (ls *leaseSet) keep(ctx context.Context) error {
	t := time.NewTicker(ls.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		lost := ls.renew(context.WithoutCancel(ctx))
		ls.publishUntil()
		if lost != "" {
			ls.until.Store(nil)
			return fmt.Errorf("detect: %w: %s (not renewed within %s, or taken by another process)", errLeaseLost, lost, ls.ttl*3/4)
		}
	}
}

// release gives back the leases still held (each only at the revision this
// process wrote: one that expired and was taken stays its new holder's),
// so that a replacement need not wait for the TTL.
func (ls *leaseSet) release() {
	ls.until.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ls.mu.Lock()
	revs := ls.rev
	ls.rev, ls.deadline = map[string]uint64{}, map[string]time.Time{}
	ls.mu.Unlock()
	for key, rev := range revs {
		ls.metrics.leasesHeld.Dec()
		if err := ls.kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
			ls.logger.Warn("detect lease not released; it expires on its own", slog.String("lease", key), slog.Any("error", err))
		}
	}
}
