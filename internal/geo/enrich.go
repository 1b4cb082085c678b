package geo

import (
	"github.com/sessionmon/sessionmon/schemas"
)

// Anonymity returns the location's anonymous-network classes.
func (l Location) Anonymity() schemas.Anonymity {
	var a schemas.Anonymity
	set := func(on bool, class schemas.Anonymity) {
		if on {
			a |= class
		}
	}
	set(l.IsAnonymousVPN, schemas.AnonymousVPN)
	set(l.IsHostingProvider, schemas.AnonymousHosting)
	set(l.IsTorExitNode, schemas.AnonymousTorExit)
	set(l.IsPublicProxy, schemas.AnonymousPublicProxy)
	set(l.IsResidentialProxy, schemas.AnonymousResidentialProxy)
	if a == 0 && l.IsAnonymous {
		a = schemas.AnonymousOther
	}
	return a
}

// Enrich completes c from the databases, looking up the network address of
// c.IPPrefix. It is the one enrichment of sessionmon: ingest calls it before
// storing an event and the detectors before judging one, live and offline,
// so that all of them see the same values. A nil or disabled Resolver adds
// nothing but GeoSource.
//
// Precedence, field by field:
//   - Coordinates (lat, lon, accuracy_km): when the app sent lat and lon,
//     the location is the app's and the databases add none of it (nor
//     country or city): a location mixed from two sources could put a city
//     in the wrong country. Otherwise the databases' coordinates and radius.
//   - Country and city, without app coordinates: the app's when it sent
//     either (an edge proxy's country header, say), else the databases';
//     the pair is never mixed.
//   - ASN: the app's when it sent one, else the databases'. The AS
//     organisation comes from the databases when their ASN is the one used.
//   - Anonymous-network classes: the databases' only (apps cannot send
//     them).
//
// GeoSource names where the coordinates came from, or the country and city
// when there are none: GeoSourceApp, GeoSourceGeoIP or GeoSourceNone. Enrich is
// idempotent: a client already enriched (GeoSource set) is left alone.
func (r *Resolver) Enrich(c *schemas.Client) {
	if c == nil || c.GeoSource != schemas.GeoSourceNone {
		return
	}
	appCoords := c.HasGeo()
	if appCoords || c.Country != "" || c.City != "" {
		c.GeoSource = schemas.GeoSourceApp
	}
	if c.IPPrefix == "" || !r.Enabled() {
		return
	}
	cached := r.lookupText(c.IPPrefix)
	if cached == nil || !cached.found {
		return
	}
	loc := &cached.loc
	if !appCoords {
		if loc.HasCoordinates {
			// Shared by every client of the network: read-only, as
			// every lat/lon of a decoded event is.
			c.Lat, c.Lon, c.AccuracyKM = &cached.coords[0], &cached.coords[1], loc.AccuracyKM
			c.GeoSource = schemas.GeoSourceGeoIP
		}
		if c.Country == "" && c.City == "" && (loc.Country != "" || loc.City != "") {
			c.Country, c.City = loc.Country, loc.City
			if !loc.HasCoordinates {
				c.GeoSource = schemas.GeoSourceGeoIP
			}
		}
	}
	if c.ASN == 0 {
		c.ASN = loc.ASN
	}
	if c.ASN == loc.ASN {
		c.ASOrg = loc.ASOrg
	}
	c.Anonymity = loc.Anonymity()
}
