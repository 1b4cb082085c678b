import ipaddress
import re
import unittest

from sessionmon import Pseudonymizer, address_prefix, network_prefix, parse_address

KEY = b"0123456789abcdef0123456789abcdef"
PSEUDONYM = re.compile(r"[A-Za-z0-9_:~-]{8,128}")


class PseudonymizerTest(unittest.TestCase):
    def setUp(self):
        self.p = Pseudonymizer("k1", KEY)

    def test_known_values_match_go(self):
        # The Go SDK's known values (sdk/pseudonym_test.go).
        p = self.p
        cases = [
            (p.subject("user-42"), "k1:waWtEkilTnvC3zp9CdLftw"),
            (p.session("user-42"), "k1:SCL1_LFQTnEETYZSehXtcg"),
            (p.device("user-42"), "k1:18kPup2OODLZ4-n0GshQaw"),
            (p.token_id("user-42"), "k1:aIKouUM8owvAH78qZX042g"),
            (p.ip_hash("203.0.113.7"), "k1:bqd0d8r0FbLzp536MIBrxQ"),
            (p.ip_hash("2001:db8::7"), "k1:4AjUtT5vwSjmHG7OQ9V-rg"),
        ]
        for got, want in cases:
            self.assertEqual(got, want)

    def test_bad_keys(self):
        for key_id, key in [("", KEY), ("Key2026rotation01", KEY), ("k:1", KEY), ("clé", KEY),
                            ("k1", KEY[:31]), ("k1", b""), ("k1\n", KEY)]:
            with self.subTest(key_id=key_id, n=len(key)):
                with self.assertRaises(ValueError):
                    Pseudonymizer(key_id, key)
        with self.assertRaises(TypeError):
            Pseudonymizer("k1", KEY.decode())
        self.assertEqual(Pseudonymizer("Key2026rotation0", KEY).key_id, "Key2026rotation0")

    def test_errors_never_show_the_key(self):
        with self.assertRaises(ValueError) as cm:
            Pseudonymizer("k1", KEY[:31])
        self.assertNotIn(KEY[:31].decode(), str(cm.exception))
        self.assertNotIn("0123", repr(self.p))

    def test_domain_separation_and_format(self):
        values = {self.p.subject("x"), self.p.session("x"), self.p.device("x"), self.p.token_id("x")}
        self.assertEqual(len(values), 4)
        for v in values:
            self.assertRegex(v, PSEUDONYM)
            self.assertTrue(v.startswith("k1:"))
            self.assertEqual(len(v), 3 + 22)
        other = Pseudonymizer("k1", bytes([7]) * 32)
        self.assertNotEqual(other.subject("x"), self.p.subject("x"))

    def test_empty_and_invalid_are_absent(self):
        p = self.p
        for got in [p.subject(""), p.session(""), p.device(""), p.token_id(""), p.ip_hash(""),
                    p.ip_hash("not an address"), p.ip_hash("203.0.113.7:80"), p.ip_hash(None), p.subject(None)]:
            self.assertEqual(got, "")

    def test_ip_hash_forms(self):
        p = self.p
        v4 = p.ip_hash("203.0.113.7")
        self.assertEqual(p.ip_hash("::ffff:203.0.113.7"), v4)
        self.assertEqual(p.ip_hash(ipaddress.ip_address("203.0.113.7")), v4)
        self.assertEqual(p.ip_hash(ipaddress.ip_address("::ffff:203.0.113.7")), v4)
        self.assertNotEqual(p.ip_hash("203.0.113.8"), v4)
        self.assertEqual(p.ip_hash("fe80::1%eth0"), p.ip_hash("fe80::1"))
        self.assertEqual(p.ip_hash(ipaddress.ip_address("fe80::1%eth0")), p.ip_hash("fe80::1"))
        self.assertEqual(p.ip_hash("2001:DB8::7"), p.ip_hash("2001:db8::7"))

    def test_parse_address_like_go(self):
        cases = {
            "203.0.113.7": "203.0.113.7",
            "::ffff:203.0.113.7": "203.0.113.7",
            "fe80::1%eth0": "fe80::1",
            "fe80::1%": None,
            "203.0.113.7%eth0": None,
            "203.0.113.07": None,
            "1.2.3": None,
            "[::1]": None,
            "::1:80": "::1:80",
            "example.com": None,
            "": None,
        }
        for s, want in cases.items():
            with self.subTest(s=s):
                got = parse_address(s)
                self.assertEqual(str(got) if got else None, want)

    def test_address_prefix(self):
        cases = {
            "203.0.113.7": "203.0.113.0/24",
            "2001:db8:1:2:3:4:5:6": "2001:db8:1::/48",
            "::ffff:203.0.113.7": "203.0.113.0/24",
            "fe80::1%eth0": "fe80::/48",
            "0:0:1::5": "0:0:1::/48",
            "bogus": "",
        }
        for s, want in cases.items():
            with self.subTest(s=s):
                self.assertEqual(address_prefix(s), want)

    def test_network_prefix(self):
        # The Go SDK's cases (sdk/event_test.go) and a few more.
        cases = {
            "203.0.113.7/32": "203.0.113.0/24",
            "203.0.113.0/24": "203.0.113.0/24",
            "203.0.113.7/16": "203.0.0.0/16",
            "2001:db8:1:2::7/128": "2001:db8:1::/48",
            "2001:db8:1:2::/64": "2001:db8:1::/48",
            "2001:db8::/32": "2001:db8::/32",
            "::ffff:203.0.113.7/128": "203.0.113.0/24",
            "::ffff:192.0.2.0/120": "192.0.2.0/24",
            "::ffff:192.0.2.0/80": "::/48",
            "2001:DB8:AB::/48": "2001:db8:ab::/48",
            "0.0.0.0/0": "0.0.0.0/0",
            "fe80::1%eth0/64": "",
            "203.0.113.0/024": "",
            "203.0.113.0/33": "",
            "203.0.113.0": "",
            "203.0.113.0/255.255.255.0": "",
            "": "",
        }
        for s, want in cases.items():
            with self.subTest(s=s):
                self.assertEqual(network_prefix(s), want)


if __name__ == "__main__":
    unittest.main()
