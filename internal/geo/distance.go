package geo

import "math"

// EarthRadiusKM is the mean earth radius (IUGG), in kilometres.
const EarthRadiusKM = 6371.0088

// MaxDistanceKM is half the earth's circumference: no two points are
// farther apart.
const MaxDistanceKM = math.Pi * EarthRadiusKM

// DistanceKM returns the great-circle distance between two points given in
// degrees, by the haversine formula (accurate to about 0.5% on the real,
// slightly flattened earth, far better than IP geolocation).
func DistanceKM(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	dφ, dλ := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	// Rounding can push h a hair above 1 for antipodal points.
	return 2 * EarthRadiusKM * math.Asin(math.Sqrt(min(h, 1)))
}
