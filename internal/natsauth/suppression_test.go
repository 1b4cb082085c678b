package natsauth_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// The suppression rules bucket is written by sessionmon's service user
// (the dashboard) only: an app's credentials can neither put a rule with
// a plain publish on the bucket's subject nor reach it through the
// JetStream API, so detect never reads a rule an app wrote.
func TestAppCannotWriteSuppressionRules(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nats")
	_, err := natsauth.Init(dir)
	require.NoError(t, err)
	s := runConfigured(t, dir)
	ctx := t.Context()

	svc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.ServiceUser)))
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	js, err := jetstream.New(svc)
	require.NoError(t, err)
	kv, err := natsconn.EnsureSuppressionBucket(ctx, js, 1)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "service1", []byte(`{}`))
	require.NoError(t, err, "the service user writes the bucket")

	perms := make(chan error, 16)
	app, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.AppUser)),
		nats.CustomInboxPrefix(natsauth.AppInboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perms <- err }))
	require.NoError(t, err)
	t.Cleanup(app.Close)

	// A plain publish on the bucket's subject, as a KV put is.
	subject := "$KV." + schemas.SuppressionBucket + ".forged01"
	require.NoError(t, app.Publish(subject, []byte(`{"id":"forged01","detector":"*","action":"silence"}`)))
	select {
	case err := <-perms:
		require.ErrorIs(t, err, nats.ErrPermissionViolation)
		require.Contains(t, err.Error(), subject)
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not refuse the app's publish on the bucket")
	}
	// Nor through the key-value API.
	appJS, err := jetstream.New(app)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = appJS.KeyValue(short, schemas.SuppressionBucket)
	require.Error(t, err, "no JetStream API for apps")

	_, err = kv.Get(ctx, "forged01")
	require.True(t, errors.Is(err, jetstream.ErrKeyNotFound), "the forged rule is not in the bucket: %v", err)
	keys, err := kv.Keys(ctx)
	require.NoError(t, err)
	require.Equal(t, "service1", strings.Join(keys, ","))
}
