package detect

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

// The attack scenarios below are generated, with a fixed seed, as a real
// app sends its events through the SDK: an ip_prefix and an ip_hash, no
// location and no ASN. What GeoIP knows about their networks is in the
// scenario's geoip.json (CIDR → {"asn", "anonymous"}), written into test
// databases when the scenario runs, so the ASNs come from enrichment as in
// production. To rewrite the events (and then the goldens):
//
//	go test ./detect -run TestGenerateAttackScenarios -generate
//	go test ./detect -run 'TestScenarios$' -update
var generate = flag.Bool("generate", false, "rewrite the generated scenarios (see TestGenerateAttackScenarios)")

// scenarioNet is what a scenario's geoip.json says about one network.
type scenarioNet struct {
	ASN       uint32   `json:"asn"`
	Anonymous []string `json:"anonymous,omitempty"`
	// Where the City database places the network (none: not located).
	Country    string   `json:"country,omitempty"`
	City       string   `json:"city,omitempty"`
	Lat        *float64 `json:"lat,omitempty"`
	Lon        *float64 `json:"lon,omitempty"`
	AccuracyKM float64  `json:"accuracy_km,omitempty"`
}

// scenarioGeo returns the GeoIP databases of a scenario's geoip.json, if
// it has one, merged with nets (the facts stripped from located events).
func scenarioGeo(t *testing.T, dir string, nets map[string]geotest.Facts) (*geo.Resolver, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "geoip.json"))
	if os.IsNotExist(err) {
		if len(nets) == 0 {
			return nil, false
		}
		return scenarioResolver(t, nets), true
	}
	require.NoError(t, err)
	var file map[string]scenarioNet
	require.NoError(t, json.Unmarshal(b, &file))
	all := map[string]geotest.Facts{}
	for k, v := range nets {
		all[k] = v
	}
	for cidr, n := range file {
		f := all[cidr]
		f.ASN, f.ASOrg, f.Anonymous = n.ASN, fmt.Sprintf("AS%d test network", n.ASN), n.Anonymous
		if n.Lat != nil {
			f.Country, f.City, f.Lat, f.Lon, f.AccuracyKM = n.Country, n.City, n.Lat, n.Lon, n.AccuracyKM
		}
		all[cidr] = f
	}
	return scenarioResolver(t, all), true
}

// scenarioOptions are the engine options a scenario runs with: its GeoIP
// databases when it has a geoip.json.
func scenarioOptions(t *testing.T, dir string) []Option {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "geoip.json")); err != nil {
		return nil
	}
	r, _ := scenarioGeo(t, dir, nil)
	return []Option{WithGeo(r)}
}

// scenarioGen builds one scenario's events.
type scenarioGen struct {
	rnd    *rand.Rand
	prefix string // event ID prefix
	n      int
	events []genEvent
	nets   map[string]scenarioNet
}

// genEvent is a generated event in the field order the SDK writes.
type genEvent struct {
	ID            string         `json:"id"`
	SchemaVersion int            `json:"schema_version"`
	Type          schemas.Type   `json:"type"`
	Time          string         `json:"time"`
	App           string         `json:"app"`
	Subject       string         `json:"subject"`
	Reason        string         `json:"reason,omitempty"`
	Client        genClient      `json:"client"`
	Auth          map[string]any `json:"auth,omitempty"`
}

// genClient is what the SDK sends about a request: no location, no ASN.
type genClient struct {
	Device    string `json:"device"`
	IPPrefix  string `json:"ip_prefix"`
	IPHash    string `json:"ip_hash"`
	UserAgent string `json:"user_agent"`
}

func newScenarioGen(seed uint64, prefix string) *scenarioGen {
	return &scenarioGen{rnd: rand.New(rand.NewPCG(seed, 7)), prefix: prefix, nets: map[string]scenarioNet{}}
}

// pseudonym returns a fresh random pseudonym.
func (g *scenarioGen) pseudonym() string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte("k1:")
	for range 22 {
		b = append(b, alnum[g.rnd.IntN(len(alnum))])
	}
	return string(b)
}

// client is what the SDK sends about a request from prefix.
func (g *scenarioGen) client(prefix, device, ua string) genClient {
	return genClient{Device: device, IPPrefix: prefix, IPHash: g.pseudonym(), UserAgent: ua}
}

func (g *scenarioGen) add(typ schemas.Type, at time.Time, subject string, client genClient, reason string) {
	g.n++
	e := genEvent{
		ID: fmt.Sprintf("%s-%03d", g.prefix, g.n), SchemaVersion: 1, Type: typ,
		Time: at.UTC().Format("2006-01-02T15:04:05.000Z"), App: "shop", Subject: subject, Reason: reason, Client: client,
	}
	if typ == schemas.LoginSucceeded {
		e.Auth = map[string]any{"method": "password", "mfa": false, "last_auth_at": e.Time}
	}
	g.events = append(g.events, e)
}

