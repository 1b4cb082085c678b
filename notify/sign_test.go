package notify

import (
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

// Known answer from the Standard Webhooks specification's test vectors.
const (
	kaSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	kaID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	kaTimestamp = 1614265330
	kaBody      = `{"test": 2432232314}`
	kaSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// otherSecret is a second valid secret (32 bytes).
const otherSecret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestSignKnownAnswer(t *testing.T) {
	t.Parallel()
	s, err := NewSigner(kaSecret)
	require.NoError(t, err)
	require.Equal(t, kaSignature, s.Signature(kaID, time.Unix(kaTimestamp, 0), []byte(kaBody)))

	h := http.Header{}
	s.Sign(h, kaID, time.Unix(kaTimestamp, 0), []byte(kaBody))
	require.Equal(t, kaID, h.Get("webhook-id"))
	require.Equal(t, "1614265330", h.Get("webhook-timestamp"))
	require.Equal(t, kaSignature, h.Get("webhook-signature"))
}

func TestSignVerifiesWithReferenceVerifier(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"abc","severity":"high"}`)
	now := time.Now()
	tests := []struct {
		name    string
		secrets []string
	}{
		{name: "one secret", secrets: []string{kaSecret}},
		{name: "rotation", secrets: []string{otherSecret, kaSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSigner(tt.secrets...)
			require.NoError(t, err)
			h := http.Header{}
			s.Sign(h, "alert-1", now, body)
			// Every receiver, on any of the secrets, accepts the request.
			for _, sec := range tt.secrets {
				v, err := standardwebhooks.NewWebhook(sec)
				require.NoError(t, err)
				require.NoError(t, v.Verify(body, h), "secret %d of %d", 1, len(tt.secrets))
			}
			v, err := standardwebhooks.NewWebhook("whsec_" + "c2Vzc2lvbm1vbi1vdGhlci1zZWNyZXQtMDEyMzQ1Njc=")
			require.NoError(t, err)
			require.Error(t, v.Verify(body, h), "another secret does not verify")
			v, err = standardwebhooks.NewWebhook(tt.secrets[0])
			require.NoError(t, err)
			require.Error(t, v.Verify([]byte(`{"id":"abd","severity":"high"}`), h), "a changed body does not verify")
		})
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{name: "known answer", secret: kaSecret, ok: true},
		{name: "64 bytes", secret: "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", ok: true},
		{name: "empty", secret: ""},
		{name: "blank", secret: "  "},
		{name: "prefix only", secret: "whsec_"},
		{name: "no prefix", secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{name: "not base64", secret: "whsec_not*base64!!"},
		{name: "too short", secret: "whsec_c2hvcnQ="},
		{name: "too long", secret: "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseSecret(tt.secret)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidSecret)
			require.NotContains(t, err.Error(), "MfKQ9r8", "errors never echo a secret")
		})
	}
	_, err := NewSigner()
	require.ErrorIs(t, err, ErrInvalidSecret)
}
