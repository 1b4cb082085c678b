package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestNetworksClassify(t *testing.T) {
	t.Parallel()
	nets := newNetworks([]Network{
		{Prefix: netip.MustParsePrefix("198.51.100.0/22"), Kind: NetworkCorporate, Note: "office"},
		{ASN: 14593, Kind: NetworkSatellite, Note: "Starlink", Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Prefix: netip.MustParsePrefix("2001:db8:100::/40"), Kind: NetworkRelay},
	})
	before := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		client *schemas.Client
		at     time.Time
		want   NetworkKind
	}{
		{name: "classify/prefix inside a listed network", client: &schemas.Client{IPPrefix: "198.51.102.0/24"}, at: before, want: NetworkCorporate},
		{name: "classify/prefix outside", client: &schemas.Client{IPPrefix: "198.51.104.0/24"}, at: before},
		{name: "classify/IPv6 prefix inside", client: &schemas.Client{IPPrefix: "2001:db8:1ff::/48"}, at: before, want: NetworkRelay},
		{name: "classify/ASN", client: &schemas.Client{ASN: 14593}, at: before, want: NetworkSatellite},
		{name: "classify/ASN after expiry", client: &schemas.Client{ASN: 14593}, at: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "classify/no client block", at: before},
		{name: "classify/nothing to match", client: &schemas.Client{Country: "DE"}, at: before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, ok := nets.classify(tc.client, tc.at)
			require.Equal(t, tc.want != "", ok)
			require.Equal(t, tc.want, m.kind)
		})
	}
	var none *Networks
	_, ok := none.classify(&schemas.Client{ASN: 14593}, before)
	require.False(t, ok, "a nil classifier knows no networks")
}
