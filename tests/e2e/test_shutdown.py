#!/usr/bin/python3
"""End-to-end tests of the SIGTERM drain (collector/main.c, collector/pipeline.c) and of
exporters.datadog.traces.enabled, against fake_intake.FakeIntake:
  - spans acknowledged over gRPC and OTLP/HTTP just before SIGTERM, while the Datadog queue
    still holds them (a long flush interval), all reach the intake; exit 0, quickly; the
    "undelivered" line says nothing was lost;
  - the same with senders still sending when SIGTERM comes: every span that was acknowledged
    arrives, and none twice;
  - the intake hangs, or refuses connections: with service.shutdown_timeout 2s the process
    exits 0 within the deadline plus a margin, and the "undelivered" line counts the spans,
    the stats payload and the LLM Obs event it could not deliver;
  - LLM spans waiting in the trace buffer (their parent never comes) are sent at SIGTERM;
  - traces.enabled false / DD_TRACE_ENABLED=0: no /api/v0.2/traces nor stats request, LLM
    Obs events still arrive, and the start says so once.
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_shutdown.py [-v] [TestName ...]
"""
import os
import random
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import LLMOBS, STATS, TRACES, FakeIntake  # noqa: E402
from harness import IntakeTestCase, Otel2ddChecked, wait_until  # noqa: E402
import otlp_client  # noqa: E402
from otlp_client import new_id, send_grpc, trace_service_pb2  # noqa: E402

import grpc  # noqa: E402