// write sorts the events by time and writes events.ndjson and geoip.json.
func (g *scenarioGen) write(t *testing.T, name string) {
	t.Helper()
	slices.SortStableFunc(g.events, func(a, b genEvent) int { return strings.Compare(a.Time, b.Time) })
	dir := filepath.Join("testdata", name)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	var buf bytes.Buffer
	for _, e := range g.events {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		buf.Write(append(b, '\n'))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "events.ndjson"), buf.Bytes(), 0o644))
	b, err := json.MarshalIndent(g.nets, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "geoip.json"), append(b, '\n'), 0o644))
}

const (
	genFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	genChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	genTool    = "python-requests/2.32.3"
	// genHostingASN and genOfficeASN are private-use ASNs of the test
	// databases: a hosting provider and an office's ISP.
	genHostingASN = 64510
	genOfficeASN  = 64520
)

var genStart = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// TestGenerateAttackScenarios rewrites the generated scenarios (with
// -generate); without the flag it checks they are what the generator makes.
func TestGenerateAttackScenarios(t *testing.T) {
	for name, gen := range map[string]func() *scenarioGen{
		"brute_force_slow":                      genBruteForceSlow,
		"credential_stuffing_distributed":       genStuffingDistributed,
		"office_nat_typos_benign":               genOfficeTypos,
		"impossible_travel_vpn_learned_benign":  genVPNLearned,
		"impossible_travel_laptop_phone_benign": genLaptopPhone,
		"impossible_travel_thief_before_owner":  genThiefBeforeOwner,
	} {
		t.Run(name, func(t *testing.T) {
			g := gen()
			if *generate {
				g.write(t, name)
			}
			b, err := os.ReadFile(filepath.Join("testdata", name, "events.ndjson"))
			require.NoError(t, err)
			require.Equal(t, len(g.events), bytes.Count(b, []byte("\n")), "run with -generate")
		})
	}
}

// genBruteForceSlow: one account, one attempt every 3 to 10 minutes for
// about five hours from two networks of a hosting provider, then a
// successful login; the account's owner logs in once in between.
func genBruteForceSlow() *scenarioGen {
	g := newScenarioGen(1, "bfs")
	victim := g.pseudonym()
	srcs := []string{"100.80.10.0/24", "100.80.77.0/24"}
	for _, s := range srcs {
		g.nets[s] = scenarioNet{ASN: genHostingASN, Anonymous: []string{"hosting_provider"}}
	}
	g.nets["100.90.4.0/24"] = scenarioNet{ASN: 64530}
	owner := g.client("100.90.4.0/24", g.pseudonym(), genFirefox)
	g.add(schemas.LoginSucceeded, genStart.Add(-30*time.Minute), victim, owner, "")
	tool := []genClient{g.client(srcs[0], g.pseudonym(), genTool), g.client(srcs[1], g.pseudonym(), genTool)}
	at := genStart
	for i := range 48 {
		g.add(schemas.LoginFailed, at, victim, tool[i*2/48], "bad_password")
		at = at.Add(3*time.Minute + time.Duration(g.rnd.IntN(7*60))*time.Second)
	}
	g.add(schemas.LoginSucceeded, at, victim, tool[1], "")
	return g
}

// genStuffingDistributed: 320 accounts tried once each over two hours from
// 40 networks of one hosting ASN, 2 of them successfully; meanwhile a few
// customers of a consumer ISP mistype their password and then log in.
func genStuffingDistributed() *scenarioGen {
	g := newScenarioGen(2, "csd")
	var nets []string
	for i := range 40 {
		p := fmt.Sprintf("100.81.%d.0/24", 3*i+1)
		nets = append(nets, p)
		g.nets[p] = scenarioNet{ASN: genHostingASN, Anonymous: []string{"hosting_provider"}}
	}
	const accounts = 320
	for i := range accounts {
		at := genStart.Add(time.Duration(i) * 2 * time.Hour / accounts).Add(time.Duration(g.rnd.IntN(15000)) * time.Millisecond)
		c := g.client(nets[g.rnd.IntN(len(nets))], g.pseudonym(), genTool)
		switch {
		case i == 97 || i == 250:
			g.add(schemas.LoginSucceeded, at, g.pseudonym(), c, "")
		case g.rnd.IntN(3) == 0:
			g.add(schemas.LoginFailed, at, g.pseudonym(), c, "unknown_user")
		default:
			g.add(schemas.LoginFailed, at, g.pseudonym(), c, "bad_password")
		}
	}
	g.nets["100.90.8.0/24"] = scenarioNet{ASN: 64531}
	for i := range 8 {
		user, at := g.pseudonym(), genStart.Add(time.Duration(i)*13*time.Minute)
		c := g.client("100.90.8.0/24", g.pseudonym(), genFirefox)
		g.add(schemas.LoginFailed, at, user, c, "bad_password")
		g.add(schemas.LoginSucceeded, at.Add(time.Duration(20+g.rnd.IntN(60))*time.Second), user, c, "")
	}
	return g
}

