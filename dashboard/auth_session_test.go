package dashboard

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSessionTimeouts(t *testing.T) {
	env := newAuthEnv(t)
	t.Run("idle", func(t *testing.T) {
		defer env.clock.set(0)
		b := env.browser(t)
		require.Equal(t, http.StatusSeeOther, b.login("bob", testPassword).Code)
		sid := b.sessionID()
		env.clock.advance(DefaultIdleTimeout - time.Second)
		require.Equal(t, http.StatusOK, b.do(http.MethodGet, "/reauth", nil).Code, "within the idle timeout")
		env.clock.advance(DefaultIdleTimeout)
		require.Equal(t, http.StatusSeeOther, b.do(http.MethodGet, "/reauth", nil).Code, "idle too long")
		_, err := env.s.h.auth.sessions.get(t.Context(), sid)
		require.ErrorIs(t, err, errNoSession, "an expired session is deleted")
	})
	t.Run("absolute", func(t *testing.T) {
		defer env.clock.set(0)
		b := env.browser(t)
		require.Equal(t, http.StatusSeeOther, b.login("bob", testPassword).Code)
		sid := b.sessionID()
		for elapsed := time.Duration(0); elapsed < DefaultAbsoluteTimeout-10*time.Minute; elapsed += 10 * time.Minute {
			env.clock.advance(10 * time.Minute)
			require.Equal(t, http.StatusOK, b.do(http.MethodGet, "/reauth", nil).Code, "after %s", elapsed)
		}
		env.clock.advance(10 * time.Minute)
		require.Equal(t, http.StatusSeeOther, b.do(http.MethodGet, "/reauth", nil).Code, "past the absolute timeout")
		_, err := env.s.h.auth.sessions.get(t.Context(), sid)
		require.ErrorIs(t, err, errNoSession)
	})
}
