import datetime as dt
import glob
import json
import os
import re
import time
import unittest
from unittest import mock

from sessionmon import EventError, Pseudonymizer, events, new_event_id, validate

P = Pseudonymizer("k1", bytes(range(32)))
TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "schemas", "testdata")
CROCKFORD_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class EventIDTest(unittest.TestCase):
    def test_form_and_order(self):
        before = time.time_ns() // 1_000_000
        ids = [new_event_id() for _ in range(1000)]
        after = time.time_ns() // 1_000_000
        self.assertEqual(len(set(ids)), 1000)
        alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        for i in ids:
            self.assertRegex(i, CROCKFORD_ID)
            n = 0
            for c in i:
                n = n * 32 + alphabet.index(c)
            ms = (n >> 2) >> 80  # 130 bits written, 128 used
            self.assertTrue(before <= ms <= after, "the id starts with its unix milliseconds")
        self.assertEqual(sorted([ids[0], new_event_id()])[0], ids[0])


class BuilderTest(unittest.TestCase):
    def common(self, ev, typ):
        self.assertEqual(ev["type"], typ)
        self.assertEqual(ev["schema_version"], 1)
        self.assertEqual(ev["app"], "shop")
        self.assertRegex(ev["id"], CROCKFORD_ID)
        self.assertRegex(ev["time"], TIME)
        validate(ev)

    def test_every_type(self):
        sub, ses, tok = P.subject("u1"), P.session("s1"), {"id": P.token_id("jti-1"), "kind": "access"}
        built = {
            "login.succeeded": events.login_succeeded("shop", sub, auth={"method": "password", "mfa": False}),
            "login.failed": events.login_failed("shop", sub, reason="bad_password"),
            "session.started": events.session_started("shop", sub, ses, previous_session=P.session("s0"),
                                                      cookie={"name": "sid", "secure": True, "http_only": True, "same_site": "lax"},
                                                      policy={"idle_timeout_s": 1800}),
            "session.activity": events.session_activity("shop", sub, ses),
            "session.ended": events.session_ended("shop", sub, ses, reason="logout"),
            "token.issued": events.token_issued("shop", sub, dict(tok, issued_at=dt.datetime(2026, 1, 2, 3, 4, 5, 678901, dt.timezone.utc), claims=("sub", "exp"))),
            "token.refreshed": events.token_refreshed("shop", sub, dict(tok, parent=P.token_id("jti-0"), family=P.token_id("jti-0"))),
            "token.used": events.token_used("shop", sub, tok),
            "token.revoked": events.token_revoked("shop", sub, tok, reason="logout"),
            "reauth.succeeded": events.reauth_succeeded("shop", sub, session=ses, auth={"method": "totp", "mfa": True}),
            "action.performed": events.action_performed("shop", sub, "change_email", True, session=ses),
            "key.retired": events.key_retired("shop", sub, "2026-11-signing"),
        }
        self.assertEqual(sorted(built), sorted(events.TYPES))
        for typ, ev in built.items():
            with self.subTest(typ):
                self.common(ev, typ)
                json.loads(events.encode(ev))
        self.assertEqual(built["token.issued"]["token"]["issued_at"], "2026-01-02T03:04:05.678Z")
        self.assertEqual(built["token.issued"]["token"]["claims"], ["sub", "exp"])
        self.assertEqual(built["action.performed"]["action"], {"name": "change_email", "sensitive": True})
        self.assertEqual(built["key.retired"]["key"], {"kid": "2026-11-signing"})
        self.assertEqual(built["session.started"]["previous_session"], P.session("s0"))

    def test_required_fields_named(self):
        sub = P.subject("u1")
        cases = [
            ("subject", lambda: events.login_succeeded("shop", "")),
            ("subject", lambda: events.login_succeeded("shop", "alice@example.com")),
            ("session", lambda: events.session_activity("shop", sub, "")),
            ("session", lambda: events.session_ended("shop", sub, "raw session id!")),
            ("token", lambda: events.token_used("shop", sub, {})),
            ("token.id", lambda: events.token_used("shop", sub, {"kind": "access"})),
            ("token.kind", lambda: events.token_used("shop", sub, {"id": P.token_id("t"), "kind": "jwt"})),
            ("token.claims[0]", lambda: events.token_issued("shop", sub, {"id": P.token_id("t"), "claims": ["a b"]})),
            ("action.name", lambda: events.action_performed("shop", sub, "")),
            ("key.kid", lambda: events.key_retired("shop", sub, "")),
            ("app", lambda: events.login_succeeded("my.app", sub)),
            ("previous_session", lambda: events.login_succeeded("shop", sub, previous_session=P.session("x"))),
            ("client.ip_prefix", lambda: events.login_succeeded("shop", sub, client={"ip_prefix": "203.0.113.7"})),
            ("cookie.same_site", lambda: events.session_started("shop", sub, P.session("s"), cookie={"same_site": "Lax"})),
            ("attrs", lambda: events.login_succeeded("shop", sub, attrs={str(i): "x" for i in range(17)})),
            ("attrs.plan", lambda: events.login_succeeded("shop", sub, attrs={"plan": "x" * 257})),
            ("reason", lambda: events.login_failed("shop", sub, reason="x" * 257)),
        ]
        for field, build in cases:
            with self.subTest(field):
                with self.assertRaises(EventError) as cm:
                    build()
                self.assertEqual(cm.exception.field, field)
                self.assertTrue(str(cm.exception).startswith(field + ":"))

    def test_size_limit(self):
        with mock.patch.object(events, "MAX_EVENT_BYTES", 300):
            with self.assertRaises(EventError) as cm:
                events.login_failed("shop", P.subject("u1"), reason="x" * 200)
        self.assertEqual(cm.exception.field, "event")

    def test_client_prefix_cut_and_personal_user_agent_dropped(self):
        sub = P.subject("u1")
        ev = events.login_succeeded("shop", sub, client={"ip_prefix": "2001:db8:1:2::7/128", "user_agent": "Mozilla/5.0 bob@example.com", "device": ""})
        self.assertEqual(ev["client"], {"ip_prefix": "2001:db8:1::/48"})
        ev = events.login_succeeded("shop", sub, client={"ip_prefix": "::ffff:192.0.2.0/120", "user_agent": "Mozilla/5.0"})
        self.assertEqual(ev["client"], {"ip_prefix": "192.0.2.0/24", "user_agent": "Mozilla/5.0"})

    def test_times(self):
        sub = P.subject("u1")
        naive = dt.datetime(2026, 12, 7, 13, 54, 32, 123456)
        self.assertEqual(events.login_succeeded("shop", sub, time=naive)["time"], "2026-12-07T13:54:32.123Z")
        cet = dt.timezone(dt.timedelta(hours=1))
        self.assertEqual(events.login_succeeded("shop", sub, time=dt.datetime(2026, 12, 7, 14, 0, tzinfo=cet))["time"], "2026-12-07T13:00:00.000Z")
        self.assertEqual(events.login_succeeded("shop", sub, id="my-id")["id"], "my-id")

    def test_valid_fixtures_pass(self):
        files = glob.glob(os.path.join(TESTDATA, "valid", "*.json"))
        self.assertGreater(len(files), 10)
        for f in files:
            with self.subTest(os.path.basename(f)):
                with open(f, encoding="utf-8") as fh:
                    validate(json.load(fh))

    def test_every_invalid_fixture_is_refused(self):
        for f in glob.glob(os.path.join(TESTDATA, "invalid", "*.json")):
            with open(f, encoding="utf-8") as fh:
                try:
                    ev = json.load(fh)
                except ValueError:
                    continue  # not JSON at all: the encoder never writes it
            with self.subTest(os.path.basename(f)):
                with self.assertRaises(EventError):
                    validate(ev)

    def test_invalid_fixtures_name_the_field(self):
        cases = {
            "missing_subject": "subject", "subject_email": "subject", "session_activity_without_session": "session",
            "token_used_without_token_id": "token.id", "token_revoked_without_token": "token",
            "action_performed_without_name": "action.name", "key_retired_without_kid": "key.kid",
            "app_bad_chars": "app", "type_unknown": "type", "time_without_ms": "time",
            "previous_session_on_login": "previous_session", "ip_prefix_ipv4_slash_25": "client.ip_prefix",
            "attrs_17_keys": "attrs",
        }
        for name, field in cases.items():
            with self.subTest(name):
                with open(os.path.join(TESTDATA, "invalid", name + ".json"), encoding="utf-8") as fh:
                    ev = json.load(fh)
                with self.assertRaises(EventError) as cm:
                    validate(ev)
                self.assertEqual(cm.exception.field, field)


if __name__ == "__main__":
    unittest.main()
