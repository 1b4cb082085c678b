import asyncio
import json
import unittest
from wsgiref.util import setup_testing_defaults

from sessionmon import ASGIMiddleware, Client, Monitor, Pseudonymizer, RequestInspector, WSGIMiddleware, cookie

from .stub import StubIntake

P = Pseudonymizer("k1", bytes(range(32)))


def wsgi_app(environ, start_response):
    # A view that knows the signed-in user stores the raw ids for the middleware.
    sid = cookie("sid")(environ)
    if sid:
        environ["sessionmon.subject"] = "user-" + sid
        environ["sessionmon.session"] = sid
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def environ_for(sid=None, remote="203.0.113.7"):
    env = {"REMOTE_ADDR": remote, "HTTP_USER_AGENT": "test-agent"}
    if sid:
        env["HTTP_COOKIE"] = "theme=dark; sid=%s" % sid
    setup_testing_defaults(env)
    return env


class MiddlewareTest(unittest.TestCase):
    def setUp(self):
        self.intake = StubIntake()
        self.addCleanup(self.intake.close)
        self.client = Client(self.intake.url, "smi_test", "shop", retry_wait=0.01)
        self.addCleanup(self.client.close, 1)

    def monitor(self, **kw):
        return Monitor(self.client, P, RequestInspector(P, ["10.0.0.0/8"]), **kw)

    def sent(self):
        self.assertTrue(self.client.flush(5))
        return [ev for _, evs, _, _ in self.intake.requests for ev in evs]

    def test_wsgi_activity_throttled_per_session(self):
        mon = self.monitor(activity_interval=3600)
        app = WSGIMiddleware(wsgi_app, mon)
        for sid in ["s1", "s1", "s2", "s1", None, "s2"]:
            self.assertEqual(b"".join(app(environ_for(sid), lambda *a: None)), b"ok")
        sent = self.sent()
        self.assertEqual([ev["type"] for ev in sent], ["session.activity"] * 2)
        self.assertEqual([ev["session"] for ev in sent], [P.session("s1"), P.session("s2")])
        self.assertEqual(sent[0]["subject"], P.subject("user-s1"))
        self.assertEqual(sent[0]["client"], {"ip_prefix": "203.0.113.0/24", "ip_hash": P.ip_hash("203.0.113.7"), "user_agent": "test-agent"})

    def test_logout_resets_the_throttle(self):
        mon = self.monitor(activity_interval=3600)
        app = WSGIMiddleware(wsgi_app, mon)
        app(environ_for("s1"), lambda *a: None)
        mon.logout(environ_for("s1"), "user-s1", "s1")
        app(environ_for("s1"), lambda *a: None)
        self.assertEqual([ev["type"] for ev in self.sent()], ["session.activity", "session.ended", "session.activity"])

    def test_throttle_is_bounded(self):
        mon = self.monitor(activity_interval=3600, max_sessions=2)
        app = WSGIMiddleware(wsgi_app, mon)
        for sid in ["s1", "s2", "s3", "s1"]:
            app(environ_for(sid), lambda *a: None)
        self.assertEqual(len(mon._throttle), 2)
        # s1 was forgotten to make room for s3, so it reports again.
        self.assertEqual([ev["session"] for ev in self.sent()], [P.session(s) for s in ["s1", "s2", "s3", "s1"]])

    def test_getter_errors_never_break_the_request(self):
        def broken(environ):
            raise KeyError("no user")

        app = WSGIMiddleware(wsgi_app, self.monitor(), subject=broken)
        with self.assertLogs("sessionmon", "ERROR"):
            self.assertEqual(b"".join(app(environ_for("s1"), lambda *a: None)), b"ok")
        self.assertEqual(self.sent(), [])

    def test_asgi(self):
        async def asgi_app(scope, receive, send):
            scope.setdefault("state", {})["sessionmon.subject"] = "user-1"
            scope["state"]["sessionmon.session"] = "s1"
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        app = ASGIMiddleware(asgi_app, self.monitor(activity_interval=3600))
        sent_msgs = []

        async def send(msg):
            sent_msgs.append(msg)

        async def receive():
            return {"type": "http.request", "body": b""}

        async def run():
            for _ in range(3):
                scope = {"type": "http", "asgi": {"version": "3.0"}, "client": ("10.0.0.2", 5000),
                         "headers": [(b"x-forwarded-for", b"198.51.100.1"), (b"user-agent", b"ua")]}
                await app(scope, receive, send)
            await app({"type": "lifespan"}, receive, send)

        asyncio.run(run())
        sent = self.sent()
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["client"]["ip_prefix"], "198.51.100.0/24")
        self.assertEqual(sent[0]["session"], P.session("s1"))
        self.assertEqual(len(sent_msgs), 8, "every message passed through")

    def test_monitor_helpers_send_only_pseudonyms(self):
        mon = self.monitor()
        env = environ_for("pre-login-sid")
        raw = ["user-42", "sid-new", "pre-login-sid", "jti-1", "jti-0", "device-7", "203.0.113.7"]
        ids = mon.login(env, "user-42", session="sid-new", previous_session="pre-login-sid", device="device-7",
                        cookie={"name": "sid", "secure": False, "http_only": True, "same_site": "lax"},
                        policy={"idle_timeout_s": 1800}, auth={"method": "password", "mfa": False})
        ids.append(mon.login_failed(env, "user-42", "bad_password"))
        ids.append(mon.token_issued(env, "user-42", "jti-1", kind="refresh", family="jti-0", claims=["sub"]))
        ids.append(mon.token_refreshed(env, "user-42", "jti-1", parent="jti-0", family="jti-0"))
        ids.append(mon.token_used(env, "user-42", "jti-1"))
        ids.append(mon.token_revoked(env, "user-42", "jti-1", "logout"))
        ids.append(mon.reauth(env, "user-42", session="sid-new", method="totp", mfa=True))
        ids.append(mon.action(env, "user-42", "change_email", sensitive=True, session="sid-new"))
        ids.append(mon.logout(env, "user-42", "sid-new"))
        ids.append(mon.key_retired("key-rotation-job", "2026-11-signing"))
        sent = self.sent()
        self.assertEqual([ev["id"] for ev in sent], ids)
        self.assertEqual([ev["type"] for ev in sent], [
            "login.succeeded", "session.started", "login.failed", "token.issued", "token.refreshed", "token.used",
            "token.revoked", "reauth.succeeded", "action.performed", "session.ended", "key.retired"])
        started = sent[1]
        self.assertEqual(started["previous_session"], P.session("pre-login-sid"))
        self.assertEqual(started["cookie"], {"name": "sid", "secure": False, "http_only": True, "same_site": "lax"})
        self.assertEqual(started["client"]["device"], P.device("device-7"))
        self.assertEqual(sent[4]["token"], {"id": P.token_id("jti-1"), "family": P.token_id("jti-0"), "parent": P.token_id("jti-0")})
        wire = json.dumps(sent)
        for value in raw:
            self.assertNotIn(value, wire)
        self.assertEqual(self.client.close(5).accepted, 11)


if __name__ == "__main__":
    unittest.main()
