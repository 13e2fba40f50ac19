#!/usr/bin/python3
"""End-to-end: a real LangChain JS application to Datadog LLM Observability and APM.

js/langchain_app.js runs, inside an application SERVER span "POST /chat", a `qa_pipeline`
runnable: the chain ChatPromptTemplate | FakeChatModel | StrOutputParser (a BaseChatModel
that answers from a script and reports a model name and token usage like a provider), then
the DynamicTool `lookup_weather`. It is instrumented once with
@traceloop/instrumentation-langchain and once with
@arizeai/openinference-instrumentation-langchain (manuallyInstrument), and exports with the
OpenTelemetry JS SDK over OTLP/gRPC and OTLP/HTTP protobuf to build/otel2dd, whose Datadog
exporters point at fake_intake.FakeIntake.

Checked, at the fake intake (/api/v2/llmobs decoded as JSON, /api/v0.2/traces with protobuf):
  - the llm event: input messages (system and user, with roles and content), output message
    (assistant, the answer), model_name, input/output/total token metrics, ml_app tag;
  - the workflow events and the tool event; with OpenInference, whose spans carry their
    LangChain parents, the tree: llm -> RunnableSequence workflow -> qa_pipeline workflow
    (parent_id links, one LLM Obs trace id), the tool under qa_pipeline, qa_pipeline a root;
    with OpenLLMetry JS 0.27, which sets no parent of its own (every span is a child of the
    active "POST /chat"), each span is an LLM Obs root of its own (reference/llmobs.md 4);
  - each event links to its APM span (_dd.span_id, _dd.apm_trace_id) and arrives once;
  - APM: every span the app exported arrived, all in one trace; the llm span typed llm,
    whichever instrumentation made it (OpenInference's carry no gen_ai.* key);
  - an LLM Obs intake that answers 500 twice: the events still arrive, once.
Waits poll with deadlines.

    /usr/bin/python3 tests/e2e/test_llmobs_langchain.py -v
"""
import collections
import json
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import LLMOBS  # noqa: E402
from harness import (BIN, IntakeTestCase, Otel2ddChecked, totals,  # noqa: E402
                     wait_until)
from test_js_sdk import js_deps_problem, run_node  # noqa: E402

JS_DIR = os.path.join(HERE, "js")
APP = os.path.join(JS_DIR, "langchain_app.js")
NODE = os.environ.get("NODE", shutil.which("node") or "node")
ML_APP = "e2e-ml-app"
MODEL = "fake-gpt-e2e-1"
ANSWER = "Paris is the capital of France."
SYSTEM = "You are a terse geography assistant."
QUESTION = "What is the capital of France?"


def config(intake):
    return {"exporters": {"datadog": {
        "api": {"key": "test-key", "endpoint": intake.url},
        "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
        "retry_on_failure": {"max_elapsed_time": "60s"},
        "llmobs": {"endpoint": intake.url, "ml_app": ML_APP,
                   "trace_buffer": {"timeout": "5s"}},
    }}}


def run_app(instrumentation, protocol, port, service):
    cmd = [NODE, APP, "--instrumentation", instrumentation, "--protocol", protocol,
           "--url", "http://127.0.0.1:%d" % port, "--service", service]
    return run_node(cmd, 120)


def kind(ev):
    return ev["meta"]["span"]["kind"]


def text_of(msgs):
    return [(m.get("role"), m.get("content")) for m in msgs]


