package detect

import (
	"fmt"
	"math"

	"github.com/sessionmon/sessionmon/schemas"
)

// Each detector's part of a snapshot (snapshot.go): its tables, entry by
// entry, in a compact binary form (times in Unix ms as varints, pseudonym
// hashes as 8 bytes). A field added to a state struct must be added here
// too: TestSnapshotValueCodecsKeepEveryField fills every field of every
// state struct and fails on one that does not come back. Decoders check
// what the detectors rely on and leave problems in the reader.

var (
	_ stateCodec = (*ImpossibleTravel)(nil)
	_ stateCodec = (*TokenReuse)(nil)
	_ stateCodec = (*BruteForce)(nil)
	_ stateCodec = (*CredentialStuffing)(nil)
	_ stateCodec = (*SessionHijack)(nil)
	_ stateCodec = (*IdleTimeout)(nil)
	_ stateCodec = (*AbsoluteTimeout)(nil)
	_ stateCodec = (*MissingReauth)(nil)
	_ stateCodec = (*SessionFixation)(nil)
	_ stateCodec = (*InsecureCookie)(nil)
	_ stateCodec = (*LongLivedToken)(nil)
	_ stateCodec = (*TokenPIIClaims)(nil)
	_ stateCodec = (*RetiredSigningKey)(nil)
)

// impossible_travel: per subject the devices' locations and the familiar
// networks and devices; the learned shared egresses.

func (d *ImpossibleTravel) stateConfig() any { return d.cfg }

func (d *ImpossibleTravel) encodeState(w *stateWriter) {
	writeHashTable(w, d.refs, writeTravelState)
	w.uvarint(uint64(len(d.egress.apps)))
	for _, a := range d.egress.apps {
		w.str(a)
	}
	writeHashTable(w, d.egress.tab, writeEgress)
}

func (d *ImpossibleTravel) decodeState(r *stateReader) {
	readHashTable(r, d.refs, func(r *stateReader) travelState { return readTravelState(r, d.cfg.MaxDevices) })
	n := r.count(1)
	if n > 63 {
		r.fail(fmt.Sprintf("%d apps of networks, at most 63", n))
		return
	}
	for range n {
		d.egress.appBit(r.str())
	}
	if len(d.egress.apps) != n {
		r.fail("an app of networks written twice")
		return
	}
	readHashTable(r, d.egress.tab, readEgress)
}

func writeTravelState(w *stateWriter, v travelState) {
	n := len(v.older)
	if v.ref.at != 0 {
		n++
	}
	w.uvarint(uint64(n))
	v.each(func(r *travelRef) bool {
		writeTravelRef(w, *r)
		return true
	})
	for _, k := range v.known {
		w.uvarint(uint64(k.id))
		w.uvarint(uint64(k.meta))
	}
}

// readTravelState reads a subject's state, refusing more than maxDevices
// locations.
func readTravelState(r *stateReader, maxDevices int) travelState {
	var v travelState
	n := r.count(26)
	if n > maxDevices {
		r.fail(fmt.Sprintf("%d device locations for a subject, at most %d", n, maxDevices))
		return v
	}
	for i := range n {
		ref := readTravelRef(r)
		if ref.at == 0 {
			r.fail("a location without a time")
			return v
		}
		if i == 0 {
			v.ref = ref
		} else {
			v.older = append(v.older, ref)
		}
	}
	for i := range v.known {
		v.known[i] = known{id: uint32(r.uvarint()), meta: uint32(r.uvarint())}
	}
	return v
}

func writeTravelRef(w *stateWriter, v travelRef) {
	w.varint(v.at)
	w.u64(v.net)
	w.uvarint(uint64(v.device))
	w.uvarint(uint64(v.asn))
	w.str(v.eventID)
	w.str(v.city)
	w.f32(v.lat)
	w.f32(v.lon)
	w.f32(v.acc)
	writeCountry(w, v.country)
	w.boolean(v.flagged)
}

