import unittest

from sessionmon import Pseudonymizer, RequestInspector, address_prefix

P = Pseudonymizer("k1", b"0123456789abcdef0123456789abcdef")


class RequestInspectorTest(unittest.TestCase):
    def setUp(self):
        self.ri = RequestInspector(P, ["10.0.0.0/8", "2001:db8:ffff::/48", "::ffff:192.168.0.0/112"])

    def test_bad_proxies(self):
        for bad in (["10.0.0.0"], ["10.0.0.0/8", "bogus"], ["fe80::/10%x"]):
            with self.assertRaises(ValueError):
                RequestInspector(P, bad)
        with self.assertRaises(TypeError):
            RequestInspector(P, "10.0.0.0/8")
        with self.assertRaises(TypeError):
            RequestInspector(None)

    def test_client_addr(self):
        # The Go SDK's cases (sdk/request_test.go).
        cases = [
            ("direct/ipv4", "203.0.113.7:51000", [], "203.0.113.7"),
            ("direct/ipv6", "[2001:db8:1:2::7]:443", [], "2001:db8:1:2::7"),
            ("direct/ipv4-mapped", "[::ffff:203.0.113.7]:443", [], "203.0.113.7"),
            ("direct/zone dropped", "[fe80::1%eth0]:443", [], "fe80::1"),
            ("direct/no port", "203.0.113.7", [], "203.0.113.7"),
            ("direct/unparsable", "@", [], ""),
            ("direct/empty", "", [], ""),
            ("xff/ignored from an untrusted peer", "203.0.113.7:1", ["198.51.100.1"], "203.0.113.7"),
            ("xff/from a trusted peer", "10.0.0.2:1", ["198.51.100.1"], "198.51.100.1"),
            ("xff/trusted peer without header", "10.0.0.2:1", [], "10.0.0.2"),
            ("xff/spoofed left part skipped", "10.0.0.2:1", ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),
            ("xff/trusted hops skipped", "10.0.0.2:1", ["1.2.3.4, 198.51.100.1, 10.1.1.1, 10.2.2.2"], "198.51.100.1"),
            ("xff/several headers in order", "10.0.0.2:1", ["1.2.3.4", "198.51.100.1, 10.1.1.1", "10.2.2.2"], "198.51.100.1"),
            ("xff/all hops trusted: leftmost", "10.0.0.2:1", ["10.9.9.9, 10.1.1.1"], "10.9.9.9"),
            ("xff/malformed hop: the proxy that wrote it", "10.0.0.2:1", ["198.51.100.1, unknown, 10.1.1.1"], "10.1.1.1"),
            ("xff/malformed last hop: the peer", "10.0.0.2:1", ["198.51.100.1, garbage"], "10.0.0.2"),
            ("xff/empty entries skipped", "10.0.0.2:1", [" 198.51.100.1 ,, "], "198.51.100.1"),
            ("xff/hop with port", "10.0.0.2:1", ["198.51.100.1:4711"], "198.51.100.1"),
            ("xff/ipv6 hop in brackets", "10.0.0.2:1", ["[2001:db8:1::9]"], "2001:db8:1::9"),
            ("xff/ipv6 hop with port", "10.0.0.2:1", ["[2001:db8:1::9]:80"], "2001:db8:1::9"),
            ("xff/ipv6 trusted proxy", "[2001:db8:ffff::1]:1", ["198.51.100.1, 2001:db8:ffff::2"], "198.51.100.1"),
            ("xff/ipv4 via mapped trusted prefix", "192.168.1.1:1", ["198.51.100.1"], "198.51.100.1"),
            ("xff/mapped peer matches ipv4 prefix", "[::ffff:10.0.0.2]:1", ["198.51.100.1"], "198.51.100.1"),
            ("xff/bytes values", "10.0.0.2:1", [b"198.51.100.1"], "198.51.100.1"),
        ]
        for name, remote, xff, want in cases:
            with self.subTest(name):
                got = self.ri.client_addr(remote, xff)
                self.assertEqual(str(got) if got is not None else "", want)

    def test_client_info_wsgi(self):
        environ = {
            "REMOTE_ADDR": "10.0.0.2",
            "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.1, 10.1.1.1",
            "HTTP_USER_AGENT": "Mozilla/5.0",
            "wsgi.version": (1, 0),
        }
        self.assertEqual(self.ri.client_info(environ), {
            "ip_prefix": "198.51.100.0/24", "ip_hash": P.ip_hash("198.51.100.1"), "user_agent": "Mozilla/5.0"})

    def test_client_info_asgi(self):
        scope = {"type": "http", "asgi": {"version": "3.0"}, "client": ("2001:db8:1:2:3:4:5:6", 443),
                 "headers": [(b"user-agent", b"bot\xff\xfe!"), (b"x-forwarded-for", b"198.51.100.1")]}
        self.assertEqual(self.ri.client_info(scope), {
            "ip_prefix": "2001:db8:1::/48", "ip_hash": P.ip_hash("2001:db8:1:2:3:4:5:6"), "user_agent": "bot\ufffd!"})
        self.assertEqual(self.ri.client_info({"type": "http", "headers": [], "client": None}), {})

    def test_client_info_address_and_headers(self):
        info = self.ri.client_info("10.0.0.2:1", {"X-Forwarded-For": ["1.2.3.4", "198.51.100.1"], "User-Agent": "ua"})
        self.assertEqual(info["ip_prefix"], "198.51.100.0/24")
        self.assertEqual(info["user_agent"], "ua")

    def test_user_agent_cut_and_made_valid(self):
        long = "é" * 600
        environ = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": long.encode("utf-8").decode("latin-1")}
        self.assertEqual(self.ri.client_info(environ)["user_agent"], "é" * 512)
        environ["HTTP_USER_AGENT"] = "bot\xff"
        self.assertEqual(self.ri.client_info(environ)["user_agent"], "bot\ufffd")

    def test_never_a_host_address(self):
        info = self.ri.client_info({"REMOTE_ADDR": "203.0.113.77"})
        self.assertEqual(info["ip_prefix"], address_prefix("203.0.113.0"))
        self.assertNotIn("203.0.113.77", repr(info))


if __name__ == "__main__":
    unittest.main()
