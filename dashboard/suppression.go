package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// Suppression rules (schemas.SuppressionRule) live in the
// schemas.SuppressionBucket key-value bucket, which every detect process
// watches: a rule the dashboard writes applies within seconds, without a
// restart. The dashboard makes, lists and deletes them; analysts (who may
// triage) and admins may change them, and every change is audited.

// defaultSuppressionDays is the expiry the "Suppress similar" form
// proposes.
const defaultSuppressionDays = 7

// suppressionInput is a new rule as a form or a JSON body gives it.
type suppressionInput struct {
	Detector  string `json:"detector" form:"detector"`
	App       string `json:"app" form:"app"`
	Subject   string `json:"subject" form:"subject"`
	IPPrefix  string `json:"ip_prefix" form:"ip_prefix"`
	ASN       uint32 `json:"asn" form:"asn"`
	Action    string `json:"action" form:"action"`
	Severity  string `json:"severity" form:"severity"`
	Reason    string `json:"reason" form:"reason"`
	ExpiresAt string `json:"expires_at" form:"expires_at"`
}

// suppressionView is a stored rule as the list and the JSON API show it.
type suppressionView struct {
	schemas.SuppressionRule
	// Active is false once the rule has expired.
	Active bool `json:"active"`
}

// suppressionList is every rule in the bucket.
type suppressionList struct {
	// Active and Expired are the valid rules, newest first.
	Active, Expired []suppressionView
	// Invalid are the keys whose value is no valid rule (detect ignores
	// them); they can only be deleted.
	Invalid []string
	// New is the prefilled form of a new rule (nil: none asked).
	New *suppressionPrefill
}

// suppressionSection is one table of the list page.
type suppressionSection struct {
	Title string
	Rules []suppressionView
}

// Sections returns the list page's tables: active, then expired.
func (l suppressionList) Sections() []suppressionSection {
	return []suppressionSection{{Title: "Active", Rules: l.Active}, {Title: "Expired", Rules: l.Expired}}
}

// suppressionBucket opens the rules bucket, creating it when it is
// missing (a dashboard started before any serve).
func (h *handler) suppressionBucket(ctx context.Context) (jetstream.KeyValue, error) {
	if h.js == nil {
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "suppression rules need NATS")
	}
	kv, err := h.js.KeyValue(ctx, schemas.SuppressionBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return natsconn.EnsureSuppressionBucket(ctx, h.js, 1)
	}
	if err != nil {
		return nil, fmt.Errorf("suppression bucket: %w", err)
	}
	return kv, nil
}

// knownDetector reports whether name is a registered detector.
func knownDetector(name string) bool { return slices.Contains(detect.DetectorNames(), name) }

// decodeRule decodes and checks the value stored under key, as detect
// does (strictly, with the id equal to the key).
func decodeRule(key string, value []byte) (schemas.SuppressionRule, bool) {
	var r schemas.SuppressionRule
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || r.ID != key || r.Validate(knownDetector) != nil {
		return schemas.SuppressionRule{}, false
	}
	return r, true
}

// loadSuppressions reads every rule in the bucket.
func (h *handler) loadSuppressions(ctx context.Context) (suppressionList, error) {
	out := suppressionList{Active: []suppressionView{}, Expired: []suppressionView{}}
	kv, err := h.suppressionBucket(ctx)
	if err != nil {
		return out, err
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return out, fmt.Errorf("list suppression rules: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	now := h.now()
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return out, fmt.Errorf("read suppression rule: %w", err)
		}
		r, ok := decodeRule(key, e.Value())
		if !ok {
			out.Invalid = append(out.Invalid, key)
			continue
		}
		v := suppressionView{SuppressionRule: r, Active: now.Before(r.ExpiresAt.Time)}
		if v.Active {
			out.Active = append(out.Active, v)
		} else {
			out.Expired = append(out.Expired, v)
		}
	}
	newestFirst := func(a, b suppressionView) int { return b.CreatedAt.Compare(a.CreatedAt.Time) }
	slices.SortFunc(out.Active, newestFirst)
	slices.SortFunc(out.Expired, newestFirst)
	slices.Sort(out.Invalid)
	return out, nil
}

