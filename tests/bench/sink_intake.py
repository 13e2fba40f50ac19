#!/usr/bin/python3
"""A Datadog intake that accepts and discards, for the end-to-end benchmark (bench.py --dd).

    POST /api/v0.2/traces                        -> 202 {}   (AgentPayload; spans counted)
    POST /api/v0.2/stats                         -> 202 {}   (the body is read fully, dropped)
    POST /api/v2/llmobs                          -> 202 {}   (LLM Obs events, the same)
    POST /api/v2/series, /api/beta/sketches      -> 202 {}   (zstd protobuf; points and
                                                              sketches counted)
    POST /api/v2/logs                            -> 202 {}   (gzip JSON; records counted)
    GET  /api/v1/validate                        -> 200 {"valid":true}
    GET  /_counts                                -> 200, the counts so far (JSON)
    anything else                                -> 404

Listens on 127.0.0.1, an ephemeral port (or --port), HTTP/1.1 keep-alive, one thread per
connection. Prints one line when it listens:

    sink listening 127.0.0.1:PORT

and on SIGTERM/SIGINT one JSON line with its counts, then exits 0:

    sink counts {"requests": {"/api/v0.2/traces": N, ...}, "bytes": {...}, ...}

Trace bodies are decompressed (gzip, zstd, deflate or none, by Content-Encoding) and their
spans counted: AgentPayload.tracerPayloads[].chunks[].spans[] (datadog-agent
pkg/proto/datadog/trace/agent_payload.proto, tracer_payload.proto, span.proto), parsed by
python3-protobuf's C parser against a schema made here that declares only those fields and
Span.spanID. The count is what the benchmark reports as delivered, independent of otel2dd's
own counters. With --span-ids the sink also keeps every span id it saw (a Python set: about
70 bytes a span) and reports how many were distinct ("spans_distinct"), so that a payload sent
twice (a retry of a body that had arrived) is not counted twice: tests/bench/overload.py.
A trace payload is answered 202 as soon as it is read, as Datadog's intake answers, and
decoded afterwards by one decoder thread (at most 32 bodies wait for it; past that, the
handler waits): a sender waiting for the sink's Python decoding would be slowed down by the
sink. Its counts include a payload once it is decoded; GET /_counts?wait=1 and the final
counts line wait until every payload received so far is. Stats and LLM Obs bodies are not
decoded. Metrics and logs bodies are decompressed and counted ("items" in the counts,
per path), because the exporters' totals count what they sent and the benchmark wants what
arrived: series points (MetricPayload.series[].points), sketches (SketchPayload.sketches[]
.dogsketches) and log records (the elements of the JSON array). Counting walks only the
fields on the way, no message is built; log records by their "ddsource" key (count_items). A body that does not
decode is answered 400 and counted under "bad". bench.py reads the sink's CPU time from /proc
to show that it is not the bottleneck.

The metrics bodies are parsed by python3-protobuf's C implementation against a schema made
here that declares only the counted fields (series[].points, sketches[].dogsketches, as
bytes): everything else is skipped by the C parser. A walk in Python (count_nested, kept as the
reference and used when the C implementation is missing) costs about 7 us a series, which
made the sink the bottleneck past ~80k points/s on a 2-core machine.
"""
import argparse
import collections
import http.server
import json
import queue
import signal
import socketserver
import sys
import threading
import time
import zlib

TRACES = "/api/v0.2/traces"
STATS = "/api/v0.2/stats"
LLMOBS = "/api/v2/llmobs"
SERIES = "/api/v2/series"
SKETCHES = "/api/beta/sketches"
LOGS = "/api/v2/logs"
VALIDATE = "/api/v1/validate"
COUNTS = "/_counts"  # GET: the counts so far as JSON, not counted itself
CHUNK = 1 << 20


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.Counter()
        self.bytes = collections.Counter()
        self.status = collections.Counter()
        self.items = collections.Counter()
        self.bad = collections.Counter()
        self.refused = collections.Counter()  # answered 503 by --unavailable
        self.connections = 0

    def add(self, path, n, status, items=None):
        with self.lock:
            self.requests[path] += 1
            self.bytes[path] += n
            self.status[str(status)] += 1
            if items is not None:
                self.items[path] += items
            elif status == 400:
                self.bad[path] += 1

    def snapshot(self):
        with self.lock:
            out = {"requests": dict(self.requests), "bytes": dict(self.bytes),
                   "status": dict(self.status), "items": dict(self.items),
                   "bad": dict(self.bad), "connections": self.connections,
                   "refused": dict(self.refused)}
        out["spans"] = out["items"].get(TRACES, 0)
        if SPAN_IDS is not None:
            with SPAN_IDS_LOCK:
                out["spans_distinct"] = len(SPAN_IDS)
        return out


