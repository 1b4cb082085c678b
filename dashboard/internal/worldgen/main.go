// Command worldgen writes the dashboard's world map, static/world.svg, from
// the world-atlas npm package (Natural Earth 1:110m land and countries,
// TopoJSON, ISC licence), pinned by version and integrity hash. It runs
// `npm pack` in a temporary directory, decodes the TopoJSON arcs itself and
// writes an equirectangular SVG: x = (lon+180)*10, y = (90-lat)*10 in a
// 3600x1800 view box, coordinates rounded to 0.1 degree. It also copies the
// package's licence next to the map.
//
//	go generate ./dashboard/   (runs: go run ./internal/worldgen -out static)
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	pkg = "world-atlas@2.0.2"
	// integrity is the npm registry's sha512 of the package tarball.
	integrity = "sha512-IXfV0qwlKXpckz1FhwXVwKRjiIhOnWttOskm5CtxMsjgE/MXAYRHWJqgXOpM8IkcPBoXnyTU5lFHcYa5ChG0LQ=="
	tarball   = "world-atlas-2.0.2.tgz"
)

func main() {
	out := flag.String("out", "static", "directory to write world.svg and LICENSE-world-atlas.txt to")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatalf("worldgen: %v", err)
	}
}

func run(out string) error {
	files, err := fetch("package/countries-110m.json", "package/LICENSE")
	if err != nil {
		return err
	}
	var topo topology
	if err := json.Unmarshal(files["package/countries-110m.json"], &topo); err != nil {
		return fmt.Errorf("decode countries-110m.json: %w", err)
	}
	svg, err := render(&topo)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "world.svg"), svg, 0o644); err != nil {
		return err
	}
	lic := append([]byte("The world map (world.svg) is generated from "+pkg+" (https://github.com/topojson/world-atlas),\n"+
		"made from Natural Earth data (public domain). Its licence:\n\n"), files["package/LICENSE"]...)
	return os.WriteFile(filepath.Join(out, "LICENSE-world-atlas.txt"), lic, 0o644)
}

// fetch downloads the pinned package with npm, checks its integrity and
// returns the named files of the tarball.
func fetch(names ...string) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "worldgen")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("npm", "pack", pkg, "--silent")
	cmd.Dir, cmd.Stderr = dir, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("npm pack %s: %w", pkg, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, tarball))
	if err != nil {
		return nil, err
	}
	sum := sha512.Sum512(b)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != integrity {
		return nil, fmt.Errorf("%s: integrity %s, want %s", tarball, got, integrity)
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", tarball, err)
		}
		for _, n := range names {
			if h.Name == n {
				if out[n], err = io.ReadAll(tr); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, n := range names {
		if out[n] == nil {
			return nil, fmt.Errorf("%s: no %s", tarball, n)
		}
	}
	return out, nil
}

// topology is the part of a TopoJSON file worldgen reads.
type topology struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]float64      `json:"arcs"`
	Objects map[string]geometry `json:"objects"`
}

type geometry struct {
	Type       string          `json:"type"`
	Geometries []geometry      `json:"geometries"`
	Arcs       json.RawMessage `json:"arcs"`
}

// point is a position in tenths of a degree on the map.
type point struct{ x, y int }

// decodeArcs turns the quantized, delta-encoded arcs into map points.
func decodeArcs(t *topology) [][]point {
	arcs := make([][]point, len(t.Arcs))
	for i, a := range t.Arcs {
		var x, y float64
		for _, d := range a {
			x, y = x+d[0], y+d[1]
			lon := x*t.Transform.Scale[0] + t.Transform.Translate[0]
			lat := y*t.Transform.Scale[1] + t.Transform.Translate[1]
			p := point{int(math.Round((lon + 180) * 10)), int(math.Round((90 - lat) * 10))}
			if n := len(arcs[i]); n > 0 && arcs[i][n-1] == p {
				continue
			}
			arcs[i] = append(arcs[i], p)
		}
	}
	return arcs
}

