#!/usr/bin/python3
"""End-to-end tests of the Datadog exporter (exporters/datadog.c, exporters/http_client.c).

Starts build/otel2dd (or $OTEL2DD_BIN) through harness.Otel2dd with
exporters.datadog.{api,traces}.endpoint pointing at fake_intake.FakeIntake, sends spans with
grpcio and over OTLP/HTTP (requests built with protobuf classes protoc generates at test time
from proto/), and checks what the fake intake decoded with its own decoders (python3-protobuf
for the AgentPayload, python3-msgpack for the StatsPayload):
  - every span sent arrives exactly once, and the stats hits equal the spans, group by group;
  - 500 three times then 202: nothing lost, nothing duplicated;
  - 429 with Retry-After: the retry comes after the delay;
  - 403: dropped at once with a clear log line, receivers still answer OK;
  - the intake down for a while: the queue holds, then drains;
  - the queue full (small queue, intake down): senders get UNAVAILABLE / 503, and what was
    refused is neither sent nor counted in stats;
  - the API key check logs its result for 200, 403 and no answer; 413 and a slow intake;
  - SIGTERM sends what is queued, stats included.
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_datadog_export.py [-v] [TestName ...]
"""
import collections
import os
import random
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import STATS, TRACES, VALIDATE  # noqa: E402
from harness import IntakeTestCase, Otel2ddChecked, totals, wait_until  # noqa: E402
from otlp_client import send_grpc, send_http, trace_service_pb2  # noqa: E402

import grpc  # noqa: E402

_next_id = random.randrange(1, 1 << 40)


def traces_req(n, service="dd-e2e", pad=0, ops=3):
    """n root SERVER spans (each top-level, so each counts in stats) with fresh span ids, and
    now as their time. Returns (serialized request, list of span ids as the intake sees them)."""
    global _next_id
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = service
    ss = rs.scope_spans.add()
    now = time.time_ns()
    ids = []
    for i in range(n):
        sid = _next_id
        _next_id += 1
        s = ss.spans.add()
        s.trace_id = random.getrandbits(128).to_bytes(16, "big")
        s.span_id = sid.to_bytes(8, "big")
        s.name = "op-%d" % (i % ops)
        s.kind = 2  # SERVER
        s.start_time_unix_nano = now - 5_000_000
        s.end_time_unix_nano = now
        if pad:
            a = s.attributes.add()
            a.key = "padding"
            a.value.string_value = random.randbytes(pad).hex()
        ids.append(sid)
    return req.SerializeToString(), ids


def dd_config(intake, traces=None, extra=None):
    dd = {"api": {"key": "test-key", "endpoint": intake.url},
          "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
          "retry_on_failure": {"max_elapsed_time": "60s"}}
    dd["traces"].update(traces or {})
    dd.update(extra or {})
    return {"exporters": {"datadog": dd}}


