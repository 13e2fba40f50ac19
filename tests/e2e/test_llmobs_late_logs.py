#!/usr/bin/python3
"""End-to-end: LLM Obs spans whose message content comes as OTLP log records, late.

  - LateLogRecords: three content-less OTel GenAI chat spans (as the official OpenAI
    instrumentations send them), then their log records (OTel GenAI <= 1.36 events) 0.1 s,
    1 s and log_join_window + 3 s after them. The first two are joined (the spans wait for
    them); the third span leaves at the end of its window without content and its records are
    counted unmatched, reason span_written, in /metrics. Nothing crashes, every span is sent.
  - OfficialOpenAIInstrumentation: js/openai_app.js, the `openai` npm client instrumented with
    @opentelemetry/instrumentation-openai (content capture on), exporting with the OTel JS
    SDK's default batch processors (spans every 5 s, log records every 1 s, each on its own
    timer), calls an OpenAI-compatible server written here (http.server on 127.0.0.1): a chat,
    a tool round, a streamed chat with usage, an embedding, a Responses call. Every LLM call
    becomes one LLM Obs span with its messages, tokens, the agent span as parent and the
    agent's session; the Responses span has its instructions once.
Every wait polls with a deadline; the only sleeps place the late log records in time.

    /usr/bin/python3 tests/e2e/test_llmobs_late_logs.py [-v] [TestName ...]
"""
import http.server
import json
import os
import random
import re
import shutil
import socketserver
import sys
import threading
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import BIN, IntakeTestCase, Otel2ddChecked, totals, wait_until  # noqa: E402
from otlp_client import http_post, new_id  # noqa: E402
from test_js_sdk import js_deps_problem, run_node  # noqa: E402
from test_llmobs_export import Span, chat_span, logs_body, traces_body  # noqa: E402

JS_DIR = os.path.join(HERE, "js")
NODE = os.environ.get("NODE", shutil.which("node") or "node")
ML_APP = "late-logs-e2e"
WINDOW_S = 2


def config(intake, window="%ds" % WINDOW_S):
    return {"exporters": {"datadog": {
        "api": {"key": "test-key", "endpoint": intake.url},
        "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
        "retry_on_failure": {"max_elapsed_time": "60s"},
        "llmobs": {"endpoint": intake.url, "ml_app": ML_APP, "log_join_window": window,
                   "trace_buffer": {"timeout": "10s"}},
    }}}


def metric(text, name, **labels):
    """The value of the sample of name whose labels include labels, in a Prometheus text
    body, or None."""
    want = {'%s="%s"' % kv for kv in labels.items()}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z0-9_:]+)(?:\{([^}]*)\})? (\S+)$", line)
        if m and m.group(1) == name and want <= set((m.group(2) or "").split(",")):
            return float(m.group(3))
    return None


def msgs(ev, io):
    return [(m.get("role"), m.get("content"))
            for m in ev["meta"].get(io, {}).get("messages", [])]


