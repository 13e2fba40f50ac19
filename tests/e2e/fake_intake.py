#!/usr/bin/python3
"""A fake Datadog intake for end-to-end tests: /api/v0.2/traces, /api/v0.2/stats,
/api/v2/llmobs, /api/v2/series, /api/beta/sketches, /api/v2/logs and /api/v1/validate on
127.0.0.1, an ephemeral port.

What otel2dd sends is decoded with an independent decoder: the AgentPayload with protobuf
classes that protoc generates at start from proto/datadog/trace (python3-protobuf), the
StatsPayload with python3-msgpack, the Datadog Logs body (a JSON array of log objects,
checked against the Logs API's limits: 5 MB uncompressed, 1,000 entries, 1 MB an entry,
DD-API-KEY) with json, the LLM Observability body (a JSON array of envelopes
{"_dd.stage","_dd.tracer_version","event_type":"span","spans":[...]}) with json, checked
against the shape Datadog's tracers send. Series and sketches bodies (MetricPayload,
SketchPayload) are decoded with classes protoc generates from proto/datadog/agentpayload; each
must carry DD-API-KEY and Content-Type application/x-protobuf and be within the limits the
Agent keeps to (series 512,000 B compressed and 5,242,880 B before; sketches 2.5 MiB and
4 MiB), or the request counts as an error. Every body is first decompressed as its
Content-Encoding says: gzip with Python's zlib, zstd with python3-zstandard (an independent
decoder: libzstd's Python bindings, not our code), none as it is; any other encoding is an
error. Every request is recorded (time, path, headers, its encoding, body digest, the answer
given); the spans and stats groups of the requests answered 2xx are recorded too, so a test
can check that each span arrived once.

Faults are scripted per path: answer 500 three times then 202, 429 with Retry-After, 403,
413; be down (the port closed and open connections dropped) until told otherwise; be slow.

    intake = FakeIntake().start()
    intake.script("/api/v0.2/traces", [500, 500, 500])
    intake.script("/api/v0.2/traces", [(429, {"Retry-After": "2"})])
    ... intake.url ...
    intake.stop()

It also plays a local Datadog Agent's trace port, for otel2dd's agent mode: POST
/v0.4/traces (a msgpack array of traces, each an array of span maps, checked against the
keys and types the Agent's decoder takes), /v0.6/stats (one msgpack ClientStatsPayload),
/evp_proxy/v2/api/v2/llmobs (the LLM Obs body, only with X-Datadog-EVP-Subdomain:
llmobs-intake) and GET /info (the Agent's discovery JSON, `agent_info`). The same scripted
faults apply to these paths; an Agent answers 200 when nothing is scripted.

Run alone (`python3 fake_intake.py`) it prints its URL and serves until interrupted.
"""
import collections
import hashlib
import http.server
import json
import os
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import msgpack  # python3-msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRACES = "/api/v0.2/traces"
STATS = "/api/v0.2/stats"
VALIDATE = "/api/v1/validate"
LLMOBS = "/api/v2/llmobs"
SERIES = "/api/v2/series"
SKETCHES = "/api/beta/sketches"
# datadog-agent pkg/config/setup: serializer_max_series_payload_size and
# _uncompressed_payload_size; serializer_max_payload_size and _uncompressed_payload_size.
METRICS_LIMITS = {SERIES: (512000, 5242880), SKETCHES: (2621440, 4194304)}
LOGS = "/api/v2/logs"
# Datadog Logs API, "Send logs": the limits of one request.
LOGS_MAX_BODY = 5000000
LOGS_MAX_ENTRIES = 1000
LOGS_MAX_ENTRY = 1000000
# A local Datadog Agent's endpoints (DataDog/datadog-agent pkg/trace/api/endpoints.go).
AGENT_TRACES = "/v0.4/traces"
AGENT_STATS = "/v0.6/stats"
AGENT_LLMOBS = "/evp_proxy/v2/api/v2/llmobs"
AGENT_INFO = "/info"
AGENT_PATHS = (AGENT_TRACES, AGENT_STATS, AGENT_LLMOBS)
# The keys of a v0.4 span map, and the msgpack types the Agent's decoder takes for them.
AGENT_SPAN_TYPES = {"service": str, "name": str, "resource": str, "trace_id": int,
                    "span_id": int, "parent_id": int, "start": int, "duration": int,
                    "error": int, "meta": dict, "metrics": dict, "type": str,
                    "meta_struct": dict, "span_links": list}