def read_varint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def skip_field(b, i, wire):
    if wire == 0:
        return read_varint(b, i)[1]
    if wire == 1:
        return i + 8
    if wire == 5:
        return i + 4
    if wire == 2:
        n, i = read_varint(b, i)
        return i + n
    raise ValueError("wire type %d" % wire)


def count_nested(b, outer, inner):
    """How many times field `inner` occurs inside the messages of top-level field `outer`
    (both length-delimited): series[].points, sketches[].dogsketches."""
    mv = memoryview(b)
    i, end, n = 0, len(b), 0
    while i < end:
        key, i = read_varint(b, i)
        if key >> 3 == outer and key & 7 == 2:
            ln, i = read_varint(b, i)
            mend = i + ln
            sub = mv[i:mend]
            j = 0
            while j < ln:
                k, j = read_varint(sub, j)
                if k >> 3 == inner:
                    n += 1
                j = skip_field(sub, j, k & 7)
            i = mend
        else:
            i = skip_field(b, i, key & 7)
    if i != end:
        raise ValueError("truncated message")
    return n


def counting_classes():
    """{path: (message class, repeated field, counted field)} from a minimal schema built in
    code (no protoc): Payload { repeated Entry entries = 1; } Entry { repeated bytes x = N; },
    N = 4 for MetricPayload.series[].points, 7 for SketchPayload.sketches[].dogsketches.
    None when python3-protobuf is missing or is not its C implementation."""
    try:
        from google.protobuf import descriptor_pb2, message_factory
        from google.protobuf.internal import api_implementation
    except ImportError:
        return None
    if api_implementation.Type() == "python":
        return None
    fdp = descriptor_pb2.FileDescriptorProto(name="o2d_bench_count.proto",
                                             package="o2d_bench_count")
    F = descriptor_pb2.FieldDescriptorProto
    out = {}
    # AgentPayload { repeated TracerPayload tracerPayloads = 5; }
    # TracerPayload { repeated TraceChunk chunks = 6; }  TraceChunk { repeated Span spans = 3; }
    # Span { uint64 spanID = 5; }. Twice: spans as bytes (counted, not parsed: 3.5x faster)
    # and spans as messages with their spanID (--span-ids).
    for suffix, span_type in (("", None), ("Ids", "Span")):
        if span_type:
            sp = fdp.message_type.add(name="Span")
            sp.field.add(name="span_id", number=5, label=F.LABEL_OPTIONAL,
                         type=F.TYPE_UINT64)
        ch = fdp.message_type.add(name="Chunk" + suffix)
        if span_type:
            ch.field.add(name="spans", number=3, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                         type_name=".o2d_bench_count.Span")
        else:
            ch.field.add(name="spans", number=3, label=F.LABEL_REPEATED, type=F.TYPE_BYTES)
        tp = fdp.message_type.add(name="TracerPayload" + suffix)
        tp.field.add(name="chunks", number=6, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                     type_name=".o2d_bench_count.Chunk" + suffix)
        ap = fdp.message_type.add(name="AgentPayload" + suffix)
        ap.field.add(name="tracer_payloads", number=5, label=F.LABEL_REPEATED,
                     type=F.TYPE_MESSAGE, type_name=".o2d_bench_count.TracerPayload" + suffix)
        out[TRACES + suffix] = "AgentPayload" + suffix
    for path, entry, inner in ((SERIES, "Series", 4), (SKETCHES, "Sketch", 7)):
        e = fdp.message_type.add(name=entry)
        e.field.add(name="x", number=inner, label=F.LABEL_REPEATED, type=F.TYPE_BYTES)
        p = fdp.message_type.add(name=entry + "Payload")
        p.field.add(name="entries", number=1, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                    type_name=".o2d_bench_count." + entry)
        out[path] = entry + "Payload"
    msgs = message_factory.GetMessages([fdp])
    return {path: msgs["o2d_bench_count." + name] for path, name in out.items()}