class LateLogRecords(IntakeTestCase):
    def test_log_records_after_their_span(self):
        spans = [chat_span(random.getrandbits(128).to_bytes(16, "big"), 0) for _ in range(3)]
        a, b, c = spans

        def records(sp, q, ans):
            return logs_body([
                (sp.trace_id, sp.span_id, "gen_ai.user.message", {"content": q}),
                (sp.trace_id, sp.span_id, "gen_ai.choice",
                 {"index": 0, "finish_reason": "stop", "message": {"content": ans}}),
            ])

        def event(sp):
            return [e for e in self.intake.events() if e["span_id"] == str(sp.span_id)]

        with Otel2ddChecked(config=config(self.intake)) as o:
            t0 = time.monotonic()
            self.assertEqual(http_post(o.http_port, "/v1/traces", traces_body(spans)), 200)

            def at(offset):  # the stimulus' schedule, not a wait for an effect
                time.sleep(max(0.0, t0 + offset - time.monotonic()))

            at(0.1)
            self.assertEqual(http_post(o.http_port, "/v1/logs", records(a, "qa", "aa")), 200)
            at(1.0)
            self.assertEqual(http_post(o.http_port, "/v1/logs", records(b, "qb", "ab")), 200)
            wait_until(lambda: event(a) and event(b), 10, "the events of a and b")
            # c has had no record: it leaves at the end of its window, not before.
            wait_until(lambda: event(c), WINDOW_S + 10, "c at the end of its window")
            self.assertGreaterEqual(time.monotonic() - t0, WINDOW_S - 0.5)
            at(WINDOW_S + 3.0)
            self.assertEqual(http_post(o.http_port, "/v1/logs", records(c, "qc", "ac")), 200)
            wait_until(lambda: metric(o.scrape(),
                                      "otel2dd_llmobs_trace_buffer_unmatched_log_records_total",
                                      reason="span_written") == 2, 10,
                       "c's two records counted unmatched (span_written)")
            text = o.scrape()
            self.assertEqual(o.stop(), 0)
            t = totals(o, "llmobs exporter totals")
        self.assertEqual(msgs(event(a)[0], "input"), [("user", "qa")])
        self.assertEqual(msgs(event(a)[0], "output"), [("assistant", "aa")])
        self.assertEqual(msgs(event(b)[0], "input"), [("user", "qb")])
        self.assertEqual(msgs(event(b)[0], "output"), [("assistant", "ab")])
        self.assertEqual(msgs(event(c)[0], "input"), [])
        self.assertEqual(event(c)[0]["metrics"]["input_tokens"], 12)
        for sp in spans:
            self.assertEqual(len(event(sp)), 1, "each span once")
        self.assertEqual(metric(text, "otel2dd_llmobs_trace_buffer_log_join_holds_total",
                                outcome="held"), 3)
        self.assertEqual(metric(text, "otel2dd_llmobs_trace_buffer_log_join_holds_total",
                                outcome="expired"), 1)
        self.assertEqual(metric(text, "otel2dd_llmobs_trace_buffer_log_records_total",
                                outcome="joined"), 4)
        self.assertEqual(t["buffer_logs_unmatched_late"], 2, t)
        self.assertEqual(t["events_sent"], 3, t)


# ---- an OpenAI-compatible server ----

CHAT_ANSWER = "Paris is the capital of France."
TOOL_ANSWER = "It is rainy in Paris, 12 C."
STREAM_PARTS = ["One, ", "two, ", "three."]
RESP_ANSWER = "Bonjour !"


