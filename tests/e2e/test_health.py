"""End-to-end tests of the health endpoint (collector/servers/health.c) through build/otel2dd: ready
once the receivers listen, 404/405/HEAD, and 503 "draining" from SIGTERM until exit -- also
while the Datadog exporter is still flushing to an intake that does not answer, when the
metrics endpoint must still be scrapable and show what waits.

    /usr/bin/python3 tests/e2e/test_health.py [-v]
"""
import http.client
import json
import os
import signal
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fake_intake import TRACES, FakeIntake  # noqa: E402
from harness import Otel2dd, request_in_flight, wait_until  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


def get(port, path="/", method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class TestHealth(unittest.TestCase):
    def test_ready_paths_methods(self):
        with Otel2dd() as o:
            port = o.health_port
            # Ready once the receivers listen; poll in case readiness follows a moment later.
            wait_until(lambda: get(port)[0] == 200, 10, "health to say ready")
            status, headers, body = get(port)
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "application/json")
            self.assertEqual(json.loads(body), {"status": "ready"})

            status, headers, body = get(port, method="HEAD")
            self.assertEqual(status, 200)
            self.assertEqual(body, b"")

            for path in ("/health", "/x", "//"):
                self.assertEqual(get(port, path)[0], 404, path)
            status, headers, _ = get(port, method="POST", body=b"x" * 100)
            self.assertEqual(status, 405)
            self.assertIn("GET", headers["allow"])
            self.assertEqual(get(port, method="DELETE")[0], 405)

            # A request with a body is answered without reading it.
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n")
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            s.close()
            self.assertTrue(got.startswith(b"HTTP/1.1 200"), got)
            self.assertEqual(o.stop(), 0)

    def test_draining_after_sigterm(self):
        with Otel2dd() as o:
            port = o.health_port
            wait_until(lambda: get(port)[0] == 200, 10, "health to say ready")
            # A request in flight keeps the drain going while we look (its "100 Continue"
            # says the server holds it).
            hold = request_in_flight(o.http_port)
            hold.sendall(b"\x0a" * 10)
            o.proc.send_signal(signal.SIGTERM)
            seen = []

            def draining():
                try:
                    status, headers, body = get(port)
                except OSError:
                    return "gone"
                seen.append((status, headers, body))
                return status == 503 and json.loads(body) == {"status": "draining"}

            got = wait_until(draining, 20, "health to say draining")
            self.assertIs(got, True, "otel2dd exited before health said draining: %r" % seen)
            self.assertEqual(seen[-1][1]["content-type"], "application/json")
            hold.close()
            o.proc.wait(60)
            self.assertEqual(o.stop(), 0)  # exited already: reaps it, closes its pipes
            with self.assertRaises(OSError):
                get(port)

    def test_draining_while_the_exporter_flushes(self):
        # An intake that is down: what was acknowledged waits in the queue, and the drain
        # cannot end until the intake comes back (or the shutdown deadline passes).
        intake = FakeIntake().start()
        intake.go_down()
        cfg = {"exporters": {"datadog": {
            "api": {"key": "test-key", "endpoint": intake.url},
            "traces": {"endpoint": intake.url, "flush_interval": "100ms"},
            "llmobs": {"enabled": False},
            "retry_on_failure": {"max_elapsed_time": "120s"}}}}
        try:
            with Otel2dd(config=cfg) as o:
                port = o.health_port
                self.assertEqual(get(port)[0], 200)  # the harness waited for every listener
                self.assertEqual(json.loads(get(port)[2]), {"status": "ready"})
                body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
                    {"traceId": "%032x" % (i + 1), "spanId": "%016x" % (i + 1), "name": "op",
                     "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
                    for i in range(20)]}]}]}).encode()
                self.assertEqual(post(o.http_port, "/v1/traces", body), 200)

                def waiting(text):
                    for f in text_string_to_metric_families(text):
                        for s in f.samples:
                            if (s.name == "otel2dd_exporter_queue_items" and
                                    s.labels == {"exporter": "datadog_traces"}):
                                return s.value
                    return None
                # The first attempt has failed: the spans are in flight, retrying.
                wait_until(lambda: waiting(o.scrape()) == 20 and
                           [l for l in o.logs() if l.get("msg") == "retrying"], 20,
                           "a failed attempt with 20 spans waiting")

                o.proc.send_signal(signal.SIGTERM)
                wait_until(lambda: get(port)[0] == 503, 10, "health to say draining")
                status, headers, body = get(port)
                self.assertEqual((status, json.loads(body)), (503, {"status": "draining"}))
                # Still draining a while later, and the metrics say why.
                o.wait_log(lambda l: l.get("msg") == "stopping")
                self.assertEqual(waiting(o.scrape()), 20)
                self.assertEqual(get(port)[0], 503)
                self.assertIsNone(o.proc.poll())

                intake.come_up()
                o.proc.wait(60)
                self.assertEqual(o.stop(), 0)  # exited already: reaps it, closes its pipes
            self.assertEqual(len(intake.span_ids()), 20)
            self.assertTrue([r for r in intake.requests_to(TRACES) if r["status"] == 202])
            totals = [l for l in o.logs() if l.get("msg") == "datadog exporter totals"]
            self.assertEqual(totals[-1]["spans_sent"], 20)
        finally:
            intake.stop()


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        return c.getresponse().status
    finally:
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
