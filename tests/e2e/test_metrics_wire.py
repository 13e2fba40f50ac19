"""The metrics wire end to end: a batch (what the metrics translator makes of a request)
handed to the Datadog metrics exporter's entry point by tests/e2e/metrics_send.c, sent over
HTTP to the fake intake, which decompresses it with python3-zstandard and decodes it with
classes protoc generates from proto/datadog/agentpayload (not our C).

- Every series point and every sketch arrives exactly once, field by field as sent (name,
  type, tags, host resource, point, interval, unit, origin metadata 19/17/0; metric, host,
  tags, one Dogsketch with its bins), with DD-API-KEY, Content-Type application/x-protobuf
  and Content-Encoding zstd.
- 30,000 points go as several MetricPayload bodies, each within the Agent's limits (512,000 B
  compressed, 5,242,880 B before, 10,000 points); the fake intake refuses anything over them.
- A body refused with 413 is sent again in halves, a 500 is retried: still exactly once.
- 403: dropped and counted as lost (the sender exits 1), not retried.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fake_intake import SERIES, SKETCHES, FakeIntake  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OTEL2DD_BUILD", os.path.join(ROOT, "build"))
SENDER = os.path.join(BUILD, "tests", "metrics_send")
KEY = "metrics-test-key"


def expected_series(n):
    """What metrics_send.c puts in series i (its opening comment)."""
    out = {}
    for i in range(n):
        host = "" if i % 5 == 0 else "host-%d" % (i % 3)
        out["idx:%d" % i] = {
            "metric": "e2e.s%d" % (i % 7),
            "type": (3, 1, 2)[i % 3],  # gauge, count, rate as MetricPayload.MetricType
            "tags": ["service:e2e", "idx:%d" % i],
            "resources": [("host", host)],
            "points": [(1700000000 + i, i * 0.5)],
            "interval": 10 if i % 3 == 2 else 0,
            "unit": "byte" if i % 4 == 0 else "",
            "source_type_name": "",
            "origin": (19, 17, 0),
        }
    return out


def expected_sketches(n):
    out = {}
    for j in range(n):
        nbins = 11 + j % 40
        k = [b - 5 for b in range(nbins)]
        c = [1 + b % 9 for b in range(nbins)]
        cnt = sum(c)
        s = j * 3.25
        out["idx:%d" % j] = {
            "metric": "e2e.d%d" % (j % 3), "host": "host-%d" % (j % 2),
            "tags": ["service:e2e", "idx:%d" % j], "distributions": 0,
            "dogsketches": [{"ts": 1700000000 + j, "cnt": cnt, "min": -2.5,
                             "max": 1000.0 + j, "avg": s / cnt, "sum": s, "k": k, "n": c}],
            "origin": (19, 17, 0),
        }
    return out


class MetricsWireTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(SENDER, os.X_OK), "build tests/e2e/metrics_send first")
        self.intake = FakeIntake(api_key=KEY).start()

    def tearDown(self):
        self.intake.stop()

    def send(self, n_series, n_sketches):
        p = subprocess.run([SENDER, self.intake.url, KEY, str(n_series), str(n_sketches)],
                           capture_output=True, text=True, timeout=120)
        return p.returncode, p.stderr

    def check_exactly_once(self, n_series, n_sketches):
        self.assertEqual(self.intake.errors, [])
        got = {}
        for s in self.intake.series_points():
            key = s["tags"][1]
            self.assertNotIn(key, got, "series %s arrived twice" % key)
            got[key] = s
        self.assertEqual(got, expected_series(n_series))
        got = {}
        for s in self.intake.sketch_points():
            key = s["tags"][1]
            self.assertNotIn(key, got, "sketch %s arrived twice" % key)
            got[key] = s
        self.assertEqual(got, expected_sketches(n_sketches))

    def test_every_field_once_and_bodies_within_limits(self):
        rc, err = self.send(30000, 800)
        self.assertEqual(rc, 0, err)
        self.check_exactly_once(30000, 800)
        bodies = self.intake.metrics_bodies
        series_bodies = [b for b in bodies if b["path"] == SERIES]
        self.assertGreaterEqual(len(series_bodies), 3)  # 10,000 points a body at most
        for b in series_bodies:
            self.assertLessEqual(b["n"], 10000)
            self.assertLessEqual(b["len"], 512000)
            self.assertLessEqual(b["raw_len"], 5242880)
        for r in self.intake.requests_to(SERIES) + self.intake.requests_to(SKETCHES):
            self.assertEqual(r["status"], 202)
            self.assertEqual(r["headers"].get("Content-Encoding"), "zstd")

    def test_413_halves_and_500_retried(self):
        self.intake.script(SERIES, [413, 500])
        self.intake.script(SKETCHES, [413])
        rc, err = self.send(12000, 60)
        self.assertEqual(rc, 0, err)
        self.check_exactly_once(12000, 60)
        statuses = [r["status"] for r in self.intake.requests_to(SERIES)]
        # the script answers the first two arrivals; with several senders the bodies in
        # flight may be recorded in any order: one 413, one 500, every other body taken
        self.assertEqual(sorted(s for s in statuses if s != 202), [413, 500])
        self.assertIn(413, [r["status"] for r in self.intake.requests_to(SKETCHES)])

    def test_403_dropped_not_retried(self):
        self.intake.script(SERIES, [403])
        rc, err = self.send(10, 0)
        self.assertEqual(rc, 1, err)  # lost, and said so
        self.assertEqual(len(self.intake.requests_to(SERIES)), 1)
        self.assertEqual(self.intake.series_points(), [])
        self.assertIn("rejected_4xx", err)


if __name__ == "__main__":
    unittest.main()
