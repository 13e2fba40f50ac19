#!/usr/bin/python3
"""End-to-end: trace sampling (processors.probabilistic_sampler) and LLM Obs sampling
(processors.llmobs_sampler) in the real binary, checked at the fake intake.

- Two otel2dd instances with the same sampling configuration get the same request: they keep
  the same traces, and that set is the one this file computes on its own from the trace ids
  (the W3C randomness, low 56 bits >= (1 - p) * 2^56, or FNV-1a 32 with hash_seed) plus every
  trace with an error. Every span counts in the stats either way; /metrics counts the spans
  sampled out.
- The JS SDK at 10 %: the stats are the same as without sampling (hits, errors, top-level
  hits per group), while the trace payloads hold about 10 % of the traces that have no error
  (within 5 standard deviations of the binomial count) and the error span of every error trace.
- LLM Obs: whole traces kept per ml_app rate, errors always.

Run: /usr/bin/python3 tests/e2e/test_sampling.py -v (OTEL2DD_BIN=... for another binary).
"""
import collections
import json
import math
import os
import random
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import BIN, IntakeTestCase, Otel2dd, assert_no_sanitizer_report, wait_until  # noqa: E402,E501
from otlp_client import send_http, set_attr, trace_service_pb2  # noqa: E402

import test_js_sdk  # noqa: E402

SPANS_PER_TRACE = 2


def threshold(p, prec=4):
    """pkg/sampling ProbabilityToThresholdWithPrecision (0 < p < 1)."""
    def digits(e):
        return int(e / -4)  # Go's integer division truncates toward zero
    prec = min(14, max(prec + digits(math.frexp(p)[1]), prec + digits(math.frexp(1 - p)[1])))
    t = 2**56 - math.floor(p * 2**56 + 0.5)
    shift = 4 * (14 - prec)
    if shift:
        t = ((t + (1 << (shift - 1))) >> shift) << shift
    return t


def keep_proportional(tid, pct):
    """The Collector's proportional mode: randomness = the low 56 bits of the trace id, kept
    when at or above the threshold."""
    return int.from_bytes(tid[9:], "big") >= threshold(pct / 100.0)