AGENT_SPAN_REQUIRED = set(AGENT_SPAN_TYPES) - {"meta_struct", "span_links"}
# A v0.4 span link (pkg/proto/datadog/trace/span.proto SpanLink msgp tags): the required keys
# and the types of all.
AGENT_LINK_TYPES = {"trace_id": int, "trace_id_high": int, "span_id": int, "attributes": dict,
                    "tracestate": str, "flags": int}
AGENT_LINK_REQUIRED = {"trace_id", "span_id"}
# dd-trace-py DEFAULT_EVP_PAYLOAD_SIZE_LIMIT; the intake's own limit is about 5.1 MB.
LLMOBS_MAX_BODY = 5 << 20
LLMOBS_EVENT_KEYS = {"trace_id", "span_id", "parent_id", "name", "start_ns", "duration",
                     "status", "meta", "metrics", "tags", "_dd"}

_pb = None
_metrics_pb = None


def load_protos():
    """protoc --python_out for the Datadog trace and metrics intake messages; the trace
    module, once (the metrics one is metrics_protos())."""
    global _pb, _metrics_pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="otel2dd-dd-pb2-")
        subprocess.run(["protoc", "--python_out=" + out, "-I", os.path.join(ROOT, "proto"),
                        "datadog/trace/agent_payload.proto",
                        "datadog/trace/tracer_payload.proto", "datadog/trace/span.proto",
                        "datadog/agentpayload/agent_payload.proto"],
                       check=True)
        sys.path.insert(0, out)
        from datadog.trace import agent_payload_pb2
        from datadog.agentpayload import agent_payload_pb2 as metrics_pb2
        _pb = agent_payload_pb2
        _metrics_pb = metrics_pb2
    return _pb


def metrics_protos():
    """The protoc-generated module of proto/datadog/agentpayload (MetricPayload, ...)."""
    load_protos()
    return _metrics_pb


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


RAW_MAX = 64 << 20  # what any body may decompress to here


def encoding_of(headers):
    """The Content-Encoding a request came with: "gzip", "zstd" or "none"."""
    return (headers.get("Content-Encoding") or "none").strip().lower()


def decode_body(body, headers, max_raw=RAW_MAX):
    """The body as its Content-Encoding says (bounded: a bomb fails)."""
    enc = encoding_of(headers)
    if enc == "none":
        return body
    if enc == "gzip":
        d = zlib.decompressobj(16 + 15)
        raw = d.decompress(body, max_raw + 1)
        if not d.eof or d.unused_data:
            raise ValueError("gzip body truncated, trailing bytes, or over %d bytes" % max_raw)
        return raw
    if enc == "zstd":
        import zstandard  # python3-zstandard
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=max_raw + 1)
    raise ValueError("Content-Encoding %r" % enc)