// ring stitches arc indexes into a ring; a negative index ~i is arc i
// reversed.
func ring(arcs [][]point, idx []int) []point {
	var out []point
	for _, i := range idx {
		var a []point
		if i >= 0 {
			a = arcs[i]
		} else {
			src := arcs[^i]
			a = make([]point, len(src))
			for j := range src {
				a[j] = src[len(src)-1-j]
			}
		}
		if len(out) > 0 && len(a) > 0 && out[len(out)-1] == a[0] {
			a = a[1:]
		}
		out = append(out, a...)
	}
	return out
}

// splitAntimeridian cuts a ring that crosses the map's edge at 180°
// (Fiji, Chukotka, Antarctica) into pieces that each stay on one side: the
// ring is rotated to start just after a jump, then cut at every jump, and
// each piece closes along the edge.
func splitAntimeridian(r []point) [][]point {
	if len(r) > 1 && r[0] == r[len(r)-1] {
		r = r[:len(r)-1]
	}
	jump := func(i int) bool { // between r[i] and r[i+1], cyclically
		d := r[(i+1)%len(r)].x - r[i].x
		return d > 1800 || d < -1800
	}
	start := -1
	for i := range r {
		if jump(i) {
			start = (i + 1) % len(r)
			break
		}
	}
	if start < 0 {
		return [][]point{r}
	}
	var out [][]point
	var cur []point
	for k := range r {
		i := (start + k) % len(r)
		cur = append(cur, r[i])
		if jump(i) {
			out = append(out, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// polygons returns the rings of every polygon of g.
func polygons(g geometry) ([][][]int, error) {
	switch g.Type {
	case "Polygon":
		var p [][]int
		if err := json.Unmarshal(g.Arcs, &p); err != nil {
			return nil, err
		}
		return [][][]int{p}, nil
	case "MultiPolygon":
		var mp [][][]int
		if err := json.Unmarshal(g.Arcs, &mp); err != nil {
			return nil, err
		}
		return mp, nil
	case "GeometryCollection":
		var out [][][]int
		for _, c := range g.Geometries {
			p, err := polygons(c)
			if err != nil {
				return nil, err
			}
			out = append(out, p...)
		}
		return out, nil
	case "":
		return nil, nil
	}
	return nil, fmt.Errorf("geometry type %q not supported", g.Type)
}

// pathData writes polylines as compact SVG path data with relative moves.
func pathData(lines [][]point, closed bool) string {
	var b strings.Builder
	for _, l := range lines {
		if len(l) < 2 {
			continue
		}
		b.WriteString("M" + strconv.Itoa(l[0].x) + " " + strconv.Itoa(l[0].y))
		prev := l[0]
		b.WriteString("l")
		for i, p := range l[1:] {
			dx, dy := p.x-prev.x, p.y-prev.y
			if i > 0 && dx >= 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(dx))
			if dy >= 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(dy))
			prev = p
		}
		if closed {
			b.WriteString("z")
		}
	}
	return b.String()
}

func render(t *topology) ([]byte, error) {
	arcs := decodeArcs(t)
	countries, ok := t.Objects["countries"]
	if !ok {
		return nil, errors.New("topology has no countries object")
	}
	polys, err := polygons(countries)
	if err != nil {
		return nil, err
	}
	var rings [][]point
	for _, p := range polys {
		for _, r := range p {
			rings = append(rings, splitAntimeridian(ring(arcs, r))...)
		}
	}
	var b bytes.Buffer
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 3600 1800" width="3600" height="1800">` + "\n")
	b.WriteString("<!-- Generated by dashboard/internal/worldgen from " + pkg + " (Natural Earth 1:110m); see LICENSE-world-atlas.txt. -->\n")
	b.WriteString(`<rect width="3600" height="1800" fill="#dfe9f5"/>` + "\n")
	b.WriteString(`<path fill="#f4f1ea" stroke="#9aa5b1" stroke-width="2" stroke-linejoin="round" d="`)
	b.WriteString(pathData(rings, true))
	b.WriteString(`"/>` + "\n</svg>\n")
	return b.Bytes(), nil
}