def fnv1a32(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def keep_hash_seed(tid, pct, seed):
    """The Collector's hash_seed mode: the bound is uint32(float32(pct / 100) * 16384)."""
    f32 = struct.unpack("<f", struct.pack("<f", pct / 100))[0]
    return (fnv1a32(struct.pack("<I", seed) + tid) & 0x3FFF) < int(f32 * 16384)


def traces_request(n, seed, service="sampled-svc", error_every=25):
    """n traces of a SERVER root and a CLIENT child; every error_every-th root in error.
    Returns (body, {trace id bytes: has error})."""
    rnd = random.Random(seed)
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = service
    ss = rs.scope_spans.add()
    now = time.time_ns()
    traces = {}
    sid = rnd.getrandbits(40) + 1
    for t in range(n):
        tid = rnd.getrandbits(128).to_bytes(16, "big")
        err = t % error_every == 0
        traces[tid] = err
        root = ss.spans.add()
        root.trace_id = tid
        root.span_id = sid.to_bytes(8, "big")
        root.name = "GET /items"
        root.kind = 2
        root.start_time_unix_nano = now - 20_000_000
        root.end_time_unix_nano = now
        if err:
            root.status.code = 2
        child = ss.spans.add()
        child.trace_id = tid
        child.span_id = (sid + 1).to_bytes(8, "big")
        child.parent_span_id = root.span_id
        child.name = "SELECT"
        child.kind = 3
        child.start_time_unix_nano = now - 10_000_000
        child.end_time_unix_nano = now - 5_000_000
        sid += 2
    return req.SerializeToString(), traces


def dd_config(intake, processors):
    return {
        "exporters": {"datadog": {
            "api": {"key": "test-key", "endpoint": intake.url},
            "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
            "llmobs": {"endpoint": intake.url},
        }},
        "processors": processors,
    }


def metric_value(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(l in line for l in labels):
            return float(line.rsplit(" ", 1)[1])
    return None


def kept_traces(intake):
    """{trace id bytes (from otel.trace_id): [spans]} of what the intake received."""
    out = collections.defaultdict(list)
    for s in intake.spans:
        out[bytes.fromhex(s["meta"]["otel.trace_id"])].append(s)
    return out


def stats_by_group(intake):
    out = collections.Counter()
    for g in intake.groups():
        key = (g["Service"], g["Name"], g["Resource"], g.get("SpanKind", ""))
        out[key + ("hits",)] += g["Hits"]
        out[key + ("errors",)] += g["Errors"]
        out[key + ("top",)] += g["TopLevelHits"]
    return out


class TwoInstances(unittest.TestCase):
    """The same request to two instances: the same kept set, the one computed here."""

    def run_pair(self, processors, decide):
        from fake_intake import FakeIntake
        body, traces = traces_request(1000, seed=4242)
        intakes = [FakeIntake().start(), FakeIntake().start()]
        try:
            kept_sets = []
            for intake in intakes:
                with Otel2dd(config=dd_config(intake, processors)) as o:
                    self.assertEqual(send_http(o.http_port, body), 200)
                    want = {t for t, err in traces.items() if err or decide(t)}
                    wait_until(lambda: set(kept_traces(intake)) >= want, 30,
                               "the %d kept traces at the intake" % len(want))
                    text = o.scrape()
                    self.assertEqual(o.stop(), 0)
                got = kept_traces(intake)
                kept_sets.append(set(got))
                self.assertEqual(set(got), want)
                for tid, spans in got.items():
                    self.assertEqual(len(spans), SPANS_PER_TRACE)  # a trace is kept whole
                    root = [s for s in spans if s["parent_id"] == 0][0]
                    by_rate = decide(tid)
                    self.assertEqual(root["priority"], 1)
                    if by_rate:
                        self.assertEqual(root["chunk_tags"].get("_dd.p.dm"), "-9")
                        self.assertAlmostEqual(root["metrics"]["_dd.prob_sr"], 0.1)
                        self.assertNotIn("_sample_rate", root["metrics"])
                    else:
                        self.assertTrue(traces[tid])
                        self.assertNotIn("_dd.p.dm", root["chunk_tags"])
                        self.assertEqual(root["metrics"]["_dd.errors_sr"], 1)
                    self.assertEqual(root["chunk_tags"]["_dd.otlp_sr"], "0.10")
                # every span in the stats, kept or not
                hits = sum(g["Hits"] for g in intake.groups())
                top = sum(g["TopLevelHits"] for g in intake.groups())
                self.assertEqual(top, len(traces))
                self.assertGreaterEqual(hits, len(traces))
                dropped = SPANS_PER_TRACE * (len(traces) - len(want))
                self.assertEqual(metric_value(text, "otel2dd_processor_sampled_out_spans_total",
                                              ['signal="traces"', 'rule="percentage"']), dropped)
                self.assertEqual(metric_value(text, "otel2dd_processor_sampled_in_spans_total",
                                              ['signal="traces"', 'rule="error"']),
                                 SPANS_PER_TRACE * sum(1 for t, e in traces.items()
                                                       if e and not decide(t)))
            self.assertEqual(kept_sets[0], kept_sets[1])
            # about 10 %: 960 traces without error, sd sqrt(960 * .1 * .9) = 9.3
            n_rate = sum(1 for t in traces if decide(t))
            self.assertLess(abs(n_rate - 100), 5 * 9.3)
        finally:
            for intake in intakes:
                intake.stop()
                self.assertEqual(intake.errors, [])

    def test_proportional(self):
        self.run_pair({"probabilistic_sampler": {"sampling_percentage": 10}},
                      lambda t: keep_proportional(t, 10))

    def test_hash_seed(self):
        self.run_pair({"probabilistic_sampler": {"sampling_percentage": 10, "hash_seed": 22}},
                      lambda t: keep_hash_seed(t, 10, 22))


class AgentMode(IntakeTestCase):
    """Through a local Datadog Agent (v0.4 msgpack): the same kept set, with the priority and
    the decision maker where the Agent reads them (the first span's metrics and meta)."""

    def test_agent_kept_set(self):
        body, traces = traces_request(400, seed=31)
        cfg = {"exporters": {"datadog": {"agent": {"endpoint": self.intake.url},
                                         "traces": {"flush_interval": "200ms"},
                                         "llmobs": {"enabled": False}}},
               "processors": {"probabilistic_sampler": {"sampling_percentage": 10}}}
        want = {t for t, err in traces.items() if err or keep_proportional(t, 10)}
        with Otel2dd(config=cfg) as o:
            self.assertEqual(send_http(o.http_port, body), 200)
            wait_until(lambda: len(self.intake.agent_span_ids()) >= 2 * len(want), 30,
                       "the kept spans at the agent")
            self.assertEqual(o.stop(), 0)
        got = collections.defaultdict(list)
        for s in self.intake.agent_spans:
            got[bytes.fromhex(s["meta"]["otel.trace_id"])].append(s)
        self.assertEqual(set(got), want)
        for tid, spans in got.items():
            self.assertEqual(len(spans), SPANS_PER_TRACE)
            first = spans[0]
            self.assertEqual(first["metrics"]["_sampling_priority_v1"], 1)
            self.assertEqual(first["meta"].get("_dd.p.dm"),
                             "-9" if keep_proportional(tid, 10) else None)
        # client stats from every span: each trace's top-level root counted
        self.assertEqual(sum(g["TopLevelHits"] for g in self.intake.agent_groups()), len(traces))


class DiskQueue(IntakeTestCase):
    """With sending_queue.storage and the intake down: a request whose traces are all sampled
    out writes no record; one with kept traces writes its record, holding only those."""

    def test_sampled_out_never_on_disk(self):
        import tempfile
        body, traces = traces_request(200, seed=7, error_every=10)
        with tempfile.TemporaryDirectory() as storage:
            cfg = dd_config(self.intake, {"probabilistic_sampler": {"sampling_percentage": 0,
                                                                    "keep_error_traces": False}})
            cfg["exporters"]["datadog"]["sending_queue"] = {"storage": storage}
            cfg["exporters"]["datadog"]["llmobs"] = {"enabled": False}
            # the intake is down at the first stop: its stats are not waited for long
            cfg["service"] = {"shutdown_timeout": "1s"}
            self.intake.go_down()
            with Otel2dd(config=cfg) as o:
                self.assertEqual(send_http(o.http_port, body), 200)
                text = o.scrape()
                self.assertEqual(metric_value(text, "otel2dd_exporter_disk_queue_records",
                                              ['exporter="datadog_traces"']), 0)
                self.assertEqual(metric_value(text, "otel2dd_processor_sampled_out_spans_total",
                                              ['rule="percentage"']), 2 * len(traces))
                self.assertEqual(o.stop(), 0)
            cfg["processors"]["probabilistic_sampler"]["keep_error_traces"] = True
            with Otel2dd(config=cfg) as o:
                self.assertEqual(send_http(o.http_port, body), 200)
                text = o.scrape()
                self.assertEqual(metric_value(text, "otel2dd_exporter_disk_queue_records",
                                              ['exporter="datadog_traces"']), 1)
                self.intake.come_up()
                want = {t for t, err in traces.items() if err}
                wait_until(lambda: set(kept_traces(self.intake)) == want, 30,
                           "the %d error traces from the disk queue" % len(want))
                self.assertEqual(o.stop(), 0)
            self.assertEqual(len(self.intake.spans), 2 * len(want))


class JsSdkTenPercent(IntakeTestCase):
    """The real JS SDK at 10 %: stats as without sampling; about 10 % of traces, every error."""
    SPANS = 3000  # groups of three: 1000 traces, the root of every 7th (g % 7 == 6) in error

    @classmethod
    def setUpClass(cls):
        problem = test_js_sdk.js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)

    def send_through(self, intake, processors):
        with Otel2dd(config=dd_config(intake, processors)) as o:
            rc, report, raw = test_js_sdk.send("proto", o.http_port, self.SPANS, False)
            self.assertEqual(rc, 0, raw)
            self.assertEqual(report["sent"], self.SPANS, raw)
            self.assertEqual(o.stop(), 0)  # flushes the stats buckets
        return stats_by_group(intake)

    def test_ten_percent(self):
        from fake_intake import FakeIntake
        sampled = self.send_through(self.intake, {"probabilistic_sampler":
                                                  {"sampling_percentage": 10}})
        with FakeIntake() as plain:
            unsampled = self.send_through(plain, {})
            self.assertEqual(len(plain.spans), self.SPANS)
        self.assertTrue(sampled)
        self.assertEqual(sampled, unsampled)
        spans = self.intake.spans
        by_trace = collections.defaultdict(list)
        for s in spans:
            by_trace[bytes.fromhex(s["meta"]["otel.trace_id"])].append(s)
        self.assertLess(len(spans), self.SPANS // 2)  # far fewer than sent
        error_roots = [s for s in spans if s["parent_id"] == 0 and s["error"]]
        n_traces, n_errors = self.SPANS // 3, (self.SPANS // 3) // 7  # groups 6, 13, ...
        self.assertEqual(len(error_roots), n_errors)  # every error trace's root
        rate_kept = [t for t in by_trace if keep_proportional(t, 10)]
        for t, ss in by_trace.items():
            if keep_proportional(t, 10):
                self.assertEqual(len(ss), 3)  # kept by its id: whole, across requests
            else:
                # kept by the error rule: the error root always; its children only when they
                # came in the same request as the root (the documented limit)
                self.assertTrue(any(s["error"] and s["parent_id"] == 0 for s in ss))
        # the traces without an error kept by their id: binomial, n = 858, p = 0.1,
        # sd = sqrt(858 * 0.1 * 0.9) = 8.8; 5 sd either side
        no_err = [t for t in rate_kept
                  if not any(s["error"] and s["parent_id"] == 0 for s in by_trace[t])]
        mean = (n_traces - n_errors) * 0.1
        self.assertLess(abs(len(no_err) - mean), 5 * 8.8, len(no_err))


def llm_request(n, seed):
    """Two resources, ml_app app-a and app-b, with n traces each: an agent root and a chat
    child; the chat span of every 10th app-a trace in error. Returns (body,
    {span id: (trace id, ml_app, trace has error)})."""
    rnd = random.Random(seed)
    req = trace_service_pb2.ExportTraceServiceRequest()
    now = time.time_ns()
    spans = {}
    sid = rnd.getrandbits(40) + 1
    for app in ("app-a", "app-b"):
        rs = req.resource_spans.add()
        set_attr(rs.resource.attributes, "service.name", "llm-" + app)
        set_attr(rs.resource.attributes, "datadog.ml_app", app)
        ss = rs.scope_spans.add()
        for t in range(n):
            tid = rnd.getrandbits(128).to_bytes(16, "big")
            err = app == "app-a" and t % 10 == 0
            agent = ss.spans.add()
            agent.trace_id = tid
            agent.span_id = sid.to_bytes(8, "big")
            agent.name = "invoke_agent helper"
            agent.kind = 1
            agent.start_time_unix_nano = now - 50_000_000
            agent.end_time_unix_nano = now
            set_attr(agent.attributes, "gen_ai.operation.name", "invoke_agent")
            set_attr(agent.attributes, "gen_ai.agent.name", "helper")
            set_attr(agent.attributes, "gen_ai.system", "openai")
            chat = ss.spans.add()
            chat.trace_id = tid
            chat.span_id = (sid + 1).to_bytes(8, "big")
            chat.parent_span_id = agent.span_id
            chat.name = "chat gpt-4o-mini"
            chat.kind = 3
            chat.start_time_unix_nano = now - 40_000_000
            chat.end_time_unix_nano = now - 10_000_000
            for k, v in (("gen_ai.system", "openai"), ("gen_ai.operation.name", "chat"),
                         ("gen_ai.request.model", "gpt-4o-mini")):
                set_attr(chat.attributes, k, v)
            if err:
                chat.status.code = 2
            spans[sid] = spans[sid + 1] = (tid, app, err)
            sid += 2
    return req.SerializeToString(), spans


class LlmObsSampling(IntakeTestCase):
    """ml_app app-a at 20 %, app-b at the default 100 %: whole LLM Obs trees, errors kept."""

    def test_per_ml_app_whole_trees(self):
        body, spans = llm_request(300, seed=99)
        cfg = dd_config(self.intake, {"llmobs_sampler": {"ml_app_rates": {"app-a": 20}}})
        with Otel2dd(config=cfg) as o:
            self.assertEqual(send_http(o.http_port, body), 200)
            text = o.scrape()
            self.assertEqual(o.stop(), 0)  # releases what the trace buffer holds
        got = collections.Counter()
        for ev in self.intake.events():
            tid, app, err = spans[int(ev["span_id"])]
            self.assertIn("ml_app:" + app, ev["tags"])
            got[tid] += 1
        traces = {tid: (app, err) for tid, app, err in spans.values()}
        want = {tid for tid, (app, err) in traces.items()
                if app == "app-b" or err or keep_proportional(tid, 20)}
        self.assertEqual(set(got), want)
        self.assertTrue(all(c == 2 for c in got.values()), "a tree kept whole")
        dropped = 2 * (len(traces) - len(want))
        self.assertGreater(dropped, 0)
        self.assertEqual(metric_value(text, "otel2dd_processor_sampled_out_spans_total",
                                      ['signal="llmobs"', 'rule="ml_app_rate"']), dropped)
        # app-a: 270 traces without error at 20 %, sd sqrt(270 * .2 * .8) = 6.6
        n = sum(1 for t, (app, err) in traces.items()
                if app == "app-a" and not err and keep_proportional(t, 20))
        self.assertLess(abs(n - 54), 5 * 6.6)


class LlmObsDisk(IntakeTestCase):
    """With sending_queue.storage, the trace buffer's inputs go to disk before it takes them:
    the prompts of sampled-out LLM Obs spans never do."""

    def test_dropped_prompts_never_on_disk(self):
        import tempfile
        rnd = random.Random(5)
        req = trace_service_pb2.ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        set_attr(rs.resource.attributes, "service.name", "llm-disk")
        ss = rs.scope_spans.add()
        now = time.time_ns()
        markers = {}
        for t in range(200):
            tid = rnd.getrandbits(128).to_bytes(16, "big")
            marker = "prompt-marker-%04d" % t
            markers[marker] = tid
            s = ss.spans.add()
            s.trace_id = tid
            s.span_id = (1000 + t).to_bytes(8, "big")
            s.parent_span_id = (5000 + t).to_bytes(8, "big")  # never sent: the buffer holds it
            s.name = "chat gpt-4o-mini"
            s.kind = 3
            s.start_time_unix_nano = now - 5_000_000
            s.end_time_unix_nano = now
            for k, v in (("gen_ai.system", "openai"), ("gen_ai.operation.name", "chat"),
                         ("gen_ai.request.model", "gpt-4o-mini"),
                         ("gen_ai.input.messages", json.dumps(
                             [{"role": "user", "parts": [{"type": "text", "content": marker}]}]))):
                set_attr(s.attributes, k, v)
        with tempfile.TemporaryDirectory() as storage:
            cfg = dd_config(self.intake, {"llmobs_sampler": {"sampling_percentage": 30}})
            dd = cfg["exporters"]["datadog"]
            dd["sending_queue"] = {"storage": storage}
            dd["llmobs"]["trace_buffer"] = {"timeout": "60s"}
            with Otel2dd(config=cfg) as o:
                self.assertEqual(send_http(o.http_port, req.SerializeToString()), 200)
                # the trace buffer's inputs (the APM queue beside it keeps every span: no
                # APM sampler here)
                blob = b""
                inputs = os.path.join(storage, "llmobs-input")
                self.assertTrue(os.path.isdir(inputs), os.listdir(storage))
                for root, _, files in os.walk(inputs):
                    for f in files:
                        with open(os.path.join(root, f), "rb") as fh:
                            blob += fh.read()
                on_disk = {m for m in markers if m.encode() in blob}
                want = {m for m, tid in markers.items() if keep_proportional(tid, 30)}
                self.assertTrue(want and len(want) < len(markers))
                self.assertEqual(on_disk, want)
                self.assertEqual(o.stop(), 0)


class Commands(unittest.TestCase):
    """`otel2dd translate` applies the samplers (so a user sees what leaves) and `otel2dd
    validate` shows the rules."""

    def run_bin(self, args, stdin=None):
        import subprocess
        p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=30)
        err = p.stderr.decode("utf-8", "replace")
        assert_no_sanitizer_report(err)
        self.assertEqual(p.returncode, 0, err)
        return p.stdout.decode("utf-8")

    def test_translate_and_validate(self):
        import tempfile
        body, traces = traces_request(300, seed=11)
        llm_body, llm_spans = llm_request(50, seed=12)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("processors:\n"
                        "  probabilistic_sampler:\n"
                        "    sampling_percentage: 10\n"
                        "  llmobs_sampler:\n"
                        "    sampling_percentage: 0\n"
                        "    keep_error_traces: false\n")
            src = os.path.join(tmp, "t.pb")
            with open(src, "wb") as f:
                f.write(body)
            out = json.loads(self.run_bin(["translate", "--config", cfg, src]))
            kept = {bytes.fromhex(s["meta"]["otel.trace_id"])
                    for tp in out["agentPayload"]["tracerPayloads"]
                    for c in tp["chunks"] for s in c["spans"]}
            want = {t for t, err in traces.items() if err or keep_proportional(t, 10)}
            self.assertEqual(kept, want)
            self.assertEqual(out["sampled_out"], SPANS_PER_TRACE * (len(traces) - len(want)))
            top = sum(int(g["TopLevelHits"]) for sp in out["stats"] for csp in sp["Stats"]
                      for bucket in csp["Stats"] for g in bucket["Stats"])
            self.assertEqual(top, len(traces))  # every root counted, kept or not
            with open(src, "wb") as f:
                f.write(llm_body)
            out = json.loads(self.run_bin(["translate", "--config", cfg, src]))
            self.assertEqual(out["llmobs"], [])  # LLM Obs at 0 %, errors not kept
            plain = json.loads(self.run_bin(["translate", src]))  # no sampler: every event
            self.assertEqual(len(plain["llmobs"]), len(llm_spans))
            self.assertEqual(plain["sampled_out"], 0)
            llm_traces = {tid: err for tid, _, err in llm_spans.values()}
            self.assertEqual(out["sampled_out"], 2 * sum(
                1 for t, err in llm_traces.items() if not err and not keep_proportional(t, 10)))
            text = self.run_bin(["validate", cfg])
            self.assertIn("  probabilistic_sampler:", text)
            self.assertIn("    sampling_percentage: 10\n", text)
            self.assertIn("#   traces: probabilistic_sampler, llmobs_sampler\n", text)
            self.assertIn("#     else 10% of traces, by trace id (proportional)\n", text)
            self.assertIn("#     else 0% (proportional)\n", text)
            # a pasted Collector file whose traces pipeline does not list the sampler: off
            with open(cfg, "a") as f:
                f.write("service:\n"
                        "  pipelines:\n"
                        "    traces:\n"
                        "      receivers: [otlp]\n"
                        "      processors: [llmobs_sampler]\n"
                        "      exporters: [datadog]\n")
            text = self.run_bin(["validate", cfg])
            self.assertIn("#   probabilistic_sampler: OFF, configured but no pipeline lists it",
                          text)
            with open(src, "wb") as f:
                f.write(body)
            out = json.loads(self.run_bin(["translate", "--config", cfg, src]))
            self.assertEqual(out["sampled_out"], 0)


if __name__ == "__main__":
    unittest.main()
