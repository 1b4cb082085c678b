package dashboard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	t.Parallel()
	hash, err := HashPassword("a long enough passphrase")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=65536,t=3,p=2$"), hash)
	require.NotContains(t, hash, "passphrase")

	ok, err := VerifyPassword(hash, "a long enough passphrase")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = VerifyPassword(hash, "a long enough passphrasE")
	require.NoError(t, err)
	require.False(t, ok)

	again, err := HashPassword("a long enough passphrase")
	require.NoError(t, err)
	require.NotEqual(t, hash, again, "every hash has its own salt")
}

func TestVerifyTooLongPasswordFails(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxPasswordBytes)
	hash := hashPasswordWith(long, 8, 1, 1)
	p, err := parsePasswordHash(hash)
	require.NoError(t, err)
	require.True(t, p.verify(long))
	require.False(t, p.verify(long+"y"), "a password beyond the limit never matches, even when its prefix does")
	_, err = HashPassword(long + "y")
	require.ErrorContains(t, err, "password")
}

func TestParsePasswordHashErrors(t *testing.T) {
	t.Parallel()
	good := hashPasswordWith("secret password", 8, 1, 1)
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct{ name, hash, want string }{
		{name: "empty", hash: "", want: "want $argon2id$"},
		{name: "bcrypt", hash: "$2a$10$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01", want: "want $argon2id$"},
		{name: "argon2i", hash: with(1, "argon2i"), want: "algorithm must be argon2id"},
		{name: "version", hash: with(2, "v=16"), want: "version must be v=19"},
		{name: "unknown parameter", hash: with(3, "m=8,t=1,p=1,x=2"), want: `unknown parameter "x"`},
		{name: "memory too big", hash: with(3, "m=99999999,t=1,p=1"), want: "m must be"},
		{name: "no lanes", hash: with(3, "m=8,t=1,p=0"), want: "p must be"},
		{name: "passes", hash: with(3, "m=8,t=0,p=1"), want: "t must be"},
		{name: "salt", hash: with(4, "!!"), want: "salt must be"},
		{name: "hash", hash: with(5, "AAAA"), want: "hash must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePasswordHash(tt.hash)
			require.ErrorIs(t, err, ErrPasswordHash)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := parsePasswordHash(good)
	require.NoError(t, err)
}