class DatadogExport(IntakeTestCase):
    def wait_spans(self, ids, timeout=30):
        want = set(ids)
        wait_until(lambda: want <= set(self.intake.span_ids()), timeout,
                   "%d spans at the intake (have %d)" % (len(want), len(self.intake.span_ids())))

    def assert_once(self, ids):
        got = collections.Counter(self.intake.span_ids())
        dup = [i for i, c in got.items() if c > 1]
        self.assertEqual(dup, [], "spans delivered more than once")
        self.assertEqual(set(got), set(ids))

    def assert_stats_match_spans(self):
        spans = collections.Counter((s["service"], s["name"], s["resource"])
                                    for s in self.intake.spans)
        hits = collections.Counter()
        for g in self.intake.groups():
            hits[(g["Service"], g["Name"], g["Resource"])] += g["Hits"]
        self.assertEqual(dict(hits), dict(spans))

    def test_each_span_once_headers_and_stats(self):
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            ids = []
            for svc in ("svc-a", "svc-b", "svc-a"):
                body, i = traces_req(50, service=svc)
                self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
                ids += i
            body, i = traces_req(20, service="svc-http")
            self.assertEqual(send_http(o.http_port, body), 200)
            ids += i
            self.wait_spans(ids)
            self.assertEqual(o.stop(), 0)
        self.assert_once(ids)
        self.assert_stats_match_spans()
        self.assertEqual(sum(g["Hits"] for g in self.intake.groups()), len(ids))

        traces = self.intake.requests_to(TRACES)
        self.assertTrue(traces)
        for r in traces:
            h = {k.lower(): v for k, v in r["headers"].items()}
            self.assertEqual(h["dd-api-key"], "test-key")
            self.assertEqual(h["content-type"], "application/x-protobuf")
            self.assertEqual(h["content-encoding"], "zstd")  # the Agent's trace writer's
            self.assertTrue(h["user-agent"].startswith("otel2dd/"), h["user-agent"])
            self.assertIn("x-datadog-reported-languages", h)
        for ap in self.intake.agent_payloads:
            self.assertEqual(ap["env"], "none")
            self.assertTrue(ap["agentVersion"].startswith("otel2dd/"))
            self.assertEqual(ap["targetTPS"], 10)
            self.assertEqual(ap["errorTPS"], 10)
            self.assertTrue(ap["hostName"])
        stats = self.intake.requests_to(STATS)
        self.assertTrue(stats)
        for r in stats:
            h = {k.lower(): v for k, v in r["headers"].items()}
            self.assertEqual(h["content-type"], "application/msgpack")
            self.assertEqual(h["content-encoding"], "gzip")
            self.assertEqual(h["dd-api-key"], "test-key")
        for sp in self.intake.stats_payloads:
            self.assertEqual(sp["AgentEnv"], "none")
            self.assertTrue(sp["AgentHostname"])
        t = totals(o)
        self.assertEqual(t["spans_sent"], len(ids))
        self.assertEqual(t["spans_queued"], len(ids))
        self.assertGreaterEqual(t["stats_payloads_sent"], 1)
        for line in o.raw:
            self.assertNotIn("test-key", line)

    def test_500_three_times_then_202(self):
        self.intake.script(TRACES, [500, 500, 500])
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            body, ids = traces_req(30)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            self.wait_spans(ids)
            o.stop()
        self.assert_once(ids)
        statuses = [r["status"] for r in self.intake.requests_to(TRACES)]
        self.assertEqual(statuses[:4], [500, 500, 500, 202])
        # the same body, sent again
        self.assertEqual(len({r["sha"] for r in self.intake.requests_to(TRACES)[:4]}), 1)
        self.assertGreaterEqual(len([l for l in o.logs() if l.get("msg") == "retrying"]), 3)
        t = totals(o)
        self.assertEqual(t["spans_sent"], 30)
        self.assertEqual(t["spans_retried"], 90)
        self.assert_stats_match_spans()

    def test_proxy_from_the_environment(self):
        # curl reads http_proxy (https_proxy / HTTPS_PROXY for the real https intake); the
        # fake intake doubles as the forward proxy. The intake's own name never resolves, so
        # spans can only arrive through the proxy.
        cfg = dd_config(self.intake)
        cfg["exporters"]["datadog"]["traces"]["endpoint"] = "http://intake.invalid"
        cfg["exporters"]["datadog"]["api"]["endpoint"] = "http://intake.invalid"
        with Otel2ddChecked(config=cfg, env={"http_proxy": self.intake.url}) as o:
            body, ids = traces_req(20)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            self.wait_spans(ids)
            o.stop()
        self.assert_once(ids)
        self.assertGreater(self.intake.proxied, 0)

    def test_no_proxy_is_honoured(self):
        # A proxy that does not exist, and NO_PROXY naming the intake: sent direct.
        env = {"http_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1"}
        with Otel2ddChecked(config=dd_config(self.intake), env=env) as o:
            body, ids = traces_req(20)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            self.wait_spans(ids)
            o.stop()
        self.assert_once(ids)
        self.assertEqual(self.intake.proxied, 0)

    def test_429_retry_after_is_honoured(self):
        self.intake.script(TRACES, [(429, {"Retry-After": "2"})])
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            body, ids = traces_req(10)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            self.wait_spans(ids)
        self.assert_once(ids)
        reqs = self.intake.requests_to(TRACES)
        first = reqs[0]
        self.assertEqual(first["status"], 429)
        retry = next(r for r in reqs[1:] if r["sha"] == first["sha"])
        self.assertGreaterEqual(retry["time"] - first["time"], 1.9)
        # The wait is the one the 429 asked for, not the jittered backoff; the log says which
        # (a bound on the measured gap would assert speed on a loaded machine instead).
        waits = [l for l in o.logs() if l.get("msg") == "retrying"]
        self.assertEqual([(l.get("http_status"), l.get("delay_ms")) for l in waits],
                         [(429, 2000)])

    def test_403_dropped_with_a_clear_log_line(self):
        self.intake.default_status[TRACES] = 403
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            body, ids = traces_req(10)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            line = o.wait_log(lambda l: "403" in l.get("msg", "") and
                              l.get("request") == "traces", 15, "the 403 log line")
            self.assertIn("API key or the site is wrong", line["msg"])
            self.assertEqual(line["site"], "datadoghq.com")
            # the receivers keep answering OK
            body, _ = traces_req(5)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            body, _ = traces_req(5)
            self.assertEqual(send_http(o.http_port, body), 200)
            self.assertEqual(o.stop(), 0)  # sends what is queued: more 403s
        # never retried: each body was sent once
        shas = [r["sha"] for r in self.intake.requests_to(TRACES)]
        self.assertEqual(len(shas), len(set(shas)))
        self.assertEqual(self.intake.span_ids(), [])
        t = totals(o)
        self.assertEqual(t["spans_dropped_rejected_4xx"], 20)
        self.assertEqual(t["spans_sent"], 0)
        for line in o.raw:
            self.assertNotIn("test-key", line)

    def test_intake_down_then_drains(self):
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            o.wait_log(lambda l: l.get("msg", "").startswith("API key valid"), 10, "key check")
            self.intake.go_down()
            down_at = time.monotonic()
            ids = []

            def send(n_requests):
                for _ in range(n_requests):
                    body, i = traces_req(20)
                    self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
                    ids.extend(i)

            # The intake stays unreachable for 20 s; spans sent before and during the outage
            # are all accepted, and the queue holds them.
            send(5)
            wait_until(lambda: time.monotonic() - down_at >= 10, 15, "10 s of outage")
            send(5)
            wait_until(lambda: time.monotonic() - down_at >= 20, 15, "20 s of outage")
            self.assertGreaterEqual(len([l for l in o.logs() if l.get("msg") == "retrying"]), 3)
            self.assertEqual(self.intake.span_ids(), [])
            self.intake.come_up()
            self.wait_spans(ids, timeout=30)
            o.stop()
        self.assert_once(ids)
        t = totals(o)
        self.assertEqual(t["spans_sent"], len(ids))
        self.assertEqual(t["spans_dropped_retries_exhausted"], 0)

    def test_queue_full_answers_retry_later(self):
        cfg = dd_config(self.intake, extra={"sending_queue": {"max_size_mib": 1}})
        with Otel2ddChecked(config=cfg) as o:
            o.wait_log(lambda l: l.get("msg", "").startswith("API key valid"), 10, "key check")
            self.intake.go_down()
            accepted = []
            grpc_busy = http_busy = False
            for n in range(40):
                body, ids = traces_req(20, pad=6000)  # ~240 KB, gzip cannot shrink it much
                if n % 2 == 0:
                    code = send_grpc(o.grpc_port, body)
                    self.assertIn(code, (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE))
                    ok, busy = code == grpc.StatusCode.OK, code == grpc.StatusCode.UNAVAILABLE
                    grpc_busy |= busy
                else:
                    status = send_http(o.http_port, body)
                    self.assertIn(status, (200, 503))
                    ok, busy = status == 200, status == 503
                    http_busy |= busy
                if ok:
                    accepted += ids
                if grpc_busy and http_busy:
                    break
            self.assertTrue(grpc_busy and http_busy, "no UNAVAILABLE/503 with the queue full")
            self.assertTrue(accepted)
            self.intake.come_up()
            self.wait_spans(accepted, timeout=40)
            self.assertEqual(o.stop(), 0)
        self.assert_once(accepted)
        # what was refused was not counted in stats either
        self.assertEqual(sum(g["Hits"] for g in self.intake.groups()), len(accepted))
        t = totals(o)
        self.assertEqual(t["spans_sent"], len(accepted))
        # refused at their headers, bodies unread: counted as refused requests, not as spans
        # the exporter dropped
        r = totals(o, "totals")
        self.assertGreater(r["grpc_requests_refused"], 0)
        self.assertGreater(r["http_requests_refused"], 0)

    def test_413_split_until_one_chunk_then_dropped(self):
        # Every body is refused as too large: the delivery layer builds the body again in
        # two, the TracerPayload split by its trace chunks, until a body holds one chunk, which
        # alone cannot be split: 1 + 2 + 4 requests, then the 4 spans are dropped as too large.
        self.intake.default_status[TRACES] = 413
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            body, ids = traces_req(4)
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            line = o.wait_log(lambda l: l.get("msg", "").startswith(
                "intake refused a body as too large (413)"), 15, "the 413 log line")
            self.assertEqual(line["http_status"], 413)
            self.assertIn("fake intake says 413", line["response"])
            dropped = lambda: sum(l.get("spans", 0) for l in o.logs()  # noqa: E731
                                  if l.get("msg") == "item over the intake's size limit: dropped")
            wait_until(lambda: dropped() >= 4, 15, "4 spans dropped")
            self.assertEqual(o.stop(), 0)
        self.assertEqual(len(self.intake.requests_to(TRACES)), 7)
        t = totals(o)
        self.assertEqual(t["spans_dropped_too_large"], 4)
        self.assertEqual(t["spans_dropped_rejected_4xx"], 0)

    def test_413_body_sent_again_in_halves(self):
        # An intake whose limit is below what otel2dd assumes: a refused body is sent again
        # in smaller bodies, and every span arrives once.
        self.intake.max_body[TRACES] = 20000
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            ids = []
            for _ in range(3):
                body, i = traces_req(60, pad=150)
                self.assertEqual(send_http(o.http_port, body), 200)
                ids += i
            self.wait_spans(ids)
            self.assertEqual(o.stop(), 0)
        self.assert_once(ids)
        statuses = collections.Counter(r["status"] for r in self.intake.requests_to(TRACES))
        self.assertGreater(statuses[413], 0, statuses)
        self.assertTrue(all(r["len"] <= 20000 for r in self.intake.requests_to(TRACES)
                            if r["status"] == 202))
        t = totals(o)
        self.assertEqual(t["spans_sent"], len(ids))
        for r in ("too_large", "rejected_4xx", "retries_exhausted", "shutdown"):
            self.assertEqual(t["spans_dropped_" + r], 0, r)

    def test_slow_intake(self):
        self.intake.delay = 0.7
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            ids = []
            for _ in range(3):
                body, i = traces_req(10)
                self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
                ids += i
            self.wait_spans(ids)
            self.assertEqual(o.stop(), 0)
        self.assert_once(ids)

    def test_api_key_check_valid(self):
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            line = o.wait_log(lambda l: l.get("msg", "").startswith("API key"), 10, "key check")
            self.assertEqual(line["msg"], "API key valid for site datadoghq.com")
        v = self.intake.requests_to(VALIDATE)
        self.assertEqual(len(v), 1)
        self.assertEqual(v[0]["headers"].get("DD-API-KEY"), "test-key")

    def test_api_key_check_rejected(self):
        self.intake.validate_status = 403
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            line = o.wait_log(lambda l: l.get("msg", "").startswith("API key"), 10, "key check")
            self.assertEqual(line["msg"], "API key rejected (403): check "
                             "exporters.datadog.api.key and api.site")
            self.assertEqual(line["level"], "error")
            body, ids = traces_req(5)  # the receivers are not stopped by it
            self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
            self.wait_spans(ids)
        for line in o.raw:
            self.assertNotIn("test-key", line)

    def test_api_key_check_unreachable(self):
        self.intake.go_down()
        with Otel2ddChecked(config=dd_config(self.intake)) as o:
            line = o.wait_log(lambda l: l.get("msg", "").startswith("could not validate"), 15,
                              "key check")
            self.assertEqual(line["level"], "warn")

    def test_sigterm_sends_what_is_queued(self):
        cfg = dd_config(self.intake, traces={"flush_interval": "60s"})
        with Otel2ddChecked(config=cfg) as o:
            ids = []
            for _ in range(3):
                body, i = traces_req(40)
                self.assertEqual(send_grpc(o.grpc_port, body), grpc.StatusCode.OK)
                ids += i
            # nothing is due before the flush interval
            self.assertEqual(self.intake.span_ids(), [])
            self.assertEqual(o.stop(), 0)
        self.assert_once(ids)
        self.assert_stats_match_spans()
        self.assertEqual(sum(g["Hits"] for g in self.intake.groups()), len(ids))


if __name__ == "__main__":
    unittest.main()
