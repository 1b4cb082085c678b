package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// maxHoldReason bounds a legal hold's reason.
const maxHoldReason = 1000

// subjectInput names a data subject and, for a legal hold, why it is held.
type subjectInput struct {
	Subject string `json:"subject" form:"subject"`
	Reason  string `json:"reason" form:"reason"`
}

func checkSubjectField(s string) error {
	if !schemas.ValidPseudonym(s) {
		return badParam("subject", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	return nil
}

// retentionError maps retention's refusals to answers that name the
// field; anything else is returned as is.
func retentionError(err error) error {
	switch {
	case errors.Is(err, retention.ErrLegalHold):
		return echo.NewHTTPError(http.StatusConflict, "the subject is under legal hold: lift the hold first")
	case errors.Is(err, retention.ErrInvalidRequest):
		field := "subject"
		for _, f := range []string{"reason", "actor", "requested_by"} {
			if strings.Contains(err.Error(), f+":") {
				field = f
			}
		}
		return badParam(field, "%s", err.Error())
	}
	return err
}

// requestErasure files an erasure request for the subject of the body and
// audits it (the subject only as its hash).
func (h *handler) requestErasure(c echo.Context) (erasureJSON, error) {
	var in subjectInput
	if err := bindBody(c, &in); err != nil {
		return erasureJSON{}, err
	}
	if err := checkSubjectField(in.Subject); err != nil {
		return erasureJSON{}, err
	}
	if h.eraser == nil {
		return erasureJSON{}, echo.NewHTTPError(http.StatusServiceUnavailable, "erasure requests are not enabled")
	}
	target := subjectTarget(in.Subject)
	r, err := h.eraser.Request(c.Request().Context(), in.Subject, actorName(c))
	if err != nil {
		h.audit(c, "erasure.request", target, auditFailure, "")
		return erasureJSON{}, retentionError(err)
	}
	h.audit(c, "erasure.request", target, auditSuccess, "request "+r.ID)
	return newErasureJSON(r), nil
}

// fileErasure is the retention page's erasure form (POST
// /retention/erasures, field subject).
func (h *handler) fileErasure(c echo.Context) error {
	if _, err := h.requestErasure(c); err != nil {
		return err
	}
	return h.redirectFlash(c, "/retention", "erasure_filed")
}

// putLegalHold sets a legal hold and audits it.
func (h *handler) putLegalHold(c echo.Context) (legalHoldJSON, error) {
	var in subjectInput
	if err := bindBody(c, &in); err != nil {
		return legalHoldJSON{}, err
	}
	if err := checkSubjectField(in.Subject); err != nil {
		return legalHoldJSON{}, err
	}
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Reason == "" || utf8.RuneCountInString(in.Reason) > maxHoldReason {
		return legalHoldJSON{}, badParam("reason", "is required, at most %d characters", maxHoldReason)
	}
	target := subjectTarget(in.Subject)
	hl, err := retention.SetLegalHold(c.Request().Context(), h.store, in.Subject, in.Reason, actorName(c))
	if err != nil {
		h.audit(c, "legal_hold.set", target, auditFailure, "")
		return legalHoldJSON{}, retentionError(err)
	}
	h.audit(c, "legal_hold.set", target, auditSuccess, "")
	return legalHoldJSON{Subject: hl.Subject, Reason: hl.Reason, Actor: hl.Actor, Since: hl.Time.UTC()}, nil
}

// setLegalHold is the retention page's legal hold form (POST
// /retention/holds, fields subject and reason).
func (h *handler) setLegalHold(c echo.Context) error {
	if _, err := h.putLegalHold(c); err != nil {
		return err
	}
	return h.redirectFlash(c, "/retention", "hold_set")
}

// removeLegalHold lifts the hold of subject and audits it.
func (h *handler) removeLegalHold(c echo.Context, subject string) error {
	if err := checkSubjectField(subject); err != nil {
		return err
	}
	target := subjectTarget(subject)
	if err := retention.LiftLegalHold(c.Request().Context(), h.store, subject, actorName(c)); err != nil {
		h.audit(c, "legal_hold.lift", target, auditFailure, "")
		return retentionError(err)
	}
	h.audit(c, "legal_hold.lift", target, auditSuccess, "")
	return nil
}

// liftLegalHold is the lift button of the retention page (POST
// /retention/holds/lift, field subject).
func (h *handler) liftLegalHold(c echo.Context) error {
	var in subjectInput
	if err := bindBody(c, &in); err != nil {
		return err
	}
	if err := h.removeLegalHold(c, in.Subject); err != nil {
		return err
	}
	return h.redirectFlash(c, "/retention", "hold_lifted")
}

// erasuresJSON is the answer of GET /api/v1/erasure-requests.
type erasuresJSON struct {
	ErasureRequests []erasureJSON `json:"erasure_requests"`
}

// apiErasureRequests answers GET /api/v1/erasure-requests.
//
// No parameters. Response 200: erasuresJSON {erasure_requests: [{id,
// subject_hash (sha256:<hex> of the pseudonym, which is never shown),
// requested_by, status (pending, running, done, failed), error,
// rows_deleted: {table: rows}, messages_deleted: {stream: messages},
// requested, updated}]}, the newest 100 first.
func (h *handler) apiErasureRequests(c echo.Context) error {
	reqs, err := h.loadErasures(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, erasuresJSON{ErasureRequests: reqs})
}

// apiFileErasure answers POST /api/v1/erasure-requests.
//
// Body (JSON or form): subject (a pseudonym). The requester is the token's
// or user's name. Response 202: the request as filed (erasureJSON, status
// pending; the retention job carries it out); 400 naming an invalid field;
// 409 when the subject is under legal hold; 503 when erasure requests are
// not enabled.
func (h *handler) apiFileErasure(c echo.Context) error {
	r, err := h.requestErasure(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, r)
}

// legalHoldsJSON is the answer of GET /api/v1/legal-holds.
type legalHoldsJSON struct {
	LegalHolds []legalHoldJSON `json:"legal_holds"`
}

// apiLegalHolds answers GET /api/v1/legal-holds.
//
// No parameters. Response 200: legalHoldsJSON {legal_holds: [{subject,
// reason, actor, since}]}, every subject under legal hold now.
func (h *handler) apiLegalHolds(c echo.Context) error {
	holds, err := h.loadHolds(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, legalHoldsJSON{LegalHolds: holds})
}

// apiSetLegalHold answers POST /api/v1/legal-holds.
//
// Body (JSON or form): subject (a pseudonym), reason (required, at most
// 1000 characters). Response 201: legalHoldJSON {subject, reason, actor,
// since}; 400 naming an invalid field.
func (h *handler) apiSetLegalHold(c echo.Context) error {
	hl, err := h.putLegalHold(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, hl)
}

// apiLiftLegalHold answers DELETE /api/v1/legal-holds/{subject}.
//
// Path parameter subject: a pseudonym. Response 204 (also when the
// subject was not held); 400 for an invalid subject.
func (h *handler) apiLiftLegalHold(c echo.Context) error {
	subject, err := url.PathUnescape(c.Param("subject"))
	if err != nil {
		return badParam("subject", "must be a pseudonym")
	}
	if err := h.removeLegalHold(c, subject); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