func readTravelRef(r *stateReader) travelRef {
	return travelRef{at: r.varint(), net: r.u64(), device: uint32(r.uvarint()), asn: uint32(r.uvarint()), eventID: r.str(), city: r.str(), lat: r.f32(), lon: r.f32(), acc: r.f32(), country: readCountry(r), flagged: r.boolean()}
}

func writeEgress(w *stateWriter, v egress) {
	w.str(v.prefix)
	w.u64(v.apps)
	w.uvarint(uint64(len(v.seen)))
	for _, s := range v.seen {
		w.uvarint(uint64(s))
	}
	w.uvarint(uint64(len(v.jumpers)))
	for _, s := range v.jumpers {
		w.uvarint(uint64(s))
	}
	w.boolean(v.anonymous)
	w.boolean(v.relay)
	w.varint(v.first)
	w.varint(v.last)
	w.varint(v.since)
	w.uvarint(uint64(v.ok))
	w.uvarint(uint64(v.failed))
	w.uvarint(uint64(v.asn))
}

func readEgress(r *stateReader) egress {
	v := egress{prefix: r.str(), apps: r.u64()}
	if n := r.count(1); n > maxEgressSeen {
		r.fail(fmt.Sprintf("%d subjects of a network, at most %d", n, maxEgressSeen))
	} else if n > 0 {
		v.seen = make([]uint32, n)
		for i := range v.seen {
			v.seen[i] = uint32(r.uvarint())
		}
	}
	if n := r.count(1); n > maxEgressSeen {
		r.fail(fmt.Sprintf("%d jumpers of a network, at most %d", n, maxEgressSeen))
	} else if n > 0 {
		v.jumpers = make([]uint32, n)
		for i := range v.jumpers {
			v.jumpers[i] = uint32(r.uvarint())
		}
	}
	v.anonymous, v.relay = r.boolean(), r.boolean()
	v.first, v.last, v.since = r.varint(), r.varint(), r.varint()
	v.ok, v.failed, v.asn = uint32(r.uvarint()), uint32(r.uvarint()), uint32(r.uvarint())
	return v
}

func writeCountry(w *stateWriter, c country) { w.b = append(w.b, c[0], c[1]) }

func readCountry(r *stateReader) country {
	var c country
	copy(c[:], r.next(2))
	return c
}

// token_reuse: rotations, access tokens, live sessions' token lifetimes,
// and each subject's revocations and session ends.

func (d *TokenReuse) stateConfig() any { return d.cfg }

func (d *TokenReuse) encodeState(w *stateWriter) {
	writeHashTable(w, d.rotated, writeRotation)
	writeHashTable(w, d.access, writeTokenUse)
	writeHashTable(w, d.sessions, writeSessionLife)
	writeMarkTable(w, d.logouts)
}

func (d *TokenReuse) decodeState(r *stateReader) {
	readHashTable(r, d.rotated, readRotation)
	readHashTable(r, d.access, readTokenUse)
	readHashTable(r, d.sessions, readSessionLife)
	readMarkTable(r, d.logouts)
}

func writeRotation(w *stateWriter, v rotation) {
	w.u64(v.child)
	w.u64(v.device)
	w.u64(v.subject)
	w.varint(v.at)
	w.str(v.eventID)
}

func readRotation(r *stateReader) rotation {
	return rotation{child: r.u64(), device: r.u64(), subject: r.u64(), at: r.varint(), eventID: r.str()}
}

func writeTokenUse(w *stateWriter, v tokenUse) {
	w.u64(v.device)
	w.u64(v.subject)
	w.u64(v.session)
	w.varint(v.at)
	w.varint(v.expires)
	w.str(v.eventID)
}

func readTokenUse(r *stateReader) tokenUse {
	return tokenUse{device: r.u64(), subject: r.u64(), session: r.u64(), at: r.varint(), expires: r.varint(), eventID: r.str()}
}

func writeSessionLife(w *stateWriter, v sessionLife) {
	w.u64(v.subject)
	w.varint(v.until)
}

func readSessionLife(r *stateReader) sessionLife {
	return sessionLife{subject: r.u64(), until: r.varint()}
}

