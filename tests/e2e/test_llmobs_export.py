#!/usr/bin/python3
"""End-to-end tests of the LLM Observability exporter (exporters/llmobs_exporter.c) with
hand-built OTLP requests (protobuf classes protoc generates at test time from proto/), sent
over OTLP/HTTP to build/otel2dd, checked at fake_intake.FakeIntake (/api/v2/llmobs as JSON):
  - spans child-first across requests, and the message content as OTLP log records
    (OTel GenAI <= 1.36 events) in a request of their own: the events wait in the trace buffer
    until the root arrives, get their LLM Obs parent and their messages from the logs;
  - SIGTERM sends what the trace buffer still holds (a root that never came);
  - 403: dropped, counted, logged once (not once per body);
  - the intake down and the LLM Obs queue full: the receiver answers 503 (retry later), and
    what was accepted is delivered once when the intake is back;
  - the two requests fuzz_llmobs found (an empty prompt content, token counts at INT64_MAX).
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_llmobs_export.py [-v] [TestName ...]
"""
import collections
import json
import os
import random
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import LLMOBS  # noqa: E402
from harness import IntakeTestCase, Otel2ddChecked, totals, wait_until  # noqa: E402
from otlp_client import (http_post, logs_service_pb2, new_id, set_attr,  # noqa: E402
                         trace_service_pb2)

ML_APP = "export-e2e"


class Span:
    def __init__(self, trace_id, span_id, parent_id, name, kind=1, attrs=None):
        self.trace_id, self.span_id, self.parent_id = trace_id, span_id, parent_id
        self.name, self.kind, self.attrs = name, kind, attrs or {}


def traces_body(spans, service="llm-export-e2e"):
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", service)
    set_attr(rs.resource.attributes, "deployment.environment.name", "e2e")
    ss = rs.scope_spans.add()
    ss.scope.name = "e2e"
    now = time.time_ns()
    for sp in spans:
        s = ss.spans.add()
        s.trace_id = sp.trace_id
        s.span_id = sp.span_id.to_bytes(8, "big")
        if sp.parent_id:
            s.parent_span_id = sp.parent_id.to_bytes(8, "big")
        s.name = sp.name
        s.kind = sp.kind
        s.start_time_unix_nano = now - 50_000_000
        s.end_time_unix_nano = now
        for k, v in sp.attrs.items():
            set_attr(s.attributes, k, v)
    return req.SerializeToString()


def logs_body(records):
    """records: (trace_id, span_id, event_name, body dict)."""
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    set_attr(rl.resource.attributes, "service.name", "llm-export-e2e")
    sl = rl.scope_logs.add()
    for trace_id, span_id, event, body in records:
        r = sl.log_records.add()
        r.time_unix_nano = time.time_ns()
        r.trace_id = trace_id
        r.span_id = span_id.to_bytes(8, "big")
        r.event_name = event
        set_attr(r.attributes, "gen_ai.system", "openai")
        for k, v in body.items():
            set_attr(r.body.kvlist_value.values, k, v)
    return req.SerializeToString()


def post(port, path, body):
    return http_post(port, path, body, timeout=15)


def config(intake, timeout="30s", extra=None):
    dd = {"api": {"key": "test-key", "endpoint": intake.url},
          "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
          "retry_on_failure": {"max_elapsed_time": "120s"},
          "llmobs": {"endpoint": intake.url, "ml_app": ML_APP,
                     "trace_buffer": {"timeout": timeout}}}
    dd.update(extra or {})
    return {"exporters": {"datadog": dd}}


