"""End to end against a real sessionmon intake.

Runs only with SESSIONMON_INTAKE_URL and SESSIONMON_INTAKE_TOKEN set (and
SESSIONMON_APP, the token's app). A tiny WSGI app, wrapped in the
middleware, is driven through a login, a request and a logout over real
HTTP; the ids of the events the intake accepted are written one per line
to SESSIONMON_EVENTS_OUT when it is set.
"""

import json
import os
import secrets
import threading
import unittest
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

from sessionmon import Client, Monitor, Pseudonymizer, RequestInspector, WSGIMiddleware, cookie, events

URL = os.environ.get("SESSIONMON_INTAKE_URL", "")
TOKEN = os.environ.get("SESSIONMON_INTAKE_TOKEN", "")
APP = os.environ.get("SESSIONMON_APP", "")
EVENTS_OUT = os.environ.get("SESSIONMON_EVENTS_OUT", "")

SESSION_COOKIE = {"name": "sid", "secure": False, "http_only": True, "same_site": "lax"}


class RecordingClient(Client):
    """A Client that remembers the events it queued."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.sent = []

    def send(self, event):
        ok = super().send(event)
        if ok:
            self.sent.append(event)
        return ok


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def shop(monitor, sessions):
    """A WSGI app with a session cookie set WITHOUT Secure."""

    def app(environ, start_response):
        sid = cookie("sid")(environ)
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        headers = [("Content-Type", "text/plain")]
        if method == "POST" and path == "/login":
            user_id = "user-" + secrets.token_hex(4)
            new_sid = secrets.token_urlsafe(24)
            sessions[new_sid] = user_id
            monitor.login(environ, user_id, session=new_sid, previous_session=sid, cookie=SESSION_COOKIE,
                          policy={"idle_timeout_s": 1800, "absolute_timeout_s": 43200},
                          auth={"method": "password", "mfa": False})
            headers.append(("Set-Cookie", "sid=%s; Path=/; HttpOnly; SameSite=Lax" % new_sid))
        elif method == "POST" and path == "/logout" and sid in sessions:
            monitor.logout(environ, sessions.pop(sid), sid)
            headers.append(("Set-Cookie", "sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"))
        elif sid in sessions:
            environ["sessionmon.subject"] = sessions[sid]
            environ["sessionmon.session"] = sid
        elif sid is None:
            headers.append(("Set-Cookie", "sid=%s; Path=/; HttpOnly; SameSite=Lax" % secrets.token_urlsafe(24)))
        start_response("200 OK", headers)
        return [b"ok"]

    return app


def post_raw(body, content_type="application/x-ndjson", token=None):
    req = urllib.request.Request(URL.rstrip("/") + "/v1/events", data=body, method="POST", headers={
        "Authorization": "Bearer " + (token or TOKEN), "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


def ndjson(*evs):
    return b"".join((e if isinstance(e, bytes) else events.encode(e)) + b"\n" for e in evs)


class IntakeTest(unittest.TestCase):
    accepted_ids = []

    @classmethod
    def setUpClass(cls):
        if not URL or not TOKEN:
            raise unittest.SkipTest("set SESSIONMON_INTAKE_URL and SESSIONMON_INTAKE_TOKEN to run against a real intake")
        if not APP:
            raise AssertionError("SESSIONMON_APP must name the intake token's app")
        cls.p = Pseudonymizer("e2e", secrets.token_bytes(32))

    @classmethod
    def tearDownClass(cls):
        if EVENTS_OUT:
            with open(EVENTS_OUT, "w", encoding="ascii") as f:
                f.writelines(i + "\n" for i in cls.accepted_ids)

    def good_event(self):
        return events.login_failed(APP, self.p.subject("user-" + secrets.token_hex(4)), reason="bad_password")

    def test_session_through_middleware(self):
        errors = []
        client = RecordingClient(URL, TOKEN, APP, on_error=errors.append)
        self.addCleanup(client.close, 5)
        monitor = Monitor(client, self.p, RequestInspector(self.p, ["127.0.0.1/32"]))
        sessions = {}
        server = make_server("127.0.0.1", 0, WSGIMiddleware(shop(monitor, sessions), monitor), handler_class=QuietHandler)
        self.addCleanup(server.server_close)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        base = "http://127.0.0.1:%d" % server.server_port
        jar = {}

        def request(method, path):
            req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None, headers={
                "X-Forwarded-For": "198.51.100.23",
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) sessionmon-e2e",
                "Cookie": "; ".join("%s=%s" % kv for kv in jar.items()),
            })
            with urllib.request.urlopen(req, timeout=10) as resp:
                self.assertEqual(resp.status, 200)
                for header in resp.headers.get_all("Set-Cookie") or []:
                    self.assertNotIn("Secure", header)
                    name, _, rest = header.partition("=")
                    value = rest.split(";", 1)[0]
                    if value:
                        jar[name] = value
                    else:
                        jar.pop(name, None)

        request("GET", "/")  # a pre-login session cookie
        request("POST", "/login")
        request("GET", "/account")  # session.activity
        request("GET", "/account")  # throttled
        request("POST", "/logout")
        summary = client.close(60)

        types = [ev["type"] for ev in client.sent]
        self.assertEqual(types, ["login.succeeded", "session.started", "session.activity", "session.ended"])
        started = client.sent[1]
        self.assertEqual(started["cookie"], SESSION_COOKIE)
        self.assertTrue(started["previous_session"])
        self.assertEqual(started["client"]["ip_prefix"], "198.51.100.0/24")
        self.assertEqual(errors, [])
        self.assertEqual((summary.accepted, summary.duplicates, summary.rejected, summary.failed, summary.pending),
                         (4, 0, 0, 0, 0))
        type(self).accepted_ids.extend(ev["id"] for ev in client.sent)

    def test_raw_email_subject_rejected_good_event_kept(self):
        bad = dict(self.good_event(), subject="alice@example.com")
        good = self.good_event()
        status, body = post_raw(ndjson(bad, good))
        self.assertEqual(status, 202, body)
        self.assertEqual((body["accepted"], body["rejected"]), (1, 1), body)
        rejected, accepted = body["results"]
        self.assertEqual(rejected["status"], "rejected")
        self.assertIn("subject", rejected.get("fields") or [], rejected)
        self.assertIn("subject", rejected["error"])
        self.assertNotIn("alice@example.com", json.dumps(body), "the answer never quotes personal data")
        self.assertEqual((accepted["status"], accepted["id"]), ("accepted", good["id"]))
        type(self).accepted_ids.append(good["id"])

    def test_other_app_rejected(self):
        ev = dict(self.good_event(), app=("x" + APP)[:64])
        status, body = post_raw(ndjson(ev))
        self.assertEqual(status, 202, body)
        result = body["results"][0]
        self.assertEqual(result["status"], "rejected")
        self.assertIn("app", result.get("fields") or [], result)

    def test_malformed_line_rejected(self):
        good = self.good_event()
        status, body = post_raw(ndjson(b'{"id": "01JDX5Q8ZK3V7Y2M4N6P8R0T1W", "type": ', good))
        self.assertEqual(status, 202, body)
        self.assertEqual([r["status"] for r in body["results"]], ["rejected", "accepted"], body)
        type(self).accepted_ids.append(good["id"])

    def test_body_over_1_mib(self):
        # Sent chunked, so the intake finds the size by reading and answers
        # before the client writes much more (a Content-Length over the limit
        # may be answered at once, racing a client still sending 1 MiB).
        def chunks():  # one line (one event) of 1 MiB and a bit
            yield b'{"pad":"'
            for _ in range(16):
                yield b"a" * (64 << 10)
            yield b'"}\n'

        status, body = post_raw(chunks())
        self.assertEqual(status, 413, body)

    def test_bad_token(self):
        status, body = post_raw(ndjson(self.good_event()), token="smi_" + "A" * 43)
        self.assertEqual(status, 401, body)
        self.assertIn("error", body)

    def test_client_reports_bad_token(self):
        errors = []
        client = Client(URL, "smi_" + "B" * 43, APP, on_error=errors.append)
        client.send(self.good_event())
        summary = client.close(30)
        self.assertEqual((summary.accepted, summary.failed), (0, 1))
        self.assertEqual([(e.kind, e.status) for e in errors], [("unauthorized", 401)])


if __name__ == "__main__":
    unittest.main()
