#!/usr/bin/python3
"""End-to-end tests of the receivers' memory budget (receivers.otlp.memory_limit_mib): bodies
are reserved as their bytes arrive, never for what a Content-Length or a gRPC length prefix
only declares; one connection holds at most its share of the budget; an upload that is
abandoned, reset or too slow gives back what it held at once.

Runs build/otel2dd (or $OTEL2DD_BIN) through harness.Otel2ddChecked on 127.0.0.1 with ephemeral
ports. The attackers are raw sockets and raw HTTP/2 frames (test_grpc.RawH2), since no real
client declares a body it does not send; the clients that must keep being served are real
ones (urllib, grpcio), each on a new connection. What the receivers hold is read from
otel2dd_receiver_buffered_bytes on /metrics. Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_budget.py [-v] [TestName ...]
"""
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Otel2ddChecked, wait_until  # noqa: E402
from otlp_client import send_grpc, send_http  # noqa: E402
from test_grpc import (GRPC_DEADLINE_EXCEEDED, GRPC_OK, GRPC_RESOURCE_EXHAUSTED,  # noqa: E402
                       GRPC_UNAVAILABLE, RawH2, buffered_bytes as buffered, framed,
                       grpc_status, span, traces_req)
from test_http import closed_within  # noqa: E402

import grpc  # noqa: E402
from hyperframe.frame import PingFrame, RstStreamFrame  # noqa: E402

MIB = 1 << 20
FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE's default: the largest DATA frame a client may send
CANCEL = 0x8


def wait_buffered(o, pred, what, timeout=10):
    """Polls buffered bytes until pred(value) holds; returns the value."""
    last = {}

    def check():
        last["v"] = buffered(o)
        return pred(last["v"])
    try:
        wait_until(check, timeout, what)
    except AssertionError:
        raise AssertionError("%s: otel2dd_receiver_buffered_bytes stayed %s" % (what, last))
    return last["v"]


