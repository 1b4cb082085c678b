#!/usr/bin/env python3
"""A webhook receiver for scripts/cluster-test.sh: listens on loopback,
appends one line per POST to a file (the alert's id from the JSON body, the
webhook-id header and the body's size) and answers 200.

    receiver.py PORT FILE
"""
import http.server
import json
import sys
import threading

lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            alert_id = json.loads(body).get("id", "")
        except ValueError:
            alert_id = ""
        line = json.dumps({"id": alert_id, "webhook_id": self.headers.get("webhook-id", ""),
                           "bytes": len(body)}, separators=(",", ":"))
        with lock, open(sys.argv[2], "a") as f:
            f.write(line + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
