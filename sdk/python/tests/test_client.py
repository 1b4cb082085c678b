import os
import subprocess
import sys
import textwrap
import threading
import time
import unittest

from sessionmon import Client, DeliveryError, EventError, Pseudonymizer, events

from .stub import StubIntake

P = Pseudonymizer("k1", bytes(range(32)))


def make_events(n, app="shop"):
    return [events.session_activity(app, P.subject("user-%d" % i), P.session("s-%d" % i)) for i in range(n)]


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.intake = StubIntake()
        self.addCleanup(self.intake.close)
        self.errors = []
        self.errors_lock = threading.Lock()

    def on_error(self, err):
        with self.errors_lock:
            self.errors.append(err)

    def client(self, **kw):
        kw.setdefault("on_error", self.on_error)
        kw.setdefault("retry_wait", 0.01)
        kw.setdefault("max_retry_wait", 0.05)
        c = Client(self.intake.url, kw.pop("token", "smi_test"), "shop", **kw)
        self.addCleanup(c.close, 1)
        return c

    def test_plain_http_only_to_this_machine(self):
        for url in ("http://sessionmon.example", "http://10.0.0.5:8080"):
            with self.assertRaisesRegex(ValueError, "expose the token"):
                Client(url, "smi_x", app="shop")
        for url in ("http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080", "https://sessionmon.example"):
            Client(url, "smi_x", app="shop", exit_timeout=0).close(timeout=1)
        Client("http://10.0.0.5:8080", "smi_x", app="shop", allow_insecure_http=True, exit_timeout=0).close(timeout=1)

    def test_delivers_ndjson_with_bearer_token(self):
        c = self.client()
        evs = make_events(5)
        for ev in evs:
            self.assertTrue(c.send(ev))
        summary = c.close(5)
        self.assertEqual((summary.accepted, summary.duplicates, summary.rejected, summary.failed, summary.pending), (5, 0, 0, 0, 0))
        self.assertEqual(sorted(self.intake.stored), sorted(ev["id"] for ev in evs))
        headers, _, path, _ = self.intake.requests[0]
        self.assertEqual(path, "/v1/events")
        self.assertEqual(headers["Authorization"], "Bearer smi_test")
        self.assertEqual(headers["Content-Type"], "application/x-ndjson")
        self.assertEqual(self.intake.stored[evs[0]["id"]], evs[0])
        self.assertEqual(self.errors, [])
        self.assertIs(c.close(), summary, "a second close returns the same summary")

    def test_flush_waits_for_delivery(self):
        c = self.client()
        for ev in make_events(3):
            c.send(ev)
        self.assertTrue(c.flush(5))
        self.assertEqual(len(self.intake.stored), 3)
        self.assertEqual(c.stats().accepted, 3)

    def test_retry_after_on_503_resends_same_ids(self):
        self.intake.script.append(lambda evs: (503, {"Retry-After": "1"}, {"error": "jetstream unavailable"}))
        c = self.client()
        evs = make_events(3)
        start = time.monotonic()
        for ev in evs:
            c.send(ev)
        self.assertTrue(c.flush(10))
        self.assertGreaterEqual(time.monotonic() - start, 0.9, "Retry-After: 1 was honoured")
        self.assertEqual(len(self.intake.requests), 2)
        self.assertEqual(self.intake.sent_ids(), [ev["id"] for ev in evs] * 2)
        self.assertEqual(c.close(1).accepted, 3)
        self.assertEqual(self.errors, [])

    def test_retries_429_5xx_and_network_errors_with_backoff(self):
        self.intake.script += [
            lambda evs: (429, {"Retry-After": "0"}, {"error": "busy"}),
            lambda evs: (500, {}, {"error": "oops"}),
            lambda evs: "drop",
            lambda evs: (502, {}, b"<html>bad gateway</html>"),
            lambda evs: (202, {}, {"accepted": 1}),  # no results: unreadable, resent
        ]
        c = self.client()
        ev = make_events(1)[0]
        c.send(ev)
        summary = c.close(10)
        self.assertEqual((summary.accepted, summary.failed), (1, 0))
        self.assertEqual(self.intake.sent_ids(), [ev["id"]] * 6)
        self.assertEqual(self.errors, [])

    def test_resend_after_lost_answer_counts_duplicate(self):
        # The intake stored the batch but the answer was lost: the resend
        # comes back as duplicates, and the event is stored once.
        def store_then_fail(evs):
            self.intake.answer({"Authorization": "Bearer smi_test"}, evs)
            return 500, {}, {"error": "lost"}

        self.intake.script.append(store_then_fail)
        c = self.client()
        c.send(make_events(1)[0])
        summary = c.close(5)
        self.assertEqual((summary.accepted, summary.duplicates, summary.failed), (0, 1, 0))
        self.assertEqual(len(self.intake.stored), 1)

    def test_rejected_events_reported_not_retried(self):
        evs = make_events(3)
        self.intake.reject[evs[1]["id"]] = ("subject: looks like an e-mail address", ["subject"])
        c = self.client()
        for ev in evs:
            c.send(ev)
        summary = c.close(5)
        self.assertEqual((summary.accepted, summary.rejected, summary.failed), (2, 1, 0))
        self.assertEqual(len(self.intake.requests), 1)
        self.assertEqual(len(self.errors), 1)
        err = self.errors[0]
        self.assertIsInstance(err, DeliveryError)
        self.assertEqual((err.kind, err.event_ids, err.fields), ("rejected", (evs[1]["id"],), ("subject",)))
        self.assertIn("subject", str(err))

    def test_unauthorized_reported_not_retried(self):
        c = self.client(token="smi_wrong")
        evs = make_events(2)
        for ev in evs:
            c.send(ev)
        summary = c.close(5)
        self.assertEqual((summary.accepted, summary.failed), (0, 2))
        self.assertEqual(len(self.intake.requests), 1)
        self.assertEqual([(e.kind, e.status, e.event_ids) for e in self.errors],
                         [("unauthorized", 401, tuple(ev["id"] for ev in evs))])

    def test_bad_request_reported_not_retried(self):
        self.intake.script.append(lambda evs: (400, {}, {"error": "cannot read body"}))
        c = self.client()
        c.send(make_events(1)[0])
        summary = c.close(5)
        self.assertEqual(summary.failed, 1)
        self.assertEqual(len(self.intake.requests), 1)
        self.assertEqual((self.errors[0].kind, self.errors[0].status), ("refused", 400))
        self.assertIn("cannot read body", str(self.errors[0]))

    def test_413_splits_the_batch(self):
        release = threading.Event()
        started = threading.Event()

        def hold(evs):
            started.set()
            release.wait(10)
            return None

        def too_large(evs):
            return (413, {}, {"error": "too large"}) if len(evs) > 2 else None

        self.intake.script += [hold] + [too_large] * 10
        c = self.client()
        first, *evs = make_events(6)
        c.send(first)
        self.assertTrue(started.wait(5))
        for ev in evs:  # queued while the first request is held: one batch
            c.send(ev)
        release.set()
        summary = c.close(5)
        self.assertEqual((summary.accepted, summary.failed), (6, 0))
        sizes = [len(r[1]) for r in self.intake.requests]
        self.assertEqual(sizes[:2], [1, 5])
        self.assertEqual(sum(n for n in sizes[1:] if n <= 2), 5, "the 5 events were stored in parts of at most 2")
        self.assertEqual(sorted(self.intake.stored), sorted(ev["id"] for ev in [first] + evs))

    def test_batches_respect_event_and_byte_limits(self):
        c = self.client(batch_bytes=64 * 1024)
        evs = make_events(2500)
        for ev in evs:
            c.send(ev)
        summary = c.close(30)
        self.assertEqual(summary.accepted, 2500)
        for _, batch, _, size in self.intake.requests:
            self.assertLessEqual(len(batch), 1000)
            self.assertLessEqual(size, 64 * 1024)
        self.assertGreater(len(self.intake.requests), 2500 * 150 // (64 * 1024))
        self.assertEqual(sorted(self.intake.sent_ids()), sorted(ev["id"] for ev in evs), "each event sent once")

    def test_full_queue_is_reported(self):
        release = threading.Event()
        started = threading.Event()

        def hold(evs):
            started.set()
            release.wait(10)
            return None

        self.intake.script.append(hold)
        c = self.client(max_queue=2)
        evs = make_events(4)
        self.assertTrue(c.send(evs[0]))
        self.assertTrue(started.wait(5))  # the first event is in flight
        self.assertTrue(c.send(evs[1]))
        self.assertTrue(c.send(evs[2]))
        self.assertFalse(c.send(evs[3]))
        release.set()
        summary = c.close(5)
        self.assertEqual((summary.accepted, summary.failed), (3, 1))
        self.assertEqual([(e.kind, e.event_ids) for e in self.errors], [("overflow", (evs[3]["id"],))])

    def test_close_deadline_fails_leftovers(self):
        self.intake.script += [lambda evs: (503, {"Retry-After": "0"}, {"error": "down"})] * 1000
        c = self.client()
        evs = make_events(3)
        for ev in evs:
            c.send(ev)
        start = time.monotonic()
        summary = c.close(0.5)
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual((summary.accepted, summary.failed, summary.pending), (0, 3, 0))
        self.assertEqual([e.kind for e in self.errors], ["undelivered"])
        self.assertEqual(set(self.errors[0].event_ids), {ev["id"] for ev in evs})
        self.assertFalse(c.send(make_events(1)[0]), "a closed client refuses events")

    def test_send_validates(self):
        c = self.client()
        with self.assertRaises(EventError) as cm:
            c.send(make_events(1, app="other")[0])
        self.assertEqual(cm.exception.field, "app")
        bad = dict(make_events(1)[0], subject="alice@example.com")
        with self.assertRaises(EventError) as cm:
            c.send(bad)
        self.assertEqual(cm.exception.field, "subject")

    def test_on_error_exception_does_not_stop_the_sender(self):
        def boom(err):
            raise RuntimeError("callback bug")

        c = self.client(on_error=boom, token="smi_wrong")
        with self.assertLogs("sessionmon", "ERROR") as logs:
            c.send(make_events(1)[0])
            self.assertTrue(c.flush(5))
        self.assertIn("on_error callback raised", logs.records[0].getMessage())
        self.assertTrue(c._thread.is_alive())

    def test_events_delivered_at_interpreter_exit(self):
        # An app that never calls close still delivers what it queued.
        script = textwrap.dedent("""
            import sys
            from sessionmon import Client, Pseudonymizer, events
            p = Pseudonymizer("k1", bytes(32))
            c = Client(sys.argv[1], "smi_test", "shop")
            c.send(events.session_activity("shop", p.subject("u"), p.session("s"), id="exit-event-1"))
        """)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=root)
        subprocess.run([sys.executable, "-c", script, self.intake.url], env=env, check=True, timeout=30)
        self.assertEqual(list(self.intake.stored), ["exit-event-1"])

    def test_options_checked(self):
        with self.assertRaises(ValueError):
            Client("ftp://x", "t", "shop")
        with self.assertRaises(ValueError):
            Client("http://x", "", "shop")
        with self.assertRaises(ValueError):
            Client("http://x", "t", "shop", batch_events=1001)


if __name__ == "__main__":
    unittest.main()
