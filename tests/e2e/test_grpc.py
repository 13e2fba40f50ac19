#!/usr/bin/python3
"""End-to-end tests of the OTLP/gRPC receiver (collector/receivers/grpc_server.c).

Runs build/otel2dd (or $OTEL2DD_BIN) through harness.Otel2dd on 127.0.0.1 with ephemeral
ports. Two kinds of client:
  - real grpcio (python3-grpcio) for the calls an OTLP exporter makes: traces, logs, metrics,
    identity and gzip, errors mapped to gRPC codes, many concurrent calls on one channel;
  - a small raw HTTP/2 client over a socket (hyperframe + hpack, the frame and header
    libraries under python3-h2) for what grpcio hides: SETTINGS, GOAWAY on idle, on
    max_connection_age and on SIGTERM, deadlines on a slow sender, RST_STREAM after an early
    answer, trailers-only errors, grpc-status-details-bin.
Requests and answers are built and decoded with protobuf classes that protoc generates at test
time from proto/ (otlp_client.py), never with otel2dd's own code. Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_grpc.py [-v] [TestName ...]
"""
import base64
import gzip
import os
import select
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Otel2dd, wait_until  # noqa: E402
from otlp_client import LOGS_EXPORT as LOGS, METRICS_EXPORT as METRICS  # noqa: E402
from otlp_client import TRACE_EXPORT as TRACES  # noqa: E402
from otlp_client import (details_pb2, logs_service_pb2,  # noqa: E402
                         metrics_service_pb2, status_pb2, trace_pb2, trace_service_pb2)

import grpc  # noqa: E402
import hpack  # noqa: E402
from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame,  # noqa: E402
                              PingFrame, RstStreamFrame, SettingsFrame)

GRPC_OK = 0
GRPC_INVALID_ARGUMENT = 3
GRPC_DEADLINE_EXCEEDED = 4
GRPC_RESOURCE_EXHAUSTED = 8
GRPC_UNIMPLEMENTED = 12
GRPC_INTERNAL = 13
GRPC_UNAVAILABLE = 14

SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6


# ---- building requests ----

def span(i, trace_id=None):
    if trace_id is None:
        trace_id = (i + 1).to_bytes(16, "big")
    return trace_pb2.Span(trace_id=trace_id, span_id=(i + 1).to_bytes(8, "big"),
                          name="op-%d" % i, kind=2,
                          start_time_unix_nano=1700000000000000000,
                          end_time_unix_nano=1700000000100000000)


def traces_req(spans, service="test-grpc", pad=0):
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = service
    if pad:
        kv = rs.resource.attributes.add()
        kv.key = "padding"
        kv.value.string_value = "x" * pad
    rs.scope_spans.add().spans.extend(spans)
    return req.SerializeToString()


def logs_req(n):
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    kv = rl.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = "test-grpc"
    sl = rl.scope_logs.add()
    for i in range(n):
        r = sl.log_records.add()
        r.time_unix_nano = 1700000000000000000 + i
        r.severity_number = 9
        r.body.string_value = "log line %d" % i
        r.trace_id = (i + 1).to_bytes(16, "big")
        r.span_id = (i + 1).to_bytes(8, "big")
    return req.SerializeToString()


def metrics_req(points):
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    m = sm.metrics.add()
    m.name = "requests"
    for _ in range(points):
        m.gauge.data_points.add().as_double = 1.0
    return req.SerializeToString()


def framed(msg, compressed=0):
    return bytes([compressed]) + len(msg).to_bytes(4, "big") + msg


# ---- grpcio ----

def unary(channel, path):
    return channel.unary_unary(path, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)


