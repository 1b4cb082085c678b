package natsauth_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/schemas"
)

// A subject's familiar networks are triage information for sessionmon's
// own users: an app's credentials cannot ask detect for them (the request
// is refused by the server and no responder ever sees it), while the
// service user can.
func TestAppCannotRequestFamiliarNetworks(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nats")
	_, err := natsauth.Init(dir)
	require.NoError(t, err)
	s := runConfigured(t, dir)

	svc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.ServiceUser)))
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	asked := make(chan string, 4)
	_, err = svc.Subscribe(schemas.DetectFamiliarSubject, func(m *nats.Msg) {
		asked <- string(m.Data)
		_ = m.Respond([]byte(`{"familiar":{"networks":[]}}`))
	})
	require.NoError(t, err)
	require.NoError(t, svc.Flush())

	perms := make(chan error, 16)
	app, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.AppUser)),
		nats.CustomInboxPrefix(natsauth.AppInboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perms <- err }))
	require.NoError(t, err)
	t.Cleanup(app.Close)

	body := []byte(`{"app":"shop","subject":"k1:SubjectAAAA"}`)
	_, err = app.Request(schemas.DetectFamiliarSubject, body, time.Second)
	require.Error(t, err, "the app gets no answer")
	select {
	case err := <-perms:
		require.True(t, errors.Is(err, nats.ErrPermissionViolation), "%v", err)
		require.Contains(t, err.Error(), schemas.DetectFamiliarSubject)
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not refuse the app's request")
	}
	select {
	case got := <-asked:
		t.Fatalf("the responder saw the app's request %q", got)
	default:
	}

	// The service user (the dashboard) may ask.
	m, err := svc.Request(schemas.DetectFamiliarSubject, body, 5*time.Second)
	require.NoError(t, err)
	require.Contains(t, string(m.Data), "networks")
	require.Equal(t, string(body), <-asked)
}
