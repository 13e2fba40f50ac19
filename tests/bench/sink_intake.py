#!/usr/bin/python3
"""A Datadog intake that accepts and discards, for the end-to-end benchmark (bench.py --dd).

    POST /api/v0.2/traces, POST /api/v0.2/stats  -> 202 {}   (the body is read fully, dropped)
    POST /api/v2/llmobs                          -> 202 {}   (LLM Obs events, the same)
    GET  /api/v1/validate                        -> 200 {"valid":true}
    GET  /_counts                                -> 200, the counts so far (JSON)
    anything else                                -> 404

Listens on 127.0.0.1, an ephemeral port (or --port), HTTP/1.1 keep-alive, one thread per
connection. Prints one line when it listens:

    sink listening 127.0.0.1:PORT

and on SIGTERM/SIGINT one JSON line with its counts, then exits 0:

    sink counts {"requests": {"/api/v0.2/traces": N, ...}, "bytes": {...}, ...}

Nothing is decoded or kept, so it costs little CPU per request: otel2dd sends a few bodies a
second of at most 3.2 MB (gzip), which a Python thread reads at memory speed. bench.py reads
its CPU time from /proc to show that it is not the bottleneck.
"""
import argparse
import collections
import http.server
import json
import signal
import socketserver
import sys
import threading

TRACES = "/api/v0.2/traces"
STATS = "/api/v0.2/stats"
LLMOBS = "/api/v2/llmobs"
VALIDATE = "/api/v1/validate"
COUNTS = "/_counts"  # GET: the counts so far as JSON, not counted itself
CHUNK = 1 << 20


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.Counter()
        self.bytes = collections.Counter()
        self.status = collections.Counter()
        self.connections = 0

    def add(self, path, n, status):
        with self.lock:
            self.requests[path] += 1
            self.bytes[path] += n
            self.status[str(status)] += 1

    def snapshot(self):
        with self.lock:
            return {"requests": dict(self.requests), "bytes": dict(self.bytes),
                    "status": dict(self.status), "connections": self.connections}


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts = None

    def setup(self):
        super().setup()
        with self.counts.lock:
            self.counts.connections += 1

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _discard_body(self):
        left = int(self.headers.get("Content-Length") or 0)
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:  # not what otel2dd sends, but read it correctly anyway
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return n
                n += len(self.rfile.read(size))
                self.rfile.readline()
        while left > 0:
            got = self.rfile.read(min(left, CHUNK))
            if not got:
                break
            n += len(got)
            left -= len(got)
        return n

    def do_POST(self):
        path = self.path.split("?")[0]
        n = self._discard_body()
        status = 202 if path in (TRACES, STATS, LLMOBS) else 404
        self.counts.add(path, n, status)
        self._answer(status, b"{}")

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == COUNTS:
            return self._answer(200, json.dumps(self.counts.snapshot()).encode())
        status = 200 if path == VALIDATE else 404
        self.counts.add(path, 0, status)
        self._answer(status, b'{"valid":true}' if status == 200 else b"{}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    counts = Counts()
    Handler.counts = counts
    srv = Server(("127.0.0.1", args.port), Handler)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    print("sink listening 127.0.0.1:%d" % srv.server_address[1], flush=True)
    while not stop.wait(3600):
        pass
    srv.shutdown()
    srv.server_close()
    print("sink counts %s" % json.dumps(counts.snapshot(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
