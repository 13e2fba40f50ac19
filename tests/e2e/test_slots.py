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
  are evicted, and otel2dd_receiver_closed_connections_total counts them, with the
  newcomers refused when nothing was idle (reason refused_max_connections);
- every slot inside a request: nothing can be evicted, and each newcomer is closed at once
  and counted as refused_max_connections, on both ports;
- under a low open-file limit (prlimit in the child), otel2dd warns at start, and clients
  past the limit are closed at once instead of hanging in the backlog, each counted
  (reason refused_fd_limit).

    /usr/bin/python3 tests/e2e/test_slots.py [-v] [TestName ...]
"""
import multiprocessing
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
from hyperframe.frame import (ContinuationFrame, HeadersFrame, PingFrame,  # noqa: E402
                              SettingsFrame)
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


HTTP_CANARY_BODY = None


def http_request(port):
    """One request, its bytes sent the moment the connection is up: a client that connects and
    then waits is idle, and the longest-idle connection is the one an eviction closes."""
    global HTTP_CANARY_BODY
    if HTTP_CANARY_BODY is None:
        HTTP_CANARY_BODY = test_http.traces_pb([test_http.span("canary")])
    req = (b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           b"Content-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n"
           % len(HTTP_CANARY_BODY)) + HTTP_CANARY_BODY
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(req)
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got.startswith(b"HTTP/1.1 200 ")
    finally:
        s.close()


def flood_idle(pipe, targets, n):
    """In a child process: n idle connections to each (port, grpc_preface) of targets, as
    fast as they connect (gRPC ones send the preface and SETTINGS); sends the number that
    got in, then keeps them open until told to close."""
    idle = []

    def flood(port, grpc_preface):
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                if grpc_preface:
                    s.sendall(PREFACE + SettingsFrame(0).serialize())
                idle.append(s)
            except OSError:
                pass
    threads = [threading.Thread(target=flood, args=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    pipe.send(len(idle))
    pipe.poll(120)
    for s in idle:
        s.close()


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


def closed_count(o, transport, reason, text=None):
    """The closed-connection counter of transport and reason; every series is shown from the
    start, so a missing one fails the test."""
    text = o.scrape() if text is None else text
    m = re.search(r'^otel2dd_receiver_closed_connections_total\{transport="%s",reason="%s"\} '
                  r'(\d+)$' % (transport, reason), text, re.M)
    if m is None:
        raise AssertionError("no closed-connections series for %s/%s in /metrics"
                             % (transport, reason))
    return int(m.group(1))


def past_limit_closed(o, transport):
    """Connections closed to keep transport within max_connections: idle ones evicted, and
    newcomers refused when nothing idle made room."""
    text = o.scrape()
    return (closed_count(o, transport, "evicted", text) +
            closed_count(o, transport, "refused_max_connections", text))


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
            # The flood runs in its own process: in this one it would hold the interpreter
            # lock between a canary's connect and its send, leaving the canary idle (and
            # rightly evicted) for reasons that are the test's own.
            parent, child = multiprocessing.Pipe()
            flooder = multiprocessing.Process(
                target=flood_idle, args=(child, [(o.grpc_port, True), (o.http_port, False)],
                                         6 * max_conns), daemon=True)
            flooder.start()
            try:
                self.assertTrue(parent.poll(60), "the flood did not finish within 60 s")
                self.assertEqual(parent.recv(), 12 * max_conns, "flood connections that got in")
                self.check_after_flood(o, max_conns, gcan, hcan)
            finally:
                parent.send("close")
                flooder.join(30)

    def check_after_flood(self, o, max_conns, gcan, hcan):
        # each port evicted most of what came past its limit (a newcomer that finds
        # nothing idle for 0.1 s, as on a starved machine, is refused instead)
        for tr in ("grpc", "http"):
            wait_until(lambda: closed_count(o, tr, "evicted") >= 4 * max_conns, 10,
                       "%s evictions (have %d)" % (tr, closed_count(o, tr, "evicted")))
            # every flood connection past the limit was evicted or refused, and counted:
            # at most max_conns of them can still be open
            wait_until(lambda: past_limit_closed(o, tr) >= 5 * max_conns, 10,
                       "%s evicted + refused_max_connections >= %d (have %d)"
                       % (tr, 5 * max_conns, past_limit_closed(o, tr)))
            self.assertEqual(closed_count(o, tr, "refused_fd_limit"), 0)
        gcan.wait_ok(len(gcan.results) + 3, "after the flood")
        hcan.wait_ok(len(hcan.results) + 3, "after the flood")
        print("evicted: grpc %d, http %d; refused at max_connections: grpc %d, http %d"
              % (closed_count(o, "grpc", "evicted"), closed_count(o, "http", "evicted"),
                 closed_count(o, "grpc", "refused_max_connections"),
                 closed_count(o, "http", "refused_max_connections")), file=sys.stderr)
        gcan.check(self, "an idle flood (gRPC canary)")
        hcan.check(self, "an idle flood (HTTP canary)")


class FullAndBusyTest(unittest.TestCase):
    """At max_connections with every connection inside a request, nothing can be evicted:
    a newcomer is closed at once and counted as refused_max_connections."""

    @staticmethod
    def busy_grpc(port):
        h = RawH2(port)
        h.headers(1)  # a request begun, its message still to come
        # nghttp2 answers frames in order: the PING's ACK means the stream is open
        h.send(PingFrame(0, opaque_data=b"slotbusy"))
        h.wait(lambda: any(isinstance(f, PingFrame) and "ACK" in f.flags for f in h.frames),
               what="PING ACK")
        return h.sock

    @staticmethod
    def busy_http(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        # MHD sends 100 Continue once the head is handled: the request is then in progress
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/x-protobuf\r\nContent-Length: 100\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError("closed before 100 Continue: %r" % got)
            got += chunk
        if not got.startswith(b"HTTP/1.1 100"):
            raise AssertionError("no 100 Continue: %r" % got)
        return s

    def test_busy_slots_refuse_newcomers_and_count_them(self):
        max_conns = 3
        cfg = {"protocols": {
            "grpc": {"max_connections": max_conns, "read_header_timeout": "60s"},
            "http": {"max_connections": max_conns, "read_header_timeout": "60s"}}}
        with Otel2dd(cfg) as o:
            for tr, port, busy_one in (("grpc", o.grpc_port, self.busy_grpc),
                                       ("http", o.http_port, self.busy_http)):
                busy = []
                try:
                    for _ in range(max_conns):
                        busy.append(busy_one(port))
                    for n in range(1, 4):
                        s = socket.create_connection(("127.0.0.1", port), timeout=10)
                        self.assertIsNotNone(test_http.closed_within(s, 5),
                                             "%s: a newcomer at max_connections was left "
                                             "hanging" % tr)
                        s.close()
                        # counted before the close
                        self.assertEqual(closed_count(o, tr, "refused_max_connections"), n)
                    self.assertEqual(closed_count(o, tr, "evicted"), 0)
                    self.assertEqual(closed_count(o, tr, "refused_fd_limit"), 0)
                    for b in busy:
                        b.setblocking(False)
                        try:
                            self.assertNotEqual(b.recv(1), b"", "%s: a busy connection was "
                                                "closed" % tr)
                        except BlockingIOError:
                            pass  # nothing said, still open
                finally:
                    for b in busy:
                        b.close()


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
            # /metrics needs a descriptor too, so it is read now: each client refused above
            # was counted before its close, the one past the limit included
            fd_refused = closed_count(o, "grpc", "refused_fd_limit")
            self.assertGreaterEqual(fd_refused, refused + 1)
            print("refused_fd_limit %d" % fd_refused, file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
