#!/usr/bin/python3
"""The Datadog API key never leaves otel2dd except in the DD-API-KEY header.

Runs build/otel2dd at log level debug with the key from the environment (as ECS passes a
Secrets Manager value) and from api.key_file, against a fake intake that rejects it (403 on
the key check, the traces, the stats and LLM Obs), so every path that logs about the key or
about a rejected request runs; then checks that the key's bytes appear nowhere in what
otel2dd wrote (stderr, stdout), in /metrics, in `otel2dd validate`, nor in the error of an
invalid file, while the intake did receive it in the header.

    /usr/bin/python3 tests/e2e/test_secrets.py [-v]
"""
import os
import secrets
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import LLMOBS, STATS, TRACES, FakeIntake  # noqa: E402
from harness import BIN, Otel2dd, assert_no_sanitizer_report, wait_until  # noqa: E402


def otlp_json(n):
    """n spans as OTLP/JSON, one of them a gen_ai chat span (so LLM Obs sends too)."""
    now = time.time_ns()
    spans = []
    for i in range(n):
        attrs = [{"key": "http.request.method", "value": {"stringValue": "GET"}}]
        if i == 0:
            attrs = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                     {"key": "gen_ai.request.model", "value": {"stringValue": "m"}}]
        spans.append({"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8),
                      "name": "s%d" % i, "kind": 2, "startTimeUnixNano": str(now),
                      "endTimeUnixNano": str(now + 1000)})
        spans[-1]["attributes"] = attrs
    return ('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
            '{"stringValue":"secret-test"}}]},"scopeSpans":[{"spans":%s}]}]}'
            % __import__("json").dumps(spans)).encode()


def post(port, body):
    r = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % port, data=body,
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=10) as resp:
        return resp.status


class SecretTest(unittest.TestCase):
    def setUp(self):
        self.key = "k" + secrets.token_hex(16)
        # The intake accepts another key: every request carrying ours is refused with 403.
        self.intake = FakeIntake(api_key="another-key").start()
        self.intake.validate_status = 403
        for path in (TRACES, STATS, LLMOBS):
            self.intake.script(path, [403] * 50)

    def tearDown(self):
        self.intake.stop()

    def config(self, key_ref):
        url = self.intake.url
        return {"exporters": {"datadog": {
                    "api": dict(key_ref, endpoint=url),
                    "traces": {"endpoint": url, "flush_interval": "200ms"},
                    "llmobs": {"endpoint": url,
                               "trace_buffer": {"timeout": "200ms"}}}},
                "service": {"telemetry": {"logs": {"level": "debug"}}}}

    def run_and_check(self, cfg, env):
        with Otel2dd(config=cfg, env=env) as o:
            o.wait_log(lambda l: l.get("msg", "").startswith("API key"), 10, "the key check")
            self.assertEqual(post(o.http_port, otlp_json(5)), 200)
            # Rejections of traces and LLM Obs events are logged; wait for both.
            wait_until(lambda: self.intake.requests_to(TRACES) and
                       self.intake.requests_to(LLMOBS), 20, "traces and LLM Obs requests")
            metrics = o.scrape()
            rc = o.stop()
        self.assertEqual(rc, 0)
        seen = [v for r in self.intake.requests_to(TRACES)
                for k, v in r["headers"].items() if k.lower() == "dd-api-key"]
        self.assertIn(self.key, seen, "the key must still reach the intake in its header")
        for where, text in (("stderr", "\n".join(o.raw)), ("stdout", "\n".join(o.stdout)),
                            ("/metrics", metrics)):
            self.assertNotIn(self.key, text, "API key found in %s" % where)
        self.assertTrue(any(l.get("level") == "debug" for l in o.logs()),
                        "debug logging was on, so the quiet paths ran too")

    def test_key_from_environment(self):
        self.run_and_check(self.config({"key": "${env:DD_API_KEY}"}),
                           {"DD_API_KEY": self.key})

    def test_key_from_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".key", delete=False) as f:
            f.write(self.key + "\n")
        try:
            self.run_and_check(self.config({"key_file": f.name}), None)
        finally:
            os.unlink(f.name)

    def test_validate_and_config_errors(self):
        env = dict(os.environ, DD_API_KEY=self.key)
        out = subprocess.run([BIN, "validate"], env=env, capture_output=True, timeout=10)
        assert_no_sanitizer_report(out.stderr)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"<secret>", out.stdout)
        self.assertNotIn(self.key.encode(), out.stdout + out.stderr)
        # A file whose key line is wrong in a way that quotes values in the message.
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("exporters:\n  datadog:\n    api:\n      key: [%s]\n" % self.key)
            f.write("      sitee: %s\n" % self.key)
        try:
            out = subprocess.run([BIN, "validate", f.name], env=env, capture_output=True,
                                 timeout=10)
        finally:
            os.unlink(f.name)
        assert_no_sanitizer_report(out.stderr)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b":4: key must be a string", out.stderr)
        self.assertNotIn(self.key.encode(), out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
