package detect

import (
	"fmt"

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

// impossible_travel: the reference location per subject.

func (d *ImpossibleTravel) stateConfig() any           { return d.cfg }
func (d *ImpossibleTravel) encodeState(w *stateWriter) { writeHashTable(w, d.refs, writeTravelRef) }
func (d *ImpossibleTravel) decodeState(r *stateReader) { readHashTable(r, d.refs, readTravelRef) }

func writeTravelRef(w *stateWriter, v travelRef) {
	w.varint(v.at)
	w.str(v.eventID)
	w.str(v.city)
	w.f32(v.lat)
	w.f32(v.lon)
	w.f32(v.acc)
	writeCountry(w, v.country)
}

func readTravelRef(r *stateReader) travelRef {
	return travelRef{at: r.varint(), eventID: r.str(), city: r.str(), lat: r.f32(), lon: r.f32(), acc: r.f32(), country: readCountry(r)}
}

func writeCountry(w *stateWriter, c country) { w.b = append(w.b, c[0], c[1]) }

func readCountry(r *stateReader) country {
	var c country
	copy(c[:], r.next(2))
	return c
}

// token_reuse: rotations, access tokens, revocations and session ends.

func (d *TokenReuse) stateConfig() any { return d.cfg }

func (d *TokenReuse) encodeState(w *stateWriter) {
	writeHashTable(w, d.rotated, writeRotation)
	writeHashTable(w, d.access, writeTokenUse)
	writeHashTable(w, d.revoked, writeEndMark)
	writeHashTable(w, d.ended, writeEndMark)
}

func (d *TokenReuse) decodeState(r *stateReader) {
	readHashTable(r, d.rotated, readRotation)
	readHashTable(r, d.access, readTokenUse)
	readHashTable(r, d.revoked, readEndMark)
	readHashTable(r, d.ended, readEndMark)
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
	w.varint(v.at)
	w.varint(v.expires)
	w.str(v.eventID)
}

func readTokenUse(r *stateReader) tokenUse {
	return tokenUse{device: r.u64(), subject: r.u64(), at: r.varint(), expires: r.varint(), eventID: r.str()}
}

func writeEndMark(w *stateWriter, v endMark) {
	w.u64(v.device)
	w.u64(v.subject)
	w.varint(v.at)
	w.str(v.eventID)
}

func readEndMark(r *stateReader) endMark {
	return endMark{device: r.u64(), subject: r.u64(), at: r.varint(), eventID: r.str()}
}

// brute_force: each subject's recent failures.

func (d *BruteForce) stateConfig() any { return d.cfg }

func (d *BruteForce) encodeState(w *stateWriter) {
	writeKeyTable(w, d.subjects, writeFailures)
}

func (d *BruteForce) decodeState(r *stateReader) {
	readKeyTable(r, d.subjects, func(r *stateReader) failures { return readFailures(r, d.cfg.Threshold) })
}

func writeFailures(w *stateWriter, v failures) {
	w.uvarint(uint64(len(v.at)))
	for i, at := range v.at {
		w.varint(at)
		w.str(v.ids[i])
		w.byte(byte(v.anon[i]))
	}
}

// readFailures reads a subject's failures, at least one (failures.last
// needs it) and at most threshold.
func readFailures(r *stateReader, threshold int) failures {
	n := r.count(3)
	if r.err == nil && (n < 1 || n > threshold) {
		r.fail(fmt.Sprintf("%d failures for a subject, threshold %d", n, threshold))
	}
	if r.err != nil {
		return failures{at: []int64{0}, ids: []string{""}, anon: make([]schemas.Anonymity, 1)}
	}
	f := failures{at: make([]int64, n), ids: make([]string, n), anon: make([]schemas.Anonymity, n)}
	for i := range n {
		f.at[i] = r.varint()
		f.ids[i] = r.str()
		f.anon[i] = schemas.Anonymity(r.byte())
	}
	return f
}

// credential_stuffing: the subjects recently failing per prefix and ASN.

func (d *CredentialStuffing) stateConfig() any { return d.cfg }

func (d *CredentialStuffing) encodeState(w *stateWriter) {
	writeKeyTable(w, d.prefixes, writeStuffing)
	writeKeyTable(w, d.asns, writeStuffing)
}

func (d *CredentialStuffing) decodeState(r *stateReader) {
	read := func(threshold int) func(*stateReader) stuffing {
		return func(r *stateReader) stuffing { return readStuffing(r, threshold) }
	}
	readKeyTable(r, d.prefixes, read(d.cfg.Threshold))
	readKeyTable(r, d.asns, read(d.cfg.ASNThreshold))
}

func writeStuffing(w *stateWriter, v stuffing) {
	w.varint(v.last)
	w.uvarint(uint64(len(v.tries)))
	for _, t := range v.tries {
		w.str(t.subject)
		w.str(t.eventID)
		w.varint(t.at)
	}
}

// readStuffing reads a source's tries, at least one and at most threshold.
func readStuffing(r *stateReader, threshold int) stuffing {
	s := stuffing{last: r.varint()}
	n := r.count(3)
	if r.err == nil && (n < 1 || n > threshold) {
		r.fail(fmt.Sprintf("%d subjects for a source, threshold %d", n, threshold))
	}
	if r.err != nil {
		return s
	}
	s.tries = make([]stuffTry, n)
	for i := range s.tries {
		s.tries[i] = stuffTry{subject: r.str(), eventID: r.str(), at: r.varint()}
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
