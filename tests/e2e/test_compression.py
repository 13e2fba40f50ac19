#!/usr/bin/python3
"""End-to-end: each Datadog destination's `compression` switched (exporters.datadog.traces,
traces.stats, llmobs, metrics, logs: zstd, gzip, none), the same requests sent each time
(an HTTP server span with a gen_ai chat child, log records, a gauge and a delta histogram),
with fixed ids and times so that what arrives is the same whatever the encoding.

Checked at fake_intake.FakeIntake, which decompresses each body as its Content-Encoding says
(zstd with python3-zstandard, gzip with Python's zlib) and decodes it with its own decoders:
every request to traces, stats, LLM Obs, logs, series and sketches came with the encoding
configured (no Content-Encoding for none), and the decoded spans, stats groups, LLM Obs
events, log objects, series and sketches are equal across the three runs. A fourth run with
no compression keys checks the defaults (traces zstd, stats gzip, LLM Obs none, metrics
zstd, logs zstd: datadog.c, "Compression").

    /usr/bin/python3 tests/e2e/test_compression.py [-v]
"""
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import (FakeIntake, LLMOBS, LOGS, SERIES, SKETCHES, STATS,  # noqa: E402
                         TRACES)
from harness import Otel2dd, wait_until  # noqa: E402
from otlp_client import (http_post, logs_service_pb2, set_attr,  # noqa: E402
                         trace_service_pb2)

