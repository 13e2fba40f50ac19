"""No request can take the memory: bodies near the size limits, several at once, on both
transports, and otel2dd's resident memory stays under the ceiling README.md ("Memory") states
for its configuration, then shrinks back once the load is over.

The configuration is small on purpose (receivers.otlp.memory_limit_mib 64), so that the
ceiling is tight: a request's decoded structures, its inflated body or a thread's buffers
left outside the budget would push the peak past it. Peak and current resident memory are
read from /proc/PID/status (VmHWM, VmRSS) of the otel2dd process.

    /usr/bin/python3 tests/e2e/test_memory.py [-v]
"""
import gzip
import http.client
import os
import sys
import threading
import unittest

import grpc

from fake_intake import FakeIntake
from harness import Otel2ddChecked, wait_until
from otlp_client import PB, TRACE_EXPORT, new_id, set_attr, trace_pb2

MIB = 1024 * 1024
LIMIT_MIB = 64
GRPC_MAX = 4 * MIB  # receivers.otlp.protocols.grpc.max_recv_msg_size_mib default
HTTP_MAX = 20 * MIB  # receivers.otlp.protocols.http.max_request_body_size default
# README.md, "Memory": the fixed part without the 26 MiB the LLM Obs span builders may keep
# after LLM spans (these tests send none), per receiver thread and per open connection.
FIXED_MIB = 24
PER_THREAD_MIB = 9  # 5, and 4 MiB of request bodies kept for reuse (body_pool)
PER_CONN_MIB = 1 / 8
# After the load, RSS comes back to within this of what it was before it (README.md), plus
# the arena blocks each receiver thread may keep from its last request (up to 4 MiB, 3 more
# than the 1 MiB every thread keeps anyway), which its next small request gives back.
AFTER_MIB = 8
KEPT_AFTER_BURST_MIB = 3
AT_ONCE = 4
HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("OTEL2DD_BUILD", os.path.join(HERE, "..", "..", "build"))


def sanitizer_build():
    """An ASan build has its own allocator, shadow memory and quarantine: its resident memory
    says nothing about otel2dd's, so only the answers are checked there."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "O2D_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


SANITIZED = sanitizer_build()


def receiver_threads():
    """gRPC workers and HTTP threads: one per online CPU each, at most 16 each."""
    return 2 * min(os.cpu_count() or 1, 16)


def ceiling_mib(memory_limit, queue=0, trace_buffer=0, connections=AT_ONCE * 2):
    """README.md's ceiling; without the Datadog exporter there is no queue (nor its overshoot,
    at most memory_limit) and no trace buffer."""
    overshoot = memory_limit if queue else 0
    return (FIXED_MIB + memory_limit + overshoot + 1.25 * queue + trace_buffer +
            PER_THREAD_MIB * receiver_threads() + PER_CONN_MIB * connections)


def proc_mib(pid):
    """{"VmHWM": peak RSS, "VmRSS": RSS now} of pid, in MiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) / 1024.0
    return out


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def scope_spans(n, attrs, value_len):
    """One serialized ScopeSpans of n server spans, each with `attrs` string attributes of
    value_len bytes (short values: many small objects per wire byte; long: mostly bytes)."""
    ss = trace_pb2.ScopeSpans()
    ss.scope.name = "test_memory"
    for i in range(n):
        s = ss.spans.add()
        s.trace_id = new_id().to_bytes(16, "big")
        s.span_id = new_id().to_bytes(8, "big")
        s.name = "GET /items"
        s.kind = trace_pb2.Span.SPAN_KIND_SERVER
        s.start_time_unix_nano = 1700000000000000000 + i
        s.end_time_unix_nano = s.start_time_unix_nano + 1000000
        for a in range(attrs):
            set_attr(s.attributes, "attr.%d" % a, ("%d-" % i).ljust(value_len, "x"))
    return ss.SerializeToString()


def trace_body(size, attrs=8, value_len=8):
    """An ExportTraceServiceRequest of one resource whose scope_spans repeat up to just under
    `size` bytes (protobuf repeated fields concatenate, so the copies are valid)."""
    rs = trace_pb2.ResourceSpans()
    set_attr(rs.resource.attributes, "service.name", "test-memory")
    head = rs.SerializeToString()
    one = field(2, scope_spans(10, attrs, value_len))
    copies = (size - len(head) - 16) // len(one)
    return field(1, head + one * copies)


def json_body(size, value_len=200):
    """An OTLP/JSON trace request of about `size` bytes: spans with eight string attributes
    of value_len bytes (long enough that the decoded request fits in the budget beside it)."""
    span = ('{"traceId":"%032x","spanId":"%016x","name":"GET /items","kind":2,'
            '"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000001000000",'
            '"attributes":[%s]}')
    attrs = ",".join('{"key":"attr.%d","value":{"stringValue":"%s"}}' %
                     (a, ("v%d" % a).ljust(value_len, "x")) for a in range(8))
    one = span % (1, 1, attrs)
    n = (size - 200) // (len(one) + 1)
    spans = ",".join(span % (new_id(), new_id(), attrs) for _ in range(n))
    doc = ('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
           '{"stringValue":"test-memory"}}]},"scopeSpans":[{"scope":{"name":"t"},"spans":[%s]}]}]}'
           % spans)
    return doc.encode()


