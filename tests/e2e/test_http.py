"""End-to-end tests of the OTLP/HTTP receiver (collector/receivers/http_server.c).

Runs build/otel2dd (or $OTEL2DD_BIN) through harness.Otel2dd on 127.0.0.1 with ephemeral
ports and talks HTTP/1.1 to it with http.client and raw sockets. Answers are decoded with
protobuf classes that protoc generates at test time from the proto/ folder of this checkout
(otlp_client.py), never with otel2dd's own code.

    /usr/bin/python3 tests/e2e/test_http.py [-v] [TestName ...]
"""
import gzip
import http.client
import json
import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Otel2dd, wait_until  # noqa: E402
from otlp_client import (details_pb2, logs_service_pb2,  # noqa: E402
                         status_pb2, trace_pb2, trace_service_pb2)

PB = "application/x-protobuf"
JS = "application/json"
LIMIT = 64 * 1024  # max_request_body_size of the instance most tests share


GRPC_INVALID_ARGUMENT = 3
GRPC_RESOURCE_EXHAUSTED = 8
GRPC_UNIMPLEMENTED = 12
GRPC_UNAVAILABLE = 14


# ---- building requests ----

def span(name, trace_id=b"\x01" * 16, span_id=b"\x02" * 8):
    return trace_pb2.Span(trace_id=trace_id, span_id=span_id, name=name, kind=2,
                          start_time_unix_nano=1700000000000000000,
                          end_time_unix_nano=1700000000100000000)


def traces_pb(spans):
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = "test-http"
    rs.scope_spans.add().spans.extend(spans)
    return req.SerializeToString()


def traces_json(spans):
    """spans: list of (name, trace_id_hex, span_id_hex)."""
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "test-http"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": t, "spanId": s, "name": n, "kind": 2,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000100000000"} for n, t, s in spans]}]}]}).encode()


def logs_pb(n):
    req = logs_service_pb2.ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for i in range(n):
        rec = sl.log_records.add()
        rec.time_unix_nano = 1700000000000000000 + i
        rec.body.string_value = "hello %d" % i
    return req.SerializeToString()


METRICS_JSON = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
    "name": "m", "gauge": {"dataPoints": [{"asInt": "1", "timeUnixNano": "1"}]}}]}]}]}).encode()


# ---- talking to the server ----

class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def rpc_status(self):
        """The body as a google.rpc.Status, decoded per the answer's Content-Type."""
        if self.header("content-type") == JS:
            return json.loads(self.body)
        st = status_pb2.Status.FromString(self.body)
        return {"code": st.code, "message": st.message, "details": list(st.details)}


def post(port, path, body, ctype=PB, headers=None, conn=None, method="POST"):
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {}
    if ctype is not None:
        h["Content-Type"] = ctype
    h.update(headers or {})
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Answer(r.status, r.getheaders(), r.read())
    finally:
        if own:
            c.close()


def raw_exchange(port, data, timeout=10):
    """Sends raw bytes and reads until the server closes; returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
    return Answer(status, headers, body)


def closed_within(sock, timeout):
    """Waits for the peer to close sock; returns seconds taken, or None if it did not."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return time.monotonic() - t0
    except (socket.timeout, TimeoutError):
        return None
    except ConnectionResetError:
        return time.monotonic() - t0


def http_cfg(**kw):
    return {"protocols": {"http": kw}}


# ---- the shared instance ----

class Shared(unittest.TestCase):
    """Most tests share one otel2dd with a 64 KiB body limit."""
    o = None

    @classmethod
    def setUpClass(cls):
        cls.o = Otel2dd(config_yaml_extra=http_cfg(max_request_body_size=LIMIT))
        cls.o.start()
        cls.port = cls.o.http_port

    @classmethod
    def tearDownClass(cls):
        rc = cls.o.stop()
        cls.o.__exit__(None, None, None)
        assert rc == 0, "otel2dd exited with %s" % rc

    def wait_spans(self, n):
        """Waits until the debug exporter has logged n more spans than before the test."""
        self.o.wait_items("traces", self.base + n)

    def setUp(self):
        self.base = self.o.items("traces")