def http_head(port, length, expect=True):
    """A socket whose POST /v1/traces headers declare `length` bytes of body, none sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\n" +
              (b"Expect: 100-continue\r\n" if expect else b"") +
              b"Content-Length: %d\r\n\r\n" % length)
    return s


def first_answer(s, timeout=10):
    """The status code of the first response on s (100 Continue included), once its header
    block is in."""
    s.settimeout(timeout)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError("closed without an answer")
        got += chunk
    return int(got.split(b" ", 2)[1])


def send_data(h, sid, payload, end=False):
    """payload on stream sid in DATA frames no larger than the client may send."""
    for i in range(0, len(payload), FRAME):
        last = i + FRAME >= len(payload)
        h.data(sid, payload[i:i + FRAME], end=end and last)
    if not payload and end:
        h.data(sid, b"", end=True)


def ready_h2(port):
    """A raw HTTP/2 connection whose SETTINGS exchange is done (the server's 1 MiB stream
    window applies from then on)."""
    h = RawH2(port)
    h.wait(h.settings, what="SETTINGS")
    return h


def synced(h):
    """Waits until the server has processed everything sent on h so far: it answers PINGs in
    order."""
    opaque = os.urandom(8)
    h.send(PingFrame(0, opaque_data=opaque))
    h.wait(lambda: any(isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == opaque
                       for f in h.frames), what="PING ACK")


def message_of_size(n, service="budget"):
    """A serialized ExportTraceServiceRequest of exactly n bytes (n > 200)."""
    pad = n - len(traces_req([span(1)], service=service, pad=1)) + 1
    for _ in range(8):
        body = traces_req([span(1)], service=service, pad=max(pad, 1))
        if len(body) == n:
            return body
        pad += n - len(body)
    raise AssertionError("cannot build a %d-byte request" % n)


class SquattingTest(unittest.TestCase):
    """Declared sizes with no bytes behind them: 13 HTTP requests declaring 256 MiB in all
    (the default budget, less than 13 bytes short; each under the default 20 MiB
    max_request_body_size) and two gRPC connections with 40 streams each declaring 4 MiB and
    sending 1 KiB (320 MiB declared). Meanwhile clients on new connections are served on both
    ports, every time."""

    def test_declared_sizes_lock_no_one_out(self):
        with Otel2ddChecked() as o:
            squat, answers = [], []
            for _ in range(13):
                s = http_head(o.http_port, 256 * MIB // 13)
                squat.append(s)
                # 100 Continue: the server took the headers and waits for the body.
                answers.append(first_answer(s))
            h2 = []
            for _ in range(2):
                h = ready_h2(o.grpc_port)
                for sid in range(1, 81, 2):
                    h.headers(sid)
                    h.data(sid, b"\x00" + (4 * MIB).to_bytes(4, "big") + b"\x0a" * 1024)
                synced(h)
                h2.append(h)
            held = buffered(o)

            rounds, ok_http, ok_grpc = 10, 0, 0
            for i in range(rounds):
                body = traces_req([span(i)], service="canary")
                ok_http += send_http(o.http_port, body) == 200
                ok_grpc += send_grpc(o.grpc_port, body) == grpc.StatusCode.OK
            self.assertEqual((ok_http, ok_grpc), (rounds, rounds),
                             "canaries served while the budget was squatted: HTTP %d%%, "
                             "gRPC %d%%" % (100 * ok_http // rounds, 100 * ok_grpc // rounds))
            o.wait_items("traces", 2 * rounds)

            # No squatter was refused either, and what arrived is held, not what was
            # declared: at most twice the 1 KiB each gRPC stream sent.
            self.assertEqual(answers, [100] * 13)
            for h in h2:
                self.assertEqual([sid for sid in range(1, 81, 2) if h.done(sid)], [])
            self.assertGreater(held, 0)
            self.assertLessEqual(held, 2 * 80 * 1024)
            # The squatters are still waiting, and leaving gives back what they held.
            for s in squat:
                s.setblocking(False)
                with self.assertRaises(BlockingIOError):
                    s.recv(1)
                s.close()
            for h in h2:
                h.close()
            wait_buffered(o, lambda v: v == 0, "the squatters' bytes to be released")
            self.assertEqual(o.stop(), 0)


class ReleaseTest(unittest.TestCase):
    """An upload cut off midway gives its bytes back at once, not at a timeout (the timeouts
    here are the 30 s defaults)."""

    def test_abandoned_http_upload(self):
        with Otel2ddChecked() as o:
            s = http_head(o.http_port, 4 * MIB, expect=False)
            s.sendall(b"\x0a" * (1 * MIB))
            wait_buffered(o, lambda v: v >= 1 * MIB, "the partial body to be held")
            s.close()
            wait_buffered(o, lambda v: v == 0, "the abandoned upload to be released")
            # Leaving right after the last bytes: the FIN often arrives with them, where an
            # edge-triggered reader sees no further event for it.
            for i in range(10):
                s = http_head(o.http_port, 4 * MIB, expect=False)
                s.sendall(b"\x0a" * (900000 + i * 40000))
                s.close()
            wait_buffered(o, lambda v: v == 0, "the uploads abandoned at once to be released")
            self.assertEqual(send_http(o.http_port, traces_req([span(1)])), 200)

    def test_reset_and_closed_grpc_streams(self):
        with Otel2ddChecked() as o:
            h = ready_h2(o.grpc_port)
            h.headers(1)
            send_data(h, 1, b"\x00" + (4 * MIB).to_bytes(4, "big") + b"\x0a" * (900 * 1024))
            h.headers(3)
            send_data(h, 3, b"\x00" + (4 * MIB).to_bytes(4, "big") + b"\x0a" * (100 * 1024))
            synced(h)
            both = wait_buffered(o, lambda v: v >= 1000 * 1024, "both partial bodies to be held")
            # RST_STREAM from the client: that stream's bytes go, the other's stay.
            h.send(RstStreamFrame(1, error_code=CANCEL))
            synced(h)
            one = wait_buffered(o, lambda v: 0 < v < both, "the reset stream to be released")
            self.assertLess(one, 900 * 1024)
            # The connection goes with the other stream still in the middle of its body.
            h.close()
            wait_buffered(o, lambda v: v == 0, "the closed connection's stream to be released")
            self.assertEqual(send_grpc(o.grpc_port, traces_req([span(1)])), grpc.StatusCode.OK)


class DeadlineTest(unittest.TestCase):
    """A body that trickles in is ended by its deadline, and its bytes are released."""

    def test_grpc_trickle_cut_by_request_timeout(self):
        with Otel2ddChecked({"protocols": {"grpc": {"request_timeout": "1s"}}}) as o:
            h = ready_h2(o.grpc_port)
            h.headers(1)
            h.data(1, b"\x00" + (1 * MIB).to_bytes(4, "big"))
            t0 = time.monotonic()
            while not h.done(1) and time.monotonic() - t0 < 15:
                h.data(1, b"\x0a" * 512)
                h.pump(0.1)  # paces the trickle: never idle, never complete
            hdrs, _, _ = h.result(1, timeout=1)
            self.assertEqual(grpc_status(hdrs), GRPC_DEADLINE_EXCEEDED)
            self.assertGreater(time.monotonic() - t0, 0.5)
            wait_buffered(o, lambda v: v == 0, "the cut stream to be released")
            # The connection itself lives on.
            h.headers(3)
            h.data(3, framed(traces_req([span(1)])), end=True)
            self.assertEqual(grpc_status(h.result(3)[0]), GRPC_OK)
            h.close()

    def test_http_trickle_cut_by_read_timeout(self):
        with Otel2ddChecked({"protocols": {"http": {"read_timeout": "1s"}}}) as o:
            s = http_head(o.http_port, 1 * MIB, expect=False)
            t0 = time.monotonic()
            cut = False
            while time.monotonic() - t0 < 15:
                try:
                    s.sendall(b"\x0a" * 512)
                except (BrokenPipeError, ConnectionResetError):
                    cut = True
                    break
                if closed_within(s, 0.1) is not None:  # paces the trickle
                    cut = True
                    break
            s.close()
            self.assertTrue(cut, "a trickling body outlived read_timeout")
            self.assertGreater(time.monotonic() - t0, 0.5)
            wait_buffered(o, lambda v: v == 0, "the cut body to be released")


class ShareTest(unittest.TestCase):
    """One connection holds at most its share: here max(1 MiB message, 32 MiB / 16) = 2 MiB."""

    def test_one_connection_cannot_take_more_than_its_share(self):
        cfg = {"memory_limit_mib": 32, "protocols": {"grpc": {"max_recv_msg_size_mib": 1}}}
        with Otel2ddChecked(cfg) as o:
            h = ready_h2(o.grpc_port)
            prefix = b"\x00" + (1 * MIB).to_bytes(4, "big")
            for sid in (1, 3):
                h.headers(sid)
                send_data(h, sid, prefix + b"\x0a" * (900 * 1024))
            synced(h)
            # Each holds its 900 KiB, rounded up by the doubling steps, so nearly the share.
            held = buffered(o)
            self.assertGreaterEqual(held, 2 * 900 * 1024)
            self.assertLessEqual(held, 2 * MIB)
            # A third message on the same connection: its share is spent, so "retry later"
            # at once, before any of its bytes are read.
            h.headers(5)
            h.data(5, prefix)
            hdrs, _, _ = h.result(5)
            self.assertEqual(grpc_status(hdrs), GRPC_UNAVAILABLE)
            self.assertIn("share", hdrs.get("grpc-message", ""))
            self.assertIn("grpc-status-details-bin", hdrs)
            # Other connections are served from the rest of the budget.
            self.assertEqual(send_grpc(o.grpc_port, message_of_size(1 * MIB - 64)),
                             grpc.StatusCode.OK)
            # Ending a stream gives its part of the share back to the connection.
            h.send(RstStreamFrame(1, error_code=CANCEL))
            h.headers(7)
            send_data(h, 7, framed(message_of_size(900 * 1024)), end=True)
            self.assertEqual(grpc_status(h.result(7)[0]), GRPC_OK)
            h.close()
            wait_buffered(o, lambda v: v == 0, "the connection's share to be released")


class NearLimitTest(unittest.TestCase):
    """Bodies at and just under the size limits are accepted, the buffer growing in steps up
    to the declared size; one byte over is refused at once."""

    def test_near_limits(self):
        # The budget covers a request's decoded structures and translation too (README.md,
        # "Memory"): a 1 MiB body of one 1 MiB attribute needs about 4 MiB in all.
        cfg = {"memory_limit_mib": 8,
               "protocols": {"grpc": {"max_recv_msg_size_mib": 1},
                             "http": {"max_request_body_size": 1 * MIB}}}
        with Otel2ddChecked(cfg) as o:
            for n in (1 * MIB, 1 * MIB - 1, 1 * MIB - 70000):
                body = message_of_size(n)
                self.assertEqual(send_http(o.http_port, body), 200, n)
                self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK, n)
            # Chunked, so that no size is declared: the buffer grows to the limit.
            s = socket.create_connection(("127.0.0.1", o.http_port), timeout=10)
            body = message_of_size(1 * MIB)
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: "
                      b"application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(body), 100000):
                piece = body[i:i + 100000]
                s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            self.assertEqual(first_answer(s), 200)
            s.close()
            # One byte over: 413 / RESOURCE_EXHAUSTED, before any body byte is read.
            s = http_head(o.http_port, 1 * MIB + 1)
            self.assertEqual(first_answer(s), 413)
            s.close()
            self.assertEqual(send_grpc(o.grpc_port, message_of_size(1 * MIB + 1)),
                             grpc.StatusCode.RESOURCE_EXHAUSTED)
            o.wait_items("traces", 7)
            wait_buffered(o, lambda v: v == 0, "every body to be released")
            self.assertEqual(o.stop(), 0)


class LargerThanBudgetTest(unittest.TestCase):
    """A budget smaller than the size limits: a body the whole budget could never hold is
    answered "too large" (413 / RESOURCE_EXHAUSTED) at once, not "retry later", which would
    make its sender retry forever; a body that fits the budget is still accepted."""

    def test_body_over_the_whole_budget_is_too_large(self):
        cfg = {"memory_limit_mib": 2,
               "protocols": {"grpc": {"max_recv_msg_size_mib": 4},
                             "http": {"max_request_body_size": 4 * MIB}}}
        with Otel2ddChecked(cfg) as o:
            s = http_head(o.http_port, 3 * MIB)
            self.assertEqual(first_answer(s), 413)
            s.close()
            h = ready_h2(o.grpc_port)
            h.headers(1)
            h.data(1, b"\x00" + (3 * MIB).to_bytes(4, "big"))
            hdrs, _, _ = h.result(1)
            self.assertEqual(grpc_status(hdrs), GRPC_RESOURCE_EXHAUSTED)
            self.assertIn("memory limit", hdrs.get("grpc-message", ""))
            h.close()
            body = message_of_size(64 * 1024)
            self.assertEqual(send_http(o.http_port, body), 200)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            wait_buffered(o, lambda v: v == 0, "every body to be released")
            self.assertEqual(o.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
