package detect

import (
	"cmp"
	"math"
	"slices"
)

// logoutMark is a token's revocation or a session's end, remembered until
// the last moment a token it concerns can still be valid.
type logoutMark struct {
	key     uint64 // pseudonymHash of the token, or of the session
	session bool   // key is a session (session.ended), else a token (token.revoked)
	device  uint64 // pseudonymHash
	at      int64  // Unix ms
	until   int64  // Unix ms: judged and kept up to here
	eventID string
}

// markTable holds the logout marks of each subject. It is bounded twice:
// a subject keeps at most perSubject marks, and all subjects together at
// most max; beyond either, the marks that were made longest ago are
// forgotten first (globally a sixteenth of them at once, so that the cost
// of eviction is amortised). The order depends only on the marks and
// subjects, never on map order, so a replay evicts the same marks.
type markTable struct {
	subjects        map[uint64][]logoutMark // by pseudonymHash of the subject
	n               int                     // marks in all
	max, perSubject int
	// floor is at most every mark's until, so that dropExpired can tell
	// that nothing has expired without a walk.
	floor int64
}

func newMarkTable(maxMarks, perSubject int) *markTable {
	return &markTable{subjects: map[uint64][]logoutMark{}, max: maxMarks, perSubject: perSubject, floor: math.MaxInt64}
}

// of returns subject's marks; the caller must not modify them.
func (t *markTable) of(subject uint64) []logoutMark { return t.subjects[subject] }

// find returns the mark of key (a session's if session) among marks.
func findMark(marks []logoutMark, key uint64, session bool) (logoutMark, bool) {
	if key == 0 {
		return logoutMark{}, false
	}
	for _, m := range marks {
		if m.key == key && m.session == session {
			return m, true
		}
	}
	return logoutMark{}, false
}

// put records m for subject. For a token or session marked already, the
// earlier mark is kept, with the later of both untils.
func (t *markTable) put(subject uint64, m logoutMark) {
	marks := t.subjects[subject]
	for i := range marks {
		if marks[i].key == m.key && marks[i].session == m.session {
			until := max(marks[i].until, m.until)
			if m.at < marks[i].at {
				marks[i] = m
			}
			marks[i].until = until
			t.floor = min(t.floor, until)
			return
		}
	}
	if len(marks) >= t.perSubject {
		oldest := 0
		for i := range marks {
			if markBefore(marks[i], marks[oldest]) {
				oldest = i
			}
		}
		marks = slices.Delete(marks, oldest, oldest+1)
		t.n--
	}
	if t.n >= t.max {
		t.subjects[subject] = marks
		t.evictOldest()
		marks = t.subjects[subject]
	}
	if marks == nil {
		// A logout usually marks a token and then the session.
		marks = make([]logoutMark, 0, 2)
	}
	t.subjects[subject] = append(marks, m)
	t.n++
	t.floor = min(t.floor, m.until)
}

// markBefore orders marks by when they were made, then by key.
func markBefore(a, b logoutMark) bool {
	return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.key, b.key)) < 0
}

// remove forgets the mark of key (a session's if session) of subject.
func (t *markTable) remove(subject, key uint64, session bool) {
	marks := t.subjects[subject]
	for i := range marks {
		if marks[i].key == key && marks[i].session == session {
			t.set(subject, slices.Delete(marks, i, i+1))
			t.n--
			return
		}
	}
}

// set stores subject's marks, dropping the subject when it has none.
func (t *markTable) set(subject uint64, marks []logoutMark) {
	if len(marks) == 0 {
		delete(t.subjects, subject)
		return
	}
	t.subjects[subject] = marks
}

// dropExpired forgets the marks whose until is before wm.
func (t *markTable) dropExpired(wm int64) {
	if t.floor >= wm {
		return
	}
	floor := int64(math.MaxInt64)
	for s, marks := range t.subjects {
		kept := marks[:0]
		for _, m := range marks {
			if m.until < wm {
				t.n--
				continue
			}
			kept = append(kept, m)
			floor = min(floor, m.until)
		}
		clear(marks[len(kept):])
		t.set(s, kept)
	}
	t.floor = floor
}

// forget drops every mark of subject.
func (t *markTable) forget(subject uint64) {
	t.n -= len(t.subjects[subject])
	delete(t.subjects, subject)
}

func (t *markTable) size() int { return t.n }

// evictOldest forgets the sixteenth of all marks made longest ago.
func (t *markTable) evictOldest() {
	type aged struct {
		at           int64
		subject, key uint64
		session      bool
	}
	all := make([]aged, 0, t.n)
	for s, marks := range t.subjects {
		for _, m := range marks {
			all = append(all, aged{m.at, s, m.key, m.session})
		}
	}
	slices.SortFunc(all, func(a, b aged) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.subject, b.subject), cmp.Compare(a.key, b.key))
	})
	for _, a := range all[:max(1, len(all)/16)] {
		t.remove(a.subject, a.key, a.session)
	}
}