// newSuppressionID returns a random rule id (32 hex digits).
func newSuppressionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ruleOf validates in and returns the rule it asks for, owned by owner
// and made at now; the error names the first field at fault.
func ruleOf(in suppressionInput, owner string, now time.Time) (schemas.SuppressionRule, error) {
	now = now.UTC().Truncate(time.Millisecond)
	r := schemas.SuppressionRule{
		ID: newSuppressionID(), Detector: strings.TrimSpace(in.Detector), App: strings.TrimSpace(in.App),
		Subject: strings.TrimSpace(in.Subject), IPPrefix: strings.TrimSpace(in.IPPrefix), ASN: in.ASN,
		Action: schemas.SuppressionAction(in.Action), Severity: schemas.Severity(in.Severity),
		Owner: owner, Reason: strings.TrimSpace(in.Reason), CreatedAt: schemas.At(now),
	}
	if r.Action == schemas.SuppressSilence {
		// The form sends its severity choice along with either action.
		r.Severity = ""
	}
	exp, err := parseTime(map[string][]string{"expires_at": {in.ExpiresAt}}, "expires_at", time.Time{})
	switch {
	case err != nil:
		return r, err
	case exp.IsZero():
		return r, badParam("expires_at", "is required: when the rule stops applying, at most 90 days ahead")
	case !exp.After(now):
		return r, badParam("expires_at", "must be in the future")
	case exp.Sub(now) > schemas.MaxSuppressionLifetime:
		return r, badParam("expires_at", "must be at most 90 days ahead")
	}
	r.ExpiresAt = schemas.At(exp.UTC().Truncate(time.Millisecond))
	if err := r.Validate(knownDetector); err != nil {
		var se *schemas.SuppressionError
		if errors.As(err, &se) && len(se.Errors) > 0 {
			return r, badParam(se.Errors[0].Field, "%s", se.Errors[0].Rule)
		}
		return r, badParam("body", "%s", err.Error())
	}
	return r, nil
}

// createRule validates the request's rule, stores it and audits it.
func (h *handler) createRule(c echo.Context) (schemas.SuppressionRule, error) {
	var in suppressionInput
	if err := bindBody(c, &in); err != nil {
		return schemas.SuppressionRule{}, err
	}
	r, err := ruleOf(in, actorName(c), h.now())
	if err != nil {
		return r, err
	}
	ctx := c.Request().Context()
	kv, err := h.suppressionBucket(ctx)
	if err != nil {
		return r, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return r, fmt.Errorf("encode suppression rule: %w", err)
	}
	if _, err := kv.Create(ctx, r.ID, b); err != nil {
		h.audit(c, "suppression.create", "suppression "+r.ID, auditFailure, suppressionDetail(r))
		return r, fmt.Errorf("store suppression rule: %w", err)
	}
	h.audit(c, "suppression.create", "suppression "+r.ID, auditSuccess, suppressionDetail(r))
	return r, nil
}

// suppressionDetail is what the audit log says of a rule: its action,
// detector, matchers (a subject only as its sha256), expiry and reason.
func suppressionDetail(r schemas.SuppressionRule) string {
	parts := []string{string(r.Action)}
	if r.Severity != "" {
		parts[0] += " to " + string(r.Severity)
	}
	parts = append(parts, "detector "+r.Detector)
	if r.App != "" {
		parts = append(parts, "app "+r.App)
	}
	if r.Subject != "" {
		parts = append(parts, auditSubject(r.Subject))
	}
	if r.IPPrefix != "" {
		parts = append(parts, "network "+r.IPPrefix)
	}
	if r.ASN != 0 {
		parts = append(parts, fmt.Sprintf("AS%d", r.ASN))
	}
	parts = append(parts, "until "+r.ExpiresAt.UTC().Format(time.RFC3339), "reason: "+r.Reason)
	return strings.Join(parts, ", ")
}

// deleteRule deletes the rule named by the :id path parameter and audits
// it.
func (h *handler) deleteRule(c echo.Context) (string, error) {
	id := c.Param("id")
	if !schemas.ValidSuppressionID(id) {
		return "", badParam("id", "must be a suppression rule id: 8 to 64 characters of a-z 0-9")
	}
	ctx := c.Request().Context()
	kv, err := h.suppressionBucket(ctx)
	if err != nil {
		return id, err
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return id, echo.NewHTTPError(http.StatusNotFound, "no such suppression rule")
	} else if err != nil {
		return id, fmt.Errorf("read suppression rule: %w", err)
	}
	detail := "invalid value"
	if r, ok := decodeRule(id, e.Value()); ok {
		detail = suppressionDetail(r)
	}
	if err := kv.Delete(ctx, id); err != nil {
		h.audit(c, "suppression.delete", "suppression "+id, auditFailure, detail)
		return id, fmt.Errorf("delete suppression rule: %w", err)
	}
	h.audit(c, "suppression.delete", "suppression "+id, auditSuccess, detail)
	return id, nil
}