def post(port, body, ctype=PB, headers=None):
    """The HTTP status of one POST /v1/traces. otel2dd may answer "retry later" before the
    body is all sent and close: the answer is read even when sending failed."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Content-Type": ctype}
    h.update(headers or {})
    try:
        try:
            c.request("POST", "/v1/traces", body, h)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def grpc_export(port, body):
    """The status code of one Export on its own channel (its own connection)."""
    with grpc.insecure_channel("127.0.0.1:%d" % port,
                               options=[("grpc.max_send_message_length", 2 * GRPC_MAX),
                                        ("grpc.use_local_subchannel_pool", 1)]) as ch:
        call = ch.unary_unary(TRACE_EXPORT, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        try:
            call(body, timeout=60)
        except grpc.RpcError as e:
            return e.code().name
    return "OK"


def at_once(n, fn):
    """Runs fn() on n threads at the same time; their results."""
    out = [None] * n
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        try:
            out[i] = fn()
        except Exception as e:  # noqa: BLE001 (reported as the result)
            out[i] = repr(e)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


class MemoryBound(unittest.TestCase):
    """Bodies near the limits, AT_ONCE at a time; the debug exporter only, so the ceiling is
    the fixed part, the receivers' budget and the per-thread and per-connection parts."""

    config = {"memory_limit_mib": LIMIT_MIB}

    def ceiling(self):
        return ceiling_mib(self.config.get("memory_limit_mib", LIMIT_MIB))

    def run_load(self, send, ok, allowed, rounds=2):
        """Sends with send() AT_ONCE at a time, `rounds` times, then once alone; every answer
        is in `allowed` (which ones get "retry later" depends on timing) and the one alone is
        `ok`; peak RSS under the ceiling; RSS back after."""
        ceiling = self.ceiling()
        with Otel2ddChecked(config=self.config, verbosity="quiet") as o:
            before = proc_mib(o.pid())["VmRSS"]
            answers = []
            for _ in range(rounds):
                answers += at_once(AT_ONCE, lambda: send(o))
            # Alone, once the exporter's queue (if any) has room again: a budget that leaked
            # would answer "retry later" until the deadline.
            last = []

            def alone_ok():
                last[:] = [send(o)]
                return last[0] == ok
            try:
                wait_until(alone_ok, 30, "one request alone to be accepted", interval=0.2)
            except AssertionError:
                pass
            alone = last[0]
            if os.environ.get("MEMORY_REPORT"):
                print("\n%s: before %.0f MiB, peak %.0f MiB (ceiling %.0f), answers %s, "
                      "alone %s" % (self.id(), before, proc_mib(o.pid())["VmHWM"], ceiling,
                                    answers, alone), file=sys.stderr)
            self.assertLessEqual(set(answers), set(allowed), answers)
            # Whatever the burst got, the budget is whole again afterwards.
            self.assertEqual(alone, ok)
            if SANITIZED:
                return answers, None
            peak = proc_mib(o.pid())["VmHWM"]
            self.assertLess(peak, ceiling, "peak RSS %.0f MiB, ceiling %.0f MiB" %
                            (peak, ceiling))
            after = AFTER_MIB + KEPT_AFTER_BURST_MIB * receiver_threads()
            wait_until(lambda: proc_mib(o.pid())["VmRSS"] <= before + after, 10,
                       "RSS back within %d MiB of %.0f MiB (is %.0f)" %
                       (after, before, proc_mib(o.pid())["VmRSS"]))
            return answers, peak

    def test_grpc_messages_near_the_limit(self):
        body = trace_body(GRPC_MAX - 64)
        self.assertGreater(len(body), GRPC_MAX - 16 * 1024)
        self.run_load(lambda o: grpc_export(o.grpc_port, body), "OK", {"OK", "UNAVAILABLE"})

    def test_http_protobuf_near_the_limit(self):
        # Long values: the decoded request (~1.5x the body) fits in the budget beside it.
        body = trace_body(HTTP_MAX - 1024, attrs=8, value_len=200)
        self.assertGreater(len(body), HTTP_MAX - 64 * 1024)
        self.run_load(lambda o: post(o.http_port, body), 200,
                      {200, 503})

    def test_http_gzip_inflating_near_the_limit(self):
        body = gzip.compress(trace_body(HTTP_MAX - 1024, attrs=8, value_len=200), 6)
        self.assertLess(len(body), HTTP_MAX // 4)
        self.run_load(lambda o: post(o.http_port, body, headers={"Content-Encoding": "gzip"}),
                      200, {200, 503})

    def test_grpc_gzip_inflating_near_the_limit(self):
        # grpcio compresses the message itself (grpc-encoding: gzip).
        raw = trace_body(GRPC_MAX - 64)

        def send(o):
            with grpc.insecure_channel("127.0.0.1:%d" % o.grpc_port,
                                       options=[("grpc.use_local_subchannel_pool", 1)],
                                       compression=grpc.Compression.Gzip) as ch:
                call = ch.unary_unary(TRACE_EXPORT, request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
                try:
                    call(raw, timeout=60)
                except grpc.RpcError as e:
                    return e.code().name
            return "OK"
        self.run_load(send, "OK", {"OK", "UNAVAILABLE"})

    def test_http_request_that_could_never_fit_is_too_large(self):
        # Forty one-byte-key int attributes a span: decodes into about 14x the wire size,
        # more than the whole budget for one 20 MiB body. Refused as too large (retrying
        # cannot help), and the memory it began to take goes back.
        rs = trace_pb2.ResourceSpans()
        ss = rs.scope_spans.add()
        for i in range(200):
            s = ss.spans.add()
            s.trace_id = new_id().to_bytes(16, "big")
            s.span_id = new_id().to_bytes(8, "big")
            for a in range(40):
                set_attr(s.attributes, "k", a)
        one = field(2, rs.scope_spans[0].SerializeToString())
        body = field(1, one * ((HTTP_MAX - 1024) // len(one)))
        self.run_load(lambda o: post(o.http_port, body), 413,
                      {413, 503}, rounds=1)

    def test_gzip_larger_than_its_trailer_says(self):
        # Two gzip members: the trailer (ISIZE of the last) announces only the small second
        # one, so the first try at that size fails and the body is inflated again within
        # the size limit, charged as such; all of it is accepted.
        rs = trace_pb2.ResourceSpans()
        set_attr(rs.resource.attributes, "service.name", "test-memory")
        big = field(1, rs.SerializeToString() + field(2, scope_spans(2000, 8, 20)))
        small = field(1, rs.SerializeToString() + field(2, scope_spans(1, 8, 20)))
        body = gzip.compress(big) + gzip.compress(small)
        self.assertLess(len(small), 64 * 1024)
        self.assertGreater(len(big), 256 * 1024)
        with Otel2ddChecked(config={"memory_limit_mib": LIMIT_MIB}, verbosity="quiet") as o:
            self.assertEqual(post(o.http_port, body, headers={"Content-Encoding": "gzip"}), 200)
            line = 'otel2dd_receiver_accepted_items_total{transport="http",signal="traces"} '
            got = [l for l in o.scrape().splitlines() if l.startswith(line)]
            self.assertEqual(got, [line + "2001"])
            # A trailer that lies about its own member (larger) is charged at most the size
            # limit, and zlib's length check refuses the body.
            liar = bytearray(gzip.compress(small))
            liar[-4:] = (HTTP_MAX * 4).to_bytes(4, "little")
            self.assertEqual(post(o.http_port, bytes(liar), headers={"Content-Encoding": "gzip"}),
                             400)

    def test_json_near_the_limit(self):
        # Needs the streaming OTLP/JSON decoder (no jansson tree beside the arena). A JSON
        # body is charged twice (its bytes, and as much for the reader's string buffer), so
        # one of 20 MiB needs a larger budget than a protobuf one.
        self.config = {"memory_limit_mib": 96}
        body = json_body(HTTP_MAX - 4096)
        self.assertGreater(len(body), HTTP_MAX - 64 * 1024)
        self.run_load(lambda o: post(o.http_port, body, ctype="application/json"),
                      200, {200, 413, 503}, rounds=1)


class MemoryBoundWithExporter(MemoryBound):
    """The same loads with the Datadog exporter on and its queues small: the ceiling adds
    sending_queue.max_size_mib and llmobs.trace_buffer.max_size_mib. The APM translation
    of a request is written into its arena too, so a 20 MiB body needs a larger budget."""

    LIMIT = 128
    QUEUE_MIB = 16
    BUFFER_MIB = 16

    def setUp(self):
        self.intake = FakeIntake().start()
        self.config = {
            "receivers": {"otlp": {"memory_limit_mib": self.LIMIT}},
            "exporters": {"datadog": {
                "api": {"key": "test-key", "endpoint": self.intake.url},
                "traces": {"endpoint": self.intake.url, "flush_interval": "200ms"},
                "llmobs": {"endpoint": self.intake.url,
                           "trace_buffer": {"max_size_mib": self.BUFFER_MIB}},
                "sending_queue": {"max_size_mib": self.QUEUE_MIB}}}}

    def tearDown(self):
        self.intake.stop()

    def ceiling(self):
        return ceiling_mib(self.LIMIT, self.QUEUE_MIB, self.BUFFER_MIB)

    # The exporter changes nothing before the queue; these are covered above.
    test_http_gzip_inflating_near_the_limit = None
    test_grpc_gzip_inflating_near_the_limit = None
    test_http_request_that_could_never_fit_is_too_large = None
    test_json_near_the_limit = None


if __name__ == "__main__":
    unittest.main()
