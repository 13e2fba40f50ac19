"""End-to-end tests of `otel2dd health [URL]` (collector/commands/health_cmd.c), the container health
check: against a real otel2dd (ready, draining), and against small sockets that refuse,
never answer, answer garbage or answer too much.

    /usr/bin/python3 tests/e2e/test_health_cmd.py [-v]
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fake_intake import TRACES, FakeIntake  # noqa: E402
from harness import (BIN, Otel2dd, assert_no_sanitizer_report, request_in_flight,  # noqa: E402
                     wait_until)


def health(*args, timeout=30, env=None):
    """Runs `otel2dd health ARGS`; returns (rc, stdout, stderr, seconds)."""
    e = {k: v for k, v in os.environ.items()
         if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([BIN, "health"] + list(args), capture_output=True, timeout=timeout, env=e)
    assert_no_sanitizer_report(p.stderr)
    return p.returncode, p.stdout.decode(), p.stderr.decode(), time.monotonic() - t0


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeServer:
    """Listens on 127.0.0.1:0 and runs handler(conn) for each accepted connection."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d/" % self.port
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            self.handler(conn)
        except OSError:
            pass  # the client gave up first: that is what some tests want

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def read_request(conn):
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = conn.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def answer(raw):
    def handler(conn):
        read_request(conn)
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # until the client closes
    return handler


