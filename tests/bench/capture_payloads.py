#!/usr/bin/python3
"""Captures the AgentPayload bodies otel2dd builds from a set of OTLP trace bodies, before
compression, for tests/bench/build_cg.c (the build + compress step under callgrind).

Reads an O2DLOAD1 bodies file (tests/bench/gen_bodies.js: "O2DLOAD1", then records of a
4-byte big-endian length, a 4-byte big-endian item count and an ExportTraceServiceRequest),
starts otel2dd with exporters.datadog.traces.compression none pointed at a local capture
server (which answers 202 to everything and keeps each /api/v0.2/traces body), posts every
body once over OTLP/HTTP, stops otel2dd (its flush sends what is left) and writes the
captured bodies as an O2DLOAD1 file whose item count is 0 (build_cg counts the spans).

    tests/bench/capture_payloads.py BODIES OUT [--bin build/otel2dd] [--rounds N]
"""
import argparse
import http.server
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAGIC = b"O2DLOAD1"


def read_bodies(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        raise SystemExit("%s: no O2DLOAD1 magic" % path)
    out, off = [], len(MAGIC)
    while off < len(data):
        n, _items = struct.unpack(">II", data[off:off + 8])
        out.append(data[off + 8:off + 8 + n])
        off += 8 + n
    return out


class Capture(http.server.BaseHTTPRequestHandler):
    bodies = []
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _answer(self, status, body=b"{}"):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(200, b'{"valid":true}')

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.path.split("?")[0] == "/api/v0.2/traces":
            if self.headers.get("Content-Encoding"):
                raise SystemExit("capture: a compressed traces body")
            with self.lock:
                self.bodies.append(body)
        self._answer(202)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bodies")
    ap.add_argument("out")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "otel2dd"))
    ap.add_argument("--rounds", type=int, default=1, help="times each body is posted")
    args = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    cfg = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"},
                                             "grpc": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"datadog": {
            "api": {"key": "bench", "endpoint": url},
            "traces": {"endpoint": url, "compression": "none", "flush_interval": "60s"},
            "llmobs": {"enabled": False}, "metrics": {"enabled": False},
            "logs": {"enabled": False}}},
        "extensions": {"health_check": {"endpoint": ""}},
        "service": {"telemetry": {"metrics": {"address": ""}}},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump(cfg, f)  # JSON is YAML
        cfg_path = f.name
    p = subprocess.Popen([args.bin, "--config", cfg_path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    port = None
    deadline = time.monotonic() + 20
    while port is None and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "listening" and rec.get("server") == "http":
            port = rec["port"]
    if port is None:
        p.kill()
        raise SystemExit("otel2dd did not say where it listens")
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    bodies = read_bodies(args.bodies)
    for _ in range(args.rounds):
        for b in bodies:
            req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % port, data=b,
                                         headers={"Content-Type": "application/x-protobuf"})
            with urllib.request.urlopen(req, timeout=10) as r:
                if r.status != 200:
                    raise SystemExit("otel2dd answered %d" % r.status)
    p.terminate()
    p.wait(timeout=30)
    os.unlink(cfg_path)
    srv.shutdown()
    with open(args.out, "wb") as f:
        f.write(MAGIC)
        for b in Capture.bodies:
            f.write(struct.pack(">II", len(b), 0))
            f.write(b)
    print("%d OTLP bodies posted %d times -> %d AgentPayload bodies, %d bytes" %
          (len(bodies), args.rounds, len(Capture.bodies), sum(map(len, Capture.bodies))),
          file=sys.stderr)


if __name__ == "__main__":
    main()
