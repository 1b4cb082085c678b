package schemas

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEventSubjectTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		subject string
		app     string
		token   string
		ok      bool
	}{
		{name: "published", subject: EventSubject("shop", "k1:abc"), app: "shop", token: "k1:abc", ok: true},
		{name: "partitioned", subject: "sessionmon.events.17.shop.k1:abc", app: "shop", token: "k1:abc", ok: true},
		{name: "partition zero", subject: "sessionmon.events.0.shop.k1:abc", app: "shop", token: "k1:abc", ok: true},
		{name: "numeric app published", subject: "sessionmon.events.7.k1:abc", app: "7", token: "k1:abc", ok: true},
		{name: "extra token is not a partition", subject: "sessionmon.events.shop.bank.k1:abc"},
		{name: "partition with a sign", subject: "sessionmon.events.+1.shop.k1:abc"},
		{name: "partition with leading zero", subject: "sessionmon.events.01.shop.k1:abc"},
		{name: "partition out of range", subject: "sessionmon.events.1024.shop.k1:abc"},
		{name: "too deep", subject: "sessionmon.events.1.shop.k1.abc"},
		{name: "too short", subject: "sessionmon.events.shop"},
		{name: "empty app", subject: "sessionmon.events..k1:abc"},
		{name: "other prefix", subject: "sessionmon.alerts.shop.k1:abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app, subject, ok := EventSubjectTokens(tt.subject)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.app, app)
			require.Equal(t, tt.token, subject)
		})
	}
}