COUNTING = counting_classes()
SPAN_IDS_LOCK = threading.Lock()


def decompress(body, encoding):
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "zstd":
        import zstandard
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=256 << 20)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding in ("", "identity"):
        return body
    raise ValueError("Content-Encoding %r" % encoding)


SPAN_IDS = None  # a set when --span-ids


def count_spans(body, encoding):
    """Spans in one trace intake body; their ids go to SPAN_IDS when it is a set."""
    if COUNTING is None:
        raise ValueError("counting spans needs python3-protobuf's C implementation")
    raw = decompress(body, encoding)
    try:
        msg = COUNTING[TRACES if SPAN_IDS is None else TRACES + "Ids"].FromString(raw)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise ValueError("%s: %s" % (TRACES, e))
    n = 0
    for tp in msg.tracer_payloads:
        for ch in tp.chunks:
            n += len(ch.spans)
            if SPAN_IDS is not None:
                ids = [s.span_id for s in ch.spans]
                with SPAN_IDS_LOCK:
                    SPAN_IDS.update(ids)
    return n


def count_metrics(path, raw):
    if COUNTING is None:
        return count_nested(raw, 1, 4) if path == SERIES else count_nested(raw, 1, 7)
    try:
        msg = COUNTING[path].FromString(raw)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise ValueError("%s: %s" % (path, e))
    return sum(len(e.x) for e in msg.entries)


# Every Datadog log object otel2dd writes has one top-level "ddsource" key, and inside a JSON
# string the quotes around such a text would be escaped: counting the key is a C-speed count.
# json.loads of whole bodies took the sink past a core at ~60k records/s; the first body and
# every LOGS_CHECK_EVERY-th are still parsed whole and their count compared.
LOG_KEY = b'"ddsource":'
LOGS_CHECK_EVERY = 50
LOGS_SEEN = 0


def count_items(path, body, encoding):
    """Series points, sketches or log records in one body (ValueError if it does not
    decode)."""
    if path in (SERIES, SKETCHES):
        if encoding != "zstd":
            raise ValueError("Content-Encoding %r, not zstd" % encoding)
        import zstandard  # python3-zstandard; only metrics bodies need it
        raw = zstandard.ZstdDecompressor().decompress(body, max_output_size=64 << 20)
        return count_metrics(path, raw)
    if encoding != "gzip":
        raise ValueError("Content-Encoding %r, not gzip" % encoding)
    raw = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    n = raw.count(LOG_KEY)
    global LOGS_SEEN
    LOGS_SEEN += 1
    if LOGS_SEEN % LOGS_CHECK_EVERY == 1:
        arr = json.loads(raw)
        if not isinstance(arr, list) or len(arr) != n:
            raise ValueError("%s log objects counted by their ddsource key, %s in the array" %
                             (n, len(arr) if isinstance(arr, list) else "no objects"))
    return n


class Decoder:
    """One thread that decodes the trace payloads after they were answered 202, in arrival
    order. A body that does not decode is counted under "bad" (and its status as 400: the
    report notes it). wait() returns once everything queued so far is counted."""

    def __init__(self):
        self.q = queue.Queue(maxsize=32)
        threading.Thread(target=self._run, daemon=True).start()

    def put(self, counts, path, n, body, encoding):
        self.q.put((counts, path, n, body, encoding))

    def wait(self):
        self.q.join()

    def _run(self):
        while True:
            counts, path, n, body, encoding = self.q.get()
            try:
                items = count_spans(body, encoding)
                counts.add(path, n, 202, items)
            except Exception as e:  # ValueError, zlib.error, zstandard.ZstdError
                counts.add(path, n, 400)
                sys.stderr.write("sink: %s body not decoded: %r\n" % (path, e))
            finally:
                self.q.task_done()


DECODER = Decoder()


