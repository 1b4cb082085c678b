package pii

import (
	"errors"
	"math"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/schemas"
)

// Reasons Admit refuses an event. Ingest dead-letters a refused event under
// its reason; the detectors skip it and count it under the same reason.
const (
	// ReasonInvalidJSON: the message is not one JSON object.
	ReasonInvalidJSON = "invalid_json"
	// ReasonSchema: the event breaks a rule of schema v1.
	ReasonSchema = "schema"
	// ReasonAppMismatch: the event's app is not the app of the NATS
	// subject it arrived on.
	ReasonAppMismatch = "app_mismatch"
	// ReasonSubjectMismatch: the event's subject is not the subject token
	// of the NATS subject it arrived on (erasure purges the stream by that
	// token).
	ReasonSubjectMismatch = "subject_mismatch"
	// ReasonPII: the event carries what looks like raw personal data.
	ReasonPII = "pii"
	// ReasonFraming: the message is a batch that cannot be read (an
	// unknown framing version, a count that does not match, too large) or
	// that was not published on a batch subject; every event in it is
	// refused together.
	ReasonFraming = "framing"
)

// Reasons lists every reason, in a stable order (for metrics).
var Reasons = []string{ReasonInvalidJSON, ReasonSchema, ReasonAppMismatch, ReasonSubjectMismatch, ReasonPII, ReasonFraming}

// RefusedError is why Admit refused an event. Its message and Fields name
// fields and rules, never values: what came from the event (an attrs key,
// an unknown field name, an app name) is redacted when it looks like
// personal data, so it is safe to log and to keep with a dead letter.
type RefusedError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Fields are the JSON paths of the offending fields.
	Fields []string
	// Findings are what Check found, for ReasonPII.
	Findings []Finding
	msg      string
	err      error
}

// Error returns the redacted message.
func (e *RefusedError) Error() string { return e.msg }

// Unwrap returns the underlying error: a *schemas.ValidationError (whose
// text is not redacted), or nil.
func (e *RefusedError) Unwrap() error { return e.err }

// Admit is the one gate every event passes before anything stores it or
// judges it: ingest before it writes a row, and the detectors before the
// engine sees the event, live, on replay and offline. It decodes and
// validates data as schemas.Decode does (with now as the receiver's
// clock), checks that the event's app is the app token of natsSubject (the
// subject the event arrived on; "" skips the check, for events read from a
// file), and runs Check, clearing a personal-looking User-Agent or token
// kid rather than refusing the event for it (clearControlled). An event
// that passes has its app-supplied location coarsened (CoarsenLocation).
// Otherwise the error is a *RefusedError.
//
// Admit is safe for concurrent use.
func Admit(natsSubject string, data []byte, now time.Time) (*schemas.Event, error) {
	return admit(natsSubject, data, now, false)
}

// AdmitMessage runs the gate over every event of one NATS message, batched
// or not (schemas.SplitBatch), and calls fn with each event's index, its
// bytes and the event or why it was refused. A single event is checked as
// Admit checks it; an event of a batch has its app checked against the
// NATS subject's app token, not its subject against the subject's last
// token, which is the batch token. When the batch cannot be read, fn is
// not called and the error, a *RefusedError with ReasonFraming, refuses
// the whole message.
func AdmitMessage(natsSubject string, h nats.Header, data []byte, now time.Time, fn func(i int, raw []byte, e *schemas.Event, err error)) error {
	if h.Get(schemas.BatchHeader) == "" {
		// The common case, without SplitBatch's slice.
		e, err := admit(natsSubject, data, now, false)
		fn(0, data, e, err)
		return nil
	}
	events, batched, err := schemas.SplitBatch(h, data)
	if err == nil && batched {
		if _, token, ok := schemas.EventSubjectTokens(natsSubject); natsSubject != "" && (!ok || !schemas.IsBatchToken(token)) {
			err = errors.New("subject: a batched message must be published on a batch subject (" + schemas.EventSubjectPrefix + "<app>.batch+<n>)")
		}
	}
	if err != nil {
		return &RefusedError{Reason: ReasonFraming, Fields: []string{"(message)"}, msg: err.Error(), err: err}
	}
	for i, raw := range events {
		e, err := admit(natsSubject, raw, now, batched)
		fn(i, raw, e, err)
	}
	return nil
}

