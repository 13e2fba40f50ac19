#!/usr/bin/python3
"""End-to-end: processors.redaction between a real LangChain JS app and Datadog.

js/langchain_app.js (instrumented with OpenInference, and with OpenLLMetry JS) asks a
question holding an e-mail address and a payment card number, and logs it through the
OpenTelemetry JS logs SDK; build/otel2dd runs with processors.redaction (patterns email and
credit_card) and exports to fake_intake.FakeIntake. Checked at the intake, decoded by its own
decoders: neither the address nor the card number arrives anywhere (APM span tags, LLM Obs
events, log objects), and [REDACTED:email] / [REDACTED:credit_card] stand where they were:
in the LLM Obs llm event's user message, in the APM llm span, in the log's message and
attribute. /metrics counts them under otel2dd_processor_redacted_values_total{pattern}.
A second case: drop_message_contents keeps roles, the model and token counts, and no
content. RedactionCli (no Node.js needed): `otel2dd validate` prints what runs for which
signal and every rule, and its output loads back to the same pipelines; `otel2dd translate
--config` applies the rules; a configured processor no pipeline lists is off with one
warning; a pipeline naming an unknown processor is a configuration error. Waits poll with
deadlines.

    /usr/bin/python3 tests/e2e/test_redaction.py -v
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import BIN, IntakeTestCase, Otel2dd, Otel2ddChecked, wait_until  # noqa: E402
from test_js_sdk import js_deps_problem  # noqa: E402
from test_llmobs_langchain import NODE, APP, run_node  # noqa: E402

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
QUESTION = "I am %s, my card is %s. What is the capital of France?" % (EMAIL, CARD)
ML_APP = "e2e-redaction"


def config(intake, redaction):
    return {
        "processors": {"redaction": redaction},
        "exporters": {"datadog": {
            "api": {"key": "test-key", "endpoint": intake.url},
            "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
            "llmobs": {"endpoint": intake.url, "ml_app": ML_APP,
                       "trace_buffer": {"timeout": "5s"}},
            "logs": {"endpoint": intake.url},
        }},
    }


def counters(text):
    """otel2dd_processor_redacted_values_total samples by pattern."""
    out = {}
    for m in re.finditer(r'^otel2dd_processor_redacted_values_total\{pattern="([^"]+)"\} (\d+)$',
                         text, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


class Redaction(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        problem = js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s; build it first" % BIN)

    def run_app(self, redaction, instrumentation, protocol):
        service = "redact-%s-%s" % (instrumentation, protocol)
        with Otel2ddChecked(config=config(self.intake, redaction)) as o:
            port = o.grpc_port if protocol == "grpc" else o.http_port
            cmd = [NODE, APP, "--instrumentation", instrumentation, "--protocol", protocol,
                   "--url", "http://127.0.0.1:%d" % port, "--service", service,
                   "--question", QUESTION, "--log", "on"]
            rc, rep, raw = run_node(cmd, 120)
            ctx = "%s\notel2dd log tail:\n%s" % (raw, "\n".join(o.raw[-25:]))
            self.assertIsNotNone(rep, ctx)
            self.assertEqual(rep.get("errors"), [], ctx)
            self.assertEqual(rc, 0, ctx)
            self.assertEqual(rep["logs"], 1, ctx)
            trace_hex = rep["trace_id"]
            apm_tid = int(trace_hex[16:], 16)

            def spans():
                return [s for s in self.intake.spans if s["trace_id"] == apm_tid]

            def events():
                return [e for e in self.intake.events()
                        if e["_dd"].get("apm_trace_id") == trace_hex]

            def logs():
                return [lg for lg in self.intake.log_objects() if lg.get("service") == service]

            wait_until(lambda: len(spans()) >= rep["spans"], 30, "APM spans\n" + ctx)
            wait_until(lambda: len(events()) >= rep["spans"] - 1, 30, "LLM Obs events\n" + ctx)
            wait_until(lambda: len(logs()) >= 1, 30, "the log\n" + ctx)
            scraped = counters(o.scrape())
            self.assertEqual(o.stop(), 0, ctx)
        return spans(), events(), logs(), scraped, ctx

    def assert_nowhere(self, what, ctx, *texts):
        blob = json.dumps(what)
        for t in texts:
            self.assertNotIn(t, blob, ctx)

    def check_patterns(self, instrumentation, protocol):
        spans, evs, logs, scraped, ctx = self.run_app(
            {"allow_all_keys": True, "patterns": ["email", "credit_card"]}, instrumentation,
            protocol)
        ctx += "\nevents:\n" + json.dumps(evs, indent=1)[:4000]
        # Nowhere: not in a tag, a message, a log. json.dumps escapes nothing in these two.
        self.assert_nowhere(spans, ctx, EMAIL, CARD, CARD.replace(" ", ""))
        self.assert_nowhere(evs, ctx, EMAIL, CARD, CARD.replace(" ", ""))
        self.assert_nowhere(logs, ctx, EMAIL, CARD, CARD.replace(" ", ""))
        redacted_q = QUESTION.replace(EMAIL, "[REDACTED:email]").replace(
            CARD, "[REDACTED:credit_card]")
        # LLM Obs: the llm event's user message is the redacted question.
        llms = [e for e in evs if e["meta"]["span"]["kind"] == "llm"]
        self.assertEqual(len(llms), 1, ctx)
        users = [m.get("content") for m in llms[0]["meta"]["input"]["messages"]
                 if m.get("role") == "user"]
        self.assertEqual(users, [redacted_q], ctx)
        self.assertEqual(llms[0]["meta"]["model_name"], "fake-gpt-e2e-1", ctx)
        # APM: the llm span's tags carry the redacted question too.
        llm_span = [s for s in spans if s["span_id"] == int(llms[0]["span_id"])][0]
        self.assertIn("[REDACTED:email]", json.dumps(llm_span["meta"]), ctx)
        self.assertIn("[REDACTED:credit_card]", json.dumps(llm_span["meta"]), ctx)
        # Logs: the message and the attribute.
        self.assertEqual(len(logs), 1, ctx)
        self.assertEqual(logs[0]["message"], "chat question: " + redacted_q, json.dumps(logs))
        self.assertEqual(logs[0].get("chat.question"), redacted_q, json.dumps(logs))
        # /metrics counted them (spans and the log: at least one of each).
        self.assertGreaterEqual(scraped.get("email", 0), 3, scraped)
        self.assertGreaterEqual(scraped.get("credit_card", 0), 3, scraped)
        self.assertEqual(scraped.get("allowed_keys"), 0, scraped)

    def test_openinference_grpc(self):
        self.check_patterns("openinference", "grpc")

    def test_traceloop_http(self):
        self.check_patterns("traceloop", "proto")

    def test_drop_message_contents(self):
        spans, evs, logs, scraped, ctx = self.run_app(
            {"allow_all_keys": True, "drop_message_contents": True}, "openinference", "grpc")
        ctx += "\nevents:\n" + json.dumps(evs, indent=1)[:4000]
        self.assert_nowhere(evs, ctx, EMAIL, "capital of France", "Paris")
        self.assert_nowhere(spans, ctx, EMAIL, "capital of France")
        llm = [e for e in evs if e["meta"]["span"]["kind"] == "llm"][0]
        roles = [m.get("role") for m in llm["meta"]["input"]["messages"]]
        self.assertEqual(roles, ["system", "user"], ctx)
        for m in llm["meta"]["input"]["messages"] + llm["meta"]["output"]["messages"]:
            self.assertEqual(m.get("content"), "[REDACTED:content]", ctx)
        self.assertEqual(llm["meta"]["model_name"], "fake-gpt-e2e-1", ctx)
        self.assertEqual(llm["metrics"].get("input_tokens"), 21, ctx)
        self.assertEqual(llm["metrics"].get("output_tokens"), 9, ctx)
        self.assertGreater(scraped.get("drop_message_contents", 0), 0, scraped)
        # a plain log is not a message: patterns would apply, none are on
        self.assertEqual(logs[0]["message"], "chat question: " + QUESTION, json.dumps(logs))


PIPELINE_FILE = """
processors:
  redaction:
    allow_all_keys: true
    patterns: [email, credit_card]
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
"""

SPAN_JSON = {"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "cli"}}]},
    "scopeSpans": [{"spans": [{
        "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
        "name": "chat", "kind": 3, "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}])}}]}]}]}]}


class RedactionCli(unittest.TestCase):
    """validate shows the rules and what runs where; translate applies them; a processor no
    pipeline lists is off, with a warning at start."""

    def write(self, text, suffix=".yaml"):
        f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_validate_shows_rules(self):
        cfg = self.write(PIPELINE_FILE.replace("      exporters: [debug]",
                                               "      processors: [redaction]\n"
                                               "      exporters: [debug]"))
        p = subprocess.run([BIN, "validate", cfg], capture_output=True, timeout=30)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("# processors (as service.pipelines lists them):", out)
        self.assertIn("#   traces: redaction\n", out)
        self.assertIn("#   logs: none\n", out)
        self.assertIn("#     email -> [REDACTED:email]: ", out)
        self.assertIn("#     credit_card -> [REDACTED:credit_card]: ", out)
        # what it wrote loads back with the same pipelines
        again = self.write(out)
        p2 = subprocess.run([BIN, "validate", again], capture_output=True, timeout=30)
        self.assertEqual(p2.returncode, 0, p2.stderr)
        self.assertIn("#   traces: redaction\n", p2.stdout.decode())

    def test_translate_applies_rules(self):
        cfg = self.write(PIPELINE_FILE.replace("      exporters: [debug]",
                                               "      processors: [redaction]\n"
                                               "      exporters: [debug]"))
        body = self.write(json.dumps(SPAN_JSON), ".json")
        p = subprocess.run([BIN, "translate", "--config", cfg, body], capture_output=True,
                           timeout=30)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(EMAIL, out)
        self.assertNotIn(CARD, out)
        self.assertIn("[REDACTED:email]", out)       # in APM and in the LLM Obs event
        self.assertIn("[REDACTED:credit_card]", out)
        # without the processor, the same body keeps them: the test can fail
        p = subprocess.run([BIN, "translate", body], capture_output=True, timeout=30)
        self.assertIn(EMAIL, p.stdout.decode())

    def test_unlisted_processor_is_off_with_a_warning(self):
        import yaml  # python3-yaml
        with Otel2dd(config=yaml.safe_load(PIPELINE_FILE)) as o:
            wait_until(lambda: any("no service.pipelines entry lists it" in l.get("msg", "")
                                   for l in o.logs()), 10, "the warning")
            self.assertEqual(o.stop(), 0)
        warns = [l for l in o.logs() if "processors.redaction" in l.get("msg", "")]
        self.assertEqual(len(warns), 1, warns)
        self.assertEqual(warns[0]["level"], "warn")

    def test_unknown_processor_is_a_config_error(self):
        cfg = self.write(PIPELINE_FILE.replace("      exporters: [debug]",
                                               "      processors: [batch]\n"
                                               "      exporters: [debug]"))
        p = subprocess.run([BIN, "validate", cfg], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("unknown processor 'batch'", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