def chat_span(trace_id, parent, content=None):
    attrs = {"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
             "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 4}
    if content is not None:
        attrs["gen_ai.input.messages"] = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": content}]}])
    return Span(trace_id, new_id(), parent, "chat gpt-4o-mini", kind=3, attrs=attrs)


class LLMObsExport(IntakeTestCase):
    def test_child_first_across_requests_with_logs(self):
        tid = random.getrandbits(128).to_bytes(16, "big")
        root = Span(tid, new_id(), 0, "POST /ask", kind=2,
                    attrs={"http.request.method": "POST", "http.route": "/ask"})
        agent = Span(tid, new_id(), root.span_id, "invoke_agent helper", kind=1,
                     attrs={"gen_ai.operation.name": "invoke_agent",
                            "gen_ai.agent.name": "helper", "gen_ai.system": "openai"})
        llm = chat_span(tid, agent.span_id)
        with Otel2ddChecked(config=config(self.intake)) as o:
            # The LLM span first, then its content as log records, then its ancestors.
            self.assertEqual(post(o.http_port, "/v1/traces", traces_body([llm])), 200)
            self.assertEqual(post(o.http_port, "/v1/logs", logs_body([
                (tid, llm.span_id, "gen_ai.user.message", {"content": "How tall is K2?"}),
                (tid, llm.span_id, "gen_ai.choice",
                 {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": "8611 m."}}),
            ])), 200)
            # The buffer holds them: their chain does not reach a root yet.
            wait_until(lambda: self.intake.requests_to("/api/v0.2/traces"), 10, "APM")
            self.assertEqual(self.intake.events(), [])
            sent_at = time.monotonic()
            self.assertEqual(post(o.http_port, "/v1/traces", traces_body([agent, root])), 200)
            wait_until(lambda: len(self.intake.events()) >= 2, 10, "2 LLM Obs events")
            # Settled by the root's arrival, well before the 30 s deadline.
            self.assertLess(time.monotonic() - sent_at, 10)
            self.assertEqual(o.stop(), 0)
            t = totals(o, "llmobs exporter totals")
        evs = {e["name"]: e for e in self.intake.events()}
        self.assertEqual(len(self.intake.events()), 2, evs)
        a, c = evs["invoke_agent helper"], evs["chat gpt-4o-mini"]
        self.assertEqual(a["meta"]["span"]["kind"], "agent")
        self.assertEqual(a["parent_id"], "undefined")
        self.assertEqual(c["parent_id"], str(agent.span_id))
        self.assertEqual(c["span_id"], str(llm.span_id))
        self.assertEqual(a["trace_id"], c["trace_id"])
        self.assertEqual(c["_dd"]["apm_trace_id"], tid.hex())
        ins = [(m["role"], m["content"]) for m in c["meta"]["input"]["messages"]]
        outs = [(m["role"], m["content"]) for m in c["meta"]["output"]["messages"]]
        self.assertEqual(ins, [("user", "How tall is K2?")])
        self.assertEqual(outs, [("assistant", "8611 m.")])
        self.assertEqual(c["metrics"]["input_tokens"], 12)
        self.assertIn("ml_app:" + ML_APP, c["tags"])
        self.assertEqual(t["logs_seen"], 2, t)
        self.assertEqual(t["buffer_logs_joined"], 2, t)
        self.assertEqual(t["buffer_settled_by_deadline"], 0, t)
        self.assertEqual(t["events_sent"], 2, t)

    def test_fuzz_findings_answered(self):
        """Two requests fuzz_llmobs found (both now seeds of its corpus): an empty
        gen_ai.prompt.N.content (NULL + 0 in the JSON writer: the ASan/UBSan build aborted) and
        token counts at INT64_MAX (total_tokens -9223372036854775808 in the release build).
        Either build answers both, and the events carry "" and a saturated total."""
        big = 2**63 - 1
        empty = Span(random.getrandbits(128).to_bytes(16, "big"), new_id(), 0,
                     "ChatOpenAI.chat", kind=3,
                     attrs={"gen_ai.system": "OpenAI", "llm.request.type": "chat",
                            "gen_ai.request.model": "gpt-4o-mini",
                            "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "",
                            "gen_ai.completion.0.role": "assistant",
                            "gen_ai.completion.0.content": "ok"})
        tokens = chat_span(random.getrandbits(128).to_bytes(16, "big"), 0)
        tokens.attrs["gen_ai.usage.input_tokens"] = big
        tokens.attrs["gen_ai.usage.output_tokens"] = big
        with Otel2ddChecked(config=config(self.intake)) as o:
            self.assertEqual(post(o.http_port, "/v1/traces", traces_body([empty])), 200)
            self.assertEqual(post(o.http_port, "/v1/traces", traces_body([tokens])), 200)
            wait_until(lambda: len(self.intake.events()) >= 2, 10, "2 LLM Obs events")
            self.assertEqual(o.stop(), 0)
        evs = {e["span_id"]: e for e in self.intake.events()}
        e = evs[str(empty.span_id)]
        self.assertEqual(e["meta"]["input"]["messages"], [{"role": "user", "content": ""}])
        t = evs[str(tokens.span_id)]["metrics"]
        self.assertEqual((t["input_tokens"], t["output_tokens"], t["total_tokens"]),
                         (big, big, big))

    def test_sigterm_sends_what_the_buffer_holds(self):
        tid = random.getrandbits(128).to_bytes(16, "big")
        llm = chat_span(tid, new_id(), content="never settled")  # its parent never comes
        with Otel2ddChecked(config=config(self.intake, timeout="10m")) as o:
            self.assertEqual(post(o.http_port, "/v1/traces", traces_body([llm])), 200)
            wait_until(lambda: self.intake.requests_to("/api/v0.2/traces"), 10, "APM")
            self.assertEqual(self.intake.events(), [])
            self.assertEqual(o.stop(), 0)
            t = totals(o, "llmobs exporter totals")
        evs = self.intake.events()
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["span_id"], str(llm.span_id))
        self.assertEqual(evs[0]["parent_id"], "undefined")
        self.assertEqual(t["events_sent"], 1, t)
        self.assertEqual(t["events_dropped_shutdown"], 0, t)

    def test_403_dropped_and_logged_once(self):
        self.intake.script(LLMOBS, [403, 403])
        with Otel2ddChecked(config=config(self.intake, timeout="1s")) as o:
            for i in range(2):
                tid = random.getrandbits(128).to_bytes(16, "big")
                body = traces_body([chat_span(tid, 0, content="rejected %d" % i)])
                self.assertEqual(post(o.http_port, "/v1/traces", body), 200)
                n = i + 1
                wait_until(lambda: len(self.intake.requests_to(LLMOBS)) >= n, 10,
                           "llmobs request %d" % n)
            self.assertEqual(o.stop(), 0)
            t = totals(o, "llmobs exporter totals")
            lines = [l for l in o.logs() if l.get("request") == "llmobs" and
                     "403" in l.get("msg", "")]
        self.assertEqual([r["status"] for r in self.intake.requests_to(LLMOBS)], [403, 403])
        self.assertEqual(self.intake.events(), [])
        self.assertEqual(t["events_dropped_rejected_4xx"], 2, t)
        self.assertEqual(t["events_sent"], 0, t)
        # Logged once a minute at most: one line for the two rejections.
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0]["level"], "error")

    def test_queue_full_answers_retry_later(self):
        """The intake down; ~1 MB events fill the LLM Obs queue (a quarter of the 64 MiB
        Datadog queue); then requests with LLM spans get 503, APM-only ones still 200."""
        with Otel2ddChecked(config=config(self.intake, timeout="1s")) as o:
            o.wait_log(lambda l: l.get("msg", "").startswith("API key valid"), 10, "key check")
            self.intake.go_down()
            accepted = []
            big = "x" * 1_000_000
            state = {"busy": 0}

            def send_one():
                tid = random.getrandbits(128).to_bytes(16, "big")
                sp = chat_span(tid, 0, content=big)
                status = post(o.http_port, "/v1/traces", traces_body([sp]))
                self.assertIn(status, (200, 503))
                if status == 200:
                    accepted.append(str(sp.span_id))
                else:
                    state["busy"] += 1
                return status == 503

            wait_until(send_one, 60, "503 with the LLM Obs queue full", interval=0.05)
            # A request without LLM spans is not refused for it.
            plain = Span(random.getrandbits(128).to_bytes(16, "big"), new_id(), 0, "GET /", 2)
            self.assertEqual(post(o.http_port, "/v1/traces", traces_body([plain])), 200)
            self.intake.come_up()
            wait_until(lambda: len(self.intake.events()) >= len(accepted), 90,
                       "%d events after the outage" % len(accepted))
            self.assertEqual(o.stop(), 0)
            t = totals(o, "llmobs exporter totals")
            dd = totals(o, "datadog exporter totals")
        got = collections.Counter(e["span_id"] for e in self.intake.events())
        self.assertEqual([i for i, c in got.items() if c > 1], [], "events sent twice")
        self.assertEqual(set(got), set(accepted))
        # All or nothing across exporters: a request refused with 503 reached APM neither,
        # so the client's retry cannot duplicate it there; accepted ones arrive once.
        apm = collections.Counter(str(i) for i in self.intake.span_ids())
        self.assertEqual([i for i, c in apm.items() if c > 1], [], "APM spans sent twice")
        self.assertEqual(set(apm), set(accepted) | {str(plain.span_id)})
        self.assertGreaterEqual(t["spans_refused"], 1, t)
        self.assertEqual(t["events_sent"], len(accepted), t)
        self.assertEqual(dd["spans_dropped_queue_full"], 0, dd)
        for r in self.intake.requests_to(LLMOBS):
            self.assertLessEqual(r["len"], 5 << 20)


if __name__ == "__main__":
    unittest.main()
