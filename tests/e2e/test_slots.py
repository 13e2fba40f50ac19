#!/usr/bin/python3
"""End-to-end tests of "connection slots are earned" (issue 17, item 3).

Each attack runs against a real otel2dd with short deadlines, while a canary client opens a
NEW connection for every request and must be answered OK throughout:

- gRPC connections that send HEADERS without END_HEADERS (some trickle CONTINUATIONs) are
  closed by read_header_timeout, with GOAWAY;
- gRPC connections that never send the client preface are closed by the same deadline;
- HTTP/1.1 clients that send their request head one byte at a time are closed by
  read_header_timeout, which, unlike MHD's idle timeout, bytes do not reset;
- a flood of idle connections past max_connections on both ports: the longest-idle ones
  are evicted, and otel2dd_receiver_closed_connections_total counts them;
- under a low open-file limit (prlimit in the child), otel2dd warns at start, and clients
  past the limit are closed at once instead of hanging in the backlog.

    /usr/bin/python3 tests/e2e/test_slots.py [-v] [TestName ...]
"""
import http.client
import os
import re
import resource
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Otel2ddChecked as Otel2dd, wait_until  # noqa: E402
from test_grpc import (GRPC_OK, PREFACE, RawH2, framed, grpc_status, span,  # noqa: E402
                       traces_req)
from hyperframe.frame import (ContinuationFrame, HeadersFrame, SettingsFrame)  # noqa: E402
import hpack  # noqa: E402
import test_http  # noqa: E402

DEADLINE = "1s"  # read_header_timeout in these tests
WAIT = 15  # seconds an attack connection may take to be closed (deadline + ticks + load)


# ---- canaries: a new connection per request, answered OK ----

