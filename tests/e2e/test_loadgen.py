"""tests/bench/loadgen, the benchmark's load generator, checked against otel2dd and against
small servers that misbehave on purpose.

- For a second in each mode (HTTP/1.1 keep-alive, gRPC with several streams), loadgen's own
  count of acknowledged requests and spans equals what otel2dd counted as accepted on
  /metrics; the bodies differ in span count, so the rotation has to be exact for the spans to
  match.
- --stamp-ids: every request carries span and trace ids of its own, parent links intact.
- An HTTP/1.1 server that answers 200, 503 and 429 in turn and closes the connection after
  some answers: every answer is counted under its status, the closes are reconnected.
- A server that reads and never answers: loadgen gives up on the request after --timeout and
  exits within its grace period (no hang).
- otel2dd shut down in the middle of a gRPC run (GOAWAY, then connection refused): loadgen
  reconnects and keeps counting, never counts a request otel2dd did not accept, and exits.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Otel2dd, assert_no_sanitizer_report, wait_until  # noqa: E402
from otlp_client import TRACE_EXPORT, set_attr, trace_service_pb2  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OTEL2DD_BUILD", os.path.join(ROOT, "build"))
LOADGEN = os.path.join(BUILD, "loadgen")


def body(i, spans):
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", "loadgen-test-%d" % (i % 3))
    ss = rs.scope_spans.add()
    for k in range(spans):
        s = ss.spans.add()
        s.trace_id = struct.pack(">QQ", 1 + i, 0x5eed)  # one trace a body
        s.span_id = struct.pack(">Q", (i << 20) + k + 1)
        s.name = "GET /items/%d" % k
        s.kind = 2
        if k > 0:
            s.parent_span_id = struct.pack(">Q", (i << 20) + 1)
        s.start_time_unix_nano = 1_700_000_000_000_000_000 + k
        s.end_time_unix_nano = s.start_time_unix_nano + 1000
        set_attr(s.attributes, "http.route", "/items/{id}")
    return req.SerializeToString()


def write_bodies(path, sizes):
    with open(path, "wb") as f:
        f.write(b"O2DLOAD1")
        for i, n in enumerate(sizes):
            b = body(i, n)
            f.write(struct.pack(">II", len(b), n) + b)


def prom_value(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no %s%s in /metrics" % (name, labels))


class H1Server:
    """An HTTP/1.1 server on an ephemeral port: answer(n) gives the n-th request's status line
    and whether to close the connection after it; the request bodies are kept."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.bodies = []
        self.closes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    got = conn.recv(65536)
                    if not got:
                        return
                    buf += got
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                              if l.lower().startswith(b"content-length:")][0])
                while len(buf) < length:
                    got = conn.recv(65536)
                    if not got:
                        return
                    buf += got
                with self.lock:
                    n = len(self.bodies)
                    self.bodies.append(buf[:length])
                    status, close = self.answer(n)
                    self.closes += close
                buf = buf[length:]
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n" +
                             (b"Connection: close\r\n" if close else b"") + b"\r\n{}")
                if close:
                    return
        finally:
            conn.close()