def rpc_code(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, None


# ---- a raw HTTP/2 client: frames in, frames out, no state machine in the way ----

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"



def buffered_bytes(o):
    """otel2dd_receiver_buffered_bytes now."""
    for line in o.scrape().splitlines():
        if line.startswith("otel2dd_receiver_buffered_bytes "):
            return int(float(line.split()[1]))
    raise AssertionError("no otel2dd_receiver_buffered_bytes in /metrics")

class RawH2:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.frames = []
        self.eof = False
        try:
            self.sock.sendall(PREFACE + SettingsFrame(0).serialize())
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True  # refused at once (max_connections)

    def close(self):
        self.sock.close()

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def headers(self, sid, path=TRACES, ctype="application/grpc", extra=(), end=False,
                method="POST"):
        hdrs = [(":method", method), (":scheme", "http"), (":path", path),
                (":authority", "127.0.0.1"), ("content-type", ctype), ("te", "trailers")]
        flags = ["END_HEADERS"] + (["END_STREAM"] if end else [])
        self.send(HeadersFrame(sid, data=self.enc.encode(hdrs + list(extra)), flags=flags))

    def data(self, sid, payload, end=False):
        self.send(DataFrame(sid, data=payload, flags=["END_STREAM"] if end else []))

    def pump(self, timeout):
        if self.eof:
            return
        self.sock.settimeout(max(timeout, 0.01))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            if isinstance(f, HeadersFrame):
                f.decoded = dict(self.dec.decode(f.data))
            elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.send(SettingsFrame(0, flags=["ACK"]))
            elif isinstance(f, PingFrame) and "ACK" not in f.flags:
                self.send(PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]))
            self.frames.append(f)

    def wait(self, pred, timeout=10, what="frames"):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            left = deadline - time.monotonic()
            if left <= 0 or self.eof and not pred():
                raise AssertionError("timed out or closed waiting for %s; got %r (eof=%s)" %
                                     (what, self.frames, self.eof))
            self.pump(min(left, 0.2))

    def of(self, sid, cls):
        return [f for f in self.frames if isinstance(f, cls) and f.stream_id == sid]

    def done(self, sid):
        """The stream ended: END_STREAM from the server or RST_STREAM."""
        return any("END_STREAM" in f.flags for f in self.of(sid, HeadersFrame)) or \
            bool(self.of(sid, RstStreamFrame))

    def result(self, sid, timeout=10):
        """Waits for the stream to end and returns (headers dict, body bytes, rst code)."""
        self.wait(lambda: self.done(sid), timeout, "stream %d to end" % sid)
        hdrs = {}
        for f in self.of(sid, HeadersFrame):
            hdrs.update(f.decoded)
        body = b"".join(f.data for f in self.of(sid, DataFrame))
        rst = self.of(sid, RstStreamFrame)
        return hdrs, body, (rst[0].error_code if rst else None)

    def goaways(self):
        return [f for f in self.frames if isinstance(f, GoAwayFrame)]

    def sync(self, opaque=b"syncsync"):
        """A PING round trip: the server has processed every frame sent before it."""
        self.send(PingFrame(0, opaque_data=opaque))
        self.wait(lambda: any(isinstance(f, PingFrame) and "ACK" in f.flags and
                              f.opaque_data == opaque for f in self.frames),
                  what="the PING ACK")

    def settings(self):
        for f in self.frames:
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                return f.settings
        return None


def split_frames(buf):
    """Splits the whole HTTP/2 frames off the front of buf: ([(type, flags), ...], the rest)."""
    frames, off = [], 0
    while len(buf) - off >= 9:
        length = int.from_bytes(buf[off:off + 3], "big")
        if len(buf) - off < 9 + length:
            break
        frames.append((buf[off + 3], buf[off + 4]))
        off += 9 + length
    return frames, buf[off:]


def grpc_status(hdrs):
    return int(hdrs["grpc-status"]) if "grpc-status" in hdrs else None


# ---- tests with real grpcio against one shared instance ----

class GrpcioTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.o = Otel2dd(verbosity="basic").start()
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.o.grpc_port)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.o.stop()
        cls.o.__exit__(None, None, None)
        assert rc == 0, rc

    def test_traces_identity_and_gzip(self):
        export = unary(self.channel, TRACES)
        before = self.o.items("traces")
        sent = 0
        for n, comp in enumerate([grpc.Compression.NoCompression, grpc.Compression.Gzip] * 3):
            spans = [span(sent + i) for i in range(200)]
            resp = export(traces_req(spans), timeout=10, compression=comp)
            r = trace_service_pb2.ExportTraceServiceResponse.FromString(resp)
            self.assertFalse(r.HasField("partial_success"))
            sent += len(spans)
        self.assertGreaterEqual(sent, 1000)
        self.o.wait_items("traces", before + sent)

    def test_logs(self):
        export = unary(self.channel, LOGS)
        before = self.o.items("logs")
        resp = export(logs_req(25), timeout=10)
        r = logs_service_pb2.ExportLogsServiceResponse.FromString(resp)
        self.assertFalse(r.HasField("partial_success"))
        resp = export(logs_req(25), timeout=10, compression=grpc.Compression.Gzip)
        self.o.wait_items("logs", before + 50)

    def test_metrics_accepted_with_warning(self):
        export = unary(self.channel, METRICS)
        resp = export(metrics_req(3), timeout=10)
        metrics_service_pb2.ExportMetricsServiceResponse.FromString(resp)
        self.o.wait_log(lambda l: l.get("level") == "warn" and
                        "metrics are accepted" in l.get("msg", ""),
                        what="the metrics warning")

    def test_undecodable(self):
        code, details = rpc_code(unary(self.channel, TRACES), b"\xff\xff\xff\xff", timeout=10)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(details)

    def test_unknown_method(self):
        code, _ = rpc_code(unary(self.channel, "/opentelemetry.proto.collector.trace.v1."
                                 "TraceService/Nope"), traces_req([span(1)]), timeout=10)
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        code, _ = rpc_code(unary(self.channel, "/foo.Bar/Export"), b"", timeout=10)
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)

    def test_deflate_unimplemented(self):
        code, _ = rpc_code(unary(self.channel, TRACES), traces_req([span(1)]), timeout=10,
                           compression=grpc.Compression.Deflate)
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        # the channel still works afterwards
        unary(self.channel, TRACES)(traces_req([span(2)]), timeout=10)

    def test_partial_success(self):
        spans = [span(1), span(2, trace_id=b"\x00" * 16), span(3)]
        resp = unary(self.channel, TRACES)(traces_req(spans), timeout=10)
        r = trace_service_pb2.ExportTraceServiceResponse.FromString(resp)
        self.assertTrue(r.HasField("partial_success"))
        self.assertEqual(r.partial_success.rejected_spans, 1)
        self.assertTrue(r.partial_success.error_message)

    def test_concurrent_calls_one_bad(self):
        export = unary(self.channel, TRACES)
        futures = []
        for i in range(64):
            payload = b"\x0a\x05garbage" if i == 37 else traces_req([span(i)])
            futures.append(export.future(payload, timeout=20))
        codes = []
        for f in futures:
            try:
                f.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
        self.assertEqual(codes[37], grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual([c for i, c in enumerate(codes) if i != 37],
                         [grpc.StatusCode.OK] * 63)
        export(traces_req([span(99)]), timeout=10)  # the channel survived


class SizeLimitTest(unittest.TestCase):
    """max_recv_msg_size_mib: 1 -> RESOURCE_EXHAUSTED, before and after decompression."""

    def test_over_limit(self):
        with Otel2dd({"protocols": {"grpc": {"max_recv_msg_size_mib": 1}}}) as o:
            with grpc.insecure_channel("127.0.0.1:%d" % o.grpc_port) as ch:
                export = unary(ch, TRACES)
                big = traces_req([span(1)], pad=1536 * 1024)
                code, _ = rpc_code(export, big, timeout=10)
                self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
                # small on the wire, too big once inflated
                code, _ = rpc_code(export, big, timeout=10, compression=grpc.Compression.Gzip)
                self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
                # just under the limit is fine
                export(traces_req([span(2)], pad=1000 * 1024), timeout=10)
                export(traces_req([span(3)]), timeout=10)


# ---- raw HTTP/2 ----

class RawTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.o = Otel2dd().start()

    @classmethod
    def tearDownClass(cls):
        cls.o.__exit__(None, None, None)

    def setUp(self):
        self.h = RawH2(self.o.grpc_port)

    def tearDown(self):
        self.h.close()

    def test_settings(self):
        s = self.h.wait(self.h.settings, what="server SETTINGS")
        self.assertEqual(s.get(SETTINGS_MAX_CONCURRENT_STREAMS), 100)
        self.assertGreaterEqual(s.get(SETTINGS_INITIAL_WINDOW_SIZE, 65535), 1 << 20)
        self.assertEqual(s.get(SETTINGS_MAX_HEADER_LIST_SIZE), 16384)

    def test_success_shape(self):
        h = self.h
        h.headers(1)
        h.data(1, framed(traces_req([span(1)])), end=True)
        hdrs, body, rst = h.result(1)
        self.assertEqual(hdrs[":status"], "200")
        self.assertTrue(hdrs["content-type"].startswith("application/grpc"))
        self.assertEqual(hdrs["grpc-accept-encoding"], "identity,gzip")
        self.assertEqual(grpc_status(hdrs), GRPC_OK)
        self.assertEqual(body[0], 0)
        self.assertEqual(int.from_bytes(body[1:5], "big"), len(body) - 5)
        trace_service_pb2.ExportTraceServiceResponse.FromString(body[5:])
        self.assertIsNone(rst)

    def test_errors_on_one_connection(self):
        """Each bad request is answered on its stream; the connection serves the next."""
        h = self.h
        msg = traces_req([span(1)])
        # not gRPC: HTTP 415
        h.headers(1, ctype="application/json")
        h.data(1, b"{}", end=True)
        hdrs, _, _ = h.result(1)
        self.assertEqual(hdrs[":status"], "415")
        # compressed flag without grpc-encoding: INTERNAL
        h.headers(3)
        h.data(3, framed(gzip.compress(msg), compressed=1), end=True)
        hdrs, _, _ = h.result(3)
        self.assertEqual(grpc_status(hdrs), GRPC_INTERNAL)
        # two messages in a unary call
        h.headers(5)
        h.data(5, framed(msg) + framed(msg), end=True)
        hdrs, _, _ = h.result(5)
        self.assertEqual(grpc_status(hdrs), GRPC_INVALID_ARGUMENT)
        self.assertIn("more than one message", hdrs.get("grpc-message", ""))
        # body ends inside the message
        h.headers(7)
        h.data(7, framed(msg)[:-3], end=True)
        hdrs, _, _ = h.result(7)
        self.assertEqual(grpc_status(hdrs), GRPC_INVALID_ARGUMENT)
        # no body at all
        h.headers(9, end=True)
        hdrs, _, _ = h.result(9)
        self.assertEqual(grpc_status(hdrs), GRPC_INVALID_ARGUMENT)
        # unsupported grpc-encoding: UNIMPLEMENTED, advertising what is accepted
        h.headers(11, extra=[("grpc-encoding", "snappy")])
        h.data(11, framed(msg), end=True)
        hdrs, _, _ = h.result(11)
        self.assertEqual(grpc_status(hdrs), GRPC_UNIMPLEMENTED)
        self.assertEqual(hdrs["grpc-accept-encoding"], "identity,gzip")
        # a prefix declaring 100 MiB, the client still sending: answered at once, then reset
        h.headers(13)
        h.data(13, b"\x00" + (100 << 20).to_bytes(4, "big"))
        hdrs, _, rst = h.result(13)
        self.assertEqual(grpc_status(hdrs), GRPC_RESOURCE_EXHAUSTED)
        self.assertEqual(hdrs[":status"], "200")
        h.wait(lambda: h.of(13, RstStreamFrame), what="RST_STREAM after the early answer")
        self.assertEqual(h.of(13, RstStreamFrame)[0].error_code, 0)
        # grpc-message is percent-encoded and the connection still serves
        h.headers(15)
        h.data(15, framed(b"\xff\xff\xff"), end=True)
        hdrs, _, _ = h.result(15)
        self.assertEqual(grpc_status(hdrs), GRPC_INVALID_ARGUMENT)
        self.assertTrue(all(0x20 <= ord(c) <= 0x7e for c in hdrs["grpc-message"]))
        h.headers(17)
        h.data(17, framed(msg), end=True)
        hdrs, _, _ = h.result(17)
        self.assertEqual(grpc_status(hdrs), GRPC_OK)
        self.assertFalse(h.goaways())

    def test_message_split_across_frames(self):
        h = self.h
        payload = framed(traces_req([span(i) for i in range(50)]))
        h.headers(1)
        for i in range(0, len(payload), 7):
            h.data(1, payload[i:i + 7])
        h.data(1, b"", end=True)
        hdrs, body, _ = h.result(1)
        self.assertEqual(grpc_status(hdrs), GRPC_OK)

    def test_grpc_timeout_slow_sender(self):
        h = self.h
        h.headers(1, extra=[("grpc-timeout", "300m")])
        h.data(1, b"\x00\x00\x00\x01\x00")  # declares 256 bytes, sends none
        t0 = time.monotonic()
        hdrs, _, _ = h.result(1, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(grpc_status(hdrs), GRPC_DEADLINE_EXCEEDED)
        self.assertGreaterEqual(elapsed, 0.2)
        h.wait(lambda: h.of(1, RstStreamFrame), what="RST_STREAM after DEADLINE_EXCEEDED")
        self.assertEqual(h.of(1, RstStreamFrame)[0].error_code, 0)


class UnavailableTest(unittest.TestCase):
    def test_memory_limit_unavailable_with_retry_info(self):
        with Otel2dd({"memory_limit_mib": 2}) as o:
            # One connection holds about half of the 2 MiB budget with an unfinished message.
            holder = RawH2(o.grpc_port)
            holder.wait(holder.settings, what="SETTINGS")
            holder.headers(1)
            holder.data(1, b"\x00" + (2 << 20).to_bytes(4, "big"))
            for _ in range(56):  # 56 x 16 KiB = 896 KiB, within the stream's window
                holder.data(1, b"\x0a" * 16384)
            wait_until(lambda: buffered_bytes(o) >= 896 * 1024, 10, "the holder's bytes")
            # A 1.5 MiB message would fit the whole budget, but not what is left of it now.
            h = RawH2(o.grpc_port)
            h.headers(1)
            h.data(1, b"\x00" + (3 << 19).to_bytes(4, "big"))
            hdrs, _, _ = h.result(1)
            self.assertEqual(grpc_status(hdrs), GRPC_UNAVAILABLE)
            raw = hdrs["grpc-status-details-bin"]
            self.assertNotIn("=", raw)
            st = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
            self.assertEqual(st.code, GRPC_UNAVAILABLE)
            infos = [d for d in st.details if d.type_url.endswith("google.rpc.RetryInfo")]
            self.assertEqual(len(infos), 1)
            ri = details_pb2.RetryInfo.FromString(infos[0].value)
            self.assertGreater(ri.retry_delay.seconds, 0)
            # memory was released: a small request goes through
            holder.close()
            wait_until(lambda: buffered_bytes(o) == 0, 10, "the holder's bytes to be released")
            h.headers(3)
            h.data(3, framed(traces_req([span(1)])), end=True)
            hdrs, _, _ = h.result(3)
            self.assertEqual(grpc_status(hdrs), GRPC_OK)
            h.close()


class RequestTimeoutTest(unittest.TestCase):
    def test_request_timeout_without_grpc_timeout(self):
        with Otel2dd({"protocols": {"grpc": {"request_timeout": "500ms"}}}) as o:
            h = RawH2(o.grpc_port)
            h.headers(1)
            h.data(1, b"\x00\x00")  # stops inside the prefix
            t0 = time.monotonic()
            hdrs, _, _ = h.result(1)
            self.assertEqual(grpc_status(hdrs), GRPC_DEADLINE_EXCEEDED)
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)
            # a later grpc-timeout longer than request_timeout does not extend it
            h.headers(3, extra=[("grpc-timeout", "60S")])
            hdrs, _, _ = h.result(3)
            # DEADLINE_EXCEEDED within result's 10 s wait shows that the 60 s grpc-timeout
            # did not replace the 500 ms request_timeout.
            self.assertEqual(grpc_status(hdrs), GRPC_DEADLINE_EXCEEDED)
            h.close()


class MaxConnectionsTest(unittest.TestCase):
    def test_at_max_connections_idle_makes_room_busy_is_kept(self):
        with Otel2dd({"protocols": {"grpc": {"max_connections": 2}}}) as o:
            a, b = RawH2(o.grpc_port), RawH2(o.grpc_port)
            for c in (a, b):
                c.wait(c.settings, what="SETTINGS")
                c.headers(1)  # a request in progress: not idle
                c.sync()
            c = RawH2(o.grpc_port)
            c.wait(lambda: c.eof, what="the third connection to be closed")
            self.assertIsNone(c.settings())
            c.close()
            o.wait_log(lambda l: l.get("level") == "warn" and "max_connections" in l.get("msg"),
                       what="the max_connections warning")
            # b's request ends: b is idle now, and the next newcomer takes its slot
            b.data(1, framed(traces_req([span(1)])), end=True)
            self.assertEqual(grpc_status(b.result(1)[0]), GRPC_OK)
            d = RawH2(o.grpc_port)
            d.wait(d.settings, what="SETTINGS on the newcomer")
            b.wait(lambda: b.eof, what="the idle connection to be closed")
            self.assertTrue(b.goaways(), "no GOAWAY before the close")
            self.assertIn(b"evicted", b.goaways()[0].additional_data)
            # the busy one was kept and finishes; the newcomer serves
            a.data(1, framed(traces_req([span(2)])), end=True)
            self.assertEqual(grpc_status(a.result(1)[0]), GRPC_OK)
            d.headers(1)
            d.data(1, framed(traces_req([span(3)])), end=True)
            self.assertEqual(grpc_status(d.result(1)[0]), GRPC_OK)
            for c in (a, b, d):
                c.close()


class BackpressureTest(unittest.TestCase):
    def test_client_that_does_not_read_is_throttled_not_cut(self):
        """PINGs sent without reading the ACKs: the server stops reading while its output is
        backed up (TCP pushes back on the client), then answers every PING once the client
        reads; the connection is not cut as a flood."""
        with Otel2dd(verbosity="quiet") as o:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", o.grpc_port))
            s.sendall(PREFACE + SettingsFrame(0).serialize())
            ping = PingFrame(0, opaque_data=b"backpres").serialize()
            batch = ping * 256
            s.setblocking(False)
            pend, sent = b"", 0
            deadline = time.monotonic() + 60
            # Send until the socket stays unwritable for a second: the server stopped reading.
            while True:
                self.assertLess(time.monotonic(), deadline, "the server never stopped reading")
                pend = pend or batch
                try:
                    n = s.send(pend)
                except BlockingIOError:
                    if not select.select([], [s], [], 1.0)[1]:
                        break
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    self.fail("the server cut the connection after %d bytes" % sent)
                sent += n
                pend = pend[n:]
            pings = (sent + len(pend)) // len(ping)
            # Read everything back (and finish the partly sent frame as the server reads again).
            buf, acks, goaway, eof = b"", 0, False, False
            while acks < pings and not eof:
                self.assertLess(time.monotonic(), deadline, "ACKs missing: %d/%d" % (acks, pings))
                r, w, _ = select.select([s], [s] if pend else [], [], 1.0)
                if w:
                    try:
                        pend = pend[s.send(pend):]
                    except BlockingIOError:
                        pass
                if r:
                    try:
                        chunk = s.recv(1 << 20)
                    except ConnectionResetError:
                        chunk = b""
                    eof = not chunk
                    buf += chunk
                    frames, buf = split_frames(buf)
                    acks += sum(1 for t, f in frames if t == 0x6 and f & 0x1)
                    goaway |= any(t == 0x7 for t, _ in frames)
            self.assertGreater(pings, 1000)  # well past nghttp2's 1000 queued ACKs
            self.assertEqual(acks, pings)
            self.assertFalse(goaway)
            self.assertFalse(eof)
            s.close()


class ConnectionLifetimeTest(unittest.TestCase):
    def test_idle_goaway(self):
        cfg = {"protocols": {"grpc": {"keepalive": {"server_parameters": {
            "max_connection_idle": "500ms"}}}}}
        with Otel2dd(cfg) as o:
            h = RawH2(o.grpc_port)
            t0 = time.monotonic()
            h.wait(h.goaways, timeout=10, what="GOAWAY on idle")
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)
            self.assertEqual(h.goaways()[0].error_code, 0)
            h.wait(lambda: h.eof, timeout=10, what="close after idle GOAWAY")
            h.close()
            # an active connection is not idle: requests keep it open
            h = RawH2(o.grpc_port)
            sid = 1
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                h.headers(sid)
                h.data(sid, framed(traces_req([span(sid)])), end=True)
                hdrs, _, _ = h.result(sid)
                self.assertEqual(grpc_status(hdrs), GRPC_OK)
                sid += 2
                h.pump(0.2)  # paces the requests: waits up to 0.2 s for stray frames
            self.assertFalse(h.goaways())
            self.assertFalse(h.eof)
            h.close()

    def test_max_connection_age(self):
        cfg = {"protocols": {"grpc": {"keepalive": {"server_parameters": {
            "max_connection_age": "500ms", "max_connection_age_grace": "5s"}}}}}
        with Otel2dd(cfg) as o:
            h = RawH2(o.grpc_port)
            h.headers(1)  # a stream in flight across the GOAWAY
            h.data(1, framed(traces_req([span(1)]))[:10])
            h.wait(lambda: any(g.last_stream_id == 1 for g in h.goaways()), timeout=10,
                   what="the final GOAWAY")
            g = h.goaways()
            self.assertEqual(g[0].last_stream_id, 0x7fffffff)  # the shutdown notice first
            self.assertTrue(all(x.error_code == 0 for x in g))
            h.data(1, framed(traces_req([span(1)]))[10:], end=True)
            hdrs, _, _ = h.result(1)
            self.assertEqual(grpc_status(hdrs), GRPC_OK)
            h.wait(lambda: h.eof, timeout=10, what="close once the last stream is done")
            h.close()

    def test_goaway_on_sigterm(self):
        o = Otel2dd().start()
        try:
            h = RawH2(o.grpc_port)
            h.headers(1)
            h.data(1, framed(traces_req([span(1)]))[:10])
            h.wait(h.settings, what="server SETTINGS")
            o.proc.send_signal(15)
            h.wait(lambda: any(g.last_stream_id == 1 for g in h.goaways()), timeout=10,
                   what="GOAWAY on SIGTERM")
            h.data(1, framed(traces_req([span(1)]))[10:], end=True)
            hdrs, _, _ = h.result(1)
            self.assertEqual(grpc_status(hdrs), GRPC_OK)
            h.wait(lambda: h.eof, timeout=10, what="close after shutdown")
            h.close()
            wait_until(lambda: o.proc.poll() is not None, 30, "otel2dd to exit")
            self.assertEqual(o.stop(), 0)
        finally:
            o.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
