#!/usr/bin/python3
"""End-to-end tests of OTLP metrics to Datadog (translate/metrics, exporters/datadog_metrics.c),
checked at fake_intake.FakeIntake, which decodes /api/v2/series and /api/beta/sketches with
protoc-generated Python after zstd (python3-zstandard):
  - the OpenTelemetry JS metrics SDK (js/send_metrics.js: counter, up-down counter, histogram,
    exponential histogram, observable gauge) with its stock OTLP exporters over gRPC,
    OTLP/HTTP protobuf and OTLP/HTTP JSON, cumulative and delta temporality: counts are the
    differences of the cumulative sums (first point by the `auto` rule), the up-down counter a
    gauge, histograms sketches whose count, sum, min and max are the recorded values, the
    exponential histogram a sketch in delta and dropped (counted) in cumulative, the gauge its
    value; tags from the point attributes and the resource's unified service tags, the host
    from host.name, the Collector exporter's origin;
  - the SDK's own periodic exports (several intervals), delta: every count once;
  - an app restarted mid-run (a new process, its counters from zero again): no negative or
    lost counts;
  - a histogram whose bucket counts do not add up is dropped and counted, the rest of its
    request is not;
  - /metrics counts translated points, drops by reason and what was sent.
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_metrics_export.py [-v] [TestName ...]
"""
import os
import re
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import IntakeTestCase, Otel2dd, wait_until  # noqa: E402
from otlp_client import http_post, set_attr  # noqa: E402
from test_js_sdk import BIN, JS_DIR, NODE, js_deps_problem, run_node  # noqa: E402

SENDER = os.path.join(JS_DIR, "send_metrics.js")
EXPORTS = 3
# per export round (send_metrics.js)
LATENCY = [1, 2, 3, 50, 100]
SIZES = [1, 2, 4, 8]
ORIGIN = (19, 17, 0)


def config(intake):
    dd = {"api": {"key": "test-key", "endpoint": intake.url},
          "traces": {"endpoint": intake.url},
          "llmobs": {"enabled": False},
          "logs": {"enabled": False},
          "metrics": {"endpoint": intake.url}}
    return {"exporters": {"datadog": dd}}


def js_metrics(protocol, port, temporality, run, exports=EXPORTS):
    cmd = [NODE, SENDER, "--protocol", protocol, "--url", "http://127.0.0.1:%d" % port,
           "--temporality", temporality, "--run", run, "--exports", str(exports)]
    return run_node(cmd, 120)


def tagged(items, run):
    return [s for s in items if "run:%s" % run in s["tags"]]