func writeLogoutMark(w *stateWriter, v logoutMark) {
	w.u64(v.key)
	w.boolean(v.session)
	w.u64(v.device)
	w.varint(v.at)
	w.varint(v.until)
	w.str(v.eventID)
}

func readLogoutMark(r *stateReader) logoutMark {
	return logoutMark{key: r.u64(), session: r.boolean(), device: r.u64(), at: r.varint(), until: r.varint(), eventID: r.str()}
}

// writeMarkTable writes the subjects in map order, each with its marks.
func writeMarkTable(w *stateWriter, t *markTable) {
	w.uvarint(uint64(len(t.subjects)))
	for s, marks := range t.subjects {
		w.u64(s)
		w.uvarint(uint64(len(marks)))
		for _, m := range marks {
			writeLogoutMark(w, m)
		}
	}
}

// readMarkTable reads what writeMarkTable wrote into the empty table t. It
// refuses a subject written twice or without marks, and more marks than t
// may hold per subject or in all.
func readMarkTable(r *stateReader, t *markTable) {
	n := r.count(9)
	for range n {
		s := r.u64()
		k := r.count(20)
		switch {
		case r.err != nil:
			return
		case k < 1 || k > t.perSubject:
			r.fail(fmt.Sprintf("%d marks for a subject, at most %d", k, t.perSubject))
			return
		case t.n+k > t.max:
			r.fail(fmt.Sprintf("more than %d marks", t.max))
			return
		case t.subjects[s] != nil:
			r.fail("a subject written twice")
			return
		}
		marks := make([]logoutMark, k)
		for i := range marks {
			marks[i] = readLogoutMark(r)
			t.floor = min(t.floor, marks[i].until)
		}
		if r.err != nil {
			return
		}
		t.subjects[s] = marks
		t.n += k
	}
}

// brute_force: each subject's recent failures. The state version is part
// of the configuration hash, so a snapshot of an older layout is refused
// and the service replays instead.

// bruteForceStateVersion is the layout of brute_force's state: 2 counts
// several windows (failures with their network, the newest event IDs, the
// successful logins).
const bruteForceStateVersion = 2

func (d *BruteForce) stateConfig() any { return versionedState{bruteForceStateVersion, d.cfg} }

// versionedState is the stateConfig of a detector whose state layout has
// changed: the version makes a snapshot of the old layout fail the
// configuration hash.
type versionedState struct {
	StateVersion int
	Config       any
}

func (d *BruteForce) encodeState(w *stateWriter) {
	writeKeyTable(w, d.subjects, writeFailures)
}

func (d *BruteForce) decodeState(r *stateReader) {
	readKeyTable(r, d.subjects, func(r *stateReader) failures { return readFailures(r, d.keep, d.cfg.Threshold) })
}

func writeFailures(w *stateWriter, v failures) {
	w.uvarint(uint64(len(v.fails)))
	for _, f := range v.fails {
		w.uvarint(uint64(f))
	}
	w.str(v.ids)
	w.uvarint(uint64(len(v.succ)))
	for _, at := range v.succ {
		w.varint(at)
	}
	w.varint(v.alerted)
}

// readFailures reads a subject's failures, at least one (failures.last
// needs it) and at most keep, with the event IDs of at most ids of the
// newest.
func readFailures(r *stateReader, keep, ids int) failures {
	bad := failures{fails: make([]failure, 1)}
	n := r.count(1)
	if r.err == nil && (n < 1 || n > keep) {
		r.fail(fmt.Sprintf("%d failures for a subject, at most %d", n, keep))
	}
	if r.err != nil {
		return bad
	}
	f := failures{fails: make([]failure, n)}
	for i := range f.fails {
		f.fails[i] = failure(r.uvarint())
	}
	f.ids = r.str()
	if m := len(f.idList()); r.err == nil && m > min(n, ids) {
		r.fail(fmt.Sprintf("%d event IDs for %d failures, at most %d", m, n, ids))
	}
	k := r.count(1)
	if r.err == nil && k > maxKeptSuccesses {
		r.fail(fmt.Sprintf("%d successful logins for a subject, at most %d", k, maxKeptSuccesses))
	}
	if r.err != nil {
		return bad
	}
	if k > 0 {
		f.succ = make([]int64, k)
		for i := range f.succ {
			f.succ[i] = r.varint()
		}
	}
	f.alerted = r.varint()
	return f
}