def usage(p, c):
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def chat_completion(model, message, finish, u):
    return {"id": "chatcmpl-%d" % new_id(), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": u}


class _OpenAIHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        self.server.requests.append((self.path, req))
        model = req.get("model", "gpt-4o-mini")
        if self.path.endswith("/chat/completions"):
            if req.get("stream"):
                return self.stream(model)
            last = req["messages"][-1]
            if req.get("tools") and last["role"] == "user":
                call = {"id": "call_weather_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
                return self.send_json(chat_completion(
                    model, {"role": "assistant", "content": None, "tool_calls": [call]},
                    "tool_calls", usage(30, 12)))
            text = TOOL_ANSWER if last["role"] == "tool" else CHAT_ANSWER
            return self.send_json(chat_completion(
                model, {"role": "assistant", "content": text}, "stop",
                usage(40 if last["role"] == "tool" else 21, 9)))
        if self.path.endswith("/embeddings"):
            return self.send_json({"object": "list", "model": model,
                                   "data": [{"object": "embedding", "index": 0,
                                             "embedding": [0.1, 0.2, 0.3, 0.4]}],
                                   "usage": {"prompt_tokens": 2, "total_tokens": 2}})
        if self.path.endswith("/responses"):
            return self.send_json({
                "id": "resp_%d" % new_id(), "object": "response", "created_at": int(time.time()),
                "status": "completed", "model": model, "instructions": req.get("instructions"),
                "output": [{"type": "message", "id": "msg_1", "status": "completed",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": RESP_ANSWER,
                                         "annotations": []}]}],
                "usage": {"input_tokens": 14, "output_tokens": 3, "total_tokens": 17},
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": []})
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def stream(self, model):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        cid = "chatcmpl-%d" % new_id()

        def chunk(choices, u=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": model, "choices": choices}
            if u is not None:
                obj["usage"] = u
            self.wfile.write(("data: %s\n\n" % json.dumps(obj)).encode())

        for i, part in enumerate(STREAM_PARTS):
            delta = {"content": part}
            if i == 0:
                delta["role"] = "assistant"
            chunk([{"index": 0, "delta": delta, "finish_reason": None}])
        chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        chunk([], usage(11, 6))
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


class FakeOpenAI:
    def __enter__(self):
        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
        self.srv = S(("127.0.0.1", 0), _OpenAIHandler)
        self.srv.requests = []
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/v1" % self.srv.server_address[1]
        return self

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


class OfficialOpenAIInstrumentation(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        problem = js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)
        if not os.path.isdir(os.path.join(JS_DIR, "node_modules",
                                          "@opentelemetry", "instrumentation-openai")):
            raise AssertionError("tests/e2e/js/node_modules lacks @opentelemetry/"
                                 "instrumentation-openai: run `npm ci` in tests/e2e/js")
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s; build it first" % BIN)

    def test_every_call_one_llm_span(self):
        """The SDK's defaults: spans every 5 s, log records every 1 s; the records mostly
        come before their spans."""
        t = self.run_app({})
        self.assertEqual(t["buffer_hold_expired"], 0, t)

    def test_spans_exported_before_their_log_records(self):
        """Spans exported 200 ms after they end (OTEL_BSP_SCHEDULE_DELAY, read by the
        BatchSpanProcessor), log records on their default 1 s schedule: the records of a
        call come after its span, which waits for them."""
        t = self.run_app({"OTEL_BSP_SCHEDULE_DELAY": "200"})
        self.assertGreater(t["buffer_held_for_logs"], 0, t)
        self.assertEqual(t["buffer_hold_expired"], 0, t)

    def run_app(self, env):
        service = "openai-e2e"
        env = dict(env, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
        with FakeOpenAI() as api, \
                Otel2ddChecked(config=config(self.intake, window="3s")) as o:
            cmd = [NODE, os.path.join(JS_DIR, "openai_app.js"),
                   "--url", "http://127.0.0.1:%d" % o.http_port, "--openai", api.url,
                   "--service", service]
            with mock.patch.dict(os.environ, env):
                rc, rep, raw = run_node(cmd, 120)
            ctx = "%s\notel2dd log tail:\n%s" % (raw, "\n".join(o.raw[-25:]))
            self.assertIsNotNone(rep, "the app printed no report\n" + ctx)
            self.assertEqual(rep.get("errors"), [], ctx)
            self.assertEqual(rc, 0, ctx)
            self.assertEqual(len(api.srv.requests), 6, api.srv.requests)
            tid = rep["trace_id"]

            def events():
                return [e for e in self.intake.events() if e["_dd"].get("apm_trace_id") == tid]

            wait_until(lambda: len(events()) >= 7, 30,
                       "7 LLM Obs events (have %d)\n%s" % (len(events()), ctx))
            self.assertEqual(o.stop(), 0, ctx)
            t = totals(o, "llmobs exporter totals")
        print("llmobs totals:", {k: v for k, v in t.items() if k.startswith("buffer_")},
              file=sys.stderr)
        evs = events()
        ctx += "\nevents:\n" + json.dumps(evs, indent=1)[:8000]
        self.assertEqual(len(evs), 7, ctx)
        self.assertEqual(len({e["span_id"] for e in evs}), 7, "an event twice\n" + ctx)
        agent_id = str(int(rep["agent_span_id"], 16))
        agents = [e for e in evs if e["span_id"] == agent_id]
        self.assertEqual(len(agents), 1, ctx)
        self.assertEqual(agents[0]["meta"]["span"]["kind"], "agent", ctx)
        self.assertEqual(agents[0]["parent_id"], "undefined", ctx)
        calls = [e for e in evs if e is not agents[0]]
        for e in calls:
            self.assertEqual(e["parent_id"], agent_id, ctx)
            self.assertEqual(e["trace_id"], agents[0]["trace_id"], ctx)
            self.assertEqual(e.get("session_id"), "conv-e2e-1", ctx)
            self.assertIn("session_id:conv-e2e-1", e["tags"], ctx)
            self.assertIn("ml_app:" + ML_APP, e["tags"], ctx)
        # Parents before children: the agent's event left first.
        order = [e["span_id"] for e in self.intake.events()
                 if e["_dd"].get("apm_trace_id") == tid]
        self.assertEqual(order[0], agent_id, ctx)
        llms = [e for e in calls if e["meta"]["span"]["kind"] == "llm"]
        embs = [e for e in calls if e["meta"]["span"]["kind"] == "embedding"]
        self.assertEqual((len(llms), len(embs)), (5, 1), ctx)
        by_out = {}
        for e in llms:
            self.assertEqual(e["meta"]["model_name"], "gpt-4o-mini", ctx)
            self.assertEqual(e["meta"]["model_provider"], "openai", ctx)
            self.assertIn("input", e["meta"], "no input: " + json.dumps(e))
            self.assertIn("output", e["meta"], "no output: " + json.dumps(e))
            self.assertGreater(e["metrics"].get("input_tokens", 0), 0, json.dumps(e))
            out = e["meta"]["output"]["messages"]
            key = out[0].get("content") or (out[0].get("tool_calls") or [{}])[0].get("name")
            by_out[key] = e
        ctx2 = json.dumps(sorted(by_out), indent=1)
        chat = by_out[CHAT_ANSWER]
        self.assertEqual(msgs(chat, "input"),
                         [("system", "You are a terse geography assistant."),
                          ("user", "What is the capital of France?")], ctx2)
        self.assertEqual(chat["metrics"]["input_tokens"], 21)
        self.assertEqual(chat["metrics"]["output_tokens"], 9)
        first = by_out["get_weather"]
        call = first["meta"]["output"]["messages"][0]["tool_calls"][0]
        self.assertEqual((call["name"], call["arguments"]), ("get_weather", {"city": "Paris"}))
        second = by_out[TOOL_ANSWER]
        roles = [m["role"] for m in second["meta"]["input"]["messages"]]
        self.assertEqual(roles, ["user", "assistant", "tool"], json.dumps(second))
        results = second["meta"]["input"]["messages"][2].get("tool_results") or []
        self.assertEqual([r.get("result") for r in results], ["rainy, 12 C"], json.dumps(second))
        stream = by_out["".join(STREAM_PARTS)]
        self.assertEqual(msgs(stream, "input"), [("user", "Count to three.")])
        self.assertEqual((stream["metrics"]["input_tokens"], stream["metrics"]["output_tokens"]),
                         (11, 6))
        resp = by_out[RESP_ANSWER]
        self.assertEqual(msgs(resp, "input"),
                         [("system", "Answer in French."), ("user", "Hello")], json.dumps(resp))
        self.assertEqual(resp["metrics"]["input_tokens"], 14)
        self.assertEqual(embs[0]["meta"]["model_name"], "text-embedding-3-small", ctx)
        self.assertEqual(embs[0]["metrics"].get("input_tokens"), 2, ctx)
        self.assertEqual(t["events_sent"], 7, t)
        self.assertEqual(t["buffer_logs_unmatched"], 0, t)
        return t


if __name__ == "__main__":
    unittest.main()
