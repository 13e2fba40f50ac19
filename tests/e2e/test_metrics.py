#!/usr/bin/python3
"""End-to-end tests of the metrics endpoint (collector/metrics_server.c) through build/otel2dd.

A known load goes in -- spans over gRPC, over OTLP/HTTP protobuf and JSON, gen_ai spans for
LLM Observability, log records over both transports, metric points, a partial success, and
malformed, unsupported, unroutable and oversized requests, some with hostile paths, headers
and service names -- with fake_intake.FakeIntake as the Datadog destination, so that what was
exported is known too. Then /metrics is scraped and parsed with an independent parser
(python3-prometheus-client, prometheus_client.parser) and every value is checked exactly,
and every label value against the closed sets otel2dd documents. Then retries (500 twice),
drops (403) and a full queue (intake down) with their exact counts. Also: 404, 405 with
Allow, HEAD, the content type, and the endpoint switched off.

    /usr/bin/python3 tests/e2e/test_metrics.py [-v]
"""
import http.client
import json
import os
import random
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import LLMOBS, TRACES  # noqa: E402
from harness import IntakeTestCase, Otel2dd, wait_until  # noqa: E402
from otlp_client import (LOGS_EXPORT, TRACE_EXPORT, grpc_call, http_post,  # noqa: E402
                         logs_service_pb2, set_attr, trace_service_pb2)

import grpc  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

HOSTILE = 'evil"} 1\n# TYPE x counter\nx{a="\\'


def traces_pb(n, service="metrics-e2e", bad=0, pad=0):
    """n valid root spans and `bad` spans with an all-zero trace id (rejected by validation);
    each with `pad` random bytes (as hex) in an attribute, that gzip cannot shrink much."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", service)
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(n + bad):
        s = ss.spans.add()
        s.trace_id = bytes(16) if i >= n else random.getrandbits(128).to_bytes(16, "big")
        s.span_id = random.getrandbits(63).to_bytes(8, "big")
        s.name = "op-%d" % (i % 3)
        s.kind = 2
        s.start_time_unix_nano = now - 5_000_000
        s.end_time_unix_nano = now
        if pad:
            set_attr(s.attributes, "padding", random.randbytes(pad).hex())
    return req.SerializeToString()


def traces_json(spans, service="metrics-e2e"):
    """spans: list of (trace id hex, span id hex, parent hex or "", name, attributes dict)."""
    now = time.time_ns()
    out = []
    for tid, sid, parent, name, attrs in spans:
        out.append({"traceId": tid, "spanId": sid, "parentSpanId": parent, "name": name,
                    "kind": 2 if not parent else 3,
                    "startTimeUnixNano": str(now - 50_000_000), "endTimeUnixNano": str(now),
                    "attributes": [{"key": k, "value": {"stringValue": v}}
                                   for k, v in attrs.items()]})
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "e2e"}, "spans": out}]}]}).encode()


def plain_json_spans(n):
    return [(random.getrandbits(128).to_bytes(16, "big").hex(),
             random.getrandbits(63).to_bytes(8, "big").hex(), "", "GET /x", {})
            for _ in range(n)]


def logs_pb(n):
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    set_attr(rl.resource.attributes, "service.name", HOSTILE)
    sl = rl.scope_logs.add()
    for i in range(n):
        r = sl.log_records.add()
        r.time_unix_nano = time.time_ns()
        r.body.string_value = "line %d" % i
    return req.SerializeToString()


def logs_json(n):
    return json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(time.time_ns()), "body": {"stringValue": "r%d" % i}}
        for i in range(n)]}]}]}).encode()


def metrics_json(points):
    return json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "m", "gauge": {"dataPoints": [{"asDouble": float(i)}
                                               for i in range(points)]}}]}]}]}).encode()


def raw_http(port, request):
    """Sends bytes as they are and returns the status line's code (or None if closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(request)
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                return None
            got += chunk
        return int(got.split(b" ")[1])
    finally:
        s.close()


