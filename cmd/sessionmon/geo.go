package main

import (
	"fmt"
	"log/slog"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/geo"
)

// geoOptions are the flags of every subcommand that enriches events: ingest,
// the detectors (live and offline), serve and the demo. One option per
// database for the whole binary.
var geoOptions = []string{"geo-city-db", "geo-asn-db", "geo-anonymous-db", "geo-default-accuracy-km"}

// openGeo opens the GeoIP databases of cfg and says in the log whether
// enrichment is on. With none configured it returns a disabled Resolver.
// The caller closes it.
func openGeo(cfg *config.Config, logger *slog.Logger) (*geo.Resolver, error) {
	r, err := geo.Open(geo.Config{
		CityPaths:         cfg.Geo.CityDBs,
		ASNPaths:          cfg.Geo.ASNDBs,
		AnonymousIPPath:   cfg.Geo.AnonymousIPDB,
		DefaultAccuracyKM: cfg.Geo.DefaultAccuracyKM,
	})
	if err != nil {
		return nil, fmt.Errorf("geoip databases: %w", err)
	}
	if r.Enabled() {
		logger.Info("geoip enrichment enabled", slog.Any("city_dbs", cfg.Geo.CityDBs), slog.Any("asn_dbs", cfg.Geo.ASNDBs),
			slog.String("anonymous_ip_db", cfg.Geo.AnonymousIPDB))
	} else {
		logger.Info("geoip enrichment disabled: no databases configured (--geo-city-db, --geo-asn-db, --geo-anonymous-db); " +
			"events carry only the location the app sent, which the SDK never does")
	}
	return r, nil
}