def metric_value(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


class MetricsExport(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s" % BIN)

    def series_of(self, run, name):
        return [s for s in tagged(self.intake.series_points(), run) if s["metric"] == name]

    def sketches_of(self, run, name):
        return [s for s in tagged(self.intake.sketch_points(), run) if s["metric"] == name]

    def count_total(self, run, name, tag):
        return sum(p[1] for s in self.series_of(run, name) if tag in s["tags"]
                   for p in s["points"])

    def run_sdk(self, o, protocol, temporality, run, exports=EXPORTS):
        port = o.grpc_port if protocol == "grpc" else o.http_port
        rc, report, raw = js_metrics(protocol, port, temporality, run, exports)
        self.assertEqual(rc, 0, raw)
        self.assertEqual(report["failed"], 0, raw)
        self.assertGreaterEqual(report["exports"], exports, raw)

    def check_sdk(self, protocol, temporality):
        problem = js_deps_problem()
        if problem:
            self.skipTest(problem)
        run = uuid.uuid4().hex[:12]
        with Otel2dd(config=config(self.intake)) as o:
            self.run_sdk(o, protocol, temporality, run)
            want_cnt = len(LATENCY) * (EXPORTS if temporality == "delta" else EXPORTS - 1)
            # everything of the last export is in once the gauge and the histogram are
            wait_until(lambda: sum(k["dogsketches"][0]["cnt"]
                                   for k in self.sketches_of(run, "e2e.latency")) >= want_cnt
                       and self.series_of(run, "e2e.temperature"), 30,
                       "the latency sketches and the temperature gauge of run %s" % run)
            wait_until(lambda: self.count_total(run, "e2e.requests", "route:/a")
                       + self.count_total(run, "e2e.requests", "route:/b")
                       >= 7 * EXPORTS - (0 if temporality == "delta" else 5), 30,
                       "the request counts of run %s" % run)
            # the sender counts a body once the intake's answer is in
            text = wait_until(lambda: (lambda t: t if (metric_value(
                t, "otel2dd_exporter_sent_items_total", '{exporter="datadog_series"}') or 0) > 0
                else None)(o.scrape()), 20, "the series counted as sent")
        self.assertEqual(self.intake.errors, [])

        # Counter (monotonic sum): counts adding up to what was recorded, whatever the
        # temporality: the first cumulative point counts whole (auto: it started after
        # otel2dd), the others as differences.
        reqs = self.series_of(run, "e2e.requests")
        self.assertTrue(reqs)
        for s in reqs:
            self.assertEqual(s["type"], 1, s)  # count
            self.assertEqual(s["resources"], [("host", "e2e-host")], s)
            self.assertEqual(s["origin"], ORIGIN, s)
            for t in ("service:e2e-metrics", "env:e2e"):
                self.assertIn(t, s["tags"])
            self.assertTrue(all(p[1] >= 0 for p in s["points"]), s)
        a = self.count_total(run, "e2e.requests", "route:/a")
        b = self.count_total(run, "e2e.requests", "route:/b")
        if temporality == "delta":
            self.assertEqual((a, b), (5 * EXPORTS, 2 * EXPORTS))
        else:
            # Datadog reports a cumulative series' first value only for the first data point
            # of its metric in the request (mapping-go metrics_translator.go,
            # mapNumberMonotonicMetrics: `i == 0 && shouldConsumeInitialValue`): the other
            # series starts counting at its second point.
            self.assertIn((a, b), ((5 * EXPORTS, 2 * (EXPORTS - 1)),
                                   (5 * (EXPORTS - 1), 2 * EXPORTS)))

        # Up-down counter: cumulative in both preferences (the SDK keeps it so): a gauge of
        # the running value.
        depth = self.series_of(run, "e2e.queue.depth")
        self.assertTrue(depth)
        self.assertTrue(all(s["type"] == 3 for s in depth), depth)
        self.assertEqual(max(s["points"][0][1] for s in depth), 2 * EXPORTS)

        # Observable gauge.
        temp = self.series_of(run, "e2e.temperature")
        self.assertTrue(all(s["type"] == 3 and s["points"][0][1] == 21.5 for s in temp), temp)

        # Histogram -> sketches: a cumulative series' first point gives nothing (no window
        # to diff), then each export's window; a delta one each export.
        lat = self.sketches_of(run, "e2e.latency")
        dogs = [d for k in lat for d in k["dogsketches"]]
        self.assertEqual(sum(d["cnt"] for d in dogs), want_cnt)
        rounds = want_cnt // len(LATENCY)
        self.assertAlmostEqual(sum(d["sum"] for d in dogs), rounds * sum(LATENCY), places=6)
        for k in lat:
            self.assertEqual(k["host"], "e2e-host")
            self.assertEqual(k["origin"], ORIGIN)
        for d in dogs:
            if d["cnt"] == 0:
                continue
            self.assertEqual(sum(d["n"]), d["cnt"], d)
            self.assertAlmostEqual(d["avg"], d["sum"] / d["cnt"], places=6)
            self.assertLessEqual(d["min"], 1.0 + 1e-9)
            self.assertGreaterEqual(d["max"], 100.0 - 1e-9)

        # Exponential histogram: delta only (Datadog drops cumulative ones).
        size = self.sketches_of(run, "e2e.size")
        if temporality == "delta":
            dogs = [d for k in size for d in k["dogsketches"]]
            self.assertEqual(sum(d["cnt"] for d in dogs), len(SIZES) * EXPORTS)
            self.assertAlmostEqual(sum(d["sum"] for d in dogs), EXPORTS * sum(SIZES), places=6)
        else:
            self.assertEqual(size, [])
            self.assertGreater(metric_value(
                text, "otel2dd_metric_points_dropped_total",
                '{reason="unsupported_temporality"}') or 0, 0)

        self.assertGreater(metric_value(text, "otel2dd_translated_metric_points_total") or 0, 0)
        self.assertGreater(metric_value(text, "otel2dd_exporter_sent_items_total",
                                        '{exporter="datadog_series"}') or 0, 0)
        self.assertIsNone(metric_value(text, "otel2dd_receiver_unforwarded_metric_points_total")
                          or None)

    def test_grpc_cumulative(self):
        self.check_sdk("grpc", "cumulative")

    def test_grpc_delta(self):
        self.check_sdk("grpc", "delta")

    def test_http_protobuf_delta(self):
        self.check_sdk("proto", "delta")

    def test_http_protobuf_cumulative(self):
        self.check_sdk("proto", "cumulative")

    def test_http_json_cumulative(self):
        self.check_sdk("http", "cumulative")

    def test_periodic_exports_delta(self):
        # The SDK's own export timer (several 250 ms intervals, then the final export at
        # shutdown), delta: every count recorded arrives exactly once, whichever interval
        # carried it.
        problem = js_deps_problem()
        if problem:
            self.skipTest(problem)
        run = uuid.uuid4().hex[:12]
        with Otel2dd(config=config(self.intake)) as o:
            cmd = [NODE, SENDER, "--protocol", "grpc", "--url", "http://127.0.0.1:%d" % o.grpc_port,
                   "--temporality", "delta", "--run", run, "--exports", "4",
                   "--periodic-ms", "250"]
            rc, report, raw = run_node(cmd, 120)
            self.assertEqual(rc, 0, raw)
            rounds = report["rounds"]
            self.assertGreaterEqual(report["exports"], 4, raw)
            wait_until(lambda: self.count_total(run, "e2e.requests", "route:/a") >= 5 * rounds
                       and self.count_total(run, "e2e.requests", "route:/b") >= 2 * rounds,
                       30, "the counts of %d rounds" % rounds)
        self.assertEqual(self.count_total(run, "e2e.requests", "route:/a"), 5 * rounds)
        self.assertEqual(self.count_total(run, "e2e.requests", "route:/b"), 2 * rounds)
        self.assertGreater(len(self.series_of(run, "e2e.requests")), 2)  # several intervals

    def test_app_restarted_mid_run(self):
        # Two processes of one app in turn (cumulative sums from zero again): the second
        # start is a reset; its first point counts whole (it started after otel2dd), never
        # a negative difference.
        problem = js_deps_problem()
        if problem:
            self.skipTest(problem)
        run = uuid.uuid4().hex[:12]
        with Otel2dd(config=config(self.intake)) as o:
            self.run_sdk(o, "grpc", "cumulative", run)
            wait_until(lambda: self.count_total(run, "e2e.requests", "route:/a") >= 5 * EXPORTS,
                       30, "the first process's counts")
            self.run_sdk(o, "proto", "cumulative", run)
            wait_until(lambda: self.count_total(run, "e2e.requests", "route:/a")
                       >= 10 * EXPORTS, 30, "the second process's counts")
        self.assertEqual(self.count_total(run, "e2e.requests", "route:/a"), 10 * EXPORTS)
        self.assertTrue(all(p[1] >= 0 for s in self.series_of(run, "e2e.requests")
                            for p in s["points"]))

    def test_malformed_histogram_dropped_rest_sent(self):
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        run = uuid.uuid4().hex[:12]
        req = metrics_service_pb2.ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        set_attr(rm.resource.attributes, "service.name", "bad-hist")
        sm = rm.scope_metrics.add()
        now = time.time_ns()
        bad = sm.metrics.add()
        bad.name = "e2e.bad_hist"
        bad.histogram.aggregation_temporality = 1  # delta
        p = bad.histogram.data_points.add()
        set_attr(p.attributes, "run", run)
        p.start_time_unix_nano, p.time_unix_nano = now - 10**9, now
        p.count = 10
        p.explicit_bounds.extend([1.0, 2.0])
        p.bucket_counts.extend([1, 2])  # three buckets expected for two bounds
        good = sm.metrics.add()
        good.name = "e2e.good_gauge"
        g = good.gauge.data_points.add()
        set_attr(g.attributes, "run", run)
        g.time_unix_nano = now
        g.as_double = 7.0
        with Otel2dd(config=config(self.intake)) as o:
            self.assertEqual(http_post(o.http_port, "/v1/metrics", req.SerializeToString()), 200)
            wait_until(lambda: self.series_of(run, "e2e.good_gauge"), 20, "the good gauge")
            text = o.scrape()
        self.assertEqual(self.sketches_of(run, "e2e.bad_hist"), [])
        self.assertEqual(self.series_of(run, "e2e.good_gauge")[0]["points"][0][1], 7.0)
        self.assertGreaterEqual(metric_value(text, "otel2dd_metric_points_dropped_total",
                                             '{reason="malformed"}') or 0, 1)


    def test_translate_command(self):
        # `otel2dd translate` on a metrics request: protobuf (told, and found out: it is no
        # trace or logs request) and OTLP/JSON print the same series; a body that is no
        # request at all is refused, saying so.
        import json
        import subprocess
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        from google.protobuf import json_format
        req = metrics_service_pb2.ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        set_attr(rm.resource.attributes, "service.name", "cli")
        set_attr(rm.resource.attributes, "host.name", "cli-host")
        m = rm.scope_metrics.add().metrics.add()
        m.name = "cli.gauge"
        p = m.gauge.data_points.add()
        p.time_unix_nano = 1_700_000_000_000_000_000
        p.as_double = 2.5
        set_attr(p.attributes, "k", "v")
        pb = req.SerializeToString()
        js = json_format.MessageToJson(req).encode()
        outs = []
        for args, body in ((["--signal", "metrics"], pb), ([], pb), ([], js)):
            r = subprocess.run([BIN, "translate"] + args + ["-"], input=body,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            outs.append(json.loads(r.stdout))
        self.assertEqual(outs[0], outs[1])
        self.assertEqual(outs[0], outs[2])
        s = outs[0]["series"]
        self.assertEqual(len(s), 1)
        self.assertEqual((s[0]["metric"], s[0]["type"], s[0]["value"], s[0]["ts"], s[0]["host"]),
                         ("cli.gauge", "gauge", 2.5, 1700000000, "cli-host"))
        self.assertIn("k:v", s[0]["tags"])
        self.assertIn("service:cli", s[0]["tags"])
        r = subprocess.run([BIN, "translate", "-"], input=b"\xff\xff\xff garbage",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"--signal", r.stderr)


if __name__ == "__main__":
    unittest.main()