def get(port, path="/metrics", method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def parse(text):
    """{family name: (type, {(sample name, frozenset(labels)): value})} and the samples as a
    flat list, read by prometheus_client's parser."""
    fams = {}
    flat = []
    for f in text_string_to_metric_families(text):
        samples = {}
        for s in f.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
            flat.append(s)
        fams[f.name] = (f.type, samples)
    return fams, flat


def value(flat, name, **labels):
    """The value of one sample; 0 when it is absent (refusal series appear when they happen)."""
    want = {k: v for k, v in labels.items()}
    got = [s.value for s in flat if s.name == name and s.labels == want]
    if len(got) > 1:
        raise AssertionError("%s%r appears %d times" % (name, want, len(got)))
    return got[0] if got else 0


# The documented closed sets (README.md, "Health and metrics").
CLOSED = {
    "transport": {"grpc", "http"},
    "signal": {"traces", "logs", "metrics", "unknown"},
    "reason": {"invalid", "too_large", "unsupported", "not_found", "method_not_allowed",
               "timeout", "memory_limit", "queue_full", "shutdown", "out_of_memory", "internal",
               "rejected_4xx", "retries_exhausted", "read_header_timeout", "evicted",
               "refused_max_connections", "refused_fd_limit", "unauthenticated", "tenant_share",
               "tenant_queue_share",
               # otel2dd_receiver_auth_failures_total
               "missing", "bad_scheme", "wrong_token",
               # otel2dd_metric_points_dropped_total (mtr_drop_name)
               "nan_or_inf", "no_recorded_value", "out_of_order", "unsupported_temporality",
               "malformed", "too_many_observations",
               # otel2dd_llmobs_trace_buffer_unmatched_log_records_total
               "span_written", "not_llmobs", "no_span", "dropped"},
    "exporter": {"datadog_traces", "datadog_stats", "llmobs", "datadog_logs", "datadog_series",
                 "datadog_sketches", "debug"},
    "kind": {"apm", "llmobs"},
    "protocol": {"grpc", "http"},
    "tenant": {"other"},  # plus the tenants named in the bearer tokens (none here)
    "cause": {"root", "deadline", "bound"},
    "outcome": {"joined", "unmatched", "held", "expired"},
    "le": None,  # numbers, checked apart
    "version": None,
}


def dd_config(intake):
    return {"exporters": {"datadog": {
        "api": {"key": "test-key", "endpoint": intake.url},
        "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
        "retry_on_failure": {"max_elapsed_time": "60s"},
        "llmobs": {"endpoint": intake.url, "ml_app": "metrics-e2e",
                   "trace_buffer": {"timeout": "1s"}},
        "logs": {"endpoint": intake.url},
        "metrics": {"endpoint": intake.url}}},
        "receivers": {"otlp": {"protocols": {
            "http": {"max_request_body_size": 65536},
            "grpc": {"max_recv_msg_size_mib": 1}}}}}


class Metrics(IntakeTestCase):
    def test_known_load(self):
        with Otel2dd(config=dd_config(self.intake)) as o:
            gp, hp = o.grpc_port, o.http_port
            ok = grpc.StatusCode.OK
            # Accepted: spans over gRPC (one request with 2 rejected by validation), over
            # HTTP protobuf and JSON; LLM spans; log records over both; metric points.
            self.assertEqual(grpc_call(gp, TRACE_EXPORT, traces_pb(10)), ok)
            self.assertEqual(grpc_call(gp, TRACE_EXPORT, traces_pb(15, HOSTILE, bad=2)), ok)
            self.assertEqual(http_post(hp, "/v1/traces", traces_pb(7)), 200)
            self.assertEqual(http_post(hp, "/v1/traces", traces_json(plain_json_spans(4)),
                                       "application/json"), 200)
            tid = random.getrandbits(128).to_bytes(16, "big").hex()
            root = random.getrandbits(63).to_bytes(8, "big").hex()
            llm = [(tid, root, "", "invoke_agent helper",
                    {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper",
                     "gen_ai.system": "openai"}),
                   (tid, random.getrandbits(63).to_bytes(8, "big").hex(), root,
                    "chat gpt-4o-mini",
                    {"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
                     "gen_ai.request.model": "gpt-4o-mini"})]
            self.assertEqual(http_post(hp, "/v1/traces", traces_json(llm), "application/json",
                                       {"User-Agent": HOSTILE.replace("\n", " ")}), 200)
            self.assertEqual(grpc_call(gp, LOGS_EXPORT, logs_pb(2)), ok)
            self.assertEqual(http_post(hp, "/v1/logs", logs_json(3), "application/json"), 200)
            self.assertEqual(http_post(hp, "/v1/metrics", metrics_json(4), "application/json"),
                             200)

            # Refused: malformed bodies (both transports), an unsupported content type and
            # encoding, an unknown path with a hostile name, a wrong method, oversized bodies
            # (declared and after gzip, and a gRPC message over max_recv_msg_size).
            self.assertEqual(http_post(hp, "/v1/traces", b"\xff\xff\xff"), 400)
            self.assertEqual(http_post(hp, "/v1/logs", b"{not json", "application/json"), 400)
            self.assertEqual(grpc_call(gp, TRACE_EXPORT, b"\x0a\xff\xff"),
                             grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(http_post(hp, "/v1/traces", b"x", "text/" + "a" * 50), 415)
            self.assertEqual(http_post(hp, "/v1/traces", b"x", headers={
                "Content-Encoding": "br"}), 415)
            self.assertEqual(raw_http(hp, b'POST /v1/traces%22%7D%201%0A HTTP/1.1\r\nHost: t\r\n'
                                          b'Content-Type: application/x-protobuf\r\n'
                                          b'Content-Length: 0\r\n\r\n'), 404)
            self.assertEqual(raw_http(hp, b'GET /v1/logs HTTP/1.1\r\nHost: t\r\n\r\n'), 405)
            self.assertEqual(raw_http(hp, b'POST /v1/traces HTTP/1.1\r\nHost: t\r\n'
                                          b'Content-Type: application/x-protobuf\r\n'
                                          b'Content-Length: 70000\r\n\r\n'), 413)
            self.assertEqual(grpc_call(gp, TRACE_EXPORT, traces_pb(1) + b"\x00" * (1 << 20)),
                             grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertEqual(grpc_call(gp, "/evil.Service/" + "x" * 30, b""),
                             grpc.StatusCode.UNIMPLEMENTED)

            apm_spans = 10 + 15 + 7 + 4 + 2
            wait_until(lambda: len(self.intake.span_ids()) >= apm_spans, 30,
                       "%d spans at the intake" % apm_spans)
            wait_until(lambda: len(self.intake.events()) >= 2, 30, "2 LLM Obs events")

            def settled():
                fams, flat = parse(o.scrape())
                done = (value(flat, "otel2dd_exporter_sent_items_total",
                              exporter="datadog_traces") == apm_spans and
                        value(flat, "otel2dd_exporter_sent_items_total", exporter="llmobs") == 2
                        and value(flat, "otel2dd_exporter_sent_items_total",
                                  exporter="datadog_logs") == 5
                        and value(flat, "otel2dd_exporter_queue_items",
                                  exporter="datadog_traces") == 0)
                return done and (fams, flat)
            fams, flat = wait_until(settled, 30, "the exporters' counters to settle")

            def v(name, **labels):
                return value(flat, name, **labels)

            # Receivers.
            acc_req = "otel2dd_receiver_accepted_requests_total"
            acc = "otel2dd_receiver_accepted_items_total"
            self.assertEqual(v(acc_req, transport="grpc", signal="traces"), 2)
            self.assertEqual(v(acc, transport="grpc", signal="traces"), 25)
            self.assertEqual(v(acc_req, transport="http", signal="traces"), 3)
            self.assertEqual(v(acc, transport="http", signal="traces"), 13)
            self.assertEqual(v(acc_req, transport="grpc", signal="logs"), 1)
            self.assertEqual(v(acc, transport="grpc", signal="logs"), 2)
            self.assertEqual(v(acc, transport="http", signal="logs"), 3)
            self.assertEqual(v(acc, transport="http", signal="metrics"), 4)
            self.assertEqual(v(acc, transport="grpc", signal="metrics"), 0)
            self.assertEqual(v("otel2dd_receiver_rejected_items_total", transport="grpc",
                               signal="traces"), 2)
            # metrics go on to Datadog: translated, none left unforwarded
            self.assertEqual(v("otel2dd_receiver_unforwarded_metric_points_total"), 0)
            self.assertEqual(v("otel2dd_translated_metric_points_total"), 4)
            ref = "otel2dd_receiver_refused_requests_total"
            want_refused = {
                ("http", "traces", "invalid"): 1,
                ("http", "logs", "invalid"): 1,
                ("grpc", "traces", "invalid"): 1,
                ("http", "traces", "unsupported"): 2,
                ("http", "unknown", "not_found"): 1,
                ("http", "logs", "method_not_allowed"): 1,
                ("http", "traces", "too_large"): 1,
                ("grpc", "traces", "too_large"): 1,
                ("grpc", "unknown", "not_found"): 1,
            }
            got_refused = {(s.labels["transport"], s.labels["signal"], s.labels["reason"]):
                           s.value for s in flat if s.name == ref}
            self.assertEqual(got_refused, want_refused)
            self.assertEqual(fams["otel2dd_receiver_refused_items"][1], {})
            # Latency: one observation per request that reached ingest (accepted or refused
            # after its body arrived), none for those refused from their headers.
            lat = "otel2dd_receiver_request_duration_seconds"
            self.assertEqual(fams[lat][0], "histogram")
            self.assertEqual(v(lat + "_count", transport="grpc"), 2 + 1 + 1)
            self.assertEqual(v(lat + "_count", transport="http"), 3 + 1 + 1 + 2)
            for tr in ("grpc", "http"):
                buckets = sorted((float(s.labels["le"]), s.value) for s in flat
                                 if s.name == lat + "_bucket" and s.labels["transport"] == tr)
                self.assertEqual(len(buckets), 14)
                self.assertEqual(buckets[-1], (float("inf"), v(lat + "_count", transport=tr)))
                self.assertEqual([b[1] for b in buckets], sorted(b[1] for b in buckets))
                self.assertGreater(v(lat + "_sum", transport=tr), 0)
                self.assertLess(v(lat + "_sum", transport=tr), 60)
            self.assertEqual(v("otel2dd_receiver_buffered_bytes"), 0)
            self.assertEqual(v("otel2dd_receiver_buffered_capacity_bytes"), 256 << 20)

            # Translation and export, against what the fake intake decoded.
            self.assertEqual(v("otel2dd_translated_spans_total", kind="apm"), apm_spans)
            self.assertEqual(v("otel2dd_translated_spans_total", kind="llmobs"), 2)
            # The 2 + 3 plain log records, as Datadog log objects.
            self.assertEqual(v("otel2dd_translated_log_records_total"), 5)
            self.assertEqual(len(self.intake.log_objects()), 5)
            sent_traces = [r for r in self.intake.requests_to(TRACES) if r["status"] == 202]
            sent_llmobs = [r for r in self.intake.requests_to(LLMOBS) if r["status"] == 202]
            self.assertEqual(v("otel2dd_exporter_sent_payloads_total", exporter="datadog_traces"),
                             len(sent_traces))
            self.assertEqual(v("otel2dd_exporter_sent_bytes_total", exporter="datadog_traces"),
                             sum(r["len"] for r in sent_traces))
            self.assertEqual(v("otel2dd_exporter_sent_payloads_total", exporter="llmobs"),
                             len(sent_llmobs))
            self.assertEqual(v("otel2dd_exporter_sent_bytes_total", exporter="llmobs"),
                             sum(r["len"] for r in sent_llmobs))
            self.assertEqual(len(self.intake.span_ids()), apm_spans)
            self.assertEqual(len(self.intake.events()), 2)
            # The debug exporter, named in the test configuration, sees every accepted item.
            self.assertEqual(v("otel2dd_exporter_sent_items_total", exporter="debug"),
                             25 + 13 + 2 + 3 + 4)
            self.assertEqual(v("otel2dd_exporter_sent_payloads_total", exporter="debug"), 8)
            for ex in ("datadog_traces", "llmobs", "debug"):
                self.assertEqual(v("otel2dd_exporter_retried_items_total", exporter=ex), 0)
            drops = [s for s in flat if s.name == "otel2dd_exporter_dropped_items_total"]
            self.assertEqual({(s.labels["exporter"], s.labels["reason"]) for s in drops},
                             {("datadog_traces", r) for r in (
                                 "queue_full", "rejected_4xx", "retries_exhausted", "too_large",
                                 "shutdown")} |
                             {(ex, r) for ex in ("llmobs", "datadog_stats", "datadog_logs",
                                                 "datadog_series", "datadog_sketches") for r in (
                                 "queue_full", "rejected_4xx", "retries_exhausted", "too_large",
                                 "shutdown")})
            self.assertEqual(sum(s.value for s in drops), 0)
            for ex in ("datadog_traces", "llmobs"):
                self.assertEqual(v("otel2dd_exporter_queue_items", exporter=ex), 0)
                self.assertEqual(v("otel2dd_exporter_queue_bytes", exporter=ex), 0)
            self.assertEqual(v("otel2dd_exporter_queue_capacity_bytes",
                               exporter="datadog_traces"), 64 << 20)
            self.assertEqual(v("otel2dd_exporter_queue_capacity_bytes", exporter="llmobs"),
                             16 << 20)
            self.assertNotIn(("otel2dd_exporter_queue_items", frozenset({("exporter", "debug")})),
                             fams["otel2dd_exporter_queue_items"][1])

            # The LLM Obs trace buffer released both spans when their root arrived.
            self.assertEqual(v("otel2dd_llmobs_trace_buffer_spans"), 0)
            # What the trace remembers (ids of its other spans) goes once its deadline
            # passes.
            wait_until(lambda: value(parse(o.scrape())[1],
                                     "otel2dd_llmobs_trace_buffer_bytes") == 0, 15,
                       "the trace buffer to empty")
            self.assertEqual(v("otel2dd_llmobs_trace_buffer_capacity_spans"), 100000)
            self.assertEqual(v("otel2dd_llmobs_trace_buffer_capacity_bytes"), 64 << 20)
            rel = "otel2dd_llmobs_trace_buffer_released_spans_total"
            self.assertEqual(v(rel, cause="root") + v(rel, cause="deadline"), 2)
            self.assertEqual(v(rel, cause="bound"), 0)
            self.assertEqual(v("otel2dd_llmobs_trace_buffer_log_records_total",
                               outcome="joined"), 0)

            # Process.
            version = o.wait_log(lambda l: l.get("msg") == "started")["version"]
            self.assertEqual(v("otel2dd_build_info", version=version), 1)
            start = v("otel2dd_process_start_time_seconds")
            self.assertLess(abs(start - time.time()), 120)
            rss = v("otel2dd_process_resident_memory_bytes")
            self.assertGreater(rss, 1 << 20)
            self.assertLess(rss, 2 << 30)

            # Types, and every label value from its closed set, whatever the clients sent.
            for name, typ in (("otel2dd_receiver_accepted_items", "counter"),
                              ("otel2dd_exporter_queue_bytes", "gauge"),
                              ("otel2dd_build_info", "gauge")):
                self.assertEqual(fams[name][0], typ, name)
            for s in flat:
                self.assertTrue(s.name.startswith("otel2dd_"), s.name)
                for k, val in s.labels.items():
                    self.assertIn(k, CLOSED, (s.name, k))
                    if CLOSED[k] is not None:
                        self.assertIn(val, CLOSED[k], (s.name, k, val))
            self.assertEqual(o.stop(), 0)

    def test_retries_drops_and_queue_full(self):
        cfg = dd_config(self.intake)
        cfg["exporters"]["datadog"]["sending_queue"] = {"max_size_mib": 1}
        cfg["exporters"]["datadog"]["llmobs"] = {"enabled": False}
        cfg["receivers"]["otlp"]["protocols"]["http"]["max_request_body_size"] = 1 << 20
        with Otel2dd(config=cfg) as o:
            gp, hp = o.grpc_port, o.http_port

            def v(name, **labels):
                return value(parse(o.scrape())[1], name, **labels)

            def wait_v(name, want, **labels):
                wait_until(lambda: v(name, **labels) == want, 30,
                           "%s%r == %s (have %s)" % (name, labels, want, v(name, **labels)))

            # 500 twice, then accepted: each span is counted once per retry.
            self.intake.script(TRACES, [500, 500])
            self.assertEqual(grpc_call(gp, TRACE_EXPORT, traces_pb(10)), grpc.StatusCode.OK)
            wait_v("otel2dd_exporter_sent_items_total", 10, exporter="datadog_traces")
            self.assertEqual(v("otel2dd_exporter_retried_items_total",
                               exporter="datadog_traces"), 20)
            self.assertEqual(v("otel2dd_exporter_sent_payloads_total",
                               exporter="datadog_traces"), 1)

            # 403: dropped at once, by reason.
            self.intake.default_status[TRACES] = 403
            self.assertEqual(http_post(hp, "/v1/traces", traces_pb(7)), 200)
            wait_v("otel2dd_exporter_dropped_items_total", 7, exporter="datadog_traces",
                   reason="rejected_4xx")
            self.assertEqual(v("otel2dd_exporter_retried_items_total",
                               exporter="datadog_traces"), 20)
            self.intake.default_status[TRACES] = 202

            # The intake down and the 1 MiB queue full: refusals by reason, with their items.
            self.intake.go_down()
            busy = {"grpc": 0, "http": 0}
            accepted = 0
            for n in range(60):
                body = traces_pb(20, pad=6000)  # ~240 KB
                if n % 2 == 0:
                    code = grpc_call(gp, TRACE_EXPORT, body)
                    self.assertIn(code, (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE))
                    ok = code == grpc.StatusCode.OK
                    busy["grpc"] += not ok
                else:
                    status = http_post(hp, "/v1/traces", body)
                    self.assertIn(status, (200, 503))
                    ok = status == 200
                    busy["http"] += not ok
                accepted += 20 if ok else 0
                if busy["grpc"] >= 2 and busy["http"] >= 2:
                    break
            self.assertTrue(busy["grpc"] >= 2 and busy["http"] >= 2, busy)
            # The queue full, a request is refused at its headers, its body unread: an HTTP
            # request that declares a body and sends none is answered at once, and closed.
            with socket.create_connection(("127.0.0.1", hp), timeout=10) as sk:
                sk.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: application/x-protobuf\r\n"
                           b"Content-Length: 240000\r\n\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sk.recv(4096)
                    self.assertTrue(chunk, head)
                    head += chunk
            self.assertTrue(head.startswith(b"HTTP/1.1 503"), head)
            self.assertIn(b"retry-after", head.lower())
            self.assertIn(b"connection: close", head.lower())
            busy["http"] += 1
            fams, flat = parse(o.scrape())
            for tr in ("grpc", "http"):
                self.assertEqual(value(flat, "otel2dd_receiver_refused_requests_total",
                                       transport=tr, signal="traces", reason="queue_full"),
                                 busy[tr])
                # refused before their bodies were read: their items are not known
                self.assertEqual(value(flat, "otel2dd_receiver_refused_items_total",
                                       transport=tr, signal="traces", reason="queue_full"), 0)
            self.assertEqual(value(flat, "otel2dd_exporter_dropped_items_total",
                                   exporter="datadog_traces", reason="queue_full"), 0)
            self.assertEqual(value(flat, "otel2dd_exporter_queue_items",
                                   exporter="datadog_traces"), accepted)
            qb = value(flat, "otel2dd_exporter_queue_bytes", exporter="datadog_traces")
            cap = value(flat, "otel2dd_exporter_queue_capacity_bytes", exporter="datadog_traces")
            self.assertEqual(cap, 1 << 20)
            self.assertGreaterEqual(qb, cap)
            self.assertLess(qb, cap + 2 * (300 << 10))  # soft by the requests in flight
            self.assertEqual(value(flat, "otel2dd_translated_spans_total", kind="apm"),
                             10 + 7 + accepted)

            self.intake.come_up()
            wait_v("otel2dd_exporter_sent_items_total", 10 + accepted, exporter="datadog_traces")
            wait_v("otel2dd_exporter_queue_items", 0, exporter="datadog_traces")
            wait_v("otel2dd_exporter_queue_bytes", 0, exporter="datadog_traces")
            self.assertEqual(v("otel2dd_exporter_dropped_items_total", exporter="datadog_traces",
                               reason="retries_exhausted"), 0)
            self.assertEqual(o.stop(), 0)
        self.assertEqual(len(self.intake.span_ids()), 10 + accepted)

    def test_paths_methods_head(self):
        with Otel2dd() as o:
            port = o.metrics_port
            status, headers, body = get(port)
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
            self.assertEqual(int(headers["content-length"]), len(body))
            fams, flat = parse(body.decode())
            self.assertIn("otel2dd_build_info", fams)
            # No Datadog key: the debug exporter alone, and no Datadog or trace buffer series.
            self.assertEqual({s.labels.get("exporter") for s in flat
                              if s.name == "otel2dd_exporter_sent_items_total"}, {"debug"})
            self.assertEqual(fams["otel2dd_llmobs_trace_buffer_spans"][1], {})

            status, headers, body = get(port, method="HEAD")
            self.assertEqual(status, 200)
            self.assertEqual(body, b"")
            self.assertGreater(int(headers["content-length"]), 1000)
            self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))

            for path in ("/", "/metrics/", "/metricsx", "/Metrics", "/metrics/../metrics"):
                self.assertEqual(get(port, path)[0], 404, path)
            for method in ("POST", "PUT", "DELETE"):
                status, headers, _ = get(port, method=method)
                self.assertEqual(status, 405, method)
                self.assertEqual(headers["allow"], "GET, HEAD")
            # A body and a query string are never read; a huge header is refused, the
            # server stays up.
            self.assertEqual(raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: t\r\n"
                                            b"Content-Length: 100000000\r\n\r\n"), 200)
            self.assertEqual(get(port, "/metrics?x=%00")[0], 200)
            code = raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 40000 +
                            b"\r\n\r\n")
            self.assertIn(code, (None, 413, 431))
            self.assertEqual(get(port)[0], 200)
            self.assertEqual(o.stop(), 0)

    def test_switched_off(self):
        cfg = {"service": {"telemetry": {"metrics": {"address": ""}}}}
        with Otel2dd(config=cfg) as o:
            self.assertIsNone(o.metrics_port)
            self.assertFalse([l for l in o.logs() if l.get("server") == "metrics"])
            self.assertEqual(o.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
