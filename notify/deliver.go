package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// maxRetryAfter caps a receiver's Retry-After.
const maxRetryAfter = time.Hour

// userAgent identifies sessionmon's requests.
const userAgent = "sessionmon-webhook/1"

// target is one webhook ready to deliver: its client, signer, formatter
// and rate limiter. It is safe for concurrent use.
type target struct {
	cfg     Webhook
	client  *http.Client
	signer  *Signer
	format  formatter
	limiter *rate.Limiter // nil: unlimited
	now     func() time.Time
}

func newTarget(w Webhook, signer *Signer, f formatter) *target {
	t := &target{cfg: w, signer: signer, format: f, now: time.Now}
	if w.RateLimit > 0 {
		t.limiter = rate.NewLimiter(rate.Limit(w.RateLimit), w.Burst)
	}
	dialer := &net.Dialer{Timeout: w.Timeout, KeepAlive: 30 * time.Second}
	if !w.AllowPrivate {
		dialer.Control = dialControl
	}
	t.client = &http.Client{
		Transport: &http.Transport{
			// No proxy: the address check must see the receiver's address.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   w.Concurrency,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   w.Timeout,
			ResponseHeaderTimeout: w.Timeout,
		},
		// A redirect is not followed: it could lead anywhere, and a
		// receiver that moved needs its URL reconfigured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return t
}

// close releases idle connections.
func (t *target) close() { t.client.CloseIdleConnections() }

// dialControl refuses connections to addresses that are not globally
// reachable (the rules of forbiddenAddr), after name resolution, so a
// public name that resolves to 127.0.0.1, 10.x or a NAT64 address
// embedding one is refused as well.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	if why := forbiddenAddr(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is internal or reserved (%s)", ErrForbiddenAddress, ap.Addr(), why)
	}
	return nil
}

// attemptResult is the outcome of one attempt.
type attemptResult struct {
	status  int
	latency time.Duration
	err     error // nil or a *DeliveryError
}

// deliver makes one attempt to POST m, signed, with the webhook's timeout.
// The webhook-id is the alert id on every attempt; the timestamp is the
// attempt's, so that receivers' tolerance checks pass on late retries.
func (t *target) deliver(ctx context.Context, m *message) attemptResult {
	body, contentType, err := t.format.format(m)
	if err != nil {
		return attemptResult{err: &DeliveryError{Permanent: true, Err: err}}
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: &DeliveryError{Permanent: true, Err: fmt.Errorf("build request: %w", err)}}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", userAgent)
	if t.signer != nil { // nil: a Slack webhook without a secret
		t.signer.Sign(req.Header, m.alert.ID, t.now(), body)
	}

	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		lat := time.Since(start)
		if errors.Is(err, ErrForbiddenAddress) {
			return attemptResult{latency: lat, err: &DeliveryError{Permanent: true, Err: redactURLError(err)}}
		}
		return attemptResult{latency: lat, err: &DeliveryError{Err: redactURLError(err)}}
	}
	// Drain a little so the connection can be reused; the body itself is
	// never logged or stored.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	lat := time.Since(start)
	return attemptResult{status: resp.StatusCode, latency: lat, err: classify(resp, t.now())}
}

// classify maps a response to nil (2xx) or a *DeliveryError: 408, 429 and
// 5xx are temporary, every other status is permanent.
func classify(resp *http.Response, now time.Time) error {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return &DeliveryError{StatusCode: code, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now)}
	case code >= 300 && code < 400:
		return &DeliveryError{StatusCode: code, Permanent: true, Err: errors.New("redirects are not followed")}
	default:
		return &DeliveryError{StatusCode: code, Permanent: true}
	}
}

// retryAfter parses a Retry-After value, seconds or an HTTP date, capped
// at maxRetryAfter. Garbage counts as absent.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		d = time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// redactURLError drops the URL from a client error: its path may hold a
// token (Slack's incoming webhooks do).
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