// admit is Admit; batched skips the check of the subject token.
func admit(natsSubject string, data []byte, now time.Time, batched bool) (*schemas.Event, error) {
	e, err := schemas.Decode(data, now)
	if err != nil {
		r := &RefusedError{Reason: ReasonSchema, err: err}
		r.Fields, r.msg = RedactSchemaError(err)
		var ve *schemas.ValidationError
		if errors.As(err, &ve) && len(ve.Errors) == 1 && ve.Errors[0].Field == "(event)" {
			r.Reason = ReasonInvalidJSON
		}
		return nil, r
	}
	// The NATS subject is parsed once, for both of its checks.
	var subjectApp, subjectToken string
	if natsSubject != "" {
		var ok bool
		subjectApp, subjectToken, ok = schemas.EventSubjectTokens(natsSubject)
		if err := checkApp(subjectApp, ok, e.App); err != nil {
			return nil, err
		}
	}
	if findings := clearControlled(e, Check(e)); len(findings) > 0 {
		r := &RefusedError{Reason: ReasonPII, Findings: findings, msg: (&FoundError{Findings: findings}).Error()}
		for _, f := range findings {
			r.Fields = append(r.Fields, f.Field)
		}
		return nil, r
	}
	// After the PII check, so that personal data in the subject is
	// reported (and redacted) as such.
	if natsSubject != "" && !batched {
		if err := checkSubjectToken(subjectToken, e.Subject); err != nil {
			return nil, err
		}
	}
	CoarsenLocation(e.Client)
	return e, nil
}

// clearControlled empties the fields of e whose value the end user, not
// the app, chooses, when findings (Check's, of e) say they look like
// personal data: client.user_agent (the User-Agent header) and token.kid
// (from the header of a token the client presented). Refusing the whole
// event instead would let anyone hide a sign-in from the detectors by
// sending such a header; clearing the value keeps the event and stores
// nothing personal. It returns the other findings, which refuse the event.
func clearControlled(e *schemas.Event, findings []Finding) []Finding {
	rest := findings[:0]
	for _, f := range findings {
		switch f.Field {
		case "client.user_agent":
			e.Client.UserAgent = ""
		case "token.kid":
			e.Token.KID = ""
		default:
			rest = append(rest, f)
		}
	}
	return rest
}

// checkSubjectToken returns a *RefusedError with ReasonSubjectMismatch
// unless subject is token, the subject token of the NATS subject
// (schemas.EventSubjectTokens).
func checkSubjectToken(token, subject string) error {
	if token != subject {
		return &RefusedError{Reason: ReasonSubjectMismatch, Fields: []string{"subject"},
			msg: "subject: the event's subject is not the last token of the NATS subject it arrived on (want " +
				schemas.EventSubjectPrefix + "<app>.<subject>)"}
	}
	return nil
}

// checkApp returns a *RefusedError with ReasonAppMismatch unless app is
// subjectApp, the app token of the NATS subject (ok is false when that
// subject names no app; schemas.EventSubjectTokens).
func checkApp(subjectApp string, ok bool, app string) error {
	if !ok {
		return &RefusedError{Reason: ReasonAppMismatch, Fields: []string{"app"},
			msg: "app: the event names app " + quoteRedacted(app) + ", but it arrived on a subject that names no app (want " +
				schemas.EventSubjectPrefix + "<app>.<subject>)"}
	}
	if subjectApp != app {
		return &RefusedError{Reason: ReasonAppMismatch, Fields: []string{"app"},
			msg: "app: the event names app " + quoteRedacted(app) + ", but it arrived on the subject of app " + quoteRedacted(subjectApp)}
	}
	return nil
}

// quoteRedacted quotes s, or gives its placeholder when it looks like
// personal data.
func quoteRedacted(s string) string {
	if r := RedactText(s); r != s {
		return r
	}
	return `"` + s + `"`
}

// Location precision kept of app-supplied coordinates: one decimal degree
// (about 11 km of latitude), the size of a city. The accuracy radius is
// raised to cover the rounding.
const (
	locationDecimals = 1
	coarseAccuracyKM = 10
)

// CoarsenLocation rounds app-supplied coordinates to city precision (one
// decimal degree) and raises the accuracy radius to at least
// coarseAccuracyKM, so that sessionmon neither stores nor judges a more
// precise location than a GeoIP city lookup gives. It replaces the Lat and
// Lon pointers (a decoded event's values may be shared) and does nothing
// to a client without coordinates or one already enriched.
func CoarsenLocation(c *schemas.Client) {
	if !c.HasGeo() || c.GeoSource != schemas.GeoSourceNone {
		return
	}
	scale := math.Pow10(locationDecimals)
	// + 0 turns a rounded -0 into 0.
	// One allocation for both.
	ll := new([2]float64)
	ll[0] = math.Round(*c.Lat*scale)/scale + 0
	ll[1] = math.Round(*c.Lon*scale)/scale + 0
	c.Lat, c.Lon = &ll[0], &ll[1]
	c.AccuracyKM = max(c.AccuracyKM, coarseAccuracyKM)
}
