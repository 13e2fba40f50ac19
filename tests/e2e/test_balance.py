#!/usr/bin/python3
"""End-to-end tests of connection balancing (collector/receivers/acceptor.c) for both receivers.

Eight connections opened at once, one request on each: with otel2dd's log at debug level,
every connection a worker adopts is logged as {"msg":"connection","server":..,"worker":N}.
The acceptor gives each connection to the worker with the fewest open connections (ties: the
lowest index), so with all eight open the split is exact: on two workers, 4 and 4. Also for
HTTP, which gained max_connections enforcement in the acceptor: at the limit the longest-idle
connection is closed to make room for a newcomer, a newcomer is closed at once when every
connection has a request in progress, and closed connections give their slot back.

    /usr/bin/python3 tests/e2e/test_balance.py [-v] [TestName ...]
"""
import collections
import http.client
import os
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Otel2dd, wait_until  # noqa: E402
from test_grpc import GRPC_OK, RawH2, framed, grpc_status, span, traces_req  # noqa: E402
import test_http  # noqa: E402

NCONNS = 8
DEBUG = {"service": {"telemetry": {"logs": {"level": "debug"}}}}


def expected_split(nworkers, n=NCONNS):
    """Least-loaded with ties to the lowest index, nothing closed: {worker: connections}."""
    return {w: n // nworkers + (1 if w < n % nworkers else 0)
            for w in range(min(nworkers, n))}


def workers_of(o):
    """Worker threads per receiver: the gRPC "listening" line says; HTTP uses as many."""
    for l in o.logs():
        if l.get("msg") == "listening" and l.get("server") == "grpc":
            return l["workers"]
    raise AssertionError("no gRPC listening line")


def adopted(o, server):
    return [l["worker"] for l in o.logs()
            if l.get("msg") == "connection" and l.get("server") == server]


class BalanceTest(unittest.TestCase):
    def check_split(self, o, server):
        nworkers = workers_of(o)
        got = wait_until(lambda: len(adopted(o, server)) >= NCONNS and adopted(o, server),
                         10, "%d %s connection lines" % (NCONNS, server))
        self.assertEqual(len(got), NCONNS, got)
        counts = dict(collections.Counter(got))
        self.assertEqual(counts, expected_split(nworkers), "workers: %d" % nworkers)
        if nworkers > 1:
            self.assertGreater(len(counts), 1)

    def test_grpc_connections_spread_evenly(self):
        with Otel2dd(DEBUG, http=False) as o:
            conns = [RawH2(o.grpc_port) for _ in range(NCONNS)]
            for c in conns:
                c.wait(c.settings, what="SETTINGS (the connection was adopted)")
            for i, c in enumerate(conns):
                c.headers(1)
                c.data(1, framed(traces_req([span(i)])), end=True)
            for c in conns:
                self.assertEqual(grpc_status(c.result(1)[0]), GRPC_OK)
            self.check_split(o, "grpc")
            o.wait_items("traces", NCONNS)
            for c in conns:
                c.close()

    def test_http_connections_spread_evenly(self):
        with Otel2dd(DEBUG) as o:
            conns = [http.client.HTTPConnection("127.0.0.1", o.http_port, timeout=30)
                     for _ in range(NCONNS)]
            for c in conns:
                c.connect()  # all open before any request
            for i, c in enumerate(conns):
                c.request("POST", "/v1/traces",
                          body=test_http.traces_pb([test_http.span("b%d" % i)]),
                          headers={"Content-Type": test_http.PB})
            for c in conns:
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            self.check_split(o, "http")
            o.wait_items("traces", NCONNS)
            for c in conns:
                c.close()


def busy_http(port):
    """A connection with a request in progress: its head is in (100 Continue), no body yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: " +
                 test_http.PB.encode() + b"\r\nContent-Length: 10\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("closed before 100 Continue: %r" % got)
        got += chunk
    assert got.startswith(b"HTTP/1.1 100"), got
    return sock


class HttpMaxConnectionsTest(unittest.TestCase):
    def test_at_max_connections_idle_makes_room_busy_is_kept(self):
        with Otel2dd({"protocols": {"http": {"max_connections": 2}}}) as o:
            body = test_http.traces_pb([test_http.span("m")])
            a, b = busy_http(o.http_port), busy_http(o.http_port)
            c = socket.create_connection(("127.0.0.1", o.http_port), timeout=10)
            self.assertIsNotNone(test_http.closed_within(c, 5), "the third connection stayed open")
            c.close()
            o.wait_log(lambda l: l.get("level") == "warn" and "max_connections" in l.get("msg")
                       and l.get("server") == "http", what="the max_connections warning")
            # b's request ends (a bad body gets its answer): b is idle now, and the next
            # newcomer takes its slot
            b.sendall(b"0123456789")
            b.settimeout(10)
            self.assertTrue(b.recv(4096).startswith(b"HTTP/1.1 400"))
            # (MHD marks the request done just after the answer is out: until then a
            # newcomer may still find nothing idle and be closed, so it tries again)
            def newcomer():
                d = http.client.HTTPConnection("127.0.0.1", o.http_port, timeout=10)
                try:
                    if test_http.post(o.http_port, "/v1/traces", body, conn=d).status == 200:
                        return d
                except (ConnectionError, http.client.HTTPException, OSError):
                    pass
                d.close()
                return None
            d = wait_until(newcomer, 10, "a newcomer served")
            self.assertIsNotNone(test_http.closed_within(b, 5), "the idle connection stayed open")
            # the busy one was kept and finishes
            a.sendall(b"0123456789")
            a.settimeout(10)
            self.assertTrue(a.recv(4096).startswith(b"HTTP/1.1 400"))
            for s in (a, b):
                s.close()

            # with d open one slot is left: a closed connection gives it back, every time
            def serves():
                e = http.client.HTTPConnection("127.0.0.1", o.http_port, timeout=5)
                try:
                    return test_http.post(o.http_port, "/v1/traces", body, conn=e).status == 200
                except (ConnectionError, http.client.HTTPException, OSError):
                    return False
                finally:
                    e.close()
            for _ in range(10):
                wait_until(serves, 10, "a free connection slot")
            d.close()


if __name__ == "__main__":
    unittest.main()
