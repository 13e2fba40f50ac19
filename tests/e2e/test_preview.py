#!/usr/bin/python3
"""End-to-end: the preview pages (extensions.preview, issue 12) in a real headless browser.

otel2dd runs with its Datadog exporters pointed at fake_intake.FakeIntake and the preview on
an ephemeral port. The OpenTelemetry JS SDK (js/send_spans.js), the LangChain JS app
(js/langchain_app.js, OpenInference) and a hand-built request whose names and attributes carry
HTML and script payloads send to it; js/preview_browser.js then drives Debian's chromium
(playwright-core, /usr/bin/chromium) through the pages and reports what it saw:
  - the list finds the HTTP app's trace by service; its waterfall opens at /traces/<hex32>;
    a span opens at /traces/<hex32>/spans/<hex16> with the three columns (OTLP input,
    Datadog APM span, LLM Obs event) and the per-attribute table; a reload renders it from
    the URL alone; the back button returns to the trace;
  - "Copy as JSON" copies the APM span as the intake received it (compared with the span
    fake_intake decoded from the protobuf body), and the llm span's LLM Obs event exactly as
    the intake received it (JSON equal);
  - the LLM view shows the messages by role and the token counts;
  - the hostile payloads render as text: no dialog, no page error, no <img> in the DOM;
  - the APIs answer 400 to bad query parameters and ids, and the API key appears nowhere.
A second test sends load into a preview bounded at 1 MiB and checks that the store stays
within its bound while evicting the oldest traces; a third checks the dry-run state.

The first test takes a screenshot of the llm span's page (into the temporary directory);
README.md's docs/preview.png is one: PREVIEW_SCREENSHOT=docs/preview.png keeps it there.

    /usr/bin/python3 tests/e2e/test_preview.py -v
"""
import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import BIN, IntakeTestCase, Otel2dd, wait_until  # noqa: E402
from otlp_client import new_id, send_http, set_attr, trace_service_pb2  # noqa: E402
from test_js_sdk import js_deps_problem, run_node  # noqa: E402

JS_DIR = os.path.join(HERE, "js")
NODE = os.environ.get("NODE", shutil.which("node") or "node")
CHROMIUM = "/usr/bin/chromium"
API_KEY = "test-key-0123456789abcdef"
HTTP_SERVICE = "otel2dd-e2e-js"
LLM_SERVICE = "pv-langchain"
QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital of France."
HOSTILE_NAME = '<script>alert("name")</script>'
HOSTILE_ATTR = "<img src=x onerror=alert(1)>"
HOSTILE_ROUTE = '"/><svg onload=alert(2)>'
HOSTILE_SERVICE = "<b>svc</b><script>alert(3)</script>"


def config(intake, **preview):
    pv = {"endpoint": "127.0.0.1:0"}
    pv.update(preview)
    return {
        "extensions": {"preview": pv},
        "exporters": {"datadog": {
            "api": {"key": API_KEY, "endpoint": intake.url},
            "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
            "llmobs": {"endpoint": intake.url, "ml_app": "pv-e2e",
                       "trace_buffer": {"timeout": "2s"}},
            "logs": {"enabled": False},
            "metrics": {"enabled": False},
        }},
    }


def preview_port(o):
    ports = [l.get("port") for l in o.logs()
             if l.get("msg") == "listening" and l.get("server") == "preview"]
    return ports[0] if ports else None


def get(port, path):
    """(status, body bytes) of GET path on the preview."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(port, path):
    st, body = get(port, path)
    if st != 200:
        raise AssertionError("GET %s: %d %s" % (path, st, body[:300]))
    return json.loads(body)


def hostile_request():
    """One trace: an HTTP server span and a gen_ai child whose names, attributes and resource
    carry HTML and script. Returns (body, trace id hex)."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", HOSTILE_SERVICE)
    ss = rs.scope_spans.add()
    ss.scope.name = "<i>scope</i>"
    tid = os.urandom(16)
    root = new_id()
    s = ss.spans.add()
    s.trace_id = tid
    s.span_id = root.to_bytes(8, "big")
    s.name = HOSTILE_NAME
    s.kind = 2
    s.start_time_unix_nano = 1_700_000_000_000_000_000
    s.end_time_unix_nano = s.start_time_unix_nano + 5_000_000
    set_attr(s.attributes, "http.request.method", "GET")
    set_attr(s.attributes, "http.route", HOSTILE_ROUTE)
    set_attr(s.attributes, "x.html", HOSTILE_ATTR)
    set_attr(s.attributes, "<script>alert(5)</script>", "key with markup")
    c = ss.spans.add()
    c.trace_id = tid
    c.span_id = new_id().to_bytes(8, "big")
    c.parent_span_id = s.span_id
    c.name = "chat <img src=y onerror=alert(6)>"
    c.start_time_unix_nano = s.start_time_unix_nano + 1_000_000
    c.end_time_unix_nano = c.start_time_unix_nano + 2_000_000
    set_attr(c.attributes, "gen_ai.operation.name", "chat")
    set_attr(c.attributes, "gen_ai.request.model", "<b>model</b>")
    set_attr(c.attributes, "gen_ai.prompt.0.role", "user")
    set_attr(c.attributes, "gen_ai.prompt.0.content", "<script>alert(7)</script>")
    set_attr(c.attributes, "gen_ai.completion.0.role", "assistant")
    set_attr(c.attributes, "gen_ai.completion.0.content", HOSTILE_ATTR)
    return req.SerializeToString(), tid.hex()


