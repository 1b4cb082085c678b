package chstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    chstore.Version
		wantErr bool
	}{
		{name: "debian 18.16", in: "18.16.1", want: chstore.Version{Major: 18, Minor: 16, Patch: 1, Raw: "18.16.1"}},
		{name: "lts with build", in: "24.8.4.13", want: chstore.Version{Major: 24, Minor: 8, Patch: 4, Raw: "24.8.4.13"}},
		{name: "major.minor only", in: "25.3", want: chstore.Version{Major: 25, Minor: 3, Raw: "25.3"}},
		{name: "empty", in: "", wantErr: true},
		{name: "major only", in: "24", wantErr: true},
		{name: "not a number", in: "24.x.1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := chstore.ParseVersion(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestVersionAtLeast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		v            chstore.Version
		major, minor int
		want         bool
	}{
		{name: "same", v: chstore.Version{Major: 19, Minor: 6}, major: 19, minor: 6, want: true},
		{name: "older minor", v: chstore.Version{Major: 19, Minor: 5, Patch: 9}, major: 19, minor: 6, want: false},
		{name: "older major", v: chstore.Version{Major: 18, Minor: 16, Patch: 1}, major: 19, minor: 6, want: false},
		{name: "newer major, smaller minor", v: chstore.Version{Major: 24, Minor: 3}, major: 19, minor: 6, want: true},
		{name: "newer minor", v: chstore.Version{Major: 19, Minor: 17}, major: 19, minor: 6, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.v.AtLeast(tt.major, tt.minor))
			require.Equal(t, tt.v.AtLeast(19, 6), tt.v.SupportsTTL())
		})
	}
}

func TestServerVersion(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	v, err := s.ServerVersion(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, v.Raw)
	require.True(t, v.AtLeast(18, 16), "server %s is older than the oldest supported, 18.16", v.Raw)
	t.Logf("clickhouse server %s", v.Raw)
}
