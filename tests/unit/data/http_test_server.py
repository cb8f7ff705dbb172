#!/usr/bin/python3
"""A misbehaving HTTP server on 127.0.0.1 for the download and data preparation tests.

Serves the files under ROOT (argv[1]) on an ephemeral port, printed as the first line of stdout.
The first path component chooses the behaviour; the rest is the file path under ROOT:
  /ok/F         normal, with Range support (206 + Content-Range)
  /drop/F       the first request for F sends half of the body, then closes the connection
  /flaky/F      the first two requests for F answer 503
  /norange/F    ignores Range (always 200 with the whole file); the first request drops midway
  /lying/F      announces the full length but always sends only half (a truncated transfer)
  /short/F      serves only the first half of F, with a correct Content-Length (a truncated file)
  /missing/F    404
GET and HEAD. Request counts per path are kept in memory. Stops after 600 s or on SIGTERM.
"""
import http.server
import os
import sys
import threading

ROOT = sys.argv[1]
counts = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _count(self):
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
            return counts[self.path]

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    def handle_request(self, head):
        parts = self.path.lstrip("/").split("/", 1)
        mode, rel = (parts[0], parts[1]) if len(parts) == 2 else ("ok", parts[0])
        n = self._count() if not head else 0
        path = os.path.join(ROOT, rel)
        if mode == "missing" or not os.path.isfile(path):
            body = b"not found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        if mode == "flaky" and n <= 2:
            body = b"try again later"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        with open(path, "rb") as f:
            data = f.read()
        if mode == "short":
            data = data[: len(data) // 2]
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "norange" and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        if start >= len(data) and rng and mode != "norange":
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % len(data))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        if start > 0:
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "none" if mode == "norange" else "bytes")
        self.end_headers()
        if head:
            return
        drop = (mode in ("drop", "norange") and n == 1) or mode == "lying"
        if drop:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.wfile.write(body)


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that hang up (the tests' dropped connections) are expected


def main():
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    timer = threading.Timer(600, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever()


if __name__ == "__main__":
    main()
