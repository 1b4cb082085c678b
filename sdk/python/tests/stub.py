"""A local stand-in for sessionmon's intake, for the client's unit tests.

It stores events by id (so resends come back as duplicates, as the real
intake answers) and can be scripted to answer the next requests otherwise.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubIntake:
    def __init__(self, token="smi_test"):
        self.token = token
        self.lock = threading.Lock()
        self.stored = {}  # id -> event
        self.requests = []  # (headers, events) of every request
        self.script = []  # callables (events) -> (status, headers, body) or None to answer normally
        self.reject = {}  # id -> (error, fields)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                events = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
                with stub.lock:
                    stub.requests.append((dict(self.headers), events, self.path, len(body)))
                    step = stub.script.pop(0) if stub.script else None
                answer = step(events) if step else None
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if answer is None:
                    answer = stub.answer(self.headers, events)
                status, headers, payload = answer
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, headers, events):
        if headers.get("Authorization") != "Bearer " + self.token:
            return 401, {}, {"error": "unknown token"}
        results, counts = [], {"accepted": 0, "duplicates": 0, "rejected": 0}
        with self.lock:
            for i, ev in enumerate(events):
                if ev["id"] in self.reject:
                    err, fields = self.reject[ev["id"]]
                    results.append({"index": i, "id": ev["id"], "status": "rejected", "error": err, "fields": fields})
                    counts["rejected"] += 1
                elif ev["id"] in self.stored:
                    results.append({"index": i, "id": ev["id"], "status": "duplicate"})
                    counts["duplicates"] += 1
                else:
                    self.stored[ev["id"]] = ev
                    results.append({"index": i, "id": ev["id"], "status": "accepted"})
                    counts["accepted"] += 1
        return 202, {}, dict(counts, results=results)

    def sent_ids(self):
        with self.lock:
            return [ev["id"] for _, events, _, _ in self.requests for ev in events]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
