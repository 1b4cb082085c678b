package sdkgo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/sdk"
)

// TestConnectWithAppCredentials publishes through sessionmon's embedded
// server with the credentials an app gets: app.creds, and per-app
// credentials, each with its inbox prefix.
func TestConnectWithAppCredentials(t *testing.T) {
	t.Parallel()
	s, stream, nd, shopCreds := securedServer(t)
	p := newPseudonymizer(t)
	for i, tc := range []struct{ name, creds, prefix string }{
		{name: "app.creds", creds: natsauth.CredsFile(nd, natsauth.AppUser), prefix: natsauth.AppInboxPrefix},
		{name: "per-app", creds: shopCreds, prefix: natsauth.AppInbox(testApp)},
	} {
		c, err := sdk.Connect(s.ClientURL(), sdk.WithApp(testApp), sdk.WithCredentialsFile(tc.creds), sdk.WithInboxPrefix(tc.prefix))
		require.NoError(t, err, tc.name)
		require.NoError(t, c.Publish(t.Context(), loginEvent(p, 2*i+1)), tc.name)
		require.NoError(t, c.PublishAsync(t.Context(), loginEvent(p, 2*i+2)), tc.name)
		require.NoError(t, c.Close(t.Context()), tc.name)
	}
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(4), info.State.Msgs)

	// Without the prefix the acknowledgement cannot arrive: the publish
	// fails (the server stores the event, the app cannot know it).
	c, err := sdk.Connect(s.ClientURL(), sdk.WithApp(testApp), sdk.WithCredentialsFile(shopCreds),
		sdk.WithPublishTimeout(500*time.Millisecond), sdk.WithRetry(0, time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.Error(t, c.Publish(ctx, loginEvent(p, 9)))
	_ = c.Close(ctx)

	// Per-app credentials publish for their own app only.
	c, err = sdk.Connect(s.ClientURL(), sdk.WithApp("other"), sdk.WithCredentialsFile(shopCreds),
		sdk.WithInboxPrefix(natsauth.AppInbox(testApp)), sdk.WithPublishTimeout(500*time.Millisecond), sdk.WithRetry(0, time.Millisecond))
	require.NoError(t, err)
	require.Error(t, c.Publish(ctx, loginEvent(p, 10)))
	_ = c.Close(ctx)
	info, err = stream.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(5), info.State.Msgs, "no event of another app was stored")
}

func TestWithInboxPrefixRejectsEmpty(t *testing.T) {
	t.Parallel()
	_, err := sdk.Connect("nats://127.0.0.1:1", sdk.WithApp(testApp), sdk.WithInboxPrefix(""))
	require.ErrorIs(t, err, sdk.ErrInvalidOption)
	require.ErrorContains(t, err, "WithInboxPrefix")
}