// genOfficeTypos: 20 employees behind one office NAT each mistype their
// password once within ten minutes and log in within a minute and a half.
func genOfficeTypos() *scenarioGen {
	g := newScenarioGen(3, "ont")
	const office = "100.91.20.0/24"
	g.nets[office] = scenarioNet{ASN: genOfficeASN}
	for i := range 20 {
		user, at := g.pseudonym(), genStart.Add(time.Duration(i)*27*time.Second)
		c := g.client(office, g.pseudonym(), genChrome)
		reason := "bad_password"
		if i%7 == 3 {
			reason = "unknown_user" // a mistyped user name
		}
		g.add(schemas.LoginFailed, at, user, c, reason)
		g.add(schemas.LoginSucceeded, at.Add(time.Duration(8+g.rnd.IntN(80))*time.Second), user, c, "")
	}
	return g
}

// located registers where GeoIP places prefix.
func (g *scenarioGen) located(prefix string, asn uint32, country, city string, lat, lon, accKM float64, anonymous ...string) string {
	g.nets[prefix] = scenarioNet{ASN: asn, Anonymous: anonymous, Country: country, City: city, Lat: &lat, Lon: &lon, AccuracyKM: accKM}
	return prefix
}

// genVPNLearned: twelve colleagues sign in from home in the evening, on
// the company VPN (whose exit geolocates to New York) from 8:00 the next
// morning, at home over lunch without it, and on it again: the VPN exit
// is learned as a shared egress before anyone switches it off, so no one
// "travels".
func genVPNLearned() *scenarioGen {
	g := newScenarioGen(4, "vpn")
	vpn := g.located("100.91.1.0/24", 64550, "US", "New York", 40.7128, -74.006, 20)
	homes := []struct {
		city     string
		lat, lon float64
	}{{"Berlin", 52.52, 13.405}, {"Hamburg", 53.5511, 9.9937}, {"Munich", 48.1351, 11.582}}
	for i := range 12 {
		h := homes[i%len(homes)]
		home := g.located(fmt.Sprintf("100.92.%d.0/24", i+1), 64540, "DE", h.city, h.lat, h.lon, 20)
		user, laptop := g.pseudonym(), g.pseudonym()
		jitter := func(max int) time.Duration { return time.Duration(g.rnd.IntN(max)) * time.Minute }
		g.add(schemas.LoginSucceeded, genStart.Add(-14*time.Hour+jitter(120)), user, g.client(home, laptop, genFirefox), "")
		g.add(schemas.LoginSucceeded, genStart.Add(jitter(30)), user, g.client(vpn, laptop, genFirefox), "")
		g.add(schemas.LoginSucceeded, genStart.Add(4*time.Hour+jitter(20)), user, g.client(home, laptop, genFirefox), "")
		g.add(schemas.LoginSucceeded, genStart.Add(5*time.Hour+jitter(20)), user, g.client(vpn, laptop, genFirefox), "")
	}
	return g
}

// genLaptopPhone: five people use a laptop on home broadband and a phone
// on mobile data at the same time; the carrier's gateways geolocate to
// three cities, give or take 200 to 300 km.
func genLaptopPhone() *scenarioGen {
	g := newScenarioGen(5, "lap")
	gateways := []string{
		g.located("100.93.1.0/24", 64560, "DE", "Hamburg", 53.5511, 9.9937, 300),
		g.located("100.93.2.0/24", 64560, "DE", "Munich", 48.1351, 11.582, 250),
		g.located("100.93.3.0/24", 64560, "DE", "Frankfurt", 50.1109, 8.6821, 200),
	}
	for i := range 5 {
		home := g.located(fmt.Sprintf("100.94.%d.0/24", i+1), 64540, "DE", "Berlin", 52.52, 13.405, 20)
		user, laptop, phone := g.pseudonym(), g.pseudonym(), g.pseudonym()
		for k := range 12 {
			at := genStart.Add(time.Duration(k*10+i) * time.Minute)
			g.add(schemas.LoginSucceeded, at, user, g.client(home, laptop, genFirefox), "")
			g.add(schemas.LoginSucceeded, at.Add(2*time.Minute), user, g.client(gateways[(k+i)%len(gateways)], phone, genChrome), "")
		}
	}
	return g
}

// genThiefBeforeOwner: an account's owner signed in from Berlin yesterday;
// this morning a new device signs in from a hosting provider in Singapore,
// and a quarter of an hour later the owner's laptop in Berlin again. Only
// the owner's return shows the thief cannot be the owner.
func genThiefBeforeOwner() *scenarioGen {
	g := newScenarioGen(6, "tbo")
	home := g.located("100.95.1.0/24", 64540, "DE", "Berlin", 52.52, 13.405, 20)
	cloud := g.located("100.96.1.0/24", 64570, "SG", "Singapore", 1.3521, 103.8198, 20, "hosting_provider")
	user, laptop := g.pseudonym(), g.pseudonym()
	g.add(schemas.LoginSucceeded, genStart.Add(-24*time.Hour), user, g.client(home, laptop, genFirefox), "")
	g.add(schemas.LoginSucceeded, genStart, user, g.client(cloud, g.pseudonym(), genTool), "")
	g.add(schemas.LoginSucceeded, genStart.Add(15*time.Minute), user, g.client(home, laptop, genFirefox), "")
	return g
}
