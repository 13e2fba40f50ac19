#!/usr/bin/python3
"""End-to-end tests of agent mode (exporters.datadog.agent.endpoint): otel2dd sends through
a local Datadog Agent, played by fake_intake.FakeIntake's agent endpoints, which decode what
arrives with python3-msgpack and json, independently of otel2dd's encoders:
  - OTLP spans over gRPC and HTTP arrive exactly once at /v0.4/traces as v0.4 msgpack, with
    their ids (128-bit trace ids: low half in trace_id, high half in _dd.p.tid), service,
    resource, type and meta; with the tracers' headers and no API key, uncompressed; stats
    arrive at /v0.6/stats as ClientStatsPayloads whose hits equal the spans;
  - header values from resource attributes cannot inject a header;
  - an LLM span reaches /evp_proxy/v2/api/v2/llmobs with X-Datadog-EVP-Subdomain;
  - 500s are retried, then everything is delivered once; a 429's Retry-After is honoured;
  - an Agent that is not up at start does not stop the receivers, and gets the spans once it
    is; the Agent's /info max_request_bytes splits bodies on trace boundaries;
  - no API key is needed; with one set the Agent still wins; invalid agent.endpoint values
    stop the start with an error that names the key;
  - the real OpenTelemetry JS SDK (tests/e2e/js, as test_js_sdk.py runs it) over gRPC and
    OTLP/HTTP: every span at the Agent once, stats hits = the spans stats count.
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_agent_mode.py [-v] [TestName ...]
"""
import collections
import os
import random
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import AGENT_INFO, AGENT_LLMOBS, AGENT_STATS, AGENT_TRACES  # noqa: E402
from harness import IntakeTestCase, Otel2dd, Otel2ddChecked, totals, wait_until  # noqa: E402
from otlp_client import new_id, send_grpc, send_http, set_attr, trace_service_pb2  # noqa: E402

import grpc  # noqa: E402

class Sent:
    """What a test sent, to check against what the Agent got."""

    def __init__(self):
        self.spans = {}  # span id -> dict(trace_id=128-bit int, parent, service, kind, ...)

    def ids(self):
        return set(self.spans)