class FakeIntake:
    def __init__(self, api_key="test-key"):
        self.pb = load_protos()
        self.api_key = api_key
        self.lock = threading.Lock()
        self.requests = []        # every request: dict(time, path, method, headers, sha, status)
        self.spans = []           # every span of accepted trace payloads (dicts)
        self.agent_payloads = []  # dict(hostName, env, agentVersion, targetTPS, errorTPS, n)
        self.stats_payloads = []  # decoded StatsPayloads (dicts as msgpack gives them)
        self.stats_groups = []    # every ClientGroupedStats, with its payload's fields added
        self.llmobs_events = []   # every LLM Obs span event of accepted bodies (dicts), with
        #                           "_envelope" (the envelope's other fields) added
        self.llmobs_bodies = []   # dict(events, len, tracer_version) per accepted body
        self.series = []          # every series of accepted /api/v2/series bodies (dicts)
        self.sketches = []        # every sketch of accepted /api/beta/sketches bodies (dicts)
        self.metrics_bodies = []  # dict(path, len, raw_len, n) per accepted metrics body
        self.logs = []            # every log object of accepted /api/v2/logs bodies (dicts)
        self.logs_bodies = []     # dict(entries, len, raw_len) per accepted logs body
        self.errors = []          # decoding failures: a test fails on any
        self.proxied = 0          # requests that came through as a forward proxy
        self.scripts = collections.defaultdict(collections.deque)
        self.default_status = {}  # path -> status when nothing is scripted
        self.max_body = {}        # path -> bytes: a longer body gets 413, as a real intake
        self.delay = 0.0          # seconds before each answer
        self.validate_status = 200
        # The agent side: spans of accepted /v0.4/traces bodies (dicts as for `spans`, plus
        # "_headers", the request's headers), ClientStatsPayloads and their groups.
        self.agent_spans = []
        self.agent_stats_payloads = []
        self.agent_stats_groups = []
        self.info_status = 200
        self.agent_info = {
            "version": "7.99.0-fake", "git_commit": "fake",
            "endpoints": ["/v0.3/traces", "/v0.4/traces", "/v0.5/traces", "/v0.7/traces",
                          "/v0.6/stats", "/v0.1/pipeline_stats", "/evp_proxy/v1/",
                          "/evp_proxy/v2/", "/evp_proxy/v3/", "/evp_proxy/v4/", "/info"],
            "client_drop_p0s": True, "span_meta_structs": True, "long_running_spans": True,
            "config": {"default_env": "none", "target_tps": 10, "receiver_port": 8126,
                       "max_request_bytes": 26214400},
        }
        for p in AGENT_PATHS:
            self.default_status[p] = 200
        self.down = False
        self.port = 0
        self.server = None
        self.thread = None

    # ---- lifecycle ----
    def start(self):
        self._serve()
        return self

    def _serve(self):
        intake = self

        class Handler(_Handler):
            pass
        Handler.intake = intake
        self.server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def go_down(self):
        """Closes the port, and open connections answer nothing, until come_up()."""
        self.down = True
        self.stop()

    def come_up(self):
        self.down = False
        self._serve()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- faults ----
    def script(self, path, answers):
        """Answers for the next requests to path: a status, or (status, headers dict)."""
        with self.lock:
            for a in answers:
                self.scripts[path].append(a if isinstance(a, tuple) else (a, {}))

    def next_answer(self, path):
        with self.lock:
            if self.scripts[path]:
                return self.scripts[path].popleft()
        return self.default_status.get(path, 202), {}

    # ---- what was received ----
    def span_ids(self):
        with self.lock:
            return [s["span_id"] for s in self.spans]

    def requests_to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def groups(self):
        with self.lock:
            return list(self.stats_groups)

    def events(self):
        """The LLM Obs span events received so far."""
        with self.lock:
            return list(self.llmobs_events)

    def series_points(self):
        """The series received so far, one dict per series (one point each, from otel2dd)."""
        with self.lock:
            return list(self.series)

    def sketch_points(self):
        with self.lock:
            return list(self.sketches)

    def log_objects(self):
        """The Datadog log objects received so far."""
        with self.lock:
            return list(self.logs)

    def agent_span_ids(self):
        with self.lock:
            return [s["span_id"] for s in self.agent_spans]

    def agent_groups(self):
        with self.lock:
            return list(self.agent_stats_groups)

    # ---- decoding ----
    def record_traces(self, body, headers):
        ap = self.pb.AgentPayload()
        ap.ParseFromString(body)
        spans = []
        for tp in ap.tracerPayloads:
            ptags = dict(tp.tags)
            for chunk in tp.chunks:
                for s in chunk.spans:
                    spans.append({
                        "trace_id": s.traceID, "span_id": s.spanID, "parent_id": s.parentID,
                        "service": s.service, "name": s.name, "resource": s.resource,
                        "type": s.type, "error": s.error, "start": s.start,
                        "duration": s.duration, "meta": dict(s.meta),
                        "metrics": dict(s.metrics), "language": tp.languageName,
                        "env": tp.env, "hostname": tp.hostname, "priority": chunk.priority,
                        "payload_tags": ptags, "container_id": tp.containerID,
                        "span_links": [{"trace_id": l.traceID, "trace_id_high": l.traceID_high,
                                        "span_id": l.spanID, "attributes": dict(l.attributes),
                                        "tracestate": l.tracestate, "flags": l.flags}
                                       for l in s.spanLinks],
                        "agent_hostname": ap.hostName,
                        "chunk_tags": dict(chunk.tags),
                    })
        with self.lock:
            self.agent_payloads.append({
                "hostName": ap.hostName, "env": ap.env, "agentVersion": ap.agentVersion,
                "targetTPS": ap.targetTPS, "errorTPS": ap.errorTPS,
                "tracerPayloads": len(ap.tracerPayloads), "spans": len(spans),
                "languages": headers.get("X-Datadog-Reported-Languages"),
            })
            self.spans.extend(spans)

    def check_metrics_headers(self, path, body, headers):
        """What the metrics intakes require; the body decompressed (zstd, gzip or none)."""
        if headers.get("DD-API-KEY") != self.api_key:
            raise ValueError("DD-API-KEY %r" % headers.get("DD-API-KEY"))
        if headers.get("Content-Type") != "application/x-protobuf":
            raise ValueError("Content-Type %r" % headers.get("Content-Type"))
        max_body, max_raw = METRICS_LIMITS[path]
        if len(body) > max_body:
            raise ValueError("%d bytes compressed, over %d" % (len(body), max_body))
        raw = decode_body(body, headers, max_raw)
        if len(raw) > max_raw:
            raise ValueError("%d bytes before compression, over %d" % (len(raw), max_raw))
        return raw

    @staticmethod
    def _origin(md):
        o = md.origin
        return (o.origin_product, o.origin_category, o.origin_service) if md.HasField(
            "origin") else None

    def record_series(self, body, headers):
        raw = self.check_metrics_headers(SERIES, body, headers)
        mp = metrics_protos().MetricPayload()
        mp.ParseFromString(raw)
        out = []
        for s in mp.series:
            out.append({
                "metric": s.metric, "type": s.type, "tags": list(s.tags),
                "resources": [(r.type, r.name) for r in s.resources],
                "points": [(p.timestamp, p.value) for p in s.points],
                "interval": s.interval, "unit": s.unit,
                "source_type_name": s.source_type_name,
                "origin": self._origin(s.metadata) if s.HasField("metadata") else None,
            })
        with self.lock:
            self.series.extend(out)
            self.metrics_bodies.append({"path": SERIES, "len": len(body), "raw_len": len(raw),
                                        "n": len(out)})

    def record_sketches(self, body, headers):
        raw = self.check_metrics_headers(SKETCHES, body, headers)
        sp = metrics_protos().SketchPayload()
        sp.ParseFromString(raw)
        out = []
        for s in sp.sketches:
            out.append({
                "metric": s.metric, "host": s.host, "tags": list(s.tags),
                "distributions": len(s.distributions),
                "dogsketches": [{"ts": d.ts, "cnt": d.cnt, "min": d.min, "max": d.max,
                                 "avg": d.avg, "sum": d.sum, "k": list(d.k), "n": list(d.n)}
                                for d in s.dogsketches],
                "origin": self._origin(s.metadata) if s.HasField("metadata") else None,
            })
        with self.lock:
            self.sketches.extend(out)
            self.metrics_bodies.append({"path": SKETCHES, "len": len(body),
                                        "raw_len": len(raw), "n": len(out)})

    def record_logs(self, body, raw, headers):
        """Decodes and checks one /api/v2/logs body (raw: decompressed); raises on anything
        the Logs API would refuse, which fails the request (400) and the test (errors)."""
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            raise ValueError("Content-Type %r, want application/json" % ctype)
        if headers.get("DD-API-KEY") != self.api_key:
            raise ValueError("DD-API-KEY %r" % headers.get("DD-API-KEY"))
        if len(raw) > LOGS_MAX_BODY:
            raise ValueError("body of %d bytes uncompressed, over %d" % (len(raw), LOGS_MAX_BODY))
        entries = json.loads(raw.decode("utf-8"))
        if not isinstance(entries, list) or not entries or len(entries) > LOGS_MAX_ENTRIES:
            raise ValueError("body is not a JSON array of 1 to %d entries" % LOGS_MAX_ENTRIES)
        for e in entries:
            if not isinstance(e, dict) or not isinstance(e.get("message"), str):
                raise ValueError("entry without a message string")
            size = len(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode())
            if size > LOGS_MAX_ENTRY + 64:  # our re-encoding may differ a little
                raise ValueError("entry of %d bytes, over %d" % (size, LOGS_MAX_ENTRY))
        with self.lock:
            self.logs_bodies.append({"entries": len(entries), "len": len(body),
                                     "raw_len": len(raw)})
            self.logs.extend(entries)

    def record_llmobs(self, body, headers):
        """Decodes and checks one /api/v2/llmobs body; raises on anything a tracer would not
        send, which fails the request (400) and the test (errors)."""
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            raise ValueError("Content-Type %r, want application/json" % ctype)
        if len(body) > LLMOBS_MAX_BODY:
            raise ValueError("body of %d bytes, over the %d limit" % (len(body), LLMOBS_MAX_BODY))
        envs = json.loads(body.decode("utf-8"))
        if not isinstance(envs, list) or not envs:
            raise ValueError("body is not a non-empty JSON array")
        events = []
        versions = set()
        for env in envs:
            if not isinstance(env, dict):
                raise ValueError("envelope is not an object")
            if env.get("_dd.stage") != "raw" or env.get("event_type") != "span":
                raise ValueError("bad envelope %r" % {k: v for k, v in env.items()
                                                      if k != "spans"})
            if not isinstance(env.get("_dd.tracer_version"), str):
                raise ValueError("envelope without _dd.tracer_version")
            versions.add(env["_dd.tracer_version"])
            spans = env.get("spans")
            if not isinstance(spans, list) or not spans:
                raise ValueError("envelope without spans")
            for ev in spans:
                missing = LLMOBS_EVENT_KEYS - set(ev)
                if missing:
                    raise ValueError("event %s lacks %s" % (ev.get("span_id"), sorted(missing)))
                ev = dict(ev)
                ev["_envelope"] = {k: v for k, v in env.items() if k != "spans"}
                events.append(ev)
        with self.lock:
            self.llmobs_bodies.append({"events": len(events), "len": len(body),
                                       "tracer_version": sorted(versions)})
            self.llmobs_events.extend(events)

    def record_agent_traces(self, body, headers):
        """Decodes one /v0.4/traces body as the Agent would take it; raises on anything a
        tracer would not send (which fails the request with 400 and the test)."""
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/msgpack":
            raise ValueError("Content-Type %r, want application/msgpack" % ctype)
        if headers.get("Content-Encoding"):
            raise ValueError("Content-Encoding %r: v0.4 takes plain msgpack"
                             % headers.get("Content-Encoding"))
        traces = msgpack.unpackb(body, raw=False, strict_map_key=True)
        if not isinstance(traces, list):
            raise ValueError("body is not a msgpack array of traces")
        count = headers.get("X-Datadog-Trace-Count")
        if count is None or int(count) != len(traces):
            raise ValueError("X-Datadog-Trace-Count %r, body has %d traces" % (count, len(traces)))
        spans = []
        hdrs = dict(headers.items())
        for ti, trace in enumerate(traces):
            if not isinstance(trace, list) or not trace:
                raise ValueError("trace %d is not a non-empty array of spans" % ti)
            for s in trace:
                if not isinstance(s, dict):
                    raise ValueError("span is not a map")
                missing = AGENT_SPAN_REQUIRED - set(s)
                extra = set(s) - set(AGENT_SPAN_TYPES)
                if missing or extra:
                    raise ValueError("span keys: missing %s, unknown %s"
                                     % (sorted(missing), sorted(extra)))
                for k, t in AGENT_SPAN_TYPES.items():
                    if k in s and not isinstance(s[k], t):
                        raise ValueError("span %s: %s is %r" % (s.get("span_id"), k, type(s[k])))
                for k in ("trace_id", "span_id", "parent_id"):
                    if not 0 <= s[k] < 1 << 64:
                        raise ValueError("%s %r out of uint64" % (k, s[k]))
                if not all(isinstance(k, str) and isinstance(v, str)
                           for k, v in s["meta"].items()):
                    raise ValueError("meta is not string to string")
                if not all(isinstance(k, str) and isinstance(v, (int, float))
                           for k, v in s["metrics"].items()):
                    raise ValueError("metrics is not string to number")
                for link in s.get("span_links", []):
                    if not isinstance(link, dict) or not AGENT_LINK_REQUIRED <= set(link) or \
                            set(link) - set(AGENT_LINK_TYPES) or \
                            any(not isinstance(link[k], t) for k, t in AGENT_LINK_TYPES.items()
                                if k in link):
                        raise ValueError("span link %r" % (link,))
                    if not all(isinstance(k, str) and isinstance(v, str)
                               for k, v in link.get("attributes", {}).items()):
                        raise ValueError("span link attributes are not string to string")
                d = dict(s)
                d["trace_index"] = ti
                d["_headers"] = hdrs
                spans.append(d)
        with self.lock:
            self.agent_spans.extend(spans)

    def record_agent_stats(self, body, headers):
        """One ClientStatsPayload, as a tracer sends it to /v0.6/stats."""
        if headers.get("Content-Encoding"):
            raise ValueError("Content-Encoding on /v0.6/stats")
        csp = msgpack.unpackb(body, raw=False)
        if not isinstance(csp, dict) or "AgentHostname" in csp or "Stats" not in csp:
            raise ValueError("not a ClientStatsPayload: keys %r" % sorted(csp)[:10])
        groups = []
        for bucket in csp.get("Stats") or []:
            for g in bucket.get("Stats") or []:
                g = dict(g)
                g["_env"] = csp.get("Env")
                g["_version"] = csp.get("Version")
                g["_hostname"] = csp.get("Hostname")
                g["_lang"] = csp.get("Lang")
                g["_start"] = bucket.get("Start")
                g["_duration"] = bucket.get("Duration")
                groups.append(g)
        with self.lock:
            self.agent_stats_payloads.append(csp)
            self.agent_stats_groups.extend(groups)

    def record_stats(self, body):
        sp = msgpack.unpackb(body, raw=False)
        groups = []
        for csp in sp.get("Stats") or []:
            for bucket in csp.get("Stats") or []:
                for g in bucket.get("Stats") or []:
                    g = dict(g)
                    g["_env"] = csp.get("Env")
                    g["_version"] = csp.get("Version")
                    g["_hostname"] = csp.get("Hostname")
                    g["_tags"] = csp.get("Tags")
                    g["_agent_hostname"] = sp.get("AgentHostname")
                    g["_start"] = bucket.get("Start")
                    g["_duration"] = bucket.get("Duration")
                    groups.append(g)
        with self.lock:
            self.stats_payloads.append(sp)
            self.stats_groups.extend(groups)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    intake = None

    def log_message(self, *args):
        pass

    def _answer(self, status, headers=None, body=b""):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _path(self):
        """The request's path. A forward-proxy request names the whole URL
        ("POST http://intake.invalid/api/v0.2/traces"); it is counted and served as well."""
        target = self.path
        if target.startswith("http://") or target.startswith("https://"):
            with self.intake.lock:
                self.intake.proxied += 1
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return target.split("?")[0]

    def _drop(self):
        """Down: no answer at all, the connection just closes."""
        self.close_connection = True

    def do_GET(self):
        it = self.intake
        if it.down:
            return self._drop()
        path = self._path()
        rec = {"time": time.monotonic(), "path": path, "method": "GET",
               "headers": dict(self.headers.items()), "sha": None}
        if path == AGENT_INFO:
            status = self.intake.info_status
            rec["status"] = status
            with it.lock:
                it.requests.append(rec)
                body = json.dumps(it.agent_info).encode()
            return self._answer(status, {"Content-Type": "application/json"},
                                body if status == 200 else b"{}")
        if path != VALIDATE:
            rec["status"] = 404
            with it.lock:
                it.requests.append(rec)
            return self._answer(404)
        ok = it.validate_status == 200 and self.headers.get("DD-API-KEY") == it.api_key
        status = 200 if ok else (it.validate_status if it.validate_status != 200 else 403)
        rec["status"] = status
        with it.lock:
            it.requests.append(rec)
        body = json.dumps({"valid": True} if ok else {"errors": ["Forbidden"]}).encode()
        self._answer(status, {"Content-Type": "application/json"}, body)

    def do_POST(self):
        it = self.intake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if it.down:
            return self._drop()
        path = self._path()
        now = time.monotonic()
        if it.delay:
            time.sleep(it.delay)
        status, extra = it.next_answer(path)
        if path in it.max_body and len(body) > it.max_body[path]:
            status, extra = 413, {}
        rec = {"time": now, "path": path, "method": "POST", "status": status,
               "headers": dict(self.headers.items()), "sha": hashlib.sha256(body).hexdigest(),
               "len": len(body), "encoding": encoding_of(self.headers)}
        with it.lock:
            it.requests.append(rec)
        if 200 <= status < 300 and path in AGENT_PATHS:
            try:
                if path == AGENT_TRACES:
                    it.record_agent_traces(body, self.headers)
                elif path == AGENT_STATS:
                    it.record_agent_stats(body, self.headers)
                else:
                    # The Agent's EVP proxy refuses a request without a subdomain
                    # (pkg/trace/api/evp_proxy.go).
                    sub = self.headers.get("X-Datadog-EVP-Subdomain")
                    if sub != "llmobs-intake":
                        raise ValueError("X-Datadog-EVP-Subdomain %r" % sub)
                    it.record_llmobs(body, self.headers)
            except Exception as e:  # noqa: BLE001 - any decoding problem fails the test
                with it.lock:
                    it.errors.append("%s: %r" % (path, e))
                    rec["status"] = status = 400
            answer = b'{"rate_by_service":{"service:,env:":1}}' if path == AGENT_TRACES else b"{}"
            if not 200 <= status < 300:
                answer = json.dumps({"errors": ["fake agent says %d" % status]}).encode()
            return self._answer(status, extra, answer)
        if 200 <= status < 300 and path in (TRACES, STATS, LLMOBS, LOGS):
            try:
                raw = decode_body(body, self.headers)
                if path == TRACES:
                    it.record_traces(raw, self.headers)
                elif path == LLMOBS:
                    it.record_llmobs(raw, self.headers)
                elif path == LOGS:
                    it.record_logs(body, raw, self.headers)
                else:
                    it.record_stats(raw)
            except Exception as e:  # noqa: BLE001 - any decoding problem fails the test
                with it.lock:
                    it.errors.append("%s: %r" % (path, e))
                    rec["status"] = status = 400
        if 200 <= status < 300 and path in (SERIES, SKETCHES):
            try:
                if path == SERIES:
                    it.record_series(body, self.headers)
                else:
                    it.record_sketches(body, self.headers)
            except Exception as e:  # noqa: BLE001 - any decoding problem fails the test
                with it.lock:
                    it.errors.append("%s: %r" % (path, e))
                    rec["status"] = status = 400
        answer = b"{}" if 200 <= status < 300 else json.dumps(
            {"errors": ["fake intake says %d" % status]}).encode()
        self._answer(status, extra, answer)


if __name__ == "__main__":
    with FakeIntake() as intake:
        print(intake.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
