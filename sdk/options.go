package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of the Client options.
const (
	// DefaultAsyncBuffer is how many events PublishAsync holds before they
	// are sent (WithAsyncBuffer).
	DefaultAsyncBuffer = 8192
	// DefaultAsyncWindow is how many async events may await their
	// acknowledgement at once (WithAsyncWindow).
	DefaultAsyncWindow = 512
	// DefaultPublishTimeout bounds one publish attempt: sending and waiting
	// for the stream's acknowledgement (WithPublishTimeout).
	DefaultPublishTimeout = 5 * time.Second
	// DefaultRetries is how many times a publish that failed for a
	// transient reason is tried again (WithRetry).
	DefaultRetries = 5
	// DefaultRetryWait is the first pause before a retry; it doubles with
	// each attempt up to maxRetryWait (WithRetry).
	DefaultRetryWait = 250 * time.Millisecond
	// DefaultBatchEvents bounds the events of one batched message
	// (WithBatching).
	DefaultBatchEvents = 256
	// DefaultBatchBytes bounds the body of one batched message
	// (WithBatching).
	DefaultBatchBytes = 512 << 10
	// DefaultBatchLinger is the longest the SDK waits for more events
	// before it sends what it holds (WithBatching): the most batching adds
	// to an async event's latency.
	DefaultBatchLinger = 5 * time.Millisecond
)

// maxBatchLinger bounds WithBatching's linger.
const maxBatchLinger = time.Second

// maxRetryWait caps the exponential pause between retries.
const maxRetryWait = 5 * time.Second

// Option configures a Client in Connect or NewClient.
type Option func(*options)

type options struct {
	app            string
	natsOpts       []nats.Option
	asyncBuffer    int
	asyncWindow    int
	blockOnFull    bool
	blockTimeout   time.Duration
	publishTimeout time.Duration
	retries        int
	retryWait      time.Duration
	logger         *slog.Logger
	onError        func(id string, err error)
	batch          bool
	batchEvents    int
	batchBytes     int
	batchLinger    time.Duration
	errs           []error
}

func defaultOptions() options {
	return options{
		asyncBuffer:    DefaultAsyncBuffer,
		asyncWindow:    DefaultAsyncWindow,
		publishTimeout: DefaultPublishTimeout,
		retries:        DefaultRetries,
		retryWait:      DefaultRetryWait,
		batch:          true,
		batchEvents:    DefaultBatchEvents,
		batchBytes:     DefaultBatchBytes,
		batchLinger:    DefaultBatchLinger,
	}
}

// WithApp names the app whose events the Client publishes (required): 1-64
// characters of A-Z a-z 0-9 _ -. It is written into every event and its
// NATS subject.
func WithApp(name string) Option {
	return func(o *options) { o.app = name }
}

// WithToken authenticates to NATS with a token. Connect only.
func WithToken(token string) Option {
	return natsOption("WithToken", nats.Token(token))
}

// WithUserPass authenticates to NATS with a user and password. Connect only.
func WithUserPass(user, password string) Option {
	return natsOption("WithUserPass", nats.UserInfo(user, password))
}

// WithCredentialsFile authenticates to NATS with a .creds file (user JWT
// and nkey seed): sessionmon's app.creds, or the file of `sessionmon creds
// app <app>`. Those may receive acknowledgements only on their own inbox:
// set WithInboxPrefix with them. Connect only.
func WithCredentialsFile(path string) Option {
	return natsOption("WithCredentialsFile", nats.UserCredentials(path))
}

// WithInboxPrefix sets the prefix of the reply subjects on which the
// stream's acknowledgements come back (nats.CustomInboxPrefix). Credentials
// that may subscribe only to their own inbox need it: "_APPS_INBOX" for
// sessionmon's shared app.creds, "_INBOX_<app>" for the credentials of
// `sessionmon creds app <app>`. Connect only.
func WithInboxPrefix(prefix string) Option {
	if prefix == "" {
		return invalidOption("WithInboxPrefix: empty prefix")
	}
	return natsOption("WithInboxPrefix", nats.CustomInboxPrefix(prefix))
}

// WithTLS connects to NATS over TLS with cfg (a client certificate, a
// custom root pool). Connect only.
func WithTLS(cfg *tls.Config) Option {
	if cfg == nil {
		return invalidOption("WithTLS: nil *tls.Config")
	}
	return natsOption("WithTLS", nats.Secure(cfg))
}

// WithRootCAs connects to NATS over TLS and trusts the CA certificates in
// the PEM files. Connect only.
func WithRootCAs(files ...string) Option {
	if len(files) == 0 {
		return invalidOption("WithRootCAs: no file given")
	}
	return natsOption("WithRootCAs", nats.RootCAs(files...))
}

// WithNATSOptions passes options to nats.Connect for what the SDK does not
// wrap (nkeys, a connection name, reconnect tuning). Connect only.
func WithNATSOptions(opts ...nats.Option) Option {
	return natsOption("WithNATSOptions", opts...)
}

// WithAsyncBuffer sets how many events PublishAsync holds before they are
// sent (default DefaultAsyncBuffer, at least 1). Events are held in memory
// until acknowledged: at most twice the buffer (or WithBatching's
// maxEvents, if larger; the second share is what the sender gathers into
// messages) plus the window (WithAsyncWindow) of messages, each of up to
// maxEvents events when batching.
func WithAsyncBuffer(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.errs = append(o.errs, fmt.Errorf("WithAsyncBuffer: size must be at least 1 (got %d)", n))
			return
		}
		o.asyncBuffer = n
	}
}

