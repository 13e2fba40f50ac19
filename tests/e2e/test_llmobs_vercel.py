#!/usr/bin/python3
"""End-to-end: the real Vercel AI SDK (npm `ai`) to Datadog LLM Observability.

js/vercel_app.mjs runs, each in an application root span of its own, generateText with a
get_weather tool (a tool round: tool call, tool run, answer), streamText (usage in the last
streamed chunk) and embedMany, against fake_openai.FakeOpenAI (an OpenAI-compatible server on
127.0.0.1), with the AI SDK's telemetry on; the OpenTelemetry JS SDK (BatchSpanProcessor,
default timers) exports over OTLP/HTTP protobuf to build/otel2dd, whose exporters point at
fake_intake.FakeIntake. Two SDKs:
  - ai@6 (experimental_telemetry, ai.* spans; llmobs_vercel.c), with functionId and
    metadata {sessionId, team};
  - ai@7 with @ai-sdk/otel (OTel GenAI spans: invoke_agent, agent_step, chat, execute_tool,
    embeddings).

Checked at the fake intake (/api/v2/llmobs):
  - every chat completion the server answered is one llm event (and every embeddings request
    one embedding event with tokens), with model, provider openai, messages, tokens 31/12/43;
  - the tool round: the first llm event's output is the get_weather call, the second's input
    has the tool result and its output the answer; the tool event's input and output;
  - LLM Obs parents: v6: generateText/streamText/embedMany are workflow roots and the
    doGenerate/doStream/doEmbed/toolCall events their children; v7: invoke_agent an agent
    root, each agent_step a workflow under it, each chat and execute_tool under a step;
  - v6's telemetry metadata: session_id sess-42 on every event, metadata.team.
Waits poll with deadlines.

    /usr/bin/python3 tests/e2e/test_llmobs_vercel.py -v
"""
import json
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_openai import (COMPLETION_TOKENS, EMBED_TOKENS, MODEL, PROMPT_TOKENS,  # noqa: E402
                         STORY, TOOL_ANSWER, FakeOpenAI)
from harness import BIN, IntakeTestCase, Otel2ddChecked, wait_until  # noqa: E402
from test_js_sdk import js_deps_problem, run_node  # noqa: E402

