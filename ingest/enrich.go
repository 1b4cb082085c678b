package ingest

import (
	"net/netip"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// enrichGeo fills the row's location from the GeoIP databases, using the
// network address of the event's ip_prefix. App-supplied country, city or
// ASN win over the database's.
func (s *Service) enrichGeo(row *chstore.EventRow, c *schemas.Client) {
	prefix, err := netip.ParsePrefix(c.IPPrefix)
	if err != nil {
		return
	}
	loc, ok := s.geo.Lookup(prefix.Masked())
	if !ok {
		return
	}
	if row.ClientCountry == "" {
		row.ClientCountry = loc.Country
	}
	if row.ClientCity == "" {
		row.ClientCity = loc.City
	}
	if row.ClientASN == 0 {
		row.ClientASN = loc.ASN
	}
	if loc.HasCoordinates {
		row.HasGeo = true
		row.ClientLat, row.ClientLon = loc.Lat, loc.Lon
		row.ClientAccuracyKM = float32(loc.AccuracyKM)
		row.GeoSource = chstore.GeoSourceGeoIP
	}
}