// WithAsyncWindow sets how many async messages may be sent and await their
// acknowledgement at once (default DefaultAsyncWindow, at least 1); a
// batched message (WithBatching) counts once.
func WithAsyncWindow(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.errs = append(o.errs, fmt.Errorf("WithAsyncWindow: size must be at least 1 (got %d)", n))
			return
		}
		o.asyncWindow = n
	}
}

// WithBlockOnFull makes PublishAsync wait for room when the buffer is full:
// up to timeout (0: until its context ends), then it returns ErrBufferFull.
// Without it, PublishAsync returns ErrBufferFull at once, so a request
// handler is never slowed by sessionmon.
func WithBlockOnFull(timeout time.Duration) Option {
	return func(o *options) {
		if timeout < 0 {
			o.errs = append(o.errs, fmt.Errorf("WithBlockOnFull: timeout must not be negative (got %s)", timeout))
			return
		}
		o.blockOnFull = true
		o.blockTimeout = timeout
	}
}

// WithPublishTimeout bounds one publish attempt, from sending to the
// stream's acknowledgement (default DefaultPublishTimeout).
func WithPublishTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.errs = append(o.errs, fmt.Errorf("WithPublishTimeout: timeout must be positive (got %s)", d))
			return
		}
		o.publishTimeout = d
	}
}

// WithRetry sets how many times a publish that failed for a transient
// reason (no stream responded, timeout, disconnection) is tried again, and
// the first pause, which doubles per attempt up to 5s (or wait, if
// longer). Defaults:
// DefaultRetries, DefaultRetryWait. Retries reuse the event ID, so the
// stream stores an event once even if an earlier attempt got through.
func WithRetry(retries int, wait time.Duration) Option {
	return func(o *options) {
		if retries < 0 || wait <= 0 {
			o.errs = append(o.errs, fmt.Errorf("WithRetry: need retries >= 0 and wait > 0 (got %d, %s)", retries, wait))
			return
		}
		o.retries = retries
		o.retryWait = wait
	}
}

// WithBatching sets how PublishAsync groups events into batched messages
// (on by default with DefaultBatchEvents, DefaultBatchBytes and
// DefaultBatchLinger). The SDK sends what is buffered, waiting up to
// linger after an event for more to join it, and puts the events whose
// subjects fall in one partition of the events stream into one message of
// at most maxEvents events (1 to MaxBatchEvents) and maxBytes bytes (up to
// MaxBatchBytes). An event therefore waits at most linger (0 to 1s; 0
// sends at once what is already buffered) before it is sent. Each event
// keeps its ID, is counted in Stats, passed to OnError and reported by
// Flush and Close one by one, as without batching.
//
// The SDK batches only once sessionmon answered its layout request on
// LayoutSubject saying it reads batched messages; until then, and whenever
// nobody answers, it sends one message per event. Publish and PublishJSON
// always send one message per event.
func WithBatching(maxEvents, maxBytes int, linger time.Duration) Option {
	return func(o *options) {
		var errs []error
		if maxEvents < 1 || maxEvents > MaxBatchEvents {
			errs = append(errs, fmt.Errorf("WithBatching: maxEvents must be from 1 to %d (got %d)", MaxBatchEvents, maxEvents))
		}
		if maxBytes < 1 || maxBytes > MaxBatchBytes {
			errs = append(errs, fmt.Errorf("WithBatching: maxBytes must be from 1 to %d (got %d)", MaxBatchBytes, maxBytes))
		}
		if linger < 0 || linger > maxBatchLinger {
			errs = append(errs, fmt.Errorf("WithBatching: linger must be from 0 to %s (got %s)", maxBatchLinger, linger))
		}
		if len(errs) > 0 {
			o.errs = append(o.errs, errs...)
			return
		}
		o.batch = true
		o.batchEvents, o.batchBytes, o.batchLinger = maxEvents, maxBytes, linger
	}
}

// WithoutBatching makes PublishAsync send one message per event, as
// Publish does, with no added latency.
func WithoutBatching() Option {
	return func(o *options) { o.batch = false }
}

// WithLogger sets the logger for connection events and retries (default:
// discard). The SDK never logs event contents.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithOnError sets a callback for each async event that failed for good,
// with its ID and cause (for example to log it or write it to a dead-letter
// file). It runs on one of the SDK's goroutines, or in Close: keep it short
// and do not call the Client from it, as publishing from there can
// deadlock. Failures are still counted and reported by Flush and Close.
func WithOnError(fn func(id string, err error)) Option {
	return func(o *options) { o.onError = fn }
}

func natsOption(name string, opts ...nats.Option) Option {
	return func(o *options) {
		o.natsOpts = append(o.natsOpts, opts...)
		if len(opts) == 0 {
			o.errs = append(o.errs, fmt.Errorf("%s: no option given", name))
		}
	}
}

func invalidOption(msg string) Option {
	return func(o *options) { o.errs = append(o.errs, errors.New(msg)) }
}

// build applies opts and checks them. forConn is false for NewClient,
// where connection options have nothing to apply to.
func build(opts []Option, forConn bool) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if !forConn && len(o.natsOpts) > 0 {
		o.errs = append(o.errs, errors.New("connection options (WithToken, WithTLS, ...) apply to Connect only, not to NewClient"))
	}
	var errs []error
	if o.app == "" {
		errs = append(errs, ErrNoApp)
	} else if !validApp(o.app) {
		errs = append(errs, fmt.Errorf("%w: WithApp: %q must be 1-64 characters of A-Z a-z 0-9 _ -", ErrInvalidOption, truncateID(o.app)))
	}
	for _, err := range o.errs {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidOption, err))
	}
	if o.logger == nil {
		o.logger = slog.New(discardHandler{})
	}
	o.logger = o.logger.With("component", "sessionmon_sdk", "app", o.app)
	return o, errors.Join(errs...)
}

func validApp(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// discardHandler is a slog.Handler that drops every record.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
