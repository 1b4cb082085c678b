package sdkgo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

func TestConnectOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []sdk.Option
		wantIs  error
		wantMsg string
	}{
		{name: "app/missing", opts: nil, wantIs: sdk.ErrNoApp},
		{name: "app/invalid", opts: []sdk.Option{sdk.WithApp("my shop")}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithApp"},
		{name: "buffer/zero", opts: []sdk.Option{sdk.WithApp(testApp), sdk.WithAsyncBuffer(0)}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithAsyncBuffer"},
		{name: "window/negative", opts: []sdk.Option{sdk.WithApp(testApp), sdk.WithAsyncWindow(-1)}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithAsyncWindow"},
		{name: "block/negative", opts: []sdk.Option{sdk.WithApp(testApp), sdk.WithBlockOnFull(-time.Second)}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithBlockOnFull"},
		{name: "timeout/zero", opts: []sdk.Option{sdk.WithApp(testApp), sdk.WithPublishTimeout(0)}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithPublishTimeout"},
		{name: "retry/negative", opts: []sdk.Option{sdk.WithApp(testApp), sdk.WithRetry(-1, time.Second)}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithRetry"},
		{name: "tls/nil", opts: []sdk.Option{sdk.WithApp(testApp), sdk.WithTLS(nil)}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithTLS"},
		{name: "root cas/none", opts: []sdk.Option{sdk.WithApp(testApp), sdk.WithRootCAs()}, wantIs: sdk.ErrInvalidOption, wantMsg: "WithRootCAs"},
		{name: "several problems reported together", opts: []sdk.Option{sdk.WithAsyncBuffer(0), sdk.WithPublishTimeout(-1)}, wantIs: sdk.ErrNoApp, wantMsg: "WithPublishTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Port 1 refuses connections: an options error must come before dialing.
			c, err := sdk.Connect("nats://127.0.0.1:1", tt.opts...)
			require.ErrorIs(t, err, tt.wantIs)
			require.ErrorContains(t, err, tt.wantMsg)
			require.Nil(t, c)
		})
	}
}

func TestConnect(t *testing.T) {
	t.Parallel()
	e := withStream(t)
	p := newPseudonymizer(t)

	_, err := sdk.Connect("nats://127.0.0.1:1", sdk.WithApp(testApp))
	require.ErrorContains(t, err, "connect to nats")

	_, err = sdk.Connect(e.url, sdk.WithApp(testApp), sdk.WithRootCAs(t.TempDir()+"/missing.pem"))
	require.ErrorContains(t, err, "connect to nats")

	c, err := sdk.Connect(e.url, sdk.WithApp(testApp), sdk.WithUserPass("ignored", "by-test-server"))
	require.NoError(t, err)
	require.Equal(t, testApp, c.App())
	require.NoError(t, c.Publish(t.Context(), loginEvent(p, 1)))
	require.NoError(t, c.PublishAsync(t.Context(), loginEvent(p, 2)))
	require.NoError(t, c.Close(t.Context()))
	require.Equal(t, uint64(2), e.count(t))
	// The Client owned its connection, so Close closed it: the server sees
	// only the test's own connection.
	poll.CheckFor(t, 2*time.Second, 10*time.Millisecond, func() error {
		if n := e.numClients(); n != 1 {
			return fmt.Errorf("%d clients connected", n)
		}
		return nil
	})
}

func TestNewClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := sdk.NewClient(nil, sdk.WithApp(testApp))
	require.ErrorIs(t, err, sdk.ErrInvalidOption)
	_, err = sdk.NewClient(e.nc, sdk.WithApp(testApp), sdk.WithToken("secret"))
	require.ErrorIs(t, err, sdk.ErrInvalidOption)
	require.ErrorContains(t, err, "Connect only")

	c, err := sdk.NewClient(e.nc, sdk.WithApp(testApp))
	require.NoError(t, err)
	require.NoError(t, c.Close(t.Context()))
	require.False(t, e.nc.IsClosed(), "Close leaves a borrowed connection open")
}

func TestPublishLandsInStream(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name    string
		publish func(c *sdk.Client, ctx context.Context, ev *sdk.Event) error
	}{
		{name: "sync", publish: (*sdk.Client).Publish},
		{name: "async", publish: func(c *sdk.Client, ctx context.Context, ev *sdk.Event) error {
			if err := c.PublishAsync(ctx, ev); err != nil {
				return err
			}
			return c.Flush(ctx)
		}},
		{name: "json", publish: func(c *sdk.Client, ctx context.Context, ev *sdk.Event) error {
			data, err := ev.MarshalJSONFor(c.App())
			if err != nil {
				return err
			}
			return c.PublishJSON(ctx, data)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := withStream(t)
			c := e.client(t)
			at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			ev := &sdk.Event{
				ID:      "ev-" + tt.name,
				Type:    sdk.SessionStarted,
				Time:    at,
				Subject: p.Subject("user-1"),
				Session: p.Session("s-1"),
				Attrs:   map[string]string{"via": tt.name},
			}
			require.NoError(t, tt.publish(c, t.Context(), ev))

			// The stream stores it with a partition token.
			subject := schemas.EventSubjectPrefix + "*." + testApp + "." + p.Subject("user-1").String()
			msg, err := e.stream.GetLastMsgForSubject(t.Context(), subject)
			require.NoError(t, err)
			require.Equal(t, "ev-"+tt.name, msg.Header.Get(jetstream.MsgIDHeader))
			got, err := schemas.Decode(msg.Data, time.Now())
			require.NoError(t, err)
			want, err := ev.MarshalJSONFor(testApp)
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(msg.Data))
			require.Equal(t, sdk.SessionStarted, got.Type)
			require.Equal(t, at, got.Time.Time)
			require.Equal(t, uint64(1), e.count(t))
			require.Equal(t, sdk.Stats{Accepted: 1, Published: 1}, c.Stats())
		})
	}
}

func TestPublishSameIDStoredOnce(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name    string
		publish func(c *sdk.Client, ctx context.Context, ev *sdk.Event) error
	}{
		{name: "sync", publish: (*sdk.Client).Publish},
		{name: "async", publish: (*sdk.Client).PublishAsync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := withStream(t)
			c := e.client(t)
			ev := loginEvent(p, 1)
			ev.ID = sdk.NewEventID()
			require.NoError(t, tt.publish(c, t.Context(), ev))
			require.NoError(t, tt.publish(c, t.Context(), ev))
			// A different event with the same ID is a duplicate too: the ID is the key.
			other := loginEvent(p, 2)
			other.ID = ev.ID
			require.NoError(t, tt.publish(c, t.Context(), other))
			require.NoError(t, c.Flush(t.Context()))

			require.Equal(t, uint64(1), e.count(t))
			require.Equal(t, sdk.Stats{Accepted: 3, Published: 3, Duplicates: 2}, c.Stats())
		})
	}
}

func TestPublishRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name   string
		ev     *sdk.Event
		fields []string
	}{
		{name: "empty", ev: &sdk.Event{}, fields: []string{"type", "subject"}},
		{name: "subject missing", ev: &sdk.Event{Type: sdk.LoginFailed}, fields: []string{"subject"}},
		{name: "session required on session events", ev: &sdk.Event{Type: sdk.SessionEnded, Subject: p.Subject("u")}, fields: []string{"session"}},
		{name: "previous session only on session.started", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), PreviousSession: p.Session("s")}, fields: []string{"previous_session"}},
		{name: "token required on token events", ev: &sdk.Event{Type: sdk.TokenIssued, Subject: p.Subject("u")}, fields: []string{"token"}},
		{name: "claim values are not claim names", ev: &sdk.Event{Type: sdk.TokenUsed, Subject: p.Subject("u"), Token: &sdk.Token{ID: p.TokenID("t"), Claims: []string{"email=a@b.c d"}}}, fields: []string{"token.claims[0]"}},
		{name: "bad id and type", ev: &sdk.Event{ID: "has space", Type: "login", Subject: p.Subject("u")}, fields: []string{"id", "type"}},
		{name: "far future", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Time: time.Now().Add(48 * time.Hour)}, fields: []string{"time"}},
		{name: "client country", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Client: &sdk.ClientInfo{Country: "france"}}, fields: []string{"client.country"}},
		{name: "action name required", ev: &sdk.Event{Type: sdk.ActionPerformed, Subject: p.Subject("u")}, fields: []string{"action.name"}},
		{name: "attrs key", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Attrs: map[string]string{"bad key": "x"}}, fields: []string{"attrs.bad key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := withStream(t)
			c := e.client(t)
			for _, publish := range []func(context.Context, *sdk.Event) error{c.Publish, c.PublishAsync} {
				err := publish(t.Context(), tt.ev)
				require.ErrorIs(t, err, sdk.ErrInvalidEvent)
				require.Equal(t, tt.fields, fieldsOf(t, err))
			}
			require.NoError(t, c.Flush(t.Context()))
			require.Equal(t, uint64(0), e.count(t))
			require.Equal(t, sdk.Stats{}, c.Stats(), "a rejected event is not accepted")
		})
	}
}

