#!/usr/bin/python3
"""End-to-end tests of the Datadog Logs exporter (exporters/logs_exporter.c) and its
translation (translate/logs), checked at fake_intake.FakeIntake (/api/v2/logs: gzip JSON
arrays, decoded with gzip and json, checked against the Logs API's limits):
  - the OpenTelemetry JS logs SDK (js/send_spans.js --signal logs, @opentelemetry/sdk-logs and
    the stock OTLP log exporters) over gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON: every
    record arrives once, with dd.trace_id (low 64 bits, decimal) / dd.span_id and the otel.*
    ids, status from severity, typed attributes, service and the unified service tags, and a
    1 MiB body cut to the 1 MB entry limit and marked ...TRUNCATED...;
  - gen_ai event records are left to LLM Observability unless include_genai_events;
  - malformed, truncated and oversized requests over HTTP and gRPC are refused with the right
    status, nothing reaches the intake, and otel2dd goes on;
  - /metrics counts received, translated, sent.
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_logs_export.py [-v] [TestName ...]
"""
import gzip
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import LOGS  # noqa: E402
from harness import IntakeTestCase, Otel2dd, wait_until  # noqa: E402
from otlp_client import grpc_call, http_post, logs_service_pb2, set_attr  # noqa: E402
from test_js_sdk import BIN, NODE, SENDER, js_deps_problem, run_node  # noqa: E402

import grpc  # noqa: E402  (python3-grpcio)

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
COUNT = 60
BIG = 1 << 20
MAX_ENTRY = 1000000
MARKER = "...TRUNCATED..."


def config(intake, extra=None):
    dd = {"api": {"key": "test-key", "endpoint": intake.url},
          "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
          "llmobs": {"endpoint": intake.url},
          "logs": {"endpoint": intake.url}}
    dd["logs"].update(extra or {})
    return {"exporters": {"datadog": dd},
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0",
                                                          "max_recv_msg_size_mib": 4},
                                                 "http": {"endpoint": "127.0.0.1:0",
                                                          "max_request_body_size": 4 << 20}}}}}


def js_logs(protocol, port, count, big=0):
    url = "http://127.0.0.1:%d" % port
    cmd = [NODE, SENDER, "--protocol", protocol, "--url", url, "--spans", str(count),
           "--gzip", "off", "--batch", "25", "--signal", "logs"]
    if big:
        cmd += ["--big-body", str(big)]
    return run_node(cmd, 120)


def logs_body(records, service="logs-e2e"):
    """records: dicts of event_name, body, attrs, trace_id, span_id."""
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    set_attr(rl.resource.attributes, "service.name", service)
    sl = rl.scope_logs.add()
    for rec in records:
        r = sl.log_records.add()
        r.time_unix_nano = time.time_ns()
        r.body.string_value = rec.get("body", "")
        if rec.get("event_name"):
            r.event_name = rec["event_name"]
        if rec.get("trace_id"):
            r.trace_id = rec["trace_id"]
            r.span_id = rec["span_id"]
        for k, v in rec.get("attrs", {}).items():
            set_attr(r.attributes, k, v)
    return req.SerializeToString()