DESTS = (TRACES, STATS, LLMOBS, LOGS, SERIES, SKETCHES)
NOW = (int(time.time()) // 10 * 10 - 20) * 10**9  # fixed for every run; stats bucket closed
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
ROOT, CHAT = 0x1111111111111111, 0x2222222222222222
LOG_COUNT = 5


def traces_body():
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", "compression-e2e")
    set_attr(rs.resource.attributes, "deployment.environment.name", "e2e")
    ss = rs.scope_spans.add()
    ss.scope.name = "e2e"
    root = ss.spans.add()
    root.trace_id, root.span_id = TRACE_ID, ROOT.to_bytes(8, "big")
    root.name, root.kind = "POST /ask", 2
    root.start_time_unix_nano, root.end_time_unix_nano = NOW - 90_000_000, NOW
    set_attr(root.attributes, "http.request.method", "POST")
    set_attr(root.attributes, "http.route", "/ask")
    chat = ss.spans.add()
    chat.trace_id, chat.span_id = TRACE_ID, CHAT.to_bytes(8, "big")
    chat.parent_span_id = root.span_id
    chat.name, chat.kind = "chat gpt-4o-mini", 3
    chat.start_time_unix_nano, chat.end_time_unix_nano = NOW - 80_000_000, NOW - 10_000_000
    for k, v in (("gen_ai.system", "openai"), ("gen_ai.operation.name", "chat"),
                 ("gen_ai.request.model", "gpt-4o-mini"), ("gen_ai.usage.input_tokens", 12),
                 ("gen_ai.usage.output_tokens", 4),
                 ("gen_ai.input.messages", json.dumps(
                     [{"role": "user", "parts": [{"type": "text", "content": "K2?"}]}]))):
        set_attr(chat.attributes, k, v)
    return req.SerializeToString()


def logs_body():
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    set_attr(rl.resource.attributes, "service.name", "compression-e2e")
    sl = rl.scope_logs.add()
    for i in range(LOG_COUNT):
        r = sl.log_records.add()
        r.time_unix_nano = NOW + i
        r.body.string_value = "request %d handled in %d ms" % (i, 10 + i)
        set_attr(r.attributes, "e2e.index", i)
    return req.SerializeToString()


def metrics_body():
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    set_attr(rm.resource.attributes, "service.name", "compression-e2e")
    sm = rm.scope_metrics.add()
    g = sm.metrics.add()
    g.name = "e2e.compression.gauge"
    p = g.gauge.data_points.add()
    p.time_unix_nano, p.as_double = NOW, 7.5
    h = sm.metrics.add()
    h.name = "e2e.compression.latency"
    h.histogram.aggregation_temporality = 1  # delta
    q = h.histogram.data_points.add()
    q.start_time_unix_nano, q.time_unix_nano = NOW - 10**10, NOW
    q.count, q.sum = 6, 21.0
    q.explicit_bounds.extend([1.0, 5.0])
    q.bucket_counts.extend([1, 3, 2])
    return req.SerializeToString()


def config(intake, kind):
    def comp(level):
        if kind is None:
            return {}
        c = {"compression": kind}
        if kind != "none":
            c["compression_params"] = {"level": level}
        return c
    dd = {"api": {"key": "test-key", "endpoint": intake.url},
          "hostname": "compression-host",
          "traces": dict({"endpoint": intake.url, "flush_interval": "100ms",
                          "stats": comp(6 if kind == "gzip" else 3)}, **comp(3)),
          "llmobs": dict({"endpoint": intake.url, "ml_app": "compression-e2e",
                          "log_join_window": "0s"}, **comp(1)),
          "metrics": dict({"endpoint": intake.url}, **comp(2)),
          "logs": dict({"endpoint": intake.url}, **comp(9 if kind == "gzip" else 5)),
          "retry_on_failure": {"max_elapsed_time": "30s"}}
    if kind is None:
        del dd["traces"]["stats"]
    return {"exporters": {"datadog": dd}}


def canonical(items, drop=()):
    """Items as sorted JSON texts, without the keys in drop."""
    return sorted(json.dumps({k: v for k, v in it.items() if k not in drop}, sort_keys=True,
                             default=repr) for it in items)


class Compression(unittest.TestCase):
    def run_once(self, kind):
        """Sends the requests to an otel2dd whose destinations compress with `kind` (None:
        the defaults); returns the encodings seen per destination and what was decoded."""
        intake = FakeIntake().start()
        try:
            with Otel2dd(config=config(intake, kind)) as o:
                for path, body in (("/v1/traces", traces_body()), ("/v1/logs", logs_body()),
                                   ("/v1/metrics", metrics_body())):
                    self.assertEqual(http_post(o.http_port, path, body, timeout=15), 200)
                wait_until(lambda: len(intake.span_ids()) >= 2 and intake.events()
                           and len(intake.log_objects()) >= LOG_COUNT
                           and intake.series_points() and intake.sketch_points(), 30,
                           "spans, LLM Obs events, logs, series and sketches (%s)" % kind)
                self.assertEqual(o.stop(), 0)  # its flush sends the stats
            self.assertEqual(intake.errors, [])
            enc = {p: sorted({r["encoding"] for r in intake.requests_to(p)}) for p in DESTS}
            got = {
                "spans": canonical(intake.spans),
                # spans older than the concentrator's oldest open bucket go into that bucket
                # (as the Agent's): its start follows the run's wall clock
                "stats": canonical(intake.groups(), drop=("_start",)),
                "llmobs": canonical(intake.events()),
                "logs": canonical(intake.log_objects()),
                "series": canonical(intake.series_points()),
                "sketches": canonical(intake.sketch_points()),
            }
            return enc, got
        finally:
            intake.stop()

    def test_each_destination_switched(self):
        runs = {}
        for kind in ("zstd", "gzip", "none"):
            enc, got = self.run_once(kind)
            for path in DESTS:
                self.assertEqual(enc[path], [kind], "%s with compression %s" % (path, kind))
            for what, items in got.items():
                self.assertTrue(items, "%s arrived (%s)" % (what, kind))
            runs[kind] = got
        for kind in ("gzip", "none"):
            for what in runs["zstd"]:
                self.assertEqual(runs[kind][what], runs["zstd"][what],
                                 "%s decoded from %s differ from zstd's" % (what, kind))

    def test_defaults(self):
        enc, _ = self.run_once(None)
        self.assertEqual(enc, {TRACES: ["zstd"], STATS: ["gzip"], LLMOBS: ["none"],
                               LOGS: ["zstd"], SERIES: ["zstd"], SKETCHES: ["zstd"]})


if __name__ == "__main__":
    unittest.main()
