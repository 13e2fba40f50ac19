#!/usr/bin/python3
"""End-to-end test of the SQL obfuscation cache (exporters.datadog.traces.obfuscation.cache,
translate/apm/sql_cache.c) through build/otel2dd.

Database CLIENT spans carrying three query texts, each sent again and again over two
requests (one cannot be parsed), go to fake_intake.FakeIntake: every span's resource is the
obfuscated query as the Datadog agent writes it (written out here, not computed), whether
the cache is on or off; with it on, /metrics says each text was obfuscated once (misses)
and every other span was answered from the cache (hits); with it off there is no such family.

    /usr/bin/python3 tests/e2e/test_sql_cache.py [-v]
"""
import os
import random
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import IntakeTestCase, Otel2dd, wait_until  # noqa: E402
from otlp_client import TRACE_EXPORT, grpc_call, set_attr, trace_service_pb2  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import grpc  # noqa: E402

QUERIES = {
    "SELECT id, name FROM users WHERE email = 'a@example.com' AND age > 30":
        "SELECT id, name FROM users WHERE email = ? AND age > ?",
    "UPDATE stock SET quantity = 4 WHERE sku IN ('a', 'b', 'c')":
        "UPDATE stock SET quantity = ? WHERE sku IN ( ? )",
    "SELECT 'unterminated FROM t": "Non-parsable SQL query",
}
PER_REQUEST = 12  # spans a request, the three queries in turn


def db_spans():
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attr(rs.resource.attributes, "service.name", "sql-cache-e2e")
    ss = rs.scope_spans.add()
    now = time.time_ns()
    texts = list(QUERIES)
    for i in range(PER_REQUEST):
        s = ss.spans.add()
        s.trace_id = random.getrandbits(128).to_bytes(16, "big")
        s.span_id = random.getrandbits(63).to_bytes(8, "big")
        s.name = "db query"
        s.kind = 3  # CLIENT
        s.start_time_unix_nano = now - 2_000_000
        s.end_time_unix_nano = now
        set_attr(s.attributes, "db.system", "postgresql")
        set_attr(s.attributes, "db.statement", texts[i % len(texts)])
    return req.SerializeToString()


def sql_cache_samples(text):
    out = {}
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            if s.name.startswith("otel2dd_sql_obfuscation_cache_"):
                out[s.name] = s.value
    return out


class SqlCache(IntakeTestCase):
    def run_with(self, cache):
        cfg = {"exporters": {"datadog": {
            "api": {"key": "test-key", "endpoint": self.intake.url},
            "traces": {"endpoint": self.intake.url, "flush_interval": "200ms",
                       "obfuscation": {"cache": cache}}}}}
        with Otel2dd(config=cfg) as o:
            for _ in range(2):
                self.assertEqual(grpc_call(o.grpc_port, TRACE_EXPORT, db_spans()),
                                 grpc.StatusCode.OK)
            want = 2 * PER_REQUEST
            wait_until(lambda: len(self.intake.span_ids()) >= want, 30,
                       "%d spans at the intake" % want)
            with self.intake.lock:
                spans = list(self.intake.spans)
            self.assertEqual(len(spans), want)
            self.assertEqual(sorted(s["resource"] for s in spans),
                             sorted(QUERIES[t] for t in list(QUERIES) * (want // 3)))
            for s in spans:
                self.assertEqual(s["type"], "sql")
            return sql_cache_samples(o.scrape())

    def test_cache_on(self):
        got = self.run_with({"enabled": True, "max_size": 65536})
        self.assertEqual(got["otel2dd_sql_obfuscation_cache_misses_total"], len(QUERIES))
        self.assertEqual(got["otel2dd_sql_obfuscation_cache_hits_total"],
                         2 * PER_REQUEST - len(QUERIES))
        self.assertEqual(got["otel2dd_sql_obfuscation_cache_evictions_total"], 0)
        self.assertGreater(got["otel2dd_sql_obfuscation_cache_bytes"], 0)
        self.assertLessEqual(got["otel2dd_sql_obfuscation_cache_bytes"], 65536)

    def test_cache_off(self):
        self.assertEqual(self.run_with({"enabled": False}), {})


if __name__ == "__main__":
    unittest.main()