// credential_stuffing: the subjects recently failing per prefix and ASN
// of each app.

// credentialStuffingStateVersion is the layout of credential_stuffing's
// state: 2 keys sources by app and holds subject hashes, networks and
// flags.
const credentialStuffingStateVersion = 2

func (d *CredentialStuffing) stateConfig() any {
	return versionedState{credentialStuffingStateVersion, d.cfg}
}

func (d *CredentialStuffing) encodeState(w *stateWriter) {
	writeHashTable(w, d.prefixes, writeStuffing)
	writeHashTable(w, d.asns, writeStuffing)
}

func (d *CredentialStuffing) decodeState(r *stateReader) {
	read := func(keep int) func(*stateReader) stuffing {
		return func(r *stateReader) stuffing { return readStuffing(r, keep) }
	}
	readHashTable(r, d.prefixes, read(d.keep[byPrefix]))
	readHashTable(r, d.asns, read(d.keep[byASN]))
}

func writeStuffing(w *stateWriter, v stuffing) {
	w.varint(v.last)
	w.varint(v.alerted)
	w.uvarint(uint64(len(v.tries)))
	for _, t := range v.tries {
		w.str(t.eventID)
		w.u64(t.subject)
		w.varint(t.at)
		w.uvarint(uint64(t.net))
		w.byte(byte(t.flags))
	}
}

// readStuffing reads a source's tries, at least one and at most keep.
func readStuffing(r *stateReader, keep int) stuffing {
	s := stuffing{last: r.varint(), alerted: r.varint()}
	n := r.count(12)
	if r.err == nil && (n < 1 || n > keep) {
		r.fail(fmt.Sprintf("%d subjects for a source, at most %d", n, keep))
	}
	if r.err != nil {
		return s
	}
	s.tries = make([]stuffTry, n)
	for i := range s.tries {
		t := stuffTry{eventID: r.str(), subject: r.u64(), at: r.varint()}
		nh := r.uvarint()
		if nh > math.MaxUint32 {
			r.fail("network hash out of range")
		}
		t.net, t.flags = uint32(nh), tryFlags(r.byte())
		s.tries[i] = t
	}
	return s
}

// session_hijack: where each session started.

func (d *SessionHijack) stateConfig() any { return d.cfg }

func (d *SessionHijack) encodeState(w *stateWriter) {
	writeHashTable(w, d.sessions, writeSessionOrigin)
}

func (d *SessionHijack) decodeState(r *stateReader) {
	readHashTable(r, d.sessions, readSessionOrigin)
}

func writeSessionOrigin(w *stateWriter, v sessionOrigin) {
	w.u64(v.device)
	w.u64(v.subject)
	w.varint(v.at)
	w.varint(v.last)
	w.str(v.eventID)
	w.uvarint(uint64(v.asn))
	writeCountry(w, v.country)
	w.byte(byte(v.anon))
}

func readSessionOrigin(r *stateReader) sessionOrigin {
	o := sessionOrigin{device: r.u64(), subject: r.u64(), at: r.varint(), last: r.varint(), eventID: r.str()}
	asn := r.uvarint()
	if asn > 1<<32-1 {
		r.fail("asn out of range")
	}
	o.asn, o.country, o.anon = uint32(asn), readCountry(r), schemas.Anonymity(r.byte())
	return o
}

// Policy detectors: one entry per session.

func (d *IdleTimeout) stateConfig() any {
	return struct {
		Config IdleTimeoutConfig
		Policy PolicyDefaults
	}{d.cfg, d.policy}
}

