package detect

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// Making what impossible_travel learned (familiar.go) visible.
//
// Shared egresses: every networksEvery (and once after the replay at
// start), each engine loop that runs a detector learning them hands its
// networksLimit most used shared egresses to a publisher goroutine of the
// service (a size-1 channel, the latest list wins, so the loop never
// waits), which puts them as a NetworkList into the
// schemas.NetworkBucket key-value bucket under NetworkListKey(unit). The
// bucket's max age drops the list of a unit that stopped publishing.
//
// A subject's familiar networks, ASNs and devices (familiar_serve.go):
// every detect process subscribes to schemas.DetectFamiliarSubject; the one that owns the
// subject's partition passes the request into the engine loop of that
// partition (a channel, like erasure requests), which answers from the
// detectors' state. The others do not answer, so the requester
// (AskFamiliar) takes the first reply. Only sessionmon's own NATS users
// may publish on sessionmon.> (natsauth.Service); apps may not.

// Bounds and timings of the shared egress lists.
const (
	// networksLimit is how many shared egresses each unit publishes, the
	// most used first: about 400 bytes each.
	networksLimit = 500
	// networksEvery is how often each unit publishes them.
	networksEvery = 30 * time.Second
	// networksPutTimeout bounds one put into the bucket.
	networksPutTimeout = 5 * time.Second
)

// sharedEgresser is implemented by detectors that learn shared egresses.
type sharedEgresser interface {
	SharedEgresses(limit int) []SharedEgress
}

// familiarViewer is implemented by detectors that learn a subject's
// familiar networks and devices.
type familiarViewer interface {
	familiarView(app, subject string) FamiliarSubject
}

