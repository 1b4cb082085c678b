"""Known answers shared by every sessionmon SDK (schemas/testdata/vectors.json)."""

import ipaddress
import json
import os
import unittest

from sessionmon import Pseudonymizer, RequestInspector, address_prefix, network_prefix

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "schemas", "testdata", "vectors.json")


def load():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


class VectorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.v = load()

    def test_file_is_not_empty(self):
        for section in ("pseudonyms", "ip", "prefixes", "client_addresses", "bad_keys"):
            self.assertGreater(len(self.v[section]), 0, section)

    def test_pseudonyms(self):
        for i, c in enumerate(self.v["pseudonyms"]):
            with self.subTest(i=i, kind=c["kind"], input=c["input"][:40]):
                p = Pseudonymizer(c["key_id"], bytes.fromhex(c["key_hex"]))
                method = {"subject": p.subject, "session": p.session, "device": p.device, "token": p.token_id}[c["kind"]]
                self.assertEqual(method(c["input"]), c["expected"])

    def test_ip(self):
        for i, c in enumerate(self.v["ip"]):
            with self.subTest(i=i, address=c["address"]):
                p = Pseudonymizer(c["key_id"], bytes.fromhex(c["key_hex"]))
                self.assertEqual(p.ip_hash(c["address"]), c["hash"])
                self.assertEqual(address_prefix(c["address"]), c["prefix"])

    def test_ip_objects(self):
        # An ipaddress object hashes like its text.
        for c in self.v["ip"]:
            if not c["hash"] or "%" in c["address"]:
                continue
            with self.subTest(address=c["address"]):
                p = Pseudonymizer(c["key_id"], bytes.fromhex(c["key_hex"]))
                self.assertEqual(p.ip_hash(ipaddress.ip_address(c["address"])), c["hash"])

    def test_prefixes(self):
        for i, c in enumerate(self.v["prefixes"]):
            with self.subTest(i=i, input=c["input"]):
                self.assertEqual(network_prefix(c["input"]), c["expected"])

    def test_client_addresses(self):
        p = Pseudonymizer("k1", bytes(32))
        for i, c in enumerate(self.v["client_addresses"]):
            with self.subTest(i=i, remote=c["remote_addr"], xff=c["x_forwarded_for"]):
                ri = RequestInspector(p, c["trusted_proxies"])
                got = ri.client_addr(c["remote_addr"], c["x_forwarded_for"])
                self.assertEqual(str(got) if got is not None else "", c["client"])
                # The same request as a WSGI environ (headers joined by the server).
                environ = {"REMOTE_ADDR": c["remote_addr"]}
                if c["x_forwarded_for"]:
                    environ["HTTP_X_FORWARDED_FOR"] = ",".join(c["x_forwarded_for"])
                info = ri.client_info(environ)
                if c["client"]:
                    self.assertEqual(info["ip_hash"], p.ip_hash(c["client"]))
                    self.assertEqual(info["ip_prefix"], address_prefix(c["client"]))
                else:
                    self.assertNotIn("ip_hash", info)

    def test_bad_keys(self):
        for c in self.v["bad_keys"]:
            with self.subTest(why=c.get("why"), key_id=c["key_id"]):
                with self.assertRaises(ValueError):
                    Pseudonymizer(c["key_id"], bytes.fromhex(c["key_hex"]))


if __name__ == "__main__":
    unittest.main()
