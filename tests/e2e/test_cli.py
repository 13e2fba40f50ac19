"""The command line, configuration errors at start, SIGINT, and the debug exporter's output.

Run: OTEL2DD_BIN=build/otel2dd /usr/bin/python3 tests/e2e/test_cli.py
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Otel2dd, assert_no_sanitizer_report  # noqa: E402


def run(args, timeout=10):
    p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout)
    assert_no_sanitizer_report(p.stderr)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def post_json(port, path, obj):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=json.dumps(obj).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


TRACE = {"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
    "scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173", "name": "GET /cart", "kind": 2,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000",
        "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}},
                       {"key": "http.response.status_code", "value": {"intValue": "500"}},
                       {"key": "tags", "value": {"arrayValue": {"values": [
                           {"stringValue": "a"}, {"boolValue": True}]}}}],
        "events": [{"name": "exception", "timeUnixNano": "1700000000100000000",
                    "attributes": [{"key": "exception.type",
                                    "value": {"stringValue": "KeyError"}}]}],
        "status": {"code": 2, "message": "boom"}}]}]}]}

LOGS = {"resourceLogs": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
    "scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1700000000000000000", "severityNumber": 9, "severityText": "INFO",
        "eventName": "gen_ai.user.message",
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "body": {"kvlistValue": {"values": [
            {"key": "content", "value": {"stringValue": "What is the capital of France?"}}]}}
    }]}]}]}


class TestCommandLine(unittest.TestCase):
    def test_version_and_help(self):
        rc, out, _ = run(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^otel2dd \d+\.\d+\.\d+\n$")
        rc, out, _ = run(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--config FILE", out)
        self.assertIn("otel2dd validate [--config FILE | FILE]", out)

    def test_bad_arguments_exit_2(self):
        for args in (["--nope"], ["stray"], ["--config"]):
            rc, _, err = run(args)
            self.assertEqual(rc, 2, args)
            self.assertIn("usage: otel2dd", err)

    def test_bad_configuration_names_file_and_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpont: x\n")
        try:
            rc, _, err = run(["--config", f.name])
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 1)
        line = json.loads(err.strip().splitlines()[-1])
        self.assertEqual(line["level"], "error")
        self.assertEqual(line["msg"], "invalid configuration")
        self.assertIn("%s:5: unknown key 'endpont'" % f.name, line["error"])
        self.assertIn("did you mean 'endpoint'?", line["error"])

    def test_missing_configuration_file(self):
        rc, _, err = run(["--config", "/nonexistent/otel2dd.yaml"])
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/otel2dd.yaml", err)

    def test_port_in_use_fails_at_start(self):
        with Otel2dd() as first:
            o = Otel2dd(config={"protocols": {
                "grpc": {"endpoint": "127.0.0.1:%d" % first.grpc_port},
                "http": {"endpoint": "127.0.0.1:0"}}})
            with self.assertRaises(AssertionError) as cm:
                o.start()
            self.assertIn("cannot listen", str(cm.exception))
            self.assertEqual(o.stop(expect=1), 1)  # it already exited; this reaps it
            os.unlink(o.config_path)


class TestNoApiKey(unittest.TestCase):
    def test_without_a_key_it_says_so_once_and_shows_what_arrives(self):
        with Otel2dd() as o:
            post_json(o.http_port, "/v1/traces", TRACE)
            post_json(o.http_port, "/v1/traces", TRACE)
            o.wait_items("traces", 2)
            warn = [l for l in o.logs() if "no Datadog API key is set" in l.get("msg", "")]
            self.assertEqual(len(warn), 1)
            self.assertEqual(warn[0]["level"], "warn")
            self.assertEqual(o.stop(), 0)

    def test_a_file_with_datadog_but_no_key_is_refused(self):
        o = Otel2dd(config={"exporters": {"datadog": {"api": {"site": "datadoghq.eu"}}}})
        with self.assertRaises(AssertionError) as cm:
            o.start()
        self.assertIn("no API key is set", str(cm.exception))
        self.assertEqual(o.stop(expect=1), 1)
        os.unlink(o.config_path)


class TestSignals(unittest.TestCase):
    def test_sigint_stops_cleanly_with_totals(self):
        with Otel2dd() as o:
            status, _ = post_json(o.http_port, "/v1/traces", TRACE)
            self.assertEqual(status, 200)
            o.wait_items("traces", 1)
            self.assertEqual(o.stop(signal.SIGINT), 0)
            stopping = o.wait_log(lambda l: l.get("msg") == "stopping")
            self.assertEqual(stopping["signal"], "SIGINT")
            totals = o.wait_log(lambda l: l.get("msg") == "totals")
            self.assertEqual(totals["http_spans"], 1)
            self.assertEqual(totals["grpc_spans"], 0)


class TestDebugExporter(unittest.TestCase):
    def test_basic_is_one_line_per_request(self):
        with Otel2dd(verbosity="basic") as o:
            post_json(o.http_port, "/v1/traces", TRACE)
            line = o.wait_log(lambda l: l.get("msg") == "received")
            self.assertEqual(line["transport"], "http")
            self.assertEqual(line["signal"], "traces")
            self.assertEqual(line["items"], 1)
            self.assertEqual(line["services"], ["shop"])
            self.assertFalse([l for l in o.logs() if l.get("msg") == "span"])

    def test_detailed_shows_every_span_and_log_record(self):
        with Otel2dd(verbosity="detailed") as o:
            post_json(o.http_port, "/v1/traces", TRACE)
            post_json(o.http_port, "/v1/logs", LOGS)
            span = o.wait_log(lambda l: l.get("msg") == "span")
            self.assertEqual(span["service"], "shop")
            self.assertEqual(span["name"], "GET /cart")
            self.assertEqual(span["trace_id"], "5b8efff798038103d269b633813fc60c")
            self.assertEqual(span["span_id"], "eee19b7ec3c1b174")
            self.assertEqual(span["parent_span_id"], "eee19b7ec3c1b173")
            self.assertEqual(span["kind"], "server")
            self.assertEqual(span["status_code"], 2)
            self.assertEqual(span["status_message"], "boom")
            self.assertEqual(span["attributes"], {"http.request.method": "GET",
                                                  "http.response.status_code": 500,
                                                  "tags": ["a", True]})
            self.assertEqual(span["events"][0]["name"], "exception")
            rec = o.wait_log(lambda l: l.get("msg") == "log record")
            self.assertEqual(rec["event_name"], "gen_ai.user.message")
            self.assertEqual(rec["body"], {"content": "What is the capital of France?"})
            self.assertEqual(rec["span_id"], "eee19b7ec3c1b174")

    def test_quiet_logs_nothing_per_request(self):
        with Otel2dd(verbosity="quiet") as o:
            status, _ = post_json(o.http_port, "/v1/traces", TRACE)
            self.assertEqual(status, 200)
            self.assertEqual(o.stop(), 0)
            self.assertFalse([l for l in o.logs() if l.get("msg") in ("received", "span")])
            totals = o.wait_log(lambda l: l.get("msg") == "totals")
            self.assertEqual(totals["http_spans"], 1)

    def test_invalid_utf8_is_repaired_in_the_log(self):
        # protobuf carries bytes as they are; the debug line must still be valid JSON/UTF-8.
        name = b"bad \xc3\x28 \xff"
        span = (b"\x0a\x10" + bytes(range(1, 17)) + b"\x12\x08" + b"\x01" * 8 +
                b"\x2a" + bytes([len(name)]) + name)
        ss = b"\x12" + bytes([len(span)]) + span
        rs = b"\x12" + bytes([len(ss)]) + ss
        body = b"\x0a" + bytes([len(rs)]) + rs
        with Otel2dd(verbosity="detailed") as o:
            req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % o.http_port,
                                         data=body,
                                         headers={"Content-Type": "application/x-protobuf"})
            with urllib.request.urlopen(req, timeout=10) as r:
                self.assertEqual(r.status, 200)
            line = o.wait_log(lambda l: l.get("msg") == "span")
            self.assertEqual(line["name"], "bad \ufffd( \ufffd")


if __name__ == "__main__":
    unittest.main()