// SharedEgresses returns up to limit shared egresses learned by the
// engine's detectors, the most used first.
func (e *Engine) SharedEgresses(limit int) []SharedEgress {
	out := []SharedEgress{}
	for _, d := range e.dets {
		if s, ok := d.(sharedEgresser); ok {
			out = append(out, s.SharedEgresses(limit)...)
		}
	}
	sortSharedEgresses(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// sortSharedEgresses orders egresses the most used first.
func sortSharedEgresses(s []SharedEgress) {
	slices.SortFunc(s, func(a, b SharedEgress) int {
		return cmp.Or(cmp.Compare(b.Succeeded, a.Succeeded), cmp.Compare(a.Prefix, b.Prefix))
	})
}

// learnsNetworks reports whether a detector of the engine learns shared
// egresses.
func (e *Engine) learnsNetworks() bool {
	return slices.ContainsFunc(e.dets, func(d Detector) bool {
		_, ok := d.(sharedEgresser)
		return ok
	})
}

// Kinds of a FamiliarEntry.
const (
	FamiliarKindNetwork = "network"
	FamiliarKindASN     = "asn"
	FamiliarKindDevice  = "device"
)

// FamiliarEntry is one network, ASN or device a subject was active on.
type FamiliarEntry struct {
	// Kind is FamiliarKindNetwork, FamiliarKindASN or FamiliarKindDevice.
	Kind string `json:"kind"`
	// Label names it for people: "203.0.113.0/24", "AS64500", "device
	// 1a2b3c4d", or "a network no longer tracked".
	Label string `json:"label"`
	// Prefix, ASN and Apps (those whose signed-in users were seen on it)
	// are a network's while the egress table still tracks it; ASN is
	// also an ASN entry's number.
	Prefix string   `json:"ip_prefix,omitempty"`
	ASN    uint32   `json:"asn,omitempty"`
	Apps   []string `json:"apps,omitempty"`
	// Device is a short hash of the device pseudonym (8 hex digits),
	// never the pseudonym.
	Device string `json:"device,omitempty"`
	// SharedEgress is set for a network that is a shared egress now.
	SharedEgress bool `json:"shared_egress,omitempty"`
	// Hours is in how many different hours the subject was active on it
	// (at most 63); LastActive is the newest of those hours.
	Hours      int       `json:"hours_active"`
	LastActive time.Time `json:"last_active"`
	// Familiar reports whether it counts as familiar now.
	Familiar bool `json:"familiar"`
	// Why says, for people, why it is (or is not yet) familiar.
	Why string `json:"why"`
}

// FamiliarSubject is what the detectors learned of one subject's
// networks, ASNs and devices; every list is empty when nothing is known.
type FamiliarSubject struct {
	Networks []FamiliarEntry `json:"networks"`
	ASNs     []FamiliarEntry `json:"asns"`
	Devices  []FamiliarEntry `json:"devices"`
	// MinHours is familiar_min_hours (0: no detector learns it).
	MinHours int `json:"familiar_min_hours"`
}

// Empty reports whether nothing is known of the subject.
func (f FamiliarSubject) Empty() bool {
	return len(f.Networks)+len(f.ASNs)+len(f.Devices) == 0
}

func emptyFamiliar() FamiliarSubject {
	return FamiliarSubject{Networks: []FamiliarEntry{}, ASNs: []FamiliarEntry{}, Devices: []FamiliarEntry{}}
}

// Familiar returns the subject's familiar networks, ASNs and devices as
// the engine's detectors know them.
func (e *Engine) Familiar(subject string) FamiliarSubject { return e.familiarIn("", subject) }

// familiarIn is Familiar, preferring, when two tracked networks share the
// id a subject keeps, the one seen in app.
func (e *Engine) familiarIn(app, subject string) FamiliarSubject {
	out := emptyFamiliar()
	for _, d := range e.dets {
		if v, ok := d.(familiarViewer); ok {
			f := v.familiarView(app, subject)
			out.Networks = append(out.Networks, f.Networks...)
			out.ASNs = append(out.ASNs, f.ASNs...)
			out.Devices = append(out.Devices, f.Devices...)
			out.MinHours = max(out.MinHours, f.MinHours)
		}
	}
	return out
}

var _ familiarViewer = (*ImpossibleTravel)(nil)

// familiarView lists the subject's known entries, the familiar and most
// used first.
func (d *ImpossibleTravel) familiarView(app, subject string) FamiliarSubject {
	out := emptyFamiliar()
	out.MinHours = d.cfg.FamiliarMinHours
	st, ok := d.refs.get(pseudonymHash(subject))
	if !ok || subject == "" {
		return out
	}
	nets := d.resolveNetworks(app, &st.known)
	for _, k := range st.known {
		if k.empty() {
			continue
		}
		last := time.Unix(int64(k.hour())*3600, 0).UTC()
		e := FamiliarEntry{Hours: k.hours(), LastActive: last}
		switch k.kind() {
		case knownNetwork:
			e.Kind = FamiliarKindNetwork
			e.Familiar = e.Hours >= d.cfg.FamiliarMinHours
			e.Why = familiarWhy(e.Hours, last, fmt.Sprintf("familiar from %s", plural(d.cfg.FamiliarMinHours, "hour")))
			if x, ok := nets[k.id]; ok {
				e.Prefix, e.ASN, e.Apps = x.prefix, x.asn, d.egress.appNames(x.apps)
				e.Label = x.prefix
				e.SharedEgress = x.shared(d.cfg.SharedEgress.MaxFailureShare)
				if e.SharedEgress {
					e.Why += "; also a shared egress"
				}
			} else {
				e.Label = "a network no longer tracked"
			}
			out.Networks = append(out.Networks, e)
		case knownASN:
			e.Kind, e.ASN, e.Label = FamiliarKindASN, k.id, "AS"+strconv.FormatUint(uint64(k.id), 10)
			e.Familiar = e.Hours >= d.cfg.FamiliarMinHours
			e.Why = familiarWhy(e.Hours, last, fmt.Sprintf("familiar from %s", plural(d.cfg.FamiliarMinHours, "hour")))
			out.ASNs = append(out.ASNs, e)
		case knownDevice:
			e.Kind, e.Device = FamiliarKindDevice, fmt.Sprintf("%08x", k.id)
			e.Label = "device " + e.Device
			e.Familiar = true
			e.Why = familiarWhy(e.Hours, last, "a device is known once seen")
			out.Devices = append(out.Devices, e)
		}
	}
	for _, l := range [][]FamiliarEntry{out.Networks, out.ASNs, out.Devices} {
		slices.SortFunc(l, func(a, b FamiliarEntry) int {
			if a.Familiar != b.Familiar {
				if a.Familiar {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(b.Hours, a.Hours), b.LastActive.Compare(a.LastActive), cmp.Compare(a.Label, b.Label))
		})
	}
	return out
}

// resolveNetworks finds the tracked egress of each known network id (the
// low 32 bits of its egressKey), preferring one seen in app when several
// match. It walks the whole egress table once: a triage request, not the
// hot path.
func (d *ImpossibleTravel) resolveNetworks(app string, ks *[maxKnown]known) map[uint32]egress {
	want := map[uint32]bool{}
	for _, k := range ks {
		if !k.empty() && k.kind() == knownNetwork {
			want[k.id] = true
		}
	}
	out := make(map[uint32]egress, len(want))
	if len(want) == 0 {
		return out
	}
	for key, x := range d.egress.tab.m {
		id := uint32(key)
		if !want[id] {
			continue
		}
		if cur, ok := out[id]; !ok || (d.seenIn(x, app) && !d.seenIn(cur, app)) {
			out[id] = x
		}
	}
	return out
}

// seenIn reports whether app's users were seen on x.
func (d *ImpossibleTravel) seenIn(x egress, app string) bool {
	return app != "" && slices.Contains(d.egress.appNames(x.apps), app)
}

// familiarWhy writes "active in 5 different hours, last 2026-11-20 14:00
// UTC; rule".
func familiarWhy(hours int, last time.Time, rule string) string {
	active := "active in 1 hour"
	switch {
	case hours >= maxKnownHours:
		active = fmt.Sprintf("active in at least %d different hours", maxKnownHours)
	case hours > 1:
		active = fmt.Sprintf("active in %d different hours", hours)
	}
	return active + ", last " + last.Format("2006-01-02 15:04") + " UTC; " + rule
}

// plural writes "1 hour" or "2 hours".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// NetworkList is a unit's shared egresses as published in
// schemas.NetworkBucket.
type NetworkList struct {
	UpdatedAt time.Time `json:"updated_at"`
	// Unit names the engine: "all" (one engine for everything), or
	// "p<N>" (partition N).
	Unit     string         `json:"unit"`
	Networks []SharedEgress `json:"networks"`
}

// unitName names u in NetworkList and replies.
func (u *unit) unitName() string {
	if u.name == "" {
		return "all"
	}
	return u.name
}

// NetworkListKey is the key of a unit's NetworkList in
// schemas.NetworkBucket.
func NetworkListKey(unit string) string { return "unit-" + unit }

// offerNetworks hands the engine's shared egresses to the unit's
// publisher, replacing a list it has not taken yet. It never blocks.
func (l *live) offerNetworks() {
	if l.networks == nil {
		return
	}
	v := NetworkList{UpdatedAt: time.Now().UTC(), Unit: l.u.unitName(), Networks: l.eng.SharedEgresses(networksLimit)}
	select {
	case l.networks <- v:
		return
	default:
	}
	// Full: drop the stale list. The loop is the only sender, so the
	// second send finds room.
	select {
	case <-l.networks:
	default:
	}
	select {
	case l.networks <- v:
	default:
	}
}

// publishNetworks puts each list offered by u's engine loop into the
// networks bucket until ctx ends. A failure is logged and the next list
// tries again: the view is informational, detection goes on.
func (s *Service) publishNetworks(ctx context.Context, u *unit, in <-chan NetworkList) error {
	var kv jetstream.KeyValue
	for {
		var v NetworkList
		select {
		case <-ctx.Done():
			return nil
		case v = <-in:
		}
		err := func() error {
			pctx, cancel := context.WithTimeout(ctx, networksPutTimeout)
			defer cancel()
			if kv == nil {
				b, err := natsconn.EnsureNetworkBucket(pctx, s.js, 1)
				if err != nil {
					return err
				}
				kv = b
			}
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode shared egresses: %w", err)
			}
			if _, err := kv.Put(pctx, NetworkListKey(v.Unit), b); err != nil {
				return fmt.Errorf("put shared egresses into %s: %w", schemas.NetworkBucket, err)
			}
			return nil
		}()
		if err != nil && ctx.Err() == nil {
			u.logger.Warn("shared egresses not published", slog.Int("networks", len(v.Networks)), slog.Any("error", err))
		}
	}
}
