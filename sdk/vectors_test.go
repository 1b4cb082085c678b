package sdk_test

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"testing"

	"github.com/sessionmon/sessionmon/sdk"
)

// vectorsFile holds the known answers every SDK (Go, JavaScript, Python) is
// tested against; schemas/pseudonym.md describes the scheme they pin.
const vectorsFile = "../schemas/testdata/vectors.json"

type vectors struct {
	Pseudonyms []struct {
		KeyID    string `json:"key_id"`
		KeyHex   string `json:"key_hex"`
		Kind     string `json:"kind"`
		Input    string `json:"input"`
		Expected string `json:"expected"`
	} `json:"pseudonyms"`
	IP []struct {
		KeyID   string `json:"key_id"`
		KeyHex  string `json:"key_hex"`
		Address string `json:"address"`
		Prefix  string `json:"prefix"`
		Hash    string `json:"hash"`
	} `json:"ip"`
	Prefixes []struct {
		Input    string `json:"input"`
		Expected string `json:"expected"`
	} `json:"prefixes"`
	ClientAddresses []struct {
		RemoteAddr     string   `json:"remote_addr"`
		XForwardedFor  []string `json:"x_forwarded_for"`
		TrustedProxies []string `json:"trusted_proxies"`
		Client         string   `json:"client"`
	} `json:"client_addresses"`
	BadKeys []struct {
		KeyID  string `json:"key_id"`
		KeyHex string `json:"key_hex"`
		Why    string `json:"why"`
	} `json:"bad_keys"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	if len(v.Pseudonyms) == 0 || len(v.IP) == 0 || len(v.Prefixes) == 0 || len(v.ClientAddresses) == 0 || len(v.BadKeys) == 0 {
		t.Fatalf("%s: a section is empty", vectorsFile)
	}
	return v
}

func pseudonymizer(t *testing.T, keyID, keyHex string) *sdk.Pseudonymizer {
	t.Helper()
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewPseudonymizer(keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVectorsPseudonyms(t *testing.T) {
	v := loadVectors(t)
	for i, c := range v.Pseudonyms {
		p := pseudonymizer(t, c.KeyID, c.KeyHex)
		kinds := map[string]func(string) sdk.Pseudonym{"subject": p.Subject, "session": p.Session, "device": p.Device, "token": p.TokenID}
		f, ok := kinds[c.Kind]
		if !ok {
			t.Fatalf("pseudonyms[%d]: unknown kind %q", i, c.Kind)
		}
		if got := f(c.Input).String(); got != c.Expected {
			t.Errorf("pseudonyms[%d] (%s %s %q): got %q, want %q", i, c.KeyID, c.Kind, c.Input, got, c.Expected)
		}
	}
}

func TestVectorsAddresses(t *testing.T) {
	v := loadVectors(t)
	for i, c := range v.IP {
		p := pseudonymizer(t, c.KeyID, c.KeyHex)
		ri, err := sdk.NewRequestInspector(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		var hash, prefix string
		if addr, err := netip.ParseAddr(c.Address); err == nil {
			hash = p.IPHash(addr).String()
			ci := ri.ClientInfo(&http.Request{RemoteAddr: c.Address, Header: http.Header{}})
			if ci.IPPrefix.IsValid() {
				prefix = ci.IPPrefix.String()
			}
		}
		if hash != c.Hash || prefix != c.Prefix {
			t.Errorf("ip[%d] (%q): got prefix %q hash %q, want %q %q", i, c.Address, prefix, hash, c.Prefix, c.Hash)
		}
	}
}

func TestVectorsClientAddresses(t *testing.T) {
	v := loadVectors(t)
	p := pseudonymizer(t, "k1", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	for i, c := range v.ClientAddresses {
		var trusted []netip.Prefix
		for _, s := range c.TrustedProxies {
			trusted = append(trusted, netip.MustParsePrefix(s))
		}
		ri, err := sdk.NewRequestInspector(p, trusted)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		for _, x := range c.XForwardedFor {
			h.Add("X-Forwarded-For", x)
		}
		var got string
		if addr, ok := ri.ClientAddr(&http.Request{RemoteAddr: c.RemoteAddr, Header: h}); ok {
			got = addr.String()
		}
		if got != c.Client {
			t.Errorf("client_addresses[%d] (%q, %q, trusted %q): got %q, want %q", i, c.RemoteAddr, c.XForwardedFor, c.TrustedProxies, got, c.Client)
		}
	}
}

func TestVectorsBadKeys(t *testing.T) {
	v := loadVectors(t)
	for i, c := range v.BadKeys {
		key, err := hex.DecodeString(c.KeyHex)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sdk.NewPseudonymizer(c.KeyID, key); err == nil {
			t.Errorf("bad_keys[%d] (%s): accepted", i, c.Why)
		}
	}
}

// TestVectorsPrefixes checks an app-set prefix as the event carries it.
func TestVectorsPrefixes(t *testing.T) {
	v := loadVectors(t)
	p := pseudonymizer(t, "k1", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	for i, c := range v.Prefixes {
		var got string
		if pr, err := netip.ParsePrefix(c.Input); err == nil {
			e := sdk.Event{ID: "01JVECTORS0000000000000000", Type: sdk.LoginFailed, Subject: p.Subject("u"), Client: &sdk.ClientInfo{IPPrefix: pr}}
			b, err := e.MarshalJSONFor("shop")
			if err != nil {
				t.Fatalf("prefixes[%d]: %v", i, err)
			}
			var wire struct {
				Client struct {
					IPPrefix string `json:"ip_prefix"`
				} `json:"client"`
			}
			if err := json.Unmarshal(b, &wire); err != nil {
				t.Fatal(err)
			}
			got = wire.Client.IPPrefix
		}
		if got != c.Expected {
			t.Errorf("prefixes[%d] (%q): got %q, want %q", i, c.Input, got, c.Expected)
		}
	}
}