def run_loadgen(args, timeout=30):
    t0 = time.monotonic()
    r = subprocess.run([LOADGEN] + args, capture_output=True, text=True, timeout=timeout)
    assert_no_sanitizer_report(r.stderr, "loadgen")
    if r.returncode != 0:
        raise AssertionError("loadgen exited %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout), time.monotonic() - t0


class LoadgenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(LOADGEN, os.X_OK):
            raise AssertionError("build the loadgen target first (%s)" % LOADGEN)
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="o2d-loadgen-")
        cls.bodies = os.path.join(cls.tmp, "b.bodies")
        cls.sizes = [1, 2, 3, 5, 8, 13, 21]
        write_bodies(cls.bodies, cls.sizes)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_against_otel2dd(self, mode, transport):
        with Otel2dd(verbosity="quiet") as o:
            port, path = ((o.http_port, "/v1/traces") if transport == "http"
                          else (o.grpc_port, TRACE_EXPORT))
            res, _ = run_loadgen([mode, "-c", "3", "-m", "4", "-t", "2", "-D", "1", "-f",
                                  self.bodies, "http://127.0.0.1:%d%s" % (port, path)])
            metrics = o.scrape()
        labels = {"transport": transport, "signal": "traces"}
        self.assertGreater(res["requests"]["ok"], 20, res)
        self.assertEqual(res["errors_total"], 0, res)
        self.assertEqual(res["requests"]["sent"], res["requests"]["answered"], res)
        self.assertEqual(res["requests"]["ok"], res["requests"]["answered"], res)
        self.assertEqual(res["status"], {"200": res["requests"]["ok"]}, res)
        self.assertEqual(res["requests"]["ok"],
                         prom_value(metrics, "otel2dd_receiver_accepted_requests_total", labels))
        self.assertEqual(res["items_ok"],
                         prom_value(metrics, "otel2dd_receiver_accepted_items_total", labels))
        # 7 bodies of different sizes in rotation from 3 different starts: the spans are not
        # a multiple of one body's
        self.assertNotEqual(res["items_ok"] % res["requests"]["ok"], 0, res)
        self.assertGreater(res["latency_ms"]["p99"], 0, res)
        self.assertGreaterEqual(res["latency_ms"]["max"], res["latency_ms"]["p50"], res)
        return res

    def test_http1_counts_equal_otel2dd(self):
        self.check_against_otel2dd("--h1", "http")

    def test_grpc_counts_equal_otel2dd(self):
        res = self.check_against_otel2dd("--grpc", "grpc")
        self.assertEqual(res["grpc_status"], {"0": res["requests"]["ok"]}, res)

    def test_http1_statuses_and_server_closes(self):
        """A server answering 200, 503, 429 in turn, closing after every 5th answer."""
        srv = H1Server(lambda n: ((b"200 OK", b"503 Service Unavailable",
                                   b"429 Too Many Requests")[n % 3], n % 5 == 4))
        try:
            res, _ = run_loadgen(["--h1", "-c", "2", "-n", "60", "-f", self.bodies,
                                  "http://127.0.0.1:%d/v1/traces" % srv.port])
        finally:
            srv.close()
        self.assertEqual(res["requests"]["sent"], 60, res)
        self.assertEqual(res["requests"]["answered"], 60, res)
        self.assertEqual(res["status"], {"200": 20, "503": 20, "429": 20}, res)
        self.assertEqual(res["requests"]["ok"], 20, res)
        self.assertEqual(res["errors_total"], 0, res)
        self.assertEqual(res["reconnects"], srv.closes, res)
        self.assertEqual(len(srv.bodies), 60)

    def test_stamp_ids(self):
        """--stamp-ids: no span or trace id repeats across requests, parent links hold."""
        srv = H1Server(lambda n: (b"200 OK", False))
        try:
            res, _ = run_loadgen(["--h1", "-c", "3", "-n", "30", "--stamp-ids", "-f",
                                  self.bodies, "http://127.0.0.1:%d/v1/traces" % srv.port])
        finally:
            srv.close()
        self.assertEqual(res["requests"]["ok"], 30, res)
        span_ids, trace_ids, spans = set(), set(), 0
        sizes = []
        for raw in srv.bodies:
            req = trace_service_pb2.ExportTraceServiceRequest.FromString(raw)
            ss = req.resource_spans[0].scope_spans[0].spans
            sizes.append(len(ss))
            mine = {s.span_id for s in ss}
            for s in ss:
                if s.parent_span_id:
                    self.assertIn(s.parent_span_id, mine)
                self.assertEqual(s.trace_id[:8], ss[0].trace_id[:8])  # high half kept
            spans += len(ss)
            span_ids |= mine
            trace_ids |= {s.trace_id for s in ss}
        self.assertEqual(spans, res["items_ok"])
        self.assertEqual(len(span_ids), spans)
        self.assertEqual(len(trace_ids), len(srv.bodies))
        self.assertEqual(sorted(set(sizes)), self.sizes)  # every body was sent

    def test_silent_server_times_out(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        port = srv.getsockname()[1]
        held = []

        def accept():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                held.append(c)  # read nothing, answer nothing

        threading.Thread(target=accept, daemon=True).start()
        try:
            for mode in ("--h1", "--grpc"):
                res, took = run_loadgen([mode, "-c", "2", "-D", "1", "--timeout", "0.5",
                                         "--grace", "0.5", "-f", self.bodies,
                                         "http://127.0.0.1:%d/v1/traces" % port])
                self.assertEqual(res["requests"]["answered"], 0, res)
                self.assertGreaterEqual(res["errors"]["timeout"] + res["errors"]["cut"], 2, res)
                self.assertLess(took, 10, res)
        finally:
            srv.close()
            for c in held:
                c.close()

    def test_grpc_server_shutting_down(self):
        """otel2dd gets SIGTERM half-way: GOAWAY, then nothing listens any more."""
        o = Otel2dd(verbosity="quiet").start()
        try:
            p = subprocess.Popen([LOADGEN, "--grpc", "-c", "2", "-m", "4", "-D", "2",
                                  "--timeout", "2", "-f", self.bodies,
                                  "http://127.0.0.1:%d%s" % (o.grpc_port, TRACE_EXPORT)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_until(lambda: prom_value(o.scrape(), "otel2dd_receiver_accepted_requests_total",
                                          {"transport": "grpc", "signal": "traces"}) > 20,
                       10, "some requests accepted")
            o.stop()
            out, err = p.communicate(timeout=30)
            assert_no_sanitizer_report(err, "loadgen")
        finally:
            if o.returncode is None:
                o.stop(expect=None)
        self.assertEqual(p.returncode, 0, err)
        res = json.loads(out)
        totals = [l for l in o.logs() if l.get("msg") == "totals"]
        self.assertTrue(totals, "no totals line")
        self.assertGreater(res["requests"]["ok"], 20, res)
        self.assertGreater(res["errors"]["connect"], 0, res)  # nothing listens after the exit
        # every acknowledged span was accepted; a request otel2dd took but could not answer
        # before it closed is the only way for it to count more
        self.assertLessEqual(res["items_ok"], totals[0]["grpc_spans"], (res, totals[0]))
        self.assertGreaterEqual(res["requests"]["ok"] + res["errors_total"],
                                res["requests"]["sent"], res)


if __name__ == "__main__":
    unittest.main()