def traces_req(n, llm_parent=None):
    """n root SERVER spans with fresh ids; with llm_parent, one LLM chat span instead whose
    parent (never sent) is llm_parent. Returns (serialized request, span ids)."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = "shutdown-e2e"
    ss = rs.scope_spans.add()
    now = time.time_ns()
    ids = []
    for i in range(n):
        sid = new_id()
        s = ss.spans.add()
        s.trace_id = random.getrandbits(128).to_bytes(16, "big")
        s.span_id = sid.to_bytes(8, "big")
        s.start_time_unix_nano = now - 5_000_000
        s.end_time_unix_nano = now
        if llm_parent is None:
            s.name = "op-%d" % (i % 3)
            s.kind = 2  # SERVER
        else:
            s.name = "chat gpt-4o-mini"
            s.kind = 3  # CLIENT
            s.parent_span_id = llm_parent.to_bytes(8, "big")
            for k, v in (("gen_ai.system", "openai"), ("gen_ai.operation.name", "chat"),
                         ("gen_ai.request.model", "gpt-4o-mini")):
                a = s.attributes.add()
                a.key = k
                a.value.string_value = v
        ids.append(sid)
    return req.SerializeToString(), ids


def send_http(port, body, timeout=10):
    """otlp_client.send_http, but None where the connection is refused or cut (not
    acknowledged)."""
    try:
        return otlp_client.send_http(port, body, timeout)
    except OSError:
        return None


def dd_config(intake, flush="1m", extra=None, shutdown=None, llmobs=True):
    dd = {"api": {"key": "test-key", "endpoint": intake.url},
          "traces": {"endpoint": intake.url, "flush_interval": flush},
          "retry_on_failure": {"max_elapsed_time": "5m"},
          "llmobs": {"enabled": llmobs, "endpoint": intake.url, "ml_app": "shutdown-e2e",
                     "trace_buffer": {"timeout": "10m"}}}
    dd.update(extra or {})
    cfg = {"exporters": {"datadog": dd}}
    if shutdown:
        cfg["service"] = {"shutdown_timeout": shutdown}
    return cfg


def undelivered(o):
    lines = [l for l in o.logs() if l.get("msg") == "undelivered"]
    if len(lines) != 1:
        raise AssertionError("want one undelivered line, got %r" % lines)
    return lines[0]


def stop_timed(o):
    t0 = time.monotonic()
    rc = o.stop(timeout=60)
    return rc, time.monotonic() - t0


class Drain(IntakeTestCase):
    def test_acknowledged_spans_reach_the_intake(self):
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            sent = []
            for i in range(5):
                body, ids = traces_req(20)
                self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
                sent += ids
                body, ids = traces_req(20)
                self.assertEqual(send_http(o.http_port, body), 200)
                sent += ids
            # The flush interval is a minute: without the drain nothing would be sent.
            self.assertEqual(self.intake.requests_to(TRACES), [])
            rc, took = stop_timed(o)
            u = undelivered(o)
            stopping = [l for l in o.logs() if l.get("msg") == "stopping"]
        self.assertEqual(rc, 0)
        self.assertEqual(len(stopping), 1)
        self.assertEqual(sorted(self.intake.span_ids()), sorted(sent))
        self.assertTrue(self.intake.requests_to(STATS), "the stats are flushed too")
        hits = sum(g.get("Hits", 0) for g in self.intake.groups())
        self.assertEqual(hits, len(sent))
        self.assertEqual(u["total"], 0, u)
        self.assertEqual(u["level"], "info", u)

    def test_senders_still_sending_at_sigterm(self):
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def sender(kind, port):
            while not stop.is_set():
                body, ids = traces_req(10)
                if kind == "grpc":
                    ok = send_grpc(port, body, timeout=5) == grpc.StatusCode.OK
                else:
                    ok = send_http(port, body, timeout=5) == 200
                if ok:
                    with lock:
                        acked.extend(ids)

        with Otel2ddChecked(config=dd_config(self.intake, flush="200ms")) as o:
            threads = [threading.Thread(target=sender, args=(k, p), daemon=True)
                       for k, p in (("grpc", o.grpc_port), ("http", o.http_port)) * 2]
            for t in threads:
                t.start()
            wait_until(lambda: len(acked) >= 200, 30, "200 acknowledged spans")
            rc, took = stop_timed(o)
            stop.set()
            for t in threads:
                t.join(15)
            u = undelivered(o)
        self.assertEqual(rc, 0)
        got = self.intake.span_ids()
        self.assertEqual(len(got), len(set(got)), "no span twice")
        missing = set(acked) - set(got)
        self.assertEqual(missing, set(), "%d acknowledged spans lost" % len(missing))
        self.assertEqual(u["total"], 0, u)

    def test_hanging_intake_gives_up_at_the_deadline(self):
        self.intake.delay = 60  # every POST hangs for a minute
        with Otel2ddChecked(config=dd_config(self.intake, flush="100ms", shutdown="2s")) as o:
            body, ids = traces_req(30)
            self.assertEqual(send_http(o.http_port, body), 200)
            body, llm = traces_req(1, llm_parent=new_id())
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            # Queued or already hanging in flight: either way not deliverable by the deadline.
            rc, took = stop_timed(o)
            u = undelivered(o)
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(took, 1.5)  # it did wait for the intake
        # It gave up at the deadline, not when the intake answered a minute later: every
        # span is counted undelivered for "shutdown" below.
        self.assertEqual(u["level"], "warn", u)
        # The 31 APM spans (30 + the LLM span) were in flight or queued at the deadline.
        self.assertEqual(sum(u["datadog_spans"].values()), 31, u)
        self.assertEqual(u["datadog_spans"].get("shutdown"), 31, u)
        self.assertEqual(u.get("datadog_stats_payloads"), {"shutdown": 1}, u)
        self.assertEqual(u["llmobs_events"], {"shutdown": 1}, u)
        self.assertEqual(u["total"], 31 + 1 + 1, u)

    def test_unreachable_intake_gives_up_at_the_deadline(self):
        # A port nothing listens on: every attempt is refused and retried with backoff.
        dead = FakeIntake().start()
        dead.stop()
        with Otel2ddChecked(config=dd_config(dead, flush="100ms", shutdown="2s")) as o:
            body, ids = traces_req(12)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            wait_until(lambda: any(l.get("msg") == "retrying" and l.get("request") == "traces"
                                   for l in o.logs()), 10, "a traces retry")
            rc, took = stop_timed(o)
            u = undelivered(o)
        self.assertEqual(rc, 0)
        self.assertEqual(u["datadog_spans"], {"shutdown": 12}, u)
        self.assertEqual(u.get("datadog_stats_payloads"), {"shutdown": 1}, u)
        self.assertNotIn("llmobs_events", u)
        self.assertEqual(u["total"], 13, u)

    def test_trace_buffer_flushed_at_sigterm(self):
        with Otel2ddChecked(config=dd_config(self.intake, flush="200ms")) as o:
            parent = new_id()  # never sent: the buffer would hold the span for 10 minutes
            body, llm = traces_req(1, llm_parent=parent)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            body, llm2 = traces_req(1, llm_parent=parent)
            self.assertEqual(send_http(o.http_port, body), 200)
            wait_until(lambda: len(self.intake.span_ids()) >= 2, 10, "the APM side")
            self.assertEqual(self.intake.events(), [])
            rc, took = stop_timed(o)
            u = undelivered(o)
        self.assertEqual(rc, 0)
        got = sorted(int(e["span_id"]) for e in self.intake.events())
        self.assertEqual(got, sorted(llm + llm2))
        self.assertEqual(u["total"], 0, u)


class TracesDisabled(IntakeTestCase):
    def check(self, cfg, env=None):
        with Otel2ddChecked(config=cfg, env=env) as o:
            body, ids = traces_req(5)
            self.assertEqual(send_http(o.http_port, body), 200)
            body, llm = traces_req(1, llm_parent=new_id())
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            self.assertEqual(o.stop(), 0)
            off = [l for l in o.logs() if "APM traces and stats are off" in l.get("msg", "")]
            u = undelivered(o)
        self.assertEqual(len(off), 1, "logged once at start")
        self.assertEqual(self.intake.requests_to(TRACES), [])
        self.assertEqual(self.intake.requests_to(STATS), [])
        self.assertEqual([int(e["span_id"]) for e in self.intake.events()], llm)
        self.assertTrue(self.intake.requests_to(LLMOBS))
        self.assertEqual(u["total"], 0, u)

    def test_traces_enabled_false(self):
        self.check(dd_config(self.intake, flush="100ms",
                             extra={"traces": {"enabled": False, "endpoint": self.intake.url,
                                               "flush_interval": "100ms"}}))

    def test_dd_trace_enabled_0(self):
        # The file says nothing about traces.enabled: the variable alone turns APM off.
        self.check(dd_config(self.intake, flush="100ms"), env={"DD_TRACE_ENABLED": "0"})

    def test_dd_trace_enabled_1_keeps_apm(self):
        with Otel2ddChecked(config=dd_config(self.intake, flush="100ms"),
                      env={"DD_TRACE_ENABLED": "1"}) as o:
            body, ids = traces_req(3)
            self.assertEqual(send_http(o.http_port, body), 200)
            self.assertEqual(o.stop(), 0)
        self.assertEqual(sorted(self.intake.span_ids()), sorted(ids))

    def test_dd_trace_enabled_garbage_refused(self):
        o = Otel2ddChecked(config=dd_config(self.intake), env={"DD_TRACE_ENABLED": "maybe"})
        with self.assertRaises(AssertionError) as cm:
            o.start(timeout=10)
        self.assertIn("DD_TRACE_ENABLED must be true, false, 1 or 0, got 'maybe'",
                      str(cm.exception))
        self.assertEqual(o.stop(timeout=10, expect=1), 1)
        os.unlink(o.config_path)


if __name__ == "__main__":
    unittest.main()