class TestSuccess(Shared):
    def test_protobuf(self):
        a = post(self.port, "/v1/traces", traces_pb([span("a"), span("b", span_id=b"\x03" * 8)]))
        self.assertEqual(a.status, 200)
        self.assertEqual(a.header("content-type"), PB)
        resp = trace_service_pb2.ExportTraceServiceResponse.FromString(a.body)
        self.assertFalse(resp.HasField("partial_success"))
        self.wait_spans(2)

    def test_json(self):
        a = post(self.port, "/v1/traces",
                 traces_json([("j", "0102030405060708090a0b0c0d0e0f10", "0102030405060708")]),
                 ctype="application/json; charset=utf-8")
        self.assertEqual(a.status, 200)
        self.assertEqual(a.header("content-type"), JS)
        self.assertNotIn("partialSuccess", json.loads(a.body))
        self.wait_spans(1)

    def test_content_type_case_insensitive(self):
        a = post(self.port, "/v1/traces", traces_pb([span("c")]),
                 ctype="Application/X-Protobuf ; foo=bar")
        self.assertEqual(a.status, 200)
        self.wait_spans(1)

    def test_logs(self):
        base = self.o.items("logs")
        a = post(self.port, "/v1/logs", logs_pb(3))
        self.assertEqual(a.status, 200)
        self.assertEqual(a.header("content-type"), PB)
        logs_service_pb2.ExportLogsServiceResponse.FromString(a.body)
        self.o.wait_items("logs", base + 3)

    def test_gzip(self):
        body = gzip.compress(traces_pb([span("gz")]))
        a = post(self.port, "/v1/traces", body, headers={"Content-Encoding": "gzip"})
        self.assertEqual(a.status, 200)
        self.wait_spans(1)

    def test_identity_encoding(self):
        a = post(self.port, "/v1/traces", traces_pb([span("id")]),
                 headers={"Content-Encoding": "identity"})
        self.assertEqual(a.status, 200)

    def test_chunked_within_limit(self):
        body = traces_pb([span("s%d" % i, span_id=bytes([i + 1]) * 8) for i in range(50)])
        pieces = [body[i:i + 700] for i in range(0, len(body), 700)]
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", "/v1/traces", body=iter(pieces), headers={"Content-Type": PB},
                  encode_chunked=True)
        r = c.getresponse()
        r.read()
        c.close()
        self.assertEqual(r.status, 200)
        self.wait_spans(50)

    def test_empty_body(self):
        a = post(self.port, "/v1/traces", b"")
        self.assertEqual(a.status, 200)
        resp = trace_service_pb2.ExportTraceServiceResponse.FromString(a.body)
        self.assertFalse(resp.HasField("partial_success"))
        a = post(self.port, "/v1/traces", b"", ctype=JS)
        self.assertEqual(a.status, 200)
        self.assertEqual(a.header("content-type"), JS)

    def test_partial_success_protobuf(self):
        body = traces_pb([span("good"), span("bad", trace_id=b"\x00" * 16)])
        a = post(self.port, "/v1/traces", body)
        self.assertEqual(a.status, 200)
        resp = trace_service_pb2.ExportTraceServiceResponse.FromString(a.body)
        self.assertTrue(resp.HasField("partial_success"))
        self.assertEqual(resp.partial_success.rejected_spans, 1)
        self.assertTrue(resp.partial_success.error_message)
        self.wait_spans(1)

    def test_partial_success_json(self):
        body = traces_json([("good", "0102030405060708090a0b0c0d0e0f10", "0102030405060708"),
                            ("bad", "0" * 32, "0102030405060709")])
        a = post(self.port, "/v1/traces", body, ctype=JS)
        self.assertEqual(a.status, 200)
        self.assertEqual(a.header("content-type"), JS)
        ps = json.loads(a.body)["partialSuccess"]
        self.assertEqual(int(ps["rejectedSpans"]), 1)
        self.assertTrue(ps["errorMessage"])

    def test_keep_alive(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.connect()
        local = c.sock.getsockname()
        for i in range(5):
            a = post(self.port, "/v1/traces", traces_pb([span("k%d" % i)]), conn=c)
            self.assertEqual(a.status, 200)
            self.assertNotEqual((a.header("connection") or "").lower(), "close")
            self.assertIsNotNone(c.sock, "the server closed the connection")
            self.assertEqual(c.sock.getsockname(), local, "http.client reconnected")
        c.close()
        self.wait_spans(5)

    def test_concurrent_connections(self):
        n = 200
        conns = [http.client.HTTPConnection("127.0.0.1", self.port, timeout=60) for _ in range(n)]
        for c in conns:
            c.connect()  # all n are open at once before any request is sent
        results = [None] * n

        def send(i):
            try:
                results[i] = post(self.port, "/v1/traces",
                                  traces_pb([span("c%d" % i)]), conn=conns[i]).status
            except Exception as e:  # reported below
                results[i] = repr(e)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for c in conns:
            c.close()
        self.assertEqual(results, [200] * n)
        self.wait_spans(n)

    def test_metrics_accepted_warned_once(self):
        for _ in range(2):
            a = post(self.port, "/v1/metrics", METRICS_JSON, ctype=JS)
            self.assertEqual(a.status, 200)
            self.assertEqual(a.header("content-type"), JS)
        self.o.wait_log(lambda l: l.get("level") == "warn" and "metrics" in l.get("msg", ""),
                        what="the metrics warning")
        a = post(self.port, "/v1/metrics", b"")
        self.assertEqual(a.status, 200)
        # The third answer above came after the warning was logged, so it is in the log now.
        warned = [l for l in self.o.logs()
                  if l.get("level") == "warn" and "metrics" in l.get("msg", "")]
        self.assertEqual(len(warned), 1, warned)


class TestRefusals(Shared):
    def assertStatusBody(self, a, code, grpc_code, ctype=PB):
        self.assertEqual(a.status, code, a.body)
        self.assertEqual(a.header("content-type"), ctype)
        st = a.rpc_status()
        self.assertEqual(st.get("code"), grpc_code, st)
        self.assertTrue(st.get("message"), st)
        return st

    def test_undecodable_protobuf(self):
        a = post(self.port, "/v1/traces", b"\xff\xff\xff\xff\x0f")
        self.assertStatusBody(a, 400, GRPC_INVALID_ARGUMENT)
        self.assertIsNone(a.header("retry-after"))

    def test_bad_json(self):
        a = post(self.port, "/v1/traces", b'{"resourceSpans": [', ctype=JS)
        self.assertStatusBody(a, 400, GRPC_INVALID_ARGUMENT, ctype=JS)

    def test_corrupt_gzip(self):
        bad = bytearray(gzip.compress(traces_pb([span("x")] * 20)))
        bad[12:20] = b"\x00garbage"
        a = post(self.port, "/v1/traces", bytes(bad), headers={"Content-Encoding": "gzip"})
        self.assertStatusBody(a, 400, GRPC_INVALID_ARGUMENT)

    def test_gzip_bomb(self):
        bomb = gzip.compress(b"\x00" * (4 * 1024 * 1024))
        self.assertLess(len(bomb), LIMIT)
        a = post(self.port, "/v1/traces", bomb, headers={"Content-Encoding": "gzip"})
        self.assertStatusBody(a, 413, GRPC_RESOURCE_EXHAUSTED)

    def test_content_length_over_limit(self):
        # Headers only: the answer must come without the body being sent at all.
        a = raw_exchange(self.port, (
            "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (LIMIT + 1)).encode())
        self.assertStatusBody(a, 413, GRPC_RESOURCE_EXHAUSTED, ctype=JS)

    def test_content_length_over_limit_with_expect(self):
        a = raw_exchange(self.port, (
            "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\n"
            "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (10 * LIMIT)).encode())
        self.assertStatusBody(a, 413, GRPC_RESOURCE_EXHAUSTED)

    def test_chunked_over_limit(self):
        pieces = [b"\x0a" * 8192] * (2 * LIMIT // 8192)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", "/v1/traces", body=iter(pieces), headers={"Content-Type": PB},
                  encode_chunked=True)
        r = c.getresponse()
        a = Answer(r.status, r.getheaders(), r.read())
        c.close()
        self.assertStatusBody(a, 413, GRPC_RESOURCE_EXHAUSTED)

    def test_unknown_content_type(self):
        a = post(self.port, "/v1/traces", b"{}", ctype="text/plain")
        st = self.assertStatusBody(a, 415, GRPC_UNIMPLEMENTED)
        self.assertIn("content type", st["message"])
        a = post(self.port, "/v1/traces", b"{}", ctype=None)
        self.assertStatusBody(a, 415, GRPC_UNIMPLEMENTED)

    def test_unknown_encoding(self):
        a = post(self.port, "/v1/traces", b"{}", ctype=JS, headers={"Content-Encoding": "br"})
        st = self.assertStatusBody(a, 415, GRPC_UNIMPLEMENTED, ctype=JS)
        self.assertIn("'br'", st["message"])

    def test_unknown_path(self):
        for path in ("/", "/v1/trace", "/v1/traces/", "/v2/traces"):
            a = post(self.port, path, b"")
            self.assertStatusBody(a, 404, GRPC_UNIMPLEMENTED)

    def test_wrong_method(self):
        for method in ("GET", "PUT", "DELETE"):
            a = post(self.port, "/v1/traces", None, method=method, ctype=None)
            self.assertStatusBody(a, 405, GRPC_UNIMPLEMENTED)
            self.assertEqual(a.header("allow"), "POST")

    def test_still_serving(self):
        """After all the refusals above, the server still answers."""
        a = post(self.port, "/v1/traces", traces_pb([span("after")]))
        self.assertEqual(a.status, 200)


class TestMemoryBudget(unittest.TestCase):
    def test_busy_then_recovers(self):
        with Otel2dd(config_yaml_extra={"memory_limit_mib": 1}) as o:
            port = o.http_port
            held = {}

            def hold_budget():
                """(Re)opens the connection that holds most of the budget with a partial body:
                only bytes sent are reserved, so it sends all but the last 4 KiB of what it
                declares. Its headers and a probe's race for the server's threads: if a probe
                was taken first, the hold itself is the one refused, so it is opened again."""
                old = held.get("sock")
                if old is not None:
                    old.setblocking(False)
                    try:
                        old.recv(1)  # an answer or a close: it holds nothing
                    except BlockingIOError:
                        return old  # no answer yet: it holds its reservation
                    except OSError:
                        pass
                    old.close()
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: "
                          b"application/x-protobuf\r\nContent-Length: 921600\r\n\r\n" +
                          b"\x0a" * (921600 - 4096))
                held["sock"] = s
                return s

            hold_budget()

            def refused():
                # Headers only: while the budget is held, the answer is immediate.
                hold_budget()
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: "
                          b"application/x-protobuf\r\nContent-Length: 204800\r\n\r\n")
                s.settimeout(2)
                try:
                    got = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                except (socket.timeout, TimeoutError):
                    return None  # accepted and waiting for the body: not held yet
                finally:
                    s.close()
                return got

            got = wait_until(refused, 15, "a 503 while the budget is held")
            head, _, body = got.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            self.assertEqual(int(lines[0].split()[1]), 503, got)
            headers = {k.strip().lower(): v.strip()
                       for k, v in (l.split(":", 1) for l in lines[1:])}
            self.assertGreaterEqual(int(headers["retry-after"]), 1)
            self.assertEqual(headers["content-type"], PB)
            st = status_pb2.Status.FromString(body)
            self.assertEqual(st.code, GRPC_UNAVAILABLE)
            self.assertEqual(len(st.details), 1)
            ri = details_pb2.RetryInfo()
            self.assertTrue(st.details[0].Unpack(ri))
            self.assertGreaterEqual(ri.retry_delay.seconds, 1)

            # Letting go of the held body gives the budget back.
            held["sock"].close()
            big = traces_pb([span("x" * 1000, span_id=bytes([i % 250 + 1]) * 8)
                             for i in range(200)])
            self.assertGreater(len(big), 200 * 1000)
            wait_until(lambda: post(port, "/v1/traces", big).status == 200, 15,
                       "the budget to come back")
            self.assertEqual(o.stop(), 0)


class TestTimeouts(unittest.TestCase):
    def test_idle_and_slow_senders_are_cut(self):
        cfg = http_cfg(idle_timeout="1s", read_timeout="2s")
        with Otel2dd(config_yaml_extra=cfg) as o:
            port = o.http_port
            # Silent after connecting.
            s = socket.create_connection(("127.0.0.1", port))
            took = closed_within(s, 15)
            s.close()
            self.assertIsNotNone(took, "an idle connection was not closed")
            self.assertGreater(took, 0.5)

            # Stops in the middle of the headers.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\n")
            self.assertIsNotNone(closed_within(s, 15), "a stalled header was not cut")
            s.close()

            # Stops in the middle of the body.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: "
                      b"application/x-protobuf\r\nContent-Length: 1000\r\n\r\n" + b"\x0a" * 10)
            self.assertIsNotNone(closed_within(s, 15), "a stalled body was not cut")
            s.close()

            # Trickles a byte every 0.3 s: never idle for 1 s, but past the 2 s read deadline.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: "
                      b"application/x-protobuf\r\nContent-Length: 1000\r\n\r\n")
            t0 = time.monotonic()
            cut = False
            while time.monotonic() - t0 < 15:
                try:
                    s.sendall(b"\x0a")
                except (BrokenPipeError, ConnectionResetError):
                    cut = True
                    break
                if closed_within(s, 0.3) is not None:  # paces the trickle
                    cut = True
                    break
            s.close()
            self.assertTrue(cut, "a slow sender outlived read_timeout")
            self.assertGreater(time.monotonic() - t0, 1.5)

            # The server still serves, with keep-alive.
            a = post(port, "/v1/traces", traces_pb([span("after")]))
            self.assertEqual(a.status, 200)
            self.assertEqual(o.stop(), 0)


class TestLogFlood(unittest.TestCase):
    def test_refusal_lines_rate_limited(self):
        """A flood of bad requests: per reason, one line a second, and the next line says how
        many were held back (microhttpd's 431 at warn, refused requests at debug)."""
        cfg = {"service": {"telemetry": {"logs": {"level": "debug"}}}}
        big = (b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nX-Flood: " + b"a" * (70 * 1024) +
               b"\r\n\r\n")

        def kinds(o):
            mhd = [l for l in o.logs() if l.get("msg") == "microhttpd" and
                   "431" in l.get("detail", "")]
            bad = [l for l in o.logs() if l.get("msg") == "request refused" and
                   l.get("path") == "/v1/traces" and l.get("http_status") == 400]
            return mhd, bad

        def counted(lines):
            return any(l.get("suppressed", 0) > 0 for l in lines)

        with Otel2dd(config=cfg) as o:
            port = o.http_port
            sent = 0
            t0 = time.monotonic()
            # Until each kind has written a line with a count: past one interval.
            while not all(counted(k) for k in kinds(o)):
                self.assertLess(time.monotonic() - t0, 20, "no line with a count")
                self.assertEqual(raw_exchange(port, big).status, 431)
                self.assertEqual(post(port, "/v1/traces", b"{", ctype=JS).status, 400)
                sent += 1
            # A new reason is written at once, after every line of the flood.
            self.assertEqual(post(port, "/v1/sentinel", b"").status, 404)
            o.wait_log(lambda l: l.get("path") == "/v1/sentinel", what="the sentinel line")
            elapsed = time.monotonic() - t0
            for lines in kinds(o):
                held = sum(l.get("suppressed", 0) for l in lines)
                # one line per second at most (and the first at once); nothing counted twice
                self.assertLessEqual(len(lines), int(elapsed) + 2, (len(lines), elapsed))
                self.assertGreaterEqual(len(lines), 2)
                self.assertLessEqual(len(lines) + held, sent)
            self.assertEqual(o.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