def traces_req(sent, n_traces, spans_per_trace=3, service="agent-e2e", resource_attrs=None,
               pad=0, llm=False):
    """n_traces traces, each an HTTP SERVER root with CLIENT (postgres) children, 128-bit
    trace ids with a non-zero high half. Records what each span should become in `sent`."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", service)
    set_attr(rs.resource.attributes, "deployment.environment.name", "e2e")
    set_attr(rs.resource.attributes, "telemetry.sdk.language", "python")
    set_attr(rs.resource.attributes, "telemetry.sdk.version", "1.27.0")
    extra = {"process.runtime.name": "cpython", "process.runtime.version": "3.12.1"}
    extra.update(resource_attrs or {})
    for k, v in extra.items():
        set_attr(rs.resource.attributes, k, v)
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for _ in range(n_traces):
        tid = random.getrandbits(128) | (1 << 100)
        root = new_id()
        for j in range(spans_per_trace):
            sid = root if j == 0 else new_id()
            s = ss.spans.add()
            s.trace_id = tid.to_bytes(16, "big")
            s.span_id = sid.to_bytes(8, "big")
            s.start_time_unix_nano = now - 50_000_000 + j
            s.end_time_unix_nano = now - j
            if j == 0:
                s.name = "GET /users/{id}"
                s.kind = 2  # SERVER
                set_attr(s.attributes, "http.request.method", "GET")
                set_attr(s.attributes, "http.route", "/users/{id}")
                set_attr(s.attributes, "http.response.status_code", 200)
                want = {"type": "web", "resource": "GET /users/{id}",
                        "name": "http.server.request"}
            elif llm and j == 1:
                s.parent_span_id = root.to_bytes(8, "big")
                s.name = "chat gpt-4o-mini"
                s.kind = 3  # CLIENT
                for k, v in {"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
                             "gen_ai.request.model": "gpt-4o-mini",
                             "gen_ai.usage.input_tokens": 12,
                             "gen_ai.usage.output_tokens": 4}.items():
                    set_attr(s.attributes, k, v)
                want = {"type": "llm"}
            else:
                s.parent_span_id = root.to_bytes(8, "big")
                s.name = "SELECT users"
                s.kind = 3  # CLIENT
                set_attr(s.attributes, "db.system", "postgresql")
                set_attr(s.attributes, "db.statement", "SELECT * FROM users WHERE id = 42")
                want = {"type": "sql", "resource": "SELECT * FROM users WHERE id = ?"}
            if pad:
                set_attr(s.attributes, "padding", random.randbytes(pad).hex())
            want.update(trace_id=tid, parent=0 if j == 0 else root, service=service)
            sent.spans[sid] = want
    return req.SerializeToString()


def agent_config(endpoint, extra=None, key=None):
    dd = {"agent": {"endpoint": endpoint},
          "traces": {"flush_interval": "200ms"},
          "retry_on_failure": {"max_elapsed_time": "60s"},
          "llmobs": {"ml_app": "agent-e2e", "trace_buffer": {"timeout": "2s"}}}
    if key is not None:
        dd["api"] = {"key": key}
    dd.update(extra or {})
    return {"exporters": {"datadog": dd}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lower(headers):
    return {k.lower(): v for k, v in headers.items()}


class AgentMode(IntakeTestCase):
    intake_args = {"api_key": "never-sent"}

    def wait_spans(self, ids, timeout=30):
        want = set(ids)
        wait_until(lambda: want <= set(self.intake.agent_span_ids()), timeout,
                   "%d spans at the agent (have %d)"
                   % (len(want), len(self.intake.agent_span_ids())))

    def assert_once(self, sent):
        got = collections.Counter(self.intake.agent_span_ids())
        self.assertEqual([i for i, c in got.items() if c > 1], [], "spans delivered twice")
        self.assertEqual(set(got), sent.ids())

    def assert_no_agentless(self):
        paths = {r["path"] for r in self.intake.requests}
        self.assertFalse(paths & {"/api/v0.2/traces", "/api/v0.2/stats", "/api/v1/validate",
                                  "/api/v2/llmobs"}, paths)

    def test_spans_once_with_tracer_headers_and_stats(self):
        sent = Sent()
        # A trailing slash on the endpoint is taken as the base URL.
        with Otel2ddChecked(config=agent_config(self.intake.url + "/")) as o:
            o.wait_log(lambda l: l.get("msg") == "Datadog Agent found", 10, "the /info probe")
            for svc in ("svc-a", "svc-b"):
                body = traces_req(sent, 10, service=svc,
                                  resource_attrs={"container.id": "c0ffee" + svc[-1] * 58})
                self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            body = traces_req(sent, 5, service="svc-http")
            self.assertEqual(send_http(o.http_port, body), 200)
            self.wait_spans(sent.ids())
            self.assertEqual(o.stop(), 0)  # flushes the stats buckets
            t = totals(o)
        self.assert_once(sent)
        self.assert_no_agentless()

        by_trace = collections.defaultdict(list)
        for s in self.intake.agent_spans:
            want = sent.spans[s["span_id"]]
            self.assertEqual(s["trace_id"], want["trace_id"] & ((1 << 64) - 1))
            self.assertEqual(s["parent_id"], want["parent"])
            self.assertEqual(s["service"], want["service"])
            self.assertEqual(s["type"], want["type"])
            if "resource" in want:
                self.assertEqual(s["resource"], want["resource"])
            if "name" in want:
                self.assertEqual(s["name"], want["name"])
            self.assertEqual(s["meta"].get("env"), "e2e")
            self.assertEqual(s["error"], 0)
            self.assertGreater(s["duration"], 0)
            by_trace[(id(s["_headers"]), s["trace_index"])].append(s)
        for spans in by_trace.values():
            # The trace's first span carries its high half and its priority, as tracers do.
            first = spans[0]
            high = sent.spans[first["span_id"]]["trace_id"] >> 64
            self.assertEqual(first["meta"].get("_dd.p.tid"), "%016x" % high)
            self.assertEqual(first["metrics"].get("_sampling_priority_v1"), 1)
            self.assertEqual(len({s["trace_id"] for s in spans}), 1)

        reqs = self.intake.requests_to(AGENT_TRACES)
        self.assertTrue(reqs)
        for r in reqs:
            h = lower(r["headers"])
            self.assertNotIn("dd-api-key", h)
            self.assertNotIn("content-encoding", h)
            self.assertEqual(h["content-type"], "application/msgpack")
            self.assertEqual(h["datadog-meta-lang"], "python")
            self.assertEqual(h["datadog-meta-tracer-version"], "otlp-1.27.0")
            self.assertEqual(h["datadog-meta-lang-version"], "3.12.1")
            self.assertEqual(h["datadog-meta-lang-interpreter"], "cpython")
            self.assertEqual(h["datadog-client-computed-stats"], "yes")
            self.assertEqual(h["datadog-client-computed-top-level"], "yes")
            self.assertIn("datadog-send-real-http-status", h)
            self.assertTrue(int(h["x-datadog-trace-count"]) >= 1)
        # The container id travels per request, as the tracers' header: bodies do not mix.
        cids = collections.defaultdict(set)
        for s in self.intake.agent_spans:
            cids[lower(s["_headers"]).get("datadog-container-id")].add(s["service"])
        self.assertEqual(cids, {"c0ffee" + "a" * 58: {"svc-a"}, "c0ffee" + "b" * 58: {"svc-b"},
                                None: {"svc-http"}})

        # Stats: ClientStatsPayloads to /v0.6/stats. Every span counts (the roots are top-level,
        # the children are CLIENT spans, counted by span kind), so hits = spans, group by group.
        hits = collections.Counter()
        for g in self.intake.agent_groups():
            hits[(g["Service"], g["Name"], g["Resource"])] += g["Hits"]
        spans = collections.Counter((s["service"], s["name"], s["resource"])
                                    for s in self.intake.agent_spans)
        self.assertEqual(sum(hits.values()), 75)
        self.assertEqual(dict(hits), dict(spans))
        for p in self.intake.agent_stats_payloads:
            self.assertEqual(p["Env"], "e2e")
            self.assertEqual(p["Lang"], "python")
        for r in self.intake.requests_to(AGENT_STATS):
            h = lower(r["headers"])
            self.assertNotIn("dd-api-key", h)
            self.assertNotIn("content-encoding", h)
            self.assertEqual(h["content-type"], "application/msgpack")
            self.assertEqual(h["datadog-meta-lang"], "python")
        self.assertEqual(len(self.intake.requests_to(AGENT_INFO)), 1)
        mode = o.wait_log(lambda l: l.get("msg") == "datadog destination: agent", 1, "mode")
        self.assertEqual(mode["agent"], self.intake.url)
        self.assertEqual(t["spans_sent"], 75, t)

    def test_hostile_header_values_and_utf8(self):
        # Resource attributes end up in request headers: CR/LF must not start a new one.
        sent = Sent()
        with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
            body = traces_req(sent, 3, service="sërvice-ü-日本",
                              resource_attrs={"container.id": "abc\r\nX-Evil: 1",
                                              "telemetry.sdk.version": "1\r\nX-Evil2: 2",
                                              "process.runtime.name": "x\r\nX-Evil3: 3",
                                              "process.runtime.version": "\n" * 200})
            self.assertEqual(send_http(o.http_port, body), 200)
            self.wait_spans(sent.ids())
        self.assert_once(sent)
        for r in self.intake.requests_to(AGENT_TRACES):
            h = lower(r["headers"])
            self.assertNotIn("x-evil", h)
            self.assertNotIn("x-evil2", h)
            self.assertNotIn("x-evil3", h)
            self.assertEqual(h["datadog-meta-lang-interpreter"], "xX-Evil3: 3")
            self.assertNotIn("datadog-meta-lang-version", h)  # nothing left of it
            for v in h.values():
                self.assertNotIn("\n", v)
        self.assertEqual({s["service"] for s in self.intake.agent_spans}, {"sërvice-ü-日本"})

    def test_llm_span_through_evp_proxy(self):
        sent = Sent()
        with Otel2ddChecked(config=agent_config(self.intake.url, key="unused-key")) as o:
            body = traces_req(sent, 1, spans_per_trace=2, service="llm-app", llm=True)
            self.assertEqual(send_http(o.http_port, body), 200)
            wait_until(lambda: self.intake.events(), 20, "an LLM Obs event through the Agent")
            self.wait_spans(sent.ids())
            self.assertEqual(o.stop(), 0)
            mode = o.wait_log(lambda l: l.get("msg") == "datadog destination: agent", 1, "mode")
        self.assertIn("unused", mode.get("note", ""))
        self.assert_no_agentless()
        evs = self.intake.events()
        self.assertEqual(len(evs), 1, evs)
        llm_id = [i for i, w in sent.spans.items() if w["type"] == "llm"][0]
        self.assertEqual(evs[0]["span_id"], str(llm_id))
        self.assertEqual(evs[0]["meta"]["span"]["kind"], "llm")
        reqs = self.intake.requests_to(AGENT_LLMOBS)
        self.assertEqual(len(reqs), 1)
        h = lower(reqs[0]["headers"])
        self.assertEqual(h["x-datadog-evp-subdomain"], "llmobs-intake")
        self.assertEqual(h["content-type"], "application/json")
        self.assertNotIn("dd-api-key", h)
        # The LLM span is in APM as well, typed llm.
        types = {s["span_id"]: s["type"] for s in self.intake.agent_spans}
        self.assertEqual(types[llm_id], "llm")
        for r in self.intake.requests_to(AGENT_TRACES):
            self.assertNotIn("dd-api-key", lower(r["headers"]))

    def test_500s_retried_then_delivered_once(self):
        self.intake.script(AGENT_TRACES, [500, 500, 500])
        self.intake.script(AGENT_STATS, [503])
        sent = Sent()
        with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
            self.assertEqual(send_grpc(o.grpc_port, traces_req(sent, 20)), grpc.StatusCode.OK)
            self.wait_spans(sent.ids())
            self.assertEqual(o.stop(), 0)
            t = totals(o)
        self.assert_once(sent)
        statuses = [r["status"] for r in self.intake.requests_to(AGENT_TRACES)]
        self.assertEqual(statuses[:3], [500, 500, 500])
        self.assertIn(200, statuses[3:])
        # The retried body is the same body.
        shas = [r["sha"] for r in self.intake.requests_to(AGENT_TRACES)]
        self.assertEqual(shas[0], shas[3])
        self.assertEqual(t["spans_sent"], 60, t)
        self.assertGreater(t["spans_retried"], 0, t)
        self.assertEqual(sum(g["Hits"] for g in self.intake.agent_groups()), 60)

    def test_429_from_a_busy_agent_is_retried_after_the_delay(self):
        # The Agent answers 429 when it cannot take a payload (we ask for the real status).
        self.intake.script(AGENT_TRACES, [(429, {"Retry-After": "2"})])
        sent = Sent()
        with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
            self.assertEqual(send_http(o.http_port, traces_req(sent, 5)), 200)
            self.wait_spans(sent.ids())
        self.assert_once(sent)
        reqs = self.intake.requests_to(AGENT_TRACES)
        self.assertEqual([r["status"] for r in reqs[:2]], [429, 200])
        self.assertGreaterEqual(reqs[1]["time"] - reqs[0]["time"], 1.9)

    def test_agent_down_at_start_then_up(self):
        port = free_port()
        self.intake.stop()
        sent = Sent()
        with Otel2ddChecked(config=agent_config("http://127.0.0.1:%d" % port)) as o:
            # Receivers answer, though the Agent is not there.
            self.assertEqual(send_grpc(o.grpc_port, traces_req(sent, 4)), grpc.StatusCode.OK)
            self.assertEqual(send_http(o.http_port, traces_req(sent, 4)), 200)
            o.wait_log(lambda l: l.get("msg", "").startswith("Datadog Agent did not answer"),
                       15, "the warning that the Agent is not there")
            # The Agent comes up: what was queued arrives, once.
            self.intake.port = port
            self.intake.start()
            self.wait_spans(sent.ids(), timeout=40)
            self.assertEqual(o.stop(), 0)
        self.assert_once(sent)

    def test_info_max_request_bytes_splits_bodies(self):
        # An Agent configured with a small max request size: bodies stay under it, split on
        # trace boundaries (every trace whole in one body).
        self.intake.agent_info["config"]["max_request_bytes"] = 60000
        sent = Sent()
        with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
            found = o.wait_log(lambda l: l.get("msg") == "Datadog Agent found", 10, "/info")
            self.assertEqual(found["max_request_bytes"], 60000)
            self.assertEqual(found["agent_version"], "7.99.0-fake")
            self.assertEqual(found["v0.6_stats"], "yes")
            self.assertEqual(found["evp_proxy_v2"], "yes")
            for _ in range(4):
                body = traces_req(sent, 10, spans_per_trace=3, pad=1000)
                self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            self.wait_spans(sent.ids())
        self.assert_once(sent)
        reqs = self.intake.requests_to(AGENT_TRACES)
        self.assertGreater(len(reqs), 3)
        self.assertTrue(all(r["len"] <= 60000 for r in reqs), [r["len"] for r in reqs])
        where = collections.defaultdict(set)
        for s in self.intake.agent_spans:
            where[s["trace_id"]].add((id(s["_headers"]), s["trace_index"]))
        self.assertTrue(all(len(v) == 1 for v in where.values()))

    def test_info_without_stats_or_evp_warns(self):
        self.intake.agent_info["endpoints"] = ["/v0.4/traces", "/info"]
        with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
            o.wait_log(lambda l: "does not list /v0.6/stats" in l.get("msg", ""), 10,
                       "the stats warning")
            o.wait_log(lambda l: "does not list /evp_proxy/v2/" in l.get("msg", ""), 10,
                       "the EVP proxy warning")
            sent = Sent()
            self.assertEqual(send_http(o.http_port, traces_req(sent, 2)), 200)
            self.wait_spans(sent.ids())

    def test_info_garbage_does_not_stop_it(self):
        # A hostile or broken /info answer is only a warning.
        self.intake.agent_info = ["not", "an", "object"]
        with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
            o.wait_log(lambda l: "not a JSON object" in l.get("msg", ""), 10, "the warning")
            sent = Sent()
            self.assertEqual(send_http(o.http_port, traces_req(sent, 2)), 200)
            self.wait_spans(sent.ids())

    def test_info_absurd_limit_ignored(self):
        # An /info that claims a 1-byte limit (or a string) must not make every trace too large.
        for bad in (1, "26214400"):
            with self.subTest(max_request_bytes=bad):
                self.intake.agent_info["config"]["max_request_bytes"] = bad
                with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
                    found = o.wait_log(lambda l: l.get("msg") == "Datadog Agent found", 10,
                                       "/info")
                    self.assertEqual(found["max_request_bytes"], 25 * 1024 * 1024)
                    sent = Sent()
                    self.assertEqual(send_http(o.http_port, traces_req(sent, 2)), 200)
                    self.wait_spans(sent.ids())

    def test_invalid_endpoints_are_config_errors(self):
        for bad in ("datadog-agent:8126", "ftp://agent:8126", "unix:///var/run/datadog/apm.sock",
                    "http://", "http://:8126", "http://agent:0", "http://agent:99999",
                    "http://agent:81x6", "http://agent:8126/v0.4/traces", "http://agent:8126?x=1",
                    "http://user@agent:8126", "http://[::1:8126"):
            with self.subTest(endpoint=bad):
                o = Otel2dd(config=agent_config(bad))
                with self.assertRaises(AssertionError) as cm:
                    o.start(timeout=10)
                o.stop(expect=1)
                os.unlink(o.config_path)
                self.assertIn("exporters.datadog.agent.endpoint", str(cm.exception))

    def test_ipv6_endpoint_accepted(self):
        with Otel2ddChecked(config=agent_config("http://[::1]:%d" % free_port())) as o:
            o.wait_log(lambda l: l.get("msg") == "datadog destination: agent", 10, "the mode")


class AgentModeJsSdk(IntakeTestCase):
    """Spans from the real OpenTelemetry JS SDK, through otel2dd in agent mode."""

    @classmethod
    def setUpClass(cls):
        import test_js_sdk
        problem = test_js_sdk.js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)
        cls.js = test_js_sdk

    def run_one(self, protocol, n=300):
        with Otel2ddChecked(config=agent_config(self.intake.url)) as o:
            port = o.grpc_port if protocol == "grpc" else o.http_port
            rc, report, raw = self.js.send(protocol, port, n, False)
            self.assertEqual(rc, 0, raw)
            self.assertEqual(report.get("sent"), n, raw)
            wait_until(lambda: len(self.intake.agent_span_ids()) >= n, 30,
                       "%d spans at the agent" % n)
            self.assertEqual(o.stop(), 0)
        ids = collections.Counter(self.intake.agent_span_ids())
        self.assertEqual(len(ids), n)
        self.assertEqual(max(ids.values()), 1)
        spans = self.intake.agent_spans
        self.assertIn("GET /api/v1/items/{id}", {s["resource"] for s in spans})
        self.assertIn("web", {s["type"] for s in spans})
        for s in spans:
            self.assertEqual(lower(s["_headers"]).get("datadog-meta-lang"), "nodejs")
            self.assertNotIn("dd-api-key", lower(s["_headers"]))
        # The spans stats count, by the trace agent's rule: top-level, measured, or of kind
        # server/client/producer/consumer (compute_stats_by_span_kind is on by default).
        counted = [s for s in spans
                   if s["metrics"].get("_top_level") == 1 or s["metrics"].get("_dd.measured") == 1
                   or s["meta"].get("span.kind") in ("server", "client", "producer", "consumer")]
        self.assertTrue(0 < len(counted) < n)
        self.assertEqual(sum(g["Hits"] for g in self.intake.agent_groups()), len(counted))

    def test_grpc(self):
        self.run_one("grpc")

    def test_http_protobuf(self):
        self.run_one("proto")


if __name__ == "__main__":
    unittest.main()
