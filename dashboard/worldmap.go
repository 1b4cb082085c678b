package dashboard

//go:generate go run ./internal/worldgen -out static

import (
	"encoding/json"
	"fmt"
	"math"
)

// The world map (static/world.svg) is equirectangular: longitude and
// latitude map linearly to x and y. Alert maps draw in a 360x180 view box
// (one unit a degree) with the map as the background image.
const (
	mapWidth  = 360
	mapHeight = 180
)

// mapPoint is a place of an alert on the map.
type mapPoint struct {
	Lat, Lon float64
	// X and Y are the place in the map's view box.
	X, Y  float64
	Label string
	Time  string
}

// travelMap is what the alert page draws for a location-based alert: two
// places joined by a line, with the distance and the implied speed.
type travelMap struct {
	From, To   mapPoint
	DistanceKM float64
	SpeedKMH   float64
	ElapsedS   float64
	// LabelAnchor places each label on the side away from the other point.
	FromAnchor, ToAnchor string
	FromLabelX, ToLabelX float64
}

// project maps a latitude and longitude to the map's view box.
func project(lat, lon float64) (x, y float64) {
	return lon + mapWidth/2, mapHeight/2 - lat
}

// place is a location in an alert's details (impossible travel's "from"
// and "to").
type place struct {
	Lat     *float64 `json:"lat"`
	Lon     *float64 `json:"lon"`
	City    string   `json:"city"`
	Country string   `json:"country"`
	Time    string   `json:"time"`
}

func (p place) point() (mapPoint, bool) {
	if p.Lat == nil || p.Lon == nil || math.Abs(*p.Lat) > 90 || math.Abs(*p.Lon) > 180 {
		return mapPoint{}, false
	}
	x, y := project(*p.Lat, *p.Lon)
	label := p.City
	switch {
	case label != "" && p.Country != "":
		label += ", " + p.Country
	case label == "":
		label = p.Country
	}
	if label == "" {
		label = fmt.Sprintf("%.2f, %.2f", *p.Lat, *p.Lon)
	}
	return mapPoint{Lat: *p.Lat, Lon: *p.Lon, X: x, Y: y, Label: label, Time: p.Time}, true
}

// travelMapOf reads the two places of an alert's details; nil when the
// alert has no such places.
func travelMapOf(details string) *travelMap {
	var d struct {
		From       *place  `json:"from"`
		To         *place  `json:"to"`
		DistanceKM float64 `json:"distance_km"`
		SpeedKMH   float64 `json:"speed_kmh"`
		ElapsedS   float64 `json:"elapsed_s"`
	}
	if json.Unmarshal([]byte(details), &d) != nil || d.From == nil || d.To == nil {
		return nil
	}
	from, ok1 := d.From.point()
	to, ok2 := d.To.point()
	if !ok1 || !ok2 {
		return nil
	}
	m := &travelMap{From: from, To: to, DistanceKM: d.DistanceKM, SpeedKMH: d.SpeedKMH, ElapsedS: d.ElapsedS,
		FromAnchor: "end", ToAnchor: "start"}
	m.FromLabelX, m.ToLabelX = from.X-2, to.X+2
	if from.X > to.X {
		m.FromAnchor, m.ToAnchor = "start", "end"
		m.FromLabelX, m.ToLabelX = from.X+2, to.X-2
	}
	return m
}