class LogsExport(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s" % BIN)

    def check_js_run(self, protocol):
        problem = js_deps_problem()
        if problem:
            self.skipTest(problem)
        with Otel2dd(config=config(self.intake)) as o:
            port = o.grpc_port if protocol == "grpc" else o.http_port
            rc, report, raw = js_logs(protocol, port, COUNT, big=BIG)
            self.assertEqual(rc, 0, raw)
            self.assertEqual(report["sent"], COUNT, raw)
            wait_until(lambda: len(self.intake.log_objects()) >= COUNT, 20,
                       "%d log objects" % COUNT)
            # the intake decodes a body before otel2dd has read its answer and counted it
            sent = 'otel2dd_exporter_sent_items_total{exporter="datadog_logs"} %d' % COUNT
            wait_until(lambda: sent in o.scrape().splitlines(), 20, "the sent counter")
            metrics = o.scrape()
        objs = self.intake.log_objects()
        self.assertEqual(len(objs), COUNT)
        by_index = {}
        for ob in objs:
            self.assertEqual(ob["ddsource"], "otlp_log_ingestion")
            tags = ob["ddtags"].split(",")
            for t in ("service:otel2dd-e2e-js", "env:e2e", "version:1.2.3",
                      "otel_source:datadog_exporter"):
                self.assertIn(t, tags)
            self.assertEqual(ob["service"], "otel2dd-e2e-js")
            self.assertNotIn(ob["e2e.index"], by_index, "a record arrived twice")
            by_index[ob["e2e.index"]] = ob
        self.assertEqual(sorted(by_index), list(range(COUNT)))
        for i, ob in by_index.items():
            # the sender's span context: trace id 'a'*.. + hex(0x1000 + i//4), span id i+1
            tid = (format(0x1000 + i // 4, "x")).rjust(32, "a")
            sid = format(i + 1, "x").rjust(16, "b")
            self.assertEqual(ob["otel.trace_id"], tid)
            self.assertEqual(ob["dd.trace_id"], str(int(tid[16:], 16)))
            self.assertEqual(ob["otel.span_id"], sid)
            self.assertEqual(ob["dd.span_id"], str(int(sid, 16)))
            err = i % 9 == 8
            self.assertEqual(ob["status"], "ERROR" if err else "INFO")  # severity_text, verbatim
            self.assertEqual(ob["otel.severity_number"], "17" if err else "9")
            self.assertEqual(ob["http.response.status_code"], 500 if err else 200)  # typed
            self.assertEqual(ob["http.route"], "/api/v1/items/{id}")
            self.assertRegex(ob["@timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            if i > 0:
                self.assertEqual(ob["message"], ("failed to load item %d" if err else
                                                 "served item %d") % i)
        big = by_index[0]["message"]
        self.assertTrue(big.endswith(MARKER), big[-40:])
        self.assertGreater(len(big), MAX_ENTRY - 2000)
        self.assertEqual(big[:-len(MARKER)].strip("B"), "")
        lines = metrics.splitlines()
        for want in ("otel2dd_translated_log_records_total %d" % COUNT,
                     "otel2dd_translated_log_records_truncated_total 1",
                     'otel2dd_receiver_accepted_items_total{transport="%s",signal="logs"} %d'
                     % ("grpc" if protocol == "grpc" else "http", COUNT),
                     'otel2dd_exporter_sent_items_total{exporter="datadog_logs"} %d' % COUNT):
            self.assertIn(want, lines)
        for body in self.intake.logs_bodies:
            self.assertLessEqual(body["entries"], 1000)

    def test_js_sdk_grpc(self):
        self.check_js_run("grpc")

    def test_js_sdk_http_protobuf(self):
        self.check_js_run("proto")

    def test_js_sdk_http_json(self):
        self.check_js_run("http")

    def test_genai_events_left_to_llmobs(self):
        tid = os.urandom(16)
        recs = [{"event_name": "gen_ai.user.message", "body": "secret prompt",
                 "attrs": {"gen_ai.system": "openai"}, "trace_id": tid,
                 "span_id": os.urandom(8)},
                {"body": "plain log", "attrs": {"k": "v"}}]
        with Otel2dd(config=config(self.intake)) as o:
            self.assertEqual(http_post(o.http_port, "/v1/logs", logs_body(recs)), 200)
            wait_until(lambda: len(self.intake.log_objects()) >= 1, 10, "the plain log")
            time.sleep(0.5)
            self.assertIn("otel2dd_log_records_left_to_llmobs_total 1", o.scrape().splitlines())
        self.assertEqual([ob["message"] for ob in self.intake.log_objects()], ["plain log"])
        with Otel2dd(config=config(self.intake, {"include_genai_events": True})) as o:
            self.assertEqual(http_post(o.http_port, "/v1/logs", logs_body(recs)), 200)
            wait_until(lambda: len(self.intake.log_objects()) >= 3, 10, "both logs")
        self.assertEqual(sorted(ob["message"] for ob in self.intake.log_objects()[1:]),
                         ["plain log", "secret prompt"])

    def test_malformed_truncated_oversized(self):
        good = logs_body([{"body": "after the bad ones"}])
        with Otel2dd(config=config(self.intake)) as o:
            # HTTP: not protobuf, cut short, not JSON, too large (the 4 MiB default limit)
            self.assertEqual(http_post(o.http_port, "/v1/logs", b"\xff\xff\xff\xff garbage"), 400)
            self.assertEqual(http_post(o.http_port, "/v1/logs", good[:-5]), 400)
            self.assertEqual(http_post(o.http_port, "/v1/logs", b'{"resourceLogs":[{',
                                       ctype="application/json"), 400)
            big = logs_body([{"body": "x" * (5 << 20)}])
            # gzip, so that the limit is met after decompression (a plain body that large is
            # refused before it is read, and the client sees the connection close)
            self.assertEqual(http_post(o.http_port, "/v1/logs", gzip.compress(big),
                                       headers={"Content-Encoding": "gzip"}, timeout=30), 413)
            # gRPC: the same bodies
            self.assertEqual(grpc_call(o.grpc_port, LOGS_EXPORT, b"\xff\xff\xff\xff garbage"),
                             grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(grpc_call(o.grpc_port, LOGS_EXPORT, good[:-5]),
                             grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(grpc_call(o.grpc_port, LOGS_EXPORT, big, timeout=30),
                             grpc.StatusCode.RESOURCE_EXHAUSTED)
            time.sleep(1.5)  # a flush interval: anything wrongly queued would be sent
            self.assertEqual(self.intake.log_objects(), [])
            # still serving, over both
            self.assertEqual(http_post(o.http_port, "/v1/logs", good), 200)
            self.assertEqual(grpc_call(o.grpc_port, LOGS_EXPORT, good), grpc.StatusCode.OK)
            wait_until(lambda: len(self.intake.log_objects()) >= 2, 10, "2 good logs")
        self.assertEqual([ob["message"] for ob in self.intake.log_objects()],
                         ["after the bad ones"] * 2)

    def test_deep_and_wide_attributes(self):
        # 28 levels of maps and 20,000 attributes in one record: flattened to depth 10, the
        # rest JSON; every attribute kept; delivered within the entry limit
        req = logs_service_pb2.ExportLogsServiceRequest()
        r = req.resource_logs.add().scope_logs.add().log_records.add()
        r.body.string_value = "wide"
        v = r.attributes.add()
        v.key = "d0"
        cur = v.value
        for i in range(1, 28):
            kv = cur.kvlist_value.values.add()
            kv.key = "d%d" % i
            cur = kv.value
        cur.string_value = "bottom"
        for i in range(20000):
            set_attr(r.attributes, "a%d" % i, i)
        with Otel2dd(config=config(self.intake)) as o:
            self.assertEqual(http_post(o.http_port, "/v1/logs", req.SerializeToString()), 200)
            wait_until(lambda: len(self.intake.log_objects()) >= 1, 10, "the wide log")
        ob = self.intake.log_objects()[0]
        self.assertEqual(ob["a19999"], 19999)
        deep = ob[".".join("d%d" % i for i in range(10))]
        self.assertIn('"bottom"', deep)

    def test_agent_mode(self):
        # Without an API key: said once at start, nothing sent anywhere as logs.
        agent = {"exporters": {"datadog": {"agent": {"endpoint": self.intake.url},
                                           "logs": {"endpoint": self.intake.url}}}}
        with Otel2dd(config=agent) as o:
            o.wait_log(lambda l: "NOT sent to Datadog Logs" in l.get("msg", ""), 10,
                       "the agent-mode logs line")
            self.assertEqual(http_post(o.http_port, "/v1/logs", logs_body([{"body": "a"}])), 200)
            time.sleep(1.5)
        self.assertEqual(self.intake.requests_to(LOGS), [])
        # With one: the logs intake directly.
        agent["exporters"]["datadog"]["api"] = {"key": "test-key"}
        with Otel2dd(config=agent) as o:
            o.wait_log(lambda l: "log records go to the Datadog Logs intake directly"
                       in l.get("msg", ""), 10, "the agent-mode logs line")
            self.assertEqual(http_post(o.http_port, "/v1/logs", logs_body([{"body": "b"}])), 200)
            wait_until(lambda: len(self.intake.log_objects()) >= 1, 10, "the log")
        self.assertEqual([ob["message"] for ob in self.intake.log_objects()], ["b"])

    def test_disk_queue_logs_directory(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="otel2dd-logs-q-")
        cfg = config(self.intake)
        cfg["exporters"]["datadog"]["sending_queue"] = {"storage": d}
        with Otel2dd(config=cfg) as o:
            self.assertEqual(http_post(o.http_port, "/v1/logs", logs_body([{"body": "q"}])), 200)
            wait_until(lambda: len(self.intake.log_objects()) >= 1, 10, "the log")
        self.assertTrue(os.path.isdir(os.path.join(d, "logs")), os.listdir(d))

    def test_translate_command(self):
        import json
        import subprocess
        import tempfile
        tid = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
        pb = logs_body([{"body": "hello", "trace_id": tid, "span_id": bytes(7) + b"\x05",
                         "attrs": {"level": "warn"}}])
        for data, args in ((pb, []), (pb, ["--signal", "logs"])):
            with tempfile.NamedTemporaryFile(suffix=".pb") as f:
                f.write(data)
                f.flush()
                r = subprocess.run([BIN, "translate"] + args + [f.name], capture_output=True,
                                   timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = json.loads(r.stdout)
            self.assertEqual(out["records"], 1)
            ob = out["logs"][0]
            self.assertEqual(ob["message"], "hello")
            self.assertEqual(ob["status"], "warn")
            self.assertEqual(ob["dd.trace_id"], str(0x090a0b0c0d0e0f10))
            self.assertEqual(ob["dd.span_id"], "5")
            self.assertEqual(ob["service"], "logs-e2e")
        js = b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"j"}}]}]}]}'
        r = subprocess.run([BIN, "translate", "-"], input=js, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["logs"][0]["message"], "j")

    def test_intake_refuses_then_accepts(self):
        # 500 twice: the delivery layer retries; each record arrives once
        self.intake.script(LOGS, [500, 500])
        with Otel2dd(config=config(self.intake)) as o:
            body = logs_body([{"body": "m%d" % i} for i in range(30)])
            self.assertEqual(http_post(o.http_port, "/v1/logs", body), 200)
            wait_until(lambda: len(self.intake.log_objects()) >= 30, 30, "30 logs after retries")
            time.sleep(0.5)
            self.assertIn('otel2dd_exporter_sent_items_total{exporter="datadog_logs"} 30',
                          o.scrape().splitlines())
        self.assertEqual(sorted(ob["message"] for ob in self.intake.log_objects()),
                         sorted("m%d" % i for i in range(30)))
        self.assertGreaterEqual(len(self.intake.requests_to(LOGS)), 3)


if __name__ == "__main__":
    unittest.main()