class OneWriteH2(RawH2):
    """Sends the preface, SETTINGS and the whole request in one write, as a client with its
    request ready does; then reads like RawH2."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.buf, self.frames, self.eof = b"", [], False
        self.pending = [PREFACE + SettingsFrame(0).serialize()]

    def send(self, *frames):
        if self.pending is None:
            return super().send(*frames)
        self.pending.append(b"".join(f.serialize() for f in frames))

    def flush(self):
        data, self.pending = b"".join(self.pending), None
        self.sock.sendall(data)


def grpc_request(port):
    h = OneWriteH2(port)
    try:
        h.headers(1)
        h.data(1, framed(traces_req([span(1)])), end=True)
        h.flush()
        hdrs, _, _ = h.result(1, timeout=10)
        return grpc_status(hdrs) == GRPC_OK
    finally:
        h.close()


def http_request(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = test_http.traces_pb([test_http.span("canary")])
        return test_http.post(port, "/v1/traces", body, conn=c).status == 200
    finally:
        c.close()


class Canary:
    """Sends requests on new connections until stopped; keeps what each attempt gave."""

    def __init__(self, fn, port, pace=0.05):
        self.fn, self.port, self.pace = fn, port, pace
        self.results = []
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_ev.is_set():
            try:
                ok = self.fn(self.port)
                self.results.append("ok" if ok else "not ok")
            except Exception as e:  # noqa: BLE001 - any failure counts against the canary
                self.results.append(repr(e))
            self.stop_ev.wait(self.pace)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(30)

    def wait_ok(self, n, what):
        """At least n answers so far, all OK."""
        wait_until(lambda: len(self.results) >= n, 30, "%d canary answers %s" % (n, what))
        return self.results

    def check(self, tc, what):
        bad = [r for r in self.results if r != "ok"]
        tc.assertGreater(len(self.results), 0, "no canary request during " + what)
        tc.assertEqual(bad, [], "canary failures during %s: %d of %d" %
                       (what, len(bad), len(self.results)))
        print("canary during %s: %d/%d OK" % (what, len(self.results) - len(bad),
                                              len(self.results)), file=sys.stderr)


def closed_count(o, transport, reason):
    text = o.scrape()
    m = re.search(r'^otel2dd_receiver_closed_connections_total\{transport="%s",reason="%s"\} '
                  r'(\d+)$' % (transport, reason), text, re.M)
    return int(m.group(1)) if m else 0


def peer_closed(sock):
    """Non-blocking: True once the server closed (EOF or reset); reads what came."""
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.setblocking(True)


def wait_all_closed(socks, what):
    open_ = list(socks)

    def done():
        open_[:] = [s for s in open_ if not peer_closed(s)]
        return not open_
    wait_until(done, WAIT, "%s to be closed (%d left)" % (what, len(open_)), interval=0.05)


# ---- gRPC header deadlines ----

def unfinished_headers(port, sid=1, pad=4000):
    """Preface, SETTINGS and a HEADERS frame without END_HEADERS: a literal header value cut
    in the middle, so the CONTINUATIONs a trickler sends stay valid HPACK."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    enc = hpack.Encoder()  # one per connection: HPACK state is per connection
    hdrs = [(":method", "POST"), (":scheme", "http"), (":path", "/x"),
            (":authority", "a"), ("x-pad", "a" * pad)]
    block = enc.encode(hdrs, huffman=False)
    s.sendall(PREFACE + SettingsFrame(0).serialize() +
              HeadersFrame(sid, data=block[:len(block) - pad // 2]).serialize())
    return s


class GrpcHeaderDeadlineTest(unittest.TestCase):
    def test_unfinished_header_blocks_are_closed(self):
        cfg = {"protocols": {"grpc": {"read_header_timeout": DEADLINE, "max_connections": 100}}}
        with Otel2dd(cfg, http=False) as o, Canary(grpc_request, o.grpc_port) as canary:
            canary.wait_ok(1, "before the attack")
            stuck = [unfinished_headers(o.grpc_port) for _ in range(60)]
            trick = [unfinished_headers(o.grpc_port) for _ in range(10)]
            t0 = time.monotonic()
            stop = threading.Event()

            def trickle():
                # a CONTINUATION of 5 bytes (never END_HEADERS) on each, every 250 ms: fewer
                # than nghttp2's own cap on CONTINUATIONs per block (8) before the deadline
                while not stop.is_set():
                    for s in trick:
                        try:
                            s.sendall(ContinuationFrame(1, data=b"a" * 5).serialize())
                        except OSError:
                            pass
                    stop.wait(0.25)
            tt = threading.Thread(target=trickle, daemon=True)
            tt.start()
            try:
                wait_all_closed(stuck + trick, "unfinished header blocks")
            finally:
                stop.set()
                tt.join(10)
            print("header blocks closed after %.1fs" % (time.monotonic() - t0), file=sys.stderr)
            canary.wait_ok(len(canary.results) + 3, "after the attack")
            wait_until(lambda: closed_count(o, "grpc", "read_header_timeout") >= 70, 10,
                       "70 read_header_timeout closes counted")
            canary.check(self, "unfinished gRPC header blocks")
            for s in stuck + trick:
                s.close()

    def test_goaway_before_the_close(self):
        cfg = {"protocols": {"grpc": {"read_header_timeout": DEADLINE}}}
        with Otel2dd(cfg, http=False) as o:
            h = RawH2(o.grpc_port)
            h.wait(h.settings, what="SETTINGS")
            hdrs = [(":method", "POST"), (":scheme", "http"), (":path", "/x"),
                    (":authority", "a")]
            h.send(HeadersFrame(1, data=h.enc.encode(hdrs)))  # no END_HEADERS
            h.wait(lambda: h.eof, timeout=WAIT, what="the close")
            self.assertTrue(h.goaways(), "no GOAWAY before the close")
            self.assertIn(b"read_header_timeout", h.goaways()[0].additional_data)
            h.close()

    def test_no_preface_is_closed(self):
        cfg = {"protocols": {"grpc": {"read_header_timeout": DEADLINE}}}
        with Otel2dd(cfg, http=False) as o, Canary(grpc_request, o.grpc_port) as canary:
            canary.wait_ok(1, "before the attack")
            silent = [socket.create_connection(("127.0.0.1", o.grpc_port), timeout=10)
                      for _ in range(30)]
            half = socket.create_connection(("127.0.0.1", o.grpc_port), timeout=10)
            half.sendall(PREFACE[:10])  # half the magic, then nothing
            wait_all_closed(silent + [half], "connections without a preface")
            canary.wait_ok(len(canary.results) + 3, "after the attack")
            canary.check(self, "connections without a preface")
            self.assertGreaterEqual(closed_count(o, "grpc", "read_header_timeout"), 31)
            for s in silent + [half]:
                s.close()


# ---- HTTP request head deadline ----

class HttpHeadDeadlineTest(unittest.TestCase):
    def test_slow_request_heads_are_closed(self):
        cfg = {"protocols": {"http": {"read_header_timeout": DEADLINE, "max_connections": 100}}}
        head = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/x-protobuf\r\nContent-Length: 2\r\n\r\n")
        with Otel2dd(cfg, grpc=False) as o, Canary(http_request, o.http_port) as canary:
            canary.wait_ok(1, "before the attack")
            slow = [socket.create_connection(("127.0.0.1", o.http_port), timeout=10)
                    for _ in range(40)]
            stop = threading.Event()

            def drip():
                # one byte per connection every 100 ms: MHD's idle timeout never fires
                i = 0
                while not stop.is_set() and i < len(head):
                    for s in slow:
                        try:
                            s.sendall(head[i:i + 1])
                        except OSError:
                            pass
                    i += 1
                    stop.wait(0.1)
            t = threading.Thread(target=drip, daemon=True)
            t.start()
            try:
                wait_all_closed(slow, "slow request heads")
            finally:
                stop.set()
                t.join(10)
            canary.wait_ok(len(canary.results) + 3, "after the attack")
            wait_until(lambda: closed_count(o, "http", "read_header_timeout") >= 40, 10,
                       "40 read_header_timeout closes counted")
            canary.check(self, "slow HTTP request heads")
            for s in slow:
                s.close()


# ---- max_connections: idle connections make room ----

class IdleFloodTest(unittest.TestCase):
    def test_idle_flood_evicts_and_newcomers_are_served(self):
        max_conns = 50
        # long header deadlines: only eviction frees slots here
        cfg = {"protocols": {
            "grpc": {"max_connections": max_conns, "read_header_timeout": "60s"},
            "http": {"max_connections": max_conns, "read_header_timeout": "60s"}}}
        with Otel2dd(cfg) as o, Canary(grpc_request, o.grpc_port) as gcan, \
                Canary(http_request, o.http_port) as hcan:
            gcan.wait_ok(1, "before the flood")
            hcan.wait_ok(1, "before the flood")
            idle = []
            stop = threading.Event()

            def flood(port, grpc_preface):
                # 6 x max_connections idle connections, as fast as they connect
                for _ in range(6 * max_conns):
                    if stop.is_set():
                        return
                    try:
                        s = socket.create_connection(("127.0.0.1", port), timeout=10)
                        if grpc_preface:
                            s.sendall(PREFACE + SettingsFrame(0).serialize())
                        idle.append(s)
                    except OSError:
                        pass
            threads = [threading.Thread(target=flood, args=(o.grpc_port, True), daemon=True),
                       threading.Thread(target=flood, args=(o.http_port, False), daemon=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            stop.set()
            self.assertEqual(len(idle), 12 * max_conns, "flood connections that got in")
            # each port evicted most of what came past its limit (a newcomer that finds
            # nothing idle for 0.1 s, as on a starved machine, is refused instead)
            for tr in ("grpc", "http"):
                wait_until(lambda: closed_count(o, tr, "evicted") >= 4 * max_conns, 10,
                           "%s evictions (have %d)" % (tr, closed_count(o, tr, "evicted")))
            gcan.wait_ok(len(gcan.results) + 3, "after the flood")
            hcan.wait_ok(len(hcan.results) + 3, "after the flood")
            print("evicted: grpc %d, http %d" % (closed_count(o, "grpc", "evicted"),
                                                 closed_count(o, "http", "evicted")),
                  file=sys.stderr)
            gcan.check(self, "an idle flood (gRPC canary)")
            hcan.check(self, "an idle flood (HTTP canary)")
            for s in idle:
                s.close()


# ---- the descriptor limit ----

NOFILE = 160


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class FdLimitTest(unittest.TestCase):
    def test_low_fd_limit_warns_and_refuses_fast(self):
        with Otel2dd({"protocols": {"grpc": {}}}, http=False, preexec_fn=low_nofile) as o:
            warn = o.wait_log(lambda l: l.get("level") == "warn" and
                              "open file limit" in l.get("msg", ""),
                              what="the start-up warning about the open file limit")
            self.assertEqual(warn["nofile"], NOFILE)
            self.assertGreater(warn["needed"], NOFILE)
            self.assertTrue(grpc_request(o.grpc_port))
            # hold idle gRPC connections (preface sent: no deadline) past the limit
            held, refused = [], 0
            for _ in range(NOFILE + 20):
                h = RawH2(o.grpc_port)
                try:
                    h.wait(lambda: h.settings() or h.eof, timeout=10, what="SETTINGS or close")
                except AssertionError:
                    h.close()
                    self.fail("a connection past the limit neither served nor closed")
                if h.eof:
                    refused += 1
                    h.close()
                else:
                    held.append(h)
            self.assertGreater(refused, 0, "no connection refused under nofile=%d" % NOFILE)
            self.assertLess(len(held), NOFILE)
            # one more: closed at once (EOF or reset), not left hanging in the backlog
            s = socket.create_connection(("127.0.0.1", o.grpc_port), timeout=10)
            self.assertIsNotNone(test_http.closed_within(s, 5),
                                 "a client past the limit was left hanging")
            s.close()
            o.wait_log(lambda l: "out of file descriptors" in l.get("msg", ""),
                       what="the refusal warning")
            print("held %d, refused %d under nofile=%d" % (len(held), refused, NOFILE),
                  file=sys.stderr)
            for h in held:
                h.close()
            # descriptors come back: served again
            wait_until(lambda: grpc_request(o.grpc_port), 10, "a request served again")


if __name__ == "__main__":
    unittest.main()
