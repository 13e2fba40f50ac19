#!/usr/bin/python3
"""End-to-end test of span links in the Datadog span's own field (apm.c span_links,
apm_msgpack.c pack_link), both ways otel2dd sends spans, checked by the fake intake's own
decoders: agentless (AgentPayload protobuf, Span.spanLinks, field 14 of
DataDog/datadog-agent pkg/proto/datadog/trace/span.proto) and agent mode (v0.4 msgpack,
`span_links` with the SpanLink msgp keys); the `_dd.span_links` meta JSON of the agent's OTLP
path stays beside them.

    /usr/bin/python3 tests/e2e/test_span_links.py [-v]
"""
import json
import os
import random
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_intake  # noqa: E402,F401  (its protos load before the tests run)
from harness import IntakeTestCase, Otel2dd, wait_until  # noqa: E402
from otlp_client import new_id, send_http, set_attr, trace_service_pb2  # noqa: E402

LINK_TID = 0xfedcba98765432100123456789abcdef
LINK_SID = 0xabcdef0123456789


def body_with_links():
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", "links-e2e")
    ss = rs.scope_spans.add()
    now = time.time_ns()
    s = ss.spans.add()
    sid = new_id()
    s.trace_id = random.getrandbits(128).to_bytes(16, "big")
    s.span_id = sid.to_bytes(8, "big")
    s.name = "process batch"
    s.kind = 5  # CONSUMER
    s.start_time_unix_nano = now - 1_000_000
    s.end_time_unix_nano = now
    l = s.links.add()
    l.trace_id = LINK_TID.to_bytes(16, "big")
    l.span_id = LINK_SID.to_bytes(8, "big")
    l.trace_state = "ot=th:8"
    l.flags = 0x301  # sampled, has-is-remote, is-remote
    set_attr(l.attributes, "messaging.batch.index", 3)
    l2 = s.links.add()
    l2.trace_id = (0xff).to_bytes(16, "big")
    l2.span_id = (1).to_bytes(8, "big")
    return req.SerializeToString(), sid


WANT = [{"trace_id": LINK_TID & (2**64 - 1), "trace_id_high": LINK_TID >> 64,
         "span_id": LINK_SID, "attributes": {"messaging.batch.index": "3"},
         "tracestate": "ot=th:8", "flags": 0x80000001},
        {"trace_id": 0xff, "span_id": 1}]


class SpanLinks(IntakeTestCase):
    def test_agentless_field(self):
        cfg = {"exporters": {"datadog": {
            "api": {"key": "test-key", "endpoint": self.intake.url},
            "traces": {"endpoint": self.intake.url, "flush_interval": "200ms"}}}}
        body, sid = body_with_links()
        with Otel2dd(config=cfg) as o:
            self.assertEqual(send_http(o.http_port, body), 200)
            wait_until(lambda: sid in self.intake.span_ids(), 15, "the span")
        span = [s for s in self.intake.spans if s["span_id"] == sid][0]
        links = span["span_links"]
        self.assertEqual(len(links), 2)
        for got, want in zip(links, WANT):
            full = {"trace_id_high": 0, "attributes": {}, "tracestate": "", "flags": 0}
            full.update(want)
            self.assertEqual(got, full)
        self.assertEqual(len(json.loads(span["meta"]["_dd.span_links"])), 2)

    def test_agent_mode_msgpack(self):
        cfg = {"exporters": {"datadog": {"agent": {"endpoint": self.intake.url},
                                         "traces": {"flush_interval": "200ms"}}}}
        body, sid = body_with_links()
        with Otel2dd(config=cfg) as o:
            self.assertEqual(send_http(o.http_port, body), 200)
            wait_until(lambda: sid in self.intake.agent_span_ids(), 15, "the span")
        span = [s for s in self.intake.agent_spans if s["span_id"] == sid][0]
        # optional keys absent when empty (omitempty), as the agent's msgp encoder writes them
        self.assertEqual(span["span_links"], WANT)
        self.assertEqual(len(json.loads(span["meta"]["_dd.span_links"])), 2)


if __name__ == "__main__":
    unittest.main()