func (d *IdleTimeout) encodeState(w *stateWriter) { writeHashTable(w, d.sessions, writeIdleSession) }
func (d *IdleTimeout) decodeState(r *stateReader) { readHashTable(r, d.sessions, readIdleSession) }

func writeIdleSession(w *stateWriter, v idleSession) {
	w.u64(v.subject)
	w.str(v.lastID)
	w.varint(v.last)
	w.varint(int64(v.idleS))
	w.boolean(v.alerted)
}

func readIdleSession(r *stateReader) idleSession {
	return idleSession{subject: r.u64(), lastID: r.str(), last: r.varint(), idleS: r.int32(), alerted: r.boolean()}
}

func (d *AbsoluteTimeout) stateConfig() any {
	return struct {
		Config AbsoluteTimeoutConfig
		Policy PolicyDefaults
	}{d.cfg, d.policy}
}

func (d *AbsoluteTimeout) encodeState(w *stateWriter) {
	writeHashTable(w, d.sessions, writeAbsoluteSession)
}

func (d *AbsoluteTimeout) decodeState(r *stateReader) {
	readHashTable(r, d.sessions, readAbsoluteSession)
}

func writeAbsoluteSession(w *stateWriter, v absoluteSession) {
	w.u64(v.subject)
	w.varint(v.start)
	w.varint(v.last)
	w.varint(int64(v.absS))
	w.boolean(v.startSeen)
	w.boolean(v.alerted)
}

func readAbsoluteSession(r *stateReader) absoluteSession {
	return absoluteSession{subject: r.u64(), start: r.varint(), last: r.varint(), absS: r.int32(),
		startSeen: r.boolean(), alerted: r.boolean()}
}

func (d *MissingReauth) stateConfig() any {
	return struct {
		Config MissingReauthConfig
		Policy PolicyDefaults
	}{d.cfg, d.policy}
}

func (d *MissingReauth) encodeState(w *stateWriter) {
	writeHashTable(w, d.sessions, writeReauthSession)
}

func (d *MissingReauth) decodeState(r *stateReader) {
	readHashTable(r, d.sessions, readReauthSession)
}

func writeReauthSession(w *stateWriter, v reauthSession) {
	w.u64(v.subject)
	w.varint(v.auth)
	w.varint(v.last)
	w.varint(int64(v.windowS))
	w.byte(byte(v.src))
}

func readReauthSession(r *stateReader) reauthSession {
	s := reauthSession{subject: r.u64(), auth: r.varint(), last: r.varint(), windowS: r.int32(), src: authSource(r.byte())}
	if s.src > authReported {
		r.fail("unknown authentication source")
	}
	return s
}

// retired_signing_key: the retired kids.

func (d *RetiredSigningKey) stateConfig() any { return d.cfg }

func (d *RetiredSigningKey) encodeState(w *stateWriter) { writeKeyTable(w, d.retired, writeRetiredKey) }
func (d *RetiredSigningKey) decodeState(r *stateReader) { readKeyTable(r, d.retired, readRetiredKey) }

func writeRetiredKey(w *stateWriter, v retiredKey) {
	w.str(v.eventID)
	w.varint(v.at)
}

func readRetiredKey(r *stateReader) retiredKey { return retiredKey{eventID: r.str(), at: r.varint()} }

// Detectors without state write nothing.

func (d *SessionFixation) stateConfig() any         { return d.cfg }
func (d *SessionFixation) encodeState(*stateWriter) {}
func (d *SessionFixation) decodeState(*stateReader) {}

func (d *InsecureCookie) stateConfig() any         { return d.cfg }
func (d *InsecureCookie) encodeState(*stateWriter) {}
func (d *InsecureCookie) decodeState(*stateReader) {}

func (d *LongLivedToken) stateConfig() any         { return d.cfg }
func (d *LongLivedToken) encodeState(*stateWriter) {}
func (d *LongLivedToken) decodeState(*stateReader) {}

func (d *TokenPIIClaims) stateConfig() any         { return d.cfg }
func (d *TokenPIIClaims) encodeState(*stateWriter) {}
func (d *TokenPIIClaims) decodeState(*stateReader) {}