class Slow:
    """--delay-ms: every trace intake request is answered that much later (a slow intake).
    --unavailable START:SECONDS: trace intake requests are answered 503, without being counted
    as delivered, from START seconds after the sink started, for SECONDS."""

    def __init__(self):
        self.delay_s = 0.0
        self.window = None
        self.t0 = time.monotonic()

    def unavailable(self):
        if self.window is None:
            return False
        t = time.monotonic() - self.t0
        return self.window[0] <= t < self.window[0] + self.window[1]


SLOW = Slow()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts = None

    def setup(self):
        super().setup()
        with self.counts.lock:
            self.counts.connections += 1

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _discard_body(self, keep=None):
        """Reads the body; its bytes are appended to `keep` (a list) when given."""
        left = int(self.headers.get("Content-Length") or 0)
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:  # not what otel2dd sends, but read it correctly anyway
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return n
                got = self.rfile.read(size)
                n += len(got)
                if keep is not None:
                    keep.append(got)
                self.rfile.readline()
        while left > 0:
            got = self.rfile.read(min(left, CHUNK))
            if not got:
                break
            n += len(got)
            left -= len(got)
            if keep is not None:
                keep.append(got)
        return n

    def do_POST(self):
        path = self.path.split("?")[0]
        if path == TRACES:
            parts = []
            n = self._discard_body(parts)
            if SLOW.delay_s > 0:
                time.sleep(SLOW.delay_s)
            if SLOW.unavailable():
                with self.counts.lock:
                    self.counts.refused[path] += 1
                self.counts.add(path, n, 503)
                return self._answer(503, b'{"errors":["unavailable (sink --unavailable)"]}')
            # answered at once, as the intake does, and decoded by DECODER: a sender waiting
            # for the decode would be slowed down by the sink, not by its own work
            self._answer(202, b"{}")
            DECODER.put(self.counts, path, n, b"".join(parts),
                        (self.headers.get("Content-Encoding") or "").lower())
            return None
        if path in (SERIES, SKETCHES, LOGS):
            parts = []
            n = self._discard_body(parts)
            try:
                items = count_items(path, b"".join(parts),
                                    (self.headers.get("Content-Encoding") or "").lower())
            except (ValueError, IndexError, zlib.error) as e:
                self.counts.add(path, n, 400)
                return self._answer(400, json.dumps({"error": str(e)}).encode())
            except Exception as e:  # zstandard.ZstdError and the like
                self.counts.add(path, n, 400)
                return self._answer(400, json.dumps({"error": repr(e)}).encode())
            self.counts.add(path, n, 202, items)
            return self._answer(202, b"{}")
        n = self._discard_body()
        status = 202 if path in (STATS, LLMOBS) else 404
        self.counts.add(path, n, status)
        self._answer(status, b"{}")

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == COUNTS:  # ?wait=1: once every trace payload received so far is decoded
            if "wait=1" in self.path:
                DECODER.wait()
            return self._answer(200, json.dumps(self.counts.snapshot()).encode())
        status = 200 if path == VALIDATE else 404
        self.counts.add(path, 0, status)
        self._answer(status, b'{"valid":true}' if status == 200 else b"{}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--span-ids", action="store_true",
                    help="keep every span id and report how many were distinct")
    ap.add_argument("--delay-ms", type=float, default=0,
                    help="answer each trace intake request this much later")
    ap.add_argument("--unavailable", default=None, metavar="START:SECONDS",
                    help="answer trace intake requests 503 during this window")
    args = ap.parse_args()
    global SPAN_IDS
    if args.span_ids:
        SPAN_IDS = set()
    SLOW.delay_s = args.delay_ms / 1000.0
    if args.unavailable:
        a, b = args.unavailable.split(":")
        SLOW.window = (float(a), float(b))
    counts = Counts()
    Handler.counts = counts
    srv = Server(("127.0.0.1", args.port), Handler)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    print("sink listening 127.0.0.1:%d" % srv.server_address[1], flush=True)
    while not stop.wait(3600):
        pass
    srv.shutdown()
    srv.server_close()
    DECODER.wait()
    print("sink counts %s" % json.dumps(counts.snapshot(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