class TestHealthCommand(unittest.TestCase):
    def assert_unhealthy(self, res, *needles):
        rc, out, err, _ = res
        self.assertEqual(rc, 1, (out, err))
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "want one line on stderr, got %r" % err)
        self.assertTrue(lines[0].startswith("otel2dd health: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]

    def test_ready_then_draining(self):
        with Otel2dd() as o:
            url = "http://127.0.0.1:%d/" % o.health_port
            wait_until(lambda: health(url)[0] == 0, 10, "otel2dd health to pass")
            rc, out, err, _ = health(url)
            self.assertEqual((rc, err), (0, ""))
            self.assertIn("HTTP 200 (status: ready)", out)
            # http_proxy pointing nowhere must not matter: the check goes straight to the URL.
            rc, out, err, _ = health(url, env={"http_proxy": "http://127.0.0.1:%d" % closed_port(),
                                               "HTTP_PROXY": "http://127.0.0.1:1"})
            self.assertEqual((rc, err), (0, ""))

            # A request in flight keeps the drain going (see harness.request_in_flight).
            hold = request_in_flight(o.http_port)
            o.proc.send_signal(signal.SIGTERM)
            seen = []

            def draining():
                res = health(url)
                seen.append(res)
                return res[0] == 1 and "HTTP 503 (status: draining)" in res[2]

            wait_until(draining, 20, "otel2dd health to report draining")
            self.assert_unhealthy(seen[-1], url, "HTTP 503 (status: draining)")
            self.assertIsNone(o.proc.poll(), "otel2dd exited before the check saw it drain")
            hold.close()
            o.proc.wait(60)
            self.assertEqual(o.stop(), 0)
            self.assert_unhealthy(health(url), "Connection refused")

    def test_draining_while_the_queue_flushes(self):
        # The drain of a real deployment: SIGTERM with spans still queued for an intake that
        # keeps failing. The check must say 503 draining until the queue is through.
        intake = FakeIntake().start()
        intake.default_status[TRACES] = 500
        cfg = {"exporters": {"datadog": {
            "api": {"key": "test-key", "endpoint": intake.url},
            "traces": {"endpoint": intake.url, "flush_interval": "100ms"},
            "retry_on_failure": {"max_elapsed_time": "60s"}}}}
        now = time.time_ns()
        span = {"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "drain"}}]},
            "scopeSpans": [{"spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                "name": "GET /", "kind": 2, "startTimeUnixNano": str(now - 10**6),
                "endTimeUnixNano": str(now)}]}]}]}
        try:
            with Otel2dd(config=cfg) as o:
                url = "http://127.0.0.1:%d/" % o.health_port
                wait_until(lambda: health(url)[0] == 0, 10, "otel2dd health to pass")
                req = urllib.request.Request(
                    "http://127.0.0.1:%d/v1/traces" % o.http_port, data=json.dumps(span).encode(),
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    self.assertEqual(r.status, 200)
                wait_until(lambda: intake.requests_to(TRACES), 10, "a first failed send")
                o.proc.send_signal(signal.SIGTERM)
                res = wait_until(lambda: (lambda r: r[0] == 1 and r)(health(url)), 10,
                                 "otel2dd health to fail while draining")
                self.assert_unhealthy(res, "HTTP 503 (status: draining)")
                self.assertIsNone(o.proc.poll(), "exited with the queue still full")
                intake.default_status[TRACES] = 202
                o.proc.wait(30)
                self.assertEqual(o.stop(), 0)
                self.assertTrue(intake.span_ids(), "the queued span was never delivered")
                self.assert_unhealthy(health(url), "Connection refused")
        finally:
            intake.stop()

    def test_closed_port(self):
        res = health("http://127.0.0.1:%d/" % closed_port())
        self.assert_unhealthy(res, "cannot connect: Connection refused")

    def test_default_url(self):
        # Whatever runs on this machine, the default is 127.0.0.1:13133 and the line says so.
        rc, out, err, _ = health()
        self.assertIn("http://127.0.0.1:13133/", out + err)
        self.assertIn(rc, (0, 1))

    def test_silent_server_times_out(self):
        def silent(conn):
            read_request(conn)
            conn.recv(1)  # never answers; returns when the client hangs up

        with FakeServer(silent) as s:
            res = health("--timeout", "500ms", s.url)
            line = self.assert_unhealthy(res, "timeout: no answer within 500 ms")
            self.assertGreaterEqual(res[3], 0.45, line)
            # The default bound is 2 s: short enough for ECS's smallest health-check timeout.
            res = health(s.url)
            self.assert_unhealthy(res, "timeout: no answer within 2000 ms")
            self.assertGreaterEqual(res[3], 1.9)

    def test_connect_timeout(self):
        # A full accept queue (backlog 0, one connection never accepted): Linux drops the
        # next SYN, so the check's connect hangs and must give up at the bound.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        filler = socket.create_connection(s.getsockname(), timeout=5)
        try:
            res = health("--timeout", "500ms", "http://127.0.0.1:%d/" % s.getsockname()[1])
            self.assert_unhealthy(res, "timeout: no connection within 500 ms")
            self.assertGreaterEqual(res[3], 0.45)
        finally:
            filler.close()
            s.close()

    def test_status_and_body(self):
        cases = [
            (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 22\r\n\r\n"
             b"{\"status\":\"starting\"}\n", 1, "HTTP 503 (status: starting)"),
            (b"HTTP/1.1 500 Oops\r\nContent-Length: 12\r\n\r\nbad\x00\nthing\r\n", 1,
             "HTTP 500: bad??thing??"),
            (b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n",
             1, "HTTP 302"),
            (b"HTTP/1.1 204 No Content\r\n\r\n", 1, "HTTP 204"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, "HTTP 200: ok"),
            (b"HTTP/1.0 200 OK\r\n\r\nfine", 0, "HTTP 200: fine"),
        ]
        for raw, want_rc, needle in cases:
            with self.subTest(raw=raw[:20]), FakeServer(answer(raw)) as s:
                res = health(s.url)
                if want_rc == 0:
                    self.assertEqual(res[0], 0, res)
                    self.assertIn(needle, res[1])
                else:
                    self.assert_unhealthy(res, needle)

    def test_garbage(self):
        cases = [
            (b"garbage garbage\r\n\r\n", "not an HTTP response"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 20, "not an HTTP response"),
            (b"", "closed the connection without answering"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "transfer closed"),
        ]
        for raw, needle in cases:
            with self.subTest(raw=raw[:20]), FakeServer(answer(raw)) as s:
                res = health(s.url)
                self.assert_unhealthy(res, needle)

    def test_huge_response(self):
        def huge(length_header):
            def handler(conn):
                read_request(conn)
                head = b"HTTP/1.1 200 OK\r\n"
                head += (b"Content-Length: 104857600\r\n" if length_header
                         else b"Connection: close\r\n")
                conn.sendall(head + b"\r\n")
                chunk = b"x" * 65536
                for _ in range(1600):  # 100 MiB if the client kept reading
                    conn.sendall(chunk)
            return handler

        for length_header in (True, False):
            with self.subTest(length_header=length_header), FakeServer(huge(length_header)) as s:
                res = health(s.url)
                self.assert_unhealthy(res, "response body larger than 4096 bytes")

        def many_headers(conn):
            read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n" * 1000
                         + b"Content-Length: 0\r\n\r\n")
        with FakeServer(many_headers) as s:
            self.assert_unhealthy(health(s.url), "response headers larger than 8192 bytes")

        def one_huge_header(conn):
            read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * (1 << 20) + b"\r\n\r\n")
        with FakeServer(one_huge_header) as s:
            self.assert_unhealthy(health(s.url), "response header line too long")

    def test_bad_urls_and_arguments(self):
        cases = [
            (["https://127.0.0.1:13133/"], "scheme 'https' is not supported: only http://"),
            (["ftp://127.0.0.1/"], "scheme 'ftp' is not supported"),
            (["file:///etc/passwd"], "scheme 'file' is not supported"),
            (["127.0.0.1:13133"], "has no scheme: write http://HOST:PORT/"),
            (["127.0.0.1\n:13133"], "'127.0.0.1?:13133' has no scheme"),
            (["http://"], "bad URL"),
            (["http://[::1/"], "bad URL"),
            (["http://127.0.0.1:99999/"], "bad URL"),
            (["http://a b/"], "bad URL"),
            (["http://127.0.0.1/\nsecond line"], "bad URL"),
            (["--timeout", "0", "http://127.0.0.1/"], "bad --timeout '0'"),
            (["--timeout", "61s", "http://127.0.0.1/"], "at most 60s"),
            (["--timeout", "2m", "http://127.0.0.1/"], "bad --timeout"),
            (["http://127.0.0.1:1/", "http://127.0.0.1:2/"], "one URL at most"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                # Exit 1, never 2: Docker reserves 2 in a HEALTHCHECK.
                self.assert_unhealthy(health(*args), needle)
        rc, out, err, _ = health("--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: otel2dd health", out)
        rc, out, err, _ = health("--bogus")
        self.assertEqual(rc, 1)
        self.assertIn("usage: otel2dd health", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