class PreviewBrowserTest(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        problem = js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)
        if not os.path.exists(os.path.join(JS_DIR, "node_modules", "playwright-core")):
            raise unittest.SkipTest("playwright-core is not in tests/e2e/js/node_modules "
                                    "(npm ci in tests/e2e/js)")
        if not os.access(CHROMIUM, os.X_OK):
            raise unittest.SkipTest("no %s (apt-get install chromium)" % CHROMIUM)
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s; build it first" % BIN)

    def test_pages_in_chromium(self):
        with Otel2dd(config=config(self.intake)) as o:
            port = wait_until(lambda: preview_port(o), 10, "the preview to listen")
            ctx = lambda: "\notel2dd log tail:\n" + "\n".join(o.raw[-25:])  # noqa: E731

            rc, rep, raw = run_node(
                [NODE, os.path.join(JS_DIR, "send_spans.js"), "--protocol", "proto", "--url",
                 "http://127.0.0.1:%d" % o.http_port, "--spans", "30", "--gzip", "off",
                 "--batch", "400", "--signal", "traces"], 120)
            self.assertEqual(rc, 0, raw + ctx())
            rc, rep, raw = run_node(
                [NODE, os.path.join(JS_DIR, "langchain_app.js"), "--instrumentation",
                 "openinference", "--protocol", "proto", "--url",
                 "http://127.0.0.1:%d" % o.http_port, "--service", LLM_SERVICE], 120)
            self.assertEqual(rc, 0, raw + ctx())
            llm_trace = rep["trace_id"]
            body, hostile_tid = hostile_request()
            self.assertEqual(send_http(o.http_port, body), 200)

            # The LLM Obs events arrive once the trace buffer settles them.
            wait_until(lambda: any(e["_dd"].get("apm_trace_id") == llm_trace
                                   for e in self.intake.events()), 30, "LLM Obs events" + ctx())
            # Each LLM Obs event's own export state: the llm span's reads "sent" once the
            # intake has it (the trace buffer queued it, by item id, not by request).
            llm_events = wait_until(
                lambda: [e for e in self.intake.events()
                         if e["_dd"].get("apm_trace_id") == llm_trace
                         and e["meta"]["span"]["kind"] == "llm"], 30, "the llm event" + ctx())
            for e in llm_events:
                path = "/api/traces/%s/spans/%016x" % (llm_trace, int(e["span_id"]))
                x = wait_until(
                    lambda: (lambda d: d["export"]["llmobs"]
                             if d["export"]["llmobs"]["state"] == "sent" else None)(
                                 get_json(port, path)),
                    30, "the LLM Obs event's state to be sent" + ctx())
                self.assertEqual(x["retries"], 0, x)
                self.assertGreater(x["item_id"], 0, x)
            # the list's export column considers the trace's LLM Obs events too
            wait_until(lambda: [t for t in get_json(port, "/api/traces?limit=50")["traces"]
                                if t["trace_id"] == llm_trace
                                and t.get("llmobs_export") == "sent"], 30,
                       "the list's LLM Obs export state" + ctx())

            shot = os.environ.get("PREVIEW_SCREENSHOT")
            shot = os.path.abspath(shot) if shot else os.path.join(
                tempfile.gettempdir(), "otel2dd-preview-%d.png" % os.getpid())
            rc, b, raw = run_node(
                [NODE, os.path.join(JS_DIR, "preview_browser.js"), "--url",
                 "http://127.0.0.1:%d" % port, "--http-service", HTTP_SERVICE,
                 "--llm-service", LLM_SERVICE, "--hostile-trace", hostile_tid,
                 "--screenshot", shot], 180)
            self.assertIsNotNone(b, "the browser script printed no report\n" + raw + ctx())
            self.assertTrue(b.get("ok"), json.dumps(b, indent=1)[:6000] + ctx())

            # ---- the list, the trace, the span ----
            self.assertIn(HTTP_SERVICE, b["list_row"])
            self.assertRegex(b["trace_url"], r"/traces/[0-9a-f]{32}$")
            self.assertGreaterEqual(b["waterfall_rows"], 2)
            self.assertEqual(b["waterfall_rows"], b["waterfall_bars"])
            self.assertRegex(b["span_url"], r"/traces/[0-9a-f]{32}/spans/[0-9a-f]{16}$")
            self.assertTrue(b["span_url"].startswith(b["trace_url"] + "/spans/"))
            self.assertEqual(len(b["columns"]), 3, b["columns"])
            self.assertTrue(b["columns"][0].startswith("OTLP input"), b["columns"])
            self.assertTrue(b["columns"][1].startswith("Datadog APM span"), b["columns"])
            self.assertTrue(b["columns"][2].startswith("LLM Obs event"), b["columns"])
            self.assertGreater(b["attribute_rows"], 5)
            # the table says what became of attributes: a renamed tag and a numeric metric
            self.assertIn("service.name", b["attribute_text"])
            self.assertIn("field", b["attribute_text"])
            sid = b["span_url"].rsplit("/", 1)[1]
            self.assertIn(sid, b["reload_title"])
            self.assertEqual(b["back_url"], b["trace_url"])
            self.assertEqual(b["back_has_span_detail"], 0)

            # ---- Copy as JSON: the APM span as the intake received it ----
            copied = json.loads(b["apm_copied"])
            got = [s for s in self.intake.spans if s["span_id"] == int(copied["spanID"])]
            wait_until(lambda: [s for s in self.intake.spans
                                if s["span_id"] == int(copied["spanID"])], 30,
                       "the APM span at the intake" + ctx())
            got = [s for s in self.intake.spans if s["span_id"] == int(copied["spanID"])][0]
            for k, ck in (("service", "service"), ("name", "name"), ("resource", "resource"),
                          ("type", "type"), ("meta", "meta")):
                self.assertEqual(copied[ck], got[k], k)
            self.assertEqual({k: float(v) for k, v in copied["metrics"].items()}, got["metrics"])
            self.assertEqual(int(copied["start"]), got["start"])
            self.assertEqual(int(copied["duration"]), got["duration"])

            # ---- the LLM view and the LLM Obs event ----
            self.assertRegex(b["llm_url"], r"/traces/%s/llm$" % llm_trace)
            self.assertGreaterEqual(b["llm_nodes"], 3)
            roles = {(m["role"], m["text"].strip()) for m in b["llm_messages"]}
            self.assertIn(("user", QUESTION), roles, b["llm_messages"])
            self.assertIn(("assistant", ANSWER), roles, b["llm_messages"])
            self.assertIn("input tokens", b["llm_text"])
            self.assertIn("output tokens", b["llm_text"])
            ev = json.loads(b["llmobs_copied"])
            sent = [e for e in self.intake.events() if e["span_id"] == ev["span_id"]]
            self.assertEqual(len(sent), 1, ev)
            sent = dict(sent[0])
            sent.pop("_envelope", None)
            self.assertEqual(ev, sent)
            self.assertEqual(b["llmobs_export"], "sent")  # the LLM Obs column, as shown

            # ---- hostile payloads render as text ----
            self.assertEqual(b["dialogs"], [])
            self.assertEqual(b["page_errors"], [])
            # no script refused by the Content-Security-Policy, nothing else logged
            self.assertEqual(b["console_errors"], [], b["failed_responses"])
            self.assertEqual(b["failed_responses"], [])
            self.assertEqual(b["hostile_imgs"], 0)
            self.assertEqual(b["hostile_scripts"], 1)  # app.js only
            self.assertIn(HOSTILE_NAME, b["hostile_waterfall"])
            self.assertIn(HOSTILE_ATTR, b["hostile_text"])
            self.assertIn("<script>alert(5)</script>", b["hostile_text"])
            self.assertIn(HOSTILE_SERVICE, b["hostile_list"])
            self.assertIn("no_env", b["lints_text"])
            self.assertIn("datadog_traces", b["status_text"])

            # ---- export state: the APM side was sent ----
            span = wait_until(
                lambda: (lambda d: d if d["export"]["apm"]["state"] == "sent" else None)(
                    get_json(port, "/api/traces/%s/spans/%s" % (b["trace_url"][-32:], sid))),
                30, "the span's export state to be sent" + ctx())
            self.assertEqual(span["export"]["apm"]["items_dropped"], 0)

            # ---- bad parameters ----
            for path in ("/api/traces?limit=0", "/api/traces?limit=abc",
                         "/api/traces?limit=501", "/api/traces?error=maybe",
                         "/api/traces?bogus=1", "/api/traces?q=" + "x" * 300,
                         "/api/traces/XYZ", "/api/traces/" + "A" * 32,
                         "/api/traces/%s?x=1" % llm_trace,
                         "/api/traces/%s/spans/123" % llm_trace, "/api/status?x=1",
                         "/api/lints?x=1"):
                st, body = get(port, path)
                self.assertEqual(st, 400, path)
                self.assertIn(b'"error"', body, path)
            self.assertEqual(get(port, "/api/traces/" + "0" * 32)[0], 404)
            self.assertEqual(get(port, "/api/nothing")[0], 404)
            # ---- the API key is never shown ----
            for path in ("/api/status", "/api/traces", "/api/lints",
                         "/api/traces/" + llm_trace + "/llm"):
                self.assertNotIn(API_KEY.encode(), get(port, path)[1], path)
            self.assertEqual(o.stop(), 0)