JS_DIR = os.path.join(HERE, "js")
APP = os.path.join(JS_DIR, "vercel_app.mjs")
NODE = os.environ.get("NODE", shutil.which("node") or "node")
ML_APP = "vercel-e2e"
TOKENS = {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
          "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}


def config(intake):
    return {"exporters": {"datadog": {
        "api": {"key": "test-key", "endpoint": intake.url},
        "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
        "llmobs": {"endpoint": intake.url, "ml_app": ML_APP,
                   "trace_buffer": {"timeout": "5s"}},
    }}}


def kind(ev):
    return ev["meta"]["span"]["kind"]


def roles(ev, side):
    return [m.get("role") for m in ev["meta"][side].get("messages", [])]


class VercelAISDK(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        problem = js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)
        if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "ai6")):
            raise unittest.SkipTest("tests/e2e/js/node_modules has no ai6: run `npm ci` there")
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s; build it first" % BIN)

    def run_sdk(self, sdk, n_events):
        """Runs the app; returns (events by trace index, the LLM server's requests, ctx)."""
        with FakeOpenAI() as llm, Otel2ddChecked(config=config(self.intake)) as o:
            cmd = [NODE, APP, "--sdk", sdk, "--llm", llm.url,
                   "--url", "http://127.0.0.1:%d" % o.http_port, "--service", "vercel-" + sdk]
            rc, rep, raw = run_node(cmd, 120)
            ctx = "sdk %s\n%s\notel2dd log tail:\n%s" % (sdk, raw, "\n".join(o.raw[-25:]))
            self.assertIsNotNone(rep, "the app printed no report\n" + ctx)
            self.assertEqual((rc, rep.get("ok"), rep.get("errors")), (0, True, []), ctx)
            self.assertEqual(rep["answers"], [TOOL_ANSWER, STORY, "2x4"], ctx)
            tids = rep["trace_ids"]

            def events():
                return [e for e in self.intake.events() if e["_dd"].get("apm_trace_id") in tids]

            wait_until(lambda: len(events()) >= n_events, 30,
                       "%d LLM Obs events (have %d)\n%s" % (n_events, len(events()), ctx))
            self.assertEqual(o.stop(), 0, ctx)
            evs = events()
            ctx += "\nevents:\n" + json.dumps(evs, indent=1)[:12000]
            self.assertEqual(len(evs), n_events, ctx)
            self.assertEqual(len({e["span_id"] for e in evs}), len(evs), "an event twice\n" + ctx)
            by_trace = [[e for e in evs if e["_dd"]["apm_trace_id"] == t] for t in tids]
            reqs = list(llm.requests)
        chats = [r for r in reqs if r["path"].endswith("/chat/completions")]
        embeds = [r for r in reqs if r["path"].endswith("/embeddings")]
        self.assertEqual((len(chats), len(embeds)), (3, 1), reqs)
        # Every model call the server answered is one llm event.
        self.assertEqual(len([e for e in evs if kind(e) == "llm"]), len(chats), ctx)
        for e in evs:
            self.assertIn("ml_app:" + ML_APP, e["tags"], ctx)
            self.assertEqual(e["status"], "ok", ctx)
            self.assertEqual(len({x["trace_id"] for x in by_trace[0]}), 1, ctx)
            if kind(e) in ("llm", "embedding"):
                self.assertEqual(e["meta"]["model_provider"], "openai", ctx)
            if kind(e) == "llm":
                self.assertEqual(e["meta"]["model_name"], MODEL, ctx)
                for k, v in TOKENS.items():
                    self.assertEqual(e["metrics"].get(k), v, (k, ctx))
        return by_trace, ctx

    def check_tool_round(self, llms, tool, ctx):
        first, second = sorted(llms, key=lambda e: e["start_ns"])
        self.assertEqual(roles(first, "input"), ["system", "user"], ctx)
        calls = first["meta"]["output"]["messages"][0]["tool_calls"]
        self.assertEqual([(c["name"], c["arguments"], c["tool_id"]) for c in calls],
                         [("get_weather", {"city": "Paris"}, "call_weather_1")], ctx)
        self.assertEqual(roles(second, "input"), ["system", "user", "assistant", "tool"], ctx)
        result = second["meta"]["input"]["messages"][3]["tool_results"][0]
        self.assertEqual(result["tool_id"], "call_weather_1", ctx)
        self.assertEqual(json.loads(result["result"])["forecast"], "rainy", ctx)
        self.assertEqual(second["meta"]["output"]["messages"],
                         [{"role": "assistant", "content": TOOL_ANSWER}], ctx)
        self.assertEqual(tool["name"], "get_weather", ctx)
        self.assertEqual(json.loads(tool["meta"]["input"]["value"]), {"city": "Paris"}, ctx)
        self.assertEqual(json.loads(tool["meta"]["output"]["value"])["temperature_f"], 57, ctx)
        self.assertEqual(first["meta"]["tool_definitions"][0]["name"], "get_weather", ctx)

    def test_ai6_experimental_telemetry(self):
        (chat, stream, embed), ctx = self.run_sdk("6", 4 + 2 + 2)
        names = lambda t: sorted(e["name"] for e in t)  # noqa: E731
        self.assertEqual(names(chat), ["get_weather", "weather-agent.doGenerate",
                                       "weather-agent.doGenerate", "weather-agent.generateText"],
                         ctx)
        wf = [e for e in chat if kind(e) == "workflow"][0]
        self.assertEqual(wf["parent_id"], "undefined", ctx)
        self.assertEqual(wf["meta"]["input"]["value"], "What is the weather in Paris?", ctx)
        self.assertEqual(wf["meta"]["output"]["value"], TOOL_ANSWER, ctx)
        self.assertEqual(wf["meta"]["metadata"]["team"], "geo", ctx)
        for e in chat + stream + embed:
            self.assertEqual(e.get("session_id"), "sess-42", ctx)
            self.assertIn("session_id:sess-42", e["tags"], ctx)
        for e in chat:
            if e is not wf:
                self.assertEqual(e["parent_id"], wf["span_id"], ctx)
        self.check_tool_round([e for e in chat if kind(e) == "llm"],
                              [e for e in chat if kind(e) == "tool"][0], ctx)

        self.assertEqual(names(stream), ["streamer.doStream", "streamer.streamText"], ctx)
        swf = [e for e in stream if kind(e) == "workflow"][0]
        sllm = [e for e in stream if kind(e) == "llm"][0]
        self.assertEqual((swf["parent_id"], sllm["parent_id"]), ("undefined", swf["span_id"]),
                         ctx)
        self.assertEqual(sllm["meta"]["output"]["messages"],
                         [{"role": "assistant", "content": STORY}], ctx)

        self.assertEqual(names(embed), ["embedder.doEmbed", "embedder.embedMany"], ctx)
        ewf = [e for e in embed if kind(e) == "workflow"][0]
        emb = [e for e in embed if kind(e) == "embedding"][0]
        self.assertEqual(emb["parent_id"], ewf["span_id"], ctx)
        self.assertEqual(emb["meta"]["input"]["documents"],
                         [{"text": "sunny day"}, {"text": "rainy night"}], ctx)
        self.assertEqual(emb["metrics"]["input_tokens"], EMBED_TOKENS, ctx)
        self.assertEqual(ewf["meta"]["output"]["value"], "[2 embedding(s) returned with size 4]",
                         ctx)

    def test_ai7_otel(self):
        # chat: invoke_agent, 2 agent_step, 2 chat, execute_tool; stream: invoke_agent,
        # agent_step, chat; embedMany: the call's and the model call's embeddings spans.
        (chat, stream, embed), ctx = self.run_sdk("7", 6 + 3 + 2)
        agent = [e for e in chat if kind(e) == "agent"]
        steps = [e for e in chat if kind(e) == "workflow"]
        self.assertEqual((len(agent), len(steps)), (1, 2), ctx)
        self.assertEqual(agent[0]["parent_id"], "undefined", ctx)
        step_ids = {s["span_id"] for s in steps}
        for s in steps:
            self.assertEqual(s["parent_id"], agent[0]["span_id"], ctx)
        llms = [e for e in chat if kind(e) == "llm"]
        tools = [e for e in chat if kind(e) == "tool"]
        for e in llms + tools:
            self.assertIn(e["parent_id"], step_ids, ctx)
        self.check_tool_round(llms, tools[0], ctx)
        sllm = [e for e in stream if kind(e) == "llm"][0]
        self.assertEqual(sllm["meta"]["output"]["messages"],
                         [{"role": "assistant", "content": STORY}], ctx)
        with_tokens = [e for e in embed if e["metrics"].get("input_tokens") == EMBED_TOKENS]
        self.assertEqual(len(with_tokens), 1, ctx)


if __name__ == "__main__":
    unittest.main()