class LangChainLLMObs(IntakeTestCase):
    @classmethod
    def setUpClass(cls):
        problem = js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s; build it first" % BIN)

    def run_case(self, instrumentation, protocol):
        service = "llm-e2e-%s-%s" % (instrumentation, protocol)
        with Otel2ddChecked(config=config(self.intake)) as o:
            port = o.grpc_port if protocol == "grpc" else o.http_port
            rc, rep, raw = run_app(instrumentation, protocol, port, service)
            ctx = "%s over %s\n%s\notel2dd log tail:\n%s" % (
                instrumentation, protocol, raw, "\n".join(o.raw[-25:]))
            self.assertIsNotNone(rep, "the app printed no report\n" + ctx)
            self.assertEqual(rep.get("errors"), [], ctx)
            self.assertTrue(rep.get("ok"), ctx)
            self.assertEqual(rc, 0, ctx)
            self.assertEqual(rep["answer"], ANSWER)
            trace_hex = rep["trace_id"]
            apm_tid = int(trace_hex[16:], 16)  # the Datadog span's traceID: the low 64 bits

            def apm_spans():
                return [s for s in self.intake.spans if s["trace_id"] == apm_tid]

            def events():
                return [e for e in self.intake.events()
                        if e["_dd"].get("apm_trace_id") == trace_hex]

            n_spans = rep["spans"]
            wait_until(lambda: len(apm_spans()) >= n_spans, 30,
                       "%d APM spans (have %d)\n%s" % (n_spans, len(apm_spans()), ctx))
            # Every LangChain span (all but POST /chat) becomes an event.
            wait_until(lambda: len(events()) >= n_spans - 1, 30,
                       "%d LLM Obs events (have %d)\n%s" % (n_spans - 1, len(events()), ctx))
            self.assertEqual(o.stop(), 0, ctx)
            lo_totals = totals(o, "llmobs exporter totals")
            dd_totals = totals(o, "datadog exporter totals")
            errors = [l for l in o.logs() if l.get("level") == "error"]
        self.assertEqual(errors, [], ctx)
        self.assertIsNotNone(lo_totals, ctx)
        self.assertIsNotNone(dd_totals, ctx)
        for k, v in lo_totals.items():
            if k.startswith("events_dropped_"):
                self.assertEqual(v, 0, "%s\n%s" % (k, lo_totals))
        self.assertEqual(lo_totals["events_sent"], len(events()), lo_totals)

        spans = apm_spans()
        evs = events()
        ctx += "\nevents:\n" + json.dumps(evs, indent=1)[:6000]
        # APM: every span, once, in one trace; the llm span typed llm.
        self.assertEqual(len(spans), n_spans, ctx)
        self.assertEqual(len({s["span_id"] for s in spans}), n_spans, ctx)
        by_id = {s["span_id"]: s for s in spans}
        roots = [s for s in spans if s["name"] == "http.server.request" or
                 s["resource"] == "POST /chat"]
        self.assertTrue(roots, ctx)

        # LLM Obs: one event per LangChain span, each linked to its APM span, once.
        self.assertEqual(len(evs), n_spans - 1, ctx)
        self.assertEqual(len({e["span_id"] for e in evs}), len(evs), "an event twice\n" + ctx)
        for e in evs:
            self.assertEqual(e["_dd"]["span_id"], e["span_id"])
            self.assertIn(int(e["span_id"]), by_id, "event without its APM span\n" + ctx)
            self.assertIn("ml_app:" + ML_APP, e["tags"], ctx)
            self.assertIn("service:" + service, e["tags"], ctx)
            self.assertIn("env:e2e", e["tags"], ctx)
            self.assertEqual(e["status"], "ok", ctx)
            self.assertRegex(e["trace_id"], r"^[0-9a-f]{32}$")
            self.assertTrue(e["_envelope"]["_dd.tracer_version"].startswith("otel2dd/"))
        for r in self.intake.requests_to(LLMOBS):
            h = {k.lower(): v for k, v in r["headers"].items()}
            self.assertEqual(h["dd-api-key"], "test-key")
            self.assertEqual(h["content-type"], "application/json")
            self.assertNotIn("content-encoding", h)

        # The llm event.
        llms = [e for e in evs if kind(e) == "llm"]
        self.assertEqual(len(llms), 1, ctx)
        llm = llms[0]
        self.assertEqual(llm["meta"]["model_name"], MODEL, ctx)
        ins = text_of(llm["meta"]["input"]["messages"])
        self.assertIn(("system", SYSTEM), ins, ctx)
        self.assertIn(("user", QUESTION), ins, ctx)
        self.assertEqual(text_of(llm["meta"]["output"]["messages"]), [("assistant", ANSWER)], ctx)
        m = llm["metrics"]
        self.assertEqual((m.get("input_tokens"), m.get("output_tokens"), m.get("total_tokens")),
                         (21, 9, 30), ctx)
        # LLM spans stay in APM typed llm, so the two views link: gen_ai.* spans by Datadog's
        # own rule, OpenInference's (llm.* keys only) by ours (translate/apm/apm_names.c).
        self.assertEqual(by_id[int(llm["span_id"])]["type"], "llm", ctx)

        # Workflows and the tool.
        names = {e["name"]: e for e in evs}
        # OpenLLMetry JS 0.27 names spans by class (its handleChainStart reads the 0.3
        # argument order: runName is never seen with @langchain/core 1.x) and the tool by
        # class too: qa_pipeline is "workflow RunnableLambda", lookup_weather "DynamicTool".
        top, tool = (("qa_pipeline", "lookup_weather") if instrumentation == "openinference"
                     else ("workflow RunnableLambda", "DynamicTool"))
        qa = [e for e in evs if top in e["name"]]
        self.assertEqual(len(qa), 1, ctx)
        self.assertEqual(kind(qa[0]), "workflow", ctx)
        tools = [e for e in evs if tool in e["name"]]
        self.assertEqual(len(tools), 1, ctx)
        self.assertIn(kind(tools[0]), ("tool", "task"), ctx)

        if instrumentation == "openinference":
            # The tree: qa_pipeline (root) -> RunnableSequence -> llm; the tool under qa.
            ev_by_id = {e["span_id"]: e for e in evs}
            self.assertEqual(qa[0]["parent_id"], "undefined", ctx)
            parent = ev_by_id.get(llm["parent_id"])
            self.assertIsNotNone(parent, "the llm event's parent is not an event\n" + ctx)
            self.assertEqual(parent["name"], "RunnableSequence", ctx)
            self.assertEqual(kind(parent), "workflow", ctx)
            self.assertEqual(parent["parent_id"], qa[0]["span_id"], ctx)
            self.assertEqual(tools[0]["parent_id"], qa[0]["span_id"], ctx)
            self.assertEqual(kind(tools[0]), "tool", ctx)
            self.assertEqual(len({e["trace_id"] for e in evs}), 1,
                             "one LLM Obs trace for the whole tree\n" + ctx)
            for e in evs:
                if e is not qa[0]:
                    self.assertIn(e["parent_id"], ev_by_id, ctx)
        else:
            # OpenLLMetry JS 0.27 parents every span on the active context (POST /chat):
            # every event is an LLM Obs root, in an LLM Obs trace of its own.
            self.assertIn("workflow RunnableSequence", names, ctx)
            for e in evs:
                self.assertEqual(e["parent_id"], "undefined", ctx)
            self.assertEqual(len({e["trace_id"] for e in evs}), len(evs), ctx)
        return evs

    def test_openinference_grpc(self):
        self.run_case("openinference", "grpc")

    def test_openinference_http(self):
        self.run_case("openinference", "proto")

    def test_traceloop_grpc(self):
        self.run_case("traceloop", "grpc")

    def test_traceloop_http(self):
        self.run_case("traceloop", "proto")

    def test_intake_500_twice_then_ok(self):
        self.intake.script(LLMOBS, [500, 500])
        evs = self.run_case("openinference", "grpc")
        answers = collections.Counter(r["status"] for r in self.intake.requests_to(LLMOBS))
        self.assertEqual(answers[500], 2, answers)
        self.assertGreaterEqual(answers[202], 1, answers)
        self.assertTrue(evs)


if __name__ == "__main__":
    unittest.main()