class PreviewStoreTest(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        problem = js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)

    def test_bound_under_load(self):
        """3,000 spans of 1,000 traces into a preview bounded at 1 MiB: never more than the
        bound held, the oldest traces evicted, the newest still there."""
        with Otel2dd(config=config(self.intake, max_size_mib=1)) as o:
            port = wait_until(lambda: preview_port(o), 10, "the preview to listen")
            rc, rep, raw = run_node(
                [NODE, os.path.join(JS_DIR, "send_spans.js"), "--protocol", "grpc", "--url",
                 "http://127.0.0.1:%d" % o.grpc_port, "--spans", "3000", "--gzip", "off",
                 "--batch", "400", "--signal", "traces"], 120)
            self.assertEqual(rc, 0, raw)
            st = get_json(port, "/api/status")["preview"]
            self.assertEqual(st["max_bytes"], 1 << 20)
            self.assertLessEqual(st["bytes"], st["max_bytes"], st)
            self.assertGreater(st["evicted_traces"], 0, st)
            self.assertEqual(st["spans_captured"] + 0, 3000, st)
            lst = get_json(port, "/api/traces?limit=500")
            self.assertEqual(lst["held"], st["traces"])
            self.assertGreater(lst["held"], 10)
            # newest first
            seqs = [t["seq"] for t in lst["traces"]]
            self.assertEqual(seqs, sorted(seqs, reverse=True))
            self.assertEqual(o.stop(), 0)

    def test_last_intake_error_while_retrying(self):
        """While the intake answers 503 the status page's last intake error says so (the
        attempts are being retried, nothing was given up) and the trace reads "retrying";
        once the intake takes the traces, they are sent after retries and the last error
        stays. The API key is never in it."""
        from fake_intake import TRACES
        with Otel2dd(config=config(self.intake)) as o:
            port = wait_until(lambda: preview_port(o), 10, "the preview to listen")
            self.intake.default_status[TRACES] = 503
            body, tid = hostile_request()
            self.assertEqual(send_http(o.http_port, body), 200)

            def traces_error():
                outs = get_json(port, "/api/status")["exporters"]
                le = [x["last_error"] for x in outs if x["output"] == "datadog_traces"]
                return le[0] if le and le[0] else None
            le = wait_until(traces_error, 30, "a last intake error")
            self.assertEqual(le["what"], "retrying", le)
            self.assertEqual(le["http_status"], 503, le)
            self.assertIn("fake intake says 503", le["body_excerpt"])
            self.assertEqual(le["transport"], "")
            self.assertGreater(le["at_ms"], 0)
            self.assertNotIn(API_KEY.encode(), get(port, "/api/status")[1])
            # the trace's own state says it is being retried
            x = wait_until(lambda: (lambda e: e if e["state"] == "retrying" else None)(
                get_json(port, "/api/traces/" + tid)["export"]), 30, "the trace retrying")
            self.assertGreaterEqual(x["retries"], 1, x)
            self.intake.default_status.pop(TRACES)
            wait_until(lambda: self.intake.spans, 30, "the spans, once the intake takes them")
            wait_until(lambda: get_json(port, "/api/traces/" + tid)["export"]["state"]
                       == "sent after retries", 30, "the trace sent after retries")
            self.assertEqual(traces_error()["http_status"], 503)
            self.assertEqual(o.stop(), 0)

    def test_dry_run_state(self):
        """Without a Datadog destination a file that names the preview runs it, and every
        trace says "dry run"."""
        with Otel2dd(config={"extensions": {"preview": {"endpoint": "127.0.0.1:0"}}}) as o:
            port = wait_until(lambda: preview_port(o), 10, "the preview to listen")
            body, tid = hostile_request()
            self.assertEqual(send_http(o.http_port, body), 200)
            t = get_json(port, "/api/traces/" + tid)
            self.assertEqual(t["export"]["state"], "dry run")
            self.assertEqual(get_json(port, "/api/status")["dry_run"], True)
            self.assertEqual(o.stop(), 0)


if __name__ == "__main__":
    unittest.main()