// TestPublishValidatesBeforeNetwork publishes over a closed connection: a
// valid event fails on the network, an invalid one with its validation
// error, so validation comes first.
func TestPublishValidatesBeforeNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := newPseudonymizer(t)
	nc, err := nats.Connect(e.url)
	require.NoError(t, err)
	c, err := sdk.NewClient(nc, sdk.WithApp(testApp), sdk.WithRetry(0, time.Millisecond))
	require.NoError(t, err)
	nc.Close()

	err = c.Publish(t.Context(), loginEvent(p, 1))
	require.ErrorIs(t, err, nats.ErrConnectionClosed)

	invalid := &sdk.Event{Type: sdk.LoginSucceeded}
	err = c.Publish(t.Context(), invalid)
	require.Equal(t, []string{"subject"}, fieldsOf(t, err))
	err = c.PublishAsync(t.Context(), invalid)
	require.Equal(t, []string{"subject"}, fieldsOf(t, err))
	require.ErrorIs(t, c.Publish(t.Context(), nil), sdk.ErrNilEvent)
	require.ErrorIs(t, c.PublishAsync(t.Context(), nil), sdk.ErrNilEvent)
	require.Equal(t, sdk.Stats{Accepted: 1, Failed: 1}, c.Stats())
	require.NoError(t, c.Close(t.Context()))
}

func TestPublishJSON(t *testing.T) {
	t.Parallel()
	e := withStream(t)
	c := e.client(t)
	p := newPseudonymizer(t)
	valid, err := loginEvent(p, 1).MarshalJSONFor(testApp)
	require.NoError(t, err)
	otherApp, err := loginEvent(p, 1).MarshalJSONFor("bank")
	require.NoError(t, err)
	tests := []struct {
		name   string
		data   string
		fields []string // nil: published
	}{
		{name: "valid", data: string(valid)},
		{name: "other app", data: string(otherApp), fields: []string{"app"}},
		{name: "unknown field", data: `{"id":"x","email":"a@b.c"}`, fields: []string{"email"}},
		{name: "not json", data: `nope`, fields: []string{"(event)"}},
		{name: "missing fields", data: `{"id":"x","schema_version":1,"type":"login.succeeded","time":"2026-11-25T10:00:00.000Z","app":"shop"}`, fields: []string{"subject"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.PublishJSON(t.Context(), []byte(tt.data))
			if tt.fields == nil {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.fields, fieldsOf(t, err))
		})
	}
	require.Equal(t, uint64(1), e.count(t))
	require.Equal(t, sdk.Stats{Accepted: 1, Published: 1}, c.Stats())
}

func TestClosedClient(t *testing.T) {
	t.Parallel()
	e := withStream(t)
	c := e.client(t)
	p := newPseudonymizer(t)
	require.NoError(t, c.Close(t.Context()))
	tests := []struct {
		name string
		call func() error
	}{
		{name: "publish", call: func() error { return c.Publish(t.Context(), loginEvent(p, 1)) }},
		{name: "publish async", call: func() error { return c.PublishAsync(t.Context(), loginEvent(p, 1)) }},
		{name: "publish json", call: func() error { return c.PublishJSON(t.Context(), []byte(`{}`)) }},
		{name: "flush", call: func() error { return c.Flush(t.Context()) }},
		{name: "close", call: func() error { return c.Close(t.Context()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.call(), sdk.ErrClosed)
		})
	}
	require.Equal(t, uint64(0), e.count(t))
}

// TestRetryTransient publishes while the stream does not exist yet (no
// responders), then creates it: the retried event lands once.
func TestRetryTransient(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name  string
		async bool
	}{
		{name: "sync"},
		{name: "async", async: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			logs := &logRecorder{}
			c := e.client(t, sdk.WithRetry(50, 20*time.Millisecond), sdk.WithLogger(slog.New(logs)))
			errc := make(chan error, 1)
			go func() {
				if tt.async {
					errc <- c.PublishAsync(t.Context(), loginEvent(p, 1))
					return
				}
				errc <- c.Publish(t.Context(), loginEvent(p, 1))
			}()
			poll.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
				if logs.count("retry publish") == 0 {
					return errors.New("no retry yet")
				}
				return nil
			})
			e.createStream(t)
			require.NoError(t, <-errc)
			require.NoError(t, c.Flush(t.Context()))
			require.Equal(t, uint64(1), e.count(t))
			require.Equal(t, sdk.Stats{Accepted: 1, Published: 1}, c.Stats())
		})
	}
}

func TestSyncPublishGivesUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := newPseudonymizer(t)
	c := e.client(t, sdk.WithRetry(2, time.Millisecond))
	err := c.Publish(t.Context(), loginEvent(p, 1))
	require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = c.Publish(ctx, loginEvent(p, 2))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, sdk.Stats{Accepted: 2, Failed: 2}, c.Stats())
	require.NoError(t, c.Close(t.Context()), "sync failures are returned, not reported again")
}
