#!/usr/bin/python3
"""End-to-end tests of the ECS task metadata reader (exporters/ecs_meta.c, res_ecs.c) on a
fake metadata endpoint this test serves (ECS_CONTAINER_METADATA_URI_V4 pointing at it) and the
fake Datadog intake:
  - good: the task's tags (tests/data/ecs/task-fargate.json, as Datadog's tagger writes them)
    join `_dd.tags.container` of the app container's spans, their stats payload's tags and the
    LLM Obs events' tags; a resource of another task gets none; on Fargate the AgentPayload
    and the stats carry no hostname;
  - slow (answers after longer than otel2dd's whole start timeout): health is 200 and spans go
    out while the metadata request is still pending;
  - 500, garbage JSON, a body over the 1 MiB cap: one warning naming the reason, spans go out
    without ECS tags, otel2dd stops cleanly.
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_ecs_metadata.py [-v] [TestName ...]
"""
import http.server
import json
import os
import random
import socketserver
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_intake  # noqa: E402,F401  (its protos load before the tests run)
from harness import IntakeTestCase, Otel2dd, wait_until  # noqa: E402
from otlp_client import http_post, new_id, set_attr, trace_service_pb2  # noqa: E402

DATA = os.path.join(os.path.dirname(HERE), "data", "ecs")
APP_CID = "5e5c7a3a1b2c4d5e8f90a1b2c3d4e5f6-1111111111"
TASK_ARN = "arn:aws:ecs:us-west-2:111122223333:task/shop-prod/5e5c7a3a1b2c4d5e8f90a1b2c3d4e5f6"
SLOW_S = 25  # longer than Otel2dd.start's 20 s timeout: start must not wait for it


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeMetadata:
    """ECS task metadata endpoint v4 under /v4/<id>: `mode` is good, slow, 500, garbage or
    huge. `pending` counts requests being answered (slow mode holds them)."""

    def __init__(self, mode):
        self.mode = mode
        self.lock = threading.Lock()
        self.paths = []
        self.pending = 0
        self.release = threading.Event()
        with open(os.path.join(DATA, "task-fargate.json"), "rb") as f:
            self.task = f.read()
        with open(os.path.join(DATA, "container-otel2dd.json"), "rb") as f:
            self.self_doc = f.read()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with fake.lock:
                    fake.paths.append(self.path)
                    fake.pending += 1
                try:
                    fake.answer(self)
                finally:
                    with fake.lock:
                        fake.pending -= 1

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, h):
        if self.mode == "slow":
            self.release.wait(SLOW_S)
        if self.mode == "500":
            body, status = b'{"error":"internal"}', 500
        elif self.mode == "garbage":
            body, status = b'{"TaskARN": "arn:aws:ecs:x", "Containers": [', 200
        elif self.mode == "huge":
            body, status = b'{"TaskARN":"' + b"a" * (3 << 20) + b'"}', 200
        elif h.path.endswith("/task"):
            body, status = self.task, 200
        else:
            body, status = self.self_doc, 200
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # otel2dd gave up (timeout or size cap), as it should

    @property
    def uri(self):
        return "http://127.0.0.1:%d/v4/abc" % self.server.server_address[1]

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def traces_body(resources):
    """resources: list of (resource attrs dict, [(name, attrs)]); every span a SERVER root."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    now = time.time_ns()
    ids = []
    for rattrs, spans in resources:
        rs = req.resource_spans.add()
        for k, v in rattrs.items():
            set_attr(rs.resource.attributes, k, v)
        ss = rs.scope_spans.add()
        ss.scope.name = "e2e"
        for name, attrs in spans:
            s = ss.spans.add()
            s.trace_id = random.getrandbits(128).to_bytes(16, "big")
            sid = new_id()
            s.span_id = sid.to_bytes(8, "big")
            s.name = name
            s.kind = 2
            s.start_time_unix_nano = now - 20_000_000
            s.end_time_unix_nano = now
            for k, v in attrs.items():
                set_attr(s.attributes, k, v)
            ids.append(sid)
    return req.SerializeToString(), ids


def config(intake):
    return {"exporters": {"datadog": {
        "api": {"key": "test-key", "endpoint": intake.url},
        "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
        "retry_on_failure": {"max_elapsed_time": "30s"},
        "llmobs": {"endpoint": intake.url, "ml_app": "ecs-e2e",
                   "trace_buffer": {"timeout": "1s"}}}}}


def tagset(csv):
    return set(t for t in (csv or "").split(",") if t)


LLM = {"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
       "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 3,
       "gen_ai.usage.output_tokens": 2}


class EcsMetadata(IntakeTestCase):
    def run_with(self, mode):
        md = FakeMetadata(mode).start()
        self.addCleanup(md.stop)
        env = {"ECS_CONTAINER_METADATA_URI_V4": md.uri, "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}
        return md, Otel2dd(config=config(self.intake), env=env)

    def health(self, o):
        """The health endpoint's status once it answers 200, or the last one after 10 s:
        readiness must not wait for the metadata read (a loaded machine may take a moment
        to be ready at all)."""
        def status():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % o.health_port,
                                            timeout=5) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
        deadline = time.monotonic() + 10
        code = status()
        while code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            code = status()
        return code

    def send(self, o, resources):
        body, ids = traces_body(resources)
        self.assertEqual(http_post(o.http_port, "/v1/traces", body, timeout=15), 200)
        wait_until(lambda: set(ids) <= set(self.intake.span_ids()), 15, "the spans")
        return {s["span_id"]: s for s in self.intake.spans if s["span_id"] in ids}

    def test_good(self):
        md, o = self.run_with("good")
        with o:
            o.wait_log(lambda l: l.get("msg") == "ECS task metadata read", 10)
            line = [l for l in o.logs() if l.get("msg") == "ECS task metadata read"][0]
            self.assertEqual(line["task_arn"], TASK_ARN)
            self.assertEqual(line["launch_type"], "FARGATE")
            self.assertEqual(line["sidecar"], "true")
            got = self.send(o, [
                ({"service.name": "shop", "container.id": APP_CID},
                 [("GET /items", {}), ("chat gpt-4o-mini", LLM)]),
                ({"service.name": "other", "aws.ecs.task.arn": "arn:aws:ecs:x:1:task/c/other"},
                 [("GET /other", {})]),
            ])
            spans = sorted(got.values(), key=lambda s: s["service"])
            other, shop = spans[0], spans[1]
            tags = tagset(shop["payload_tags"].get("_dd.tags.container"))
            for t in ("task_arn:" + TASK_ARN, "task_family:shop-api", "task_version:17",
                      "ecs_cluster_name:shop-prod", "availability_zone:us-west-2b",
                      "availability-zone:us-west-2b", "region:us-west-2",
                      "ecs_container_name:app", "image_tag:2.4.1", "short_image:api",
                      "container_id:" + APP_CID, "ecs_service:shop-api"):
                self.assertIn(t, tags)
            self.assertEqual(shop["container_id"], APP_CID)
            # the resource's own container tags only (task_arn from its attribute)
            self.assertEqual(tagset(other["payload_tags"].get("_dd.tags.container")),
                             {"task_arn:arn:aws:ecs:x:1:task/c/other"})
            # a Fargate task is no host: none in the payloads
            self.assertEqual(shop["hostname"], "")
            self.assertEqual(shop["agent_hostname"], "")
            # LLM Obs: the task's tags in the event's
            ev = wait_until(lambda: self.intake.events(), 15, "the LLM Obs event")[0]
            self.assertIn("task_family:shop-api", ev["tags"])
            self.assertIn("ecs_container_name:app", ev["tags"])
            self.assertTrue(any(p.endswith("/v4/abc/task") for p in md.paths))
            self.assertTrue(any(p.endswith("/v4/abc") for p in md.paths))
            text = o.scrape()
            self.assertIn('otel2dd_ecs_metadata_reads_total{result="ok"} 1', text)
            self.assertIn('otel2dd_ecs_metadata_reads_total{result="failed"} 0', text)
        # stats, flushed at stop: the container's tags in its payload key, no hostname
        g = [g for g in self.intake.groups() if g["Service"] == "shop"]
        self.assertTrue(g, "no stats for shop")
        self.assertIn("task_arn:" + TASK_ARN, g[0]["_tags"])
        self.assertIn("ecs_container_name:app", g[0]["_tags"])
        self.assertEqual(g[0]["_hostname"], "")
        self.assertEqual(g[0]["_agent_hostname"], "")

    def test_slow_endpoint_delays_nothing(self):
        md, o = self.run_with("slow")
        with o:
            # listening and healthy while the metadata request is still unanswered
            wait_until(lambda: md.pending > 0, 10, "the metadata request")
            self.assertEqual(self.health(o), 200)
            self.assertGreater(md.pending, 0)
            got = self.send(o, [({"service.name": "shop", "container.id": APP_CID},
                                 [("GET /items", {})])])
            span = list(got.values())[0]
            self.assertNotIn("task_family:shop-api",
                             tagset(span["payload_tags"].get("_dd.tags.container")))
            self.assertEqual(span["agent_hostname"], "")  # from the environment, at start
            # the read gives up at its own timeout and says so
            o.wait_log(lambda l: l.get("msg", "").startswith("ECS task metadata unavailable"),
                       15)

    def check_failure(self, mode, reason_part):
        md, o = self.run_with(mode)
        with o:
            line = o.wait_log(
                lambda l: l.get("msg", "").startswith("ECS task metadata unavailable"), 15)
            self.assertIn(reason_part, line["reason"])
            self.assertEqual(self.health(o), 200)
            self.assertIn('otel2dd_ecs_metadata_reads_total{result="ok"} 0', o.scrape())
            got = self.send(o, [({"service.name": "shop", "container.id": APP_CID},
                                 [("GET /items", {})])])
            span = list(got.values())[0]
            # the resource's own container tag only
            self.assertEqual(tagset(span["payload_tags"].get("_dd.tags.container")),
                             {"container_id:" + APP_CID})
        # stop() checked the exit status (0) and the absence of sanitizer reports
        warnings = [l for l in o.logs()
                    if l.get("msg", "").startswith("ECS task metadata unavailable")]
        self.assertEqual(len(warnings), 1)  # a run of failures is logged once

    def test_500(self):
        self.check_failure("500", "HTTP 500")

    def test_garbage(self):
        self.check_failure("garbage", "not a JSON object")

    def test_huge(self):
        self.check_failure("huge", "larger than the limit")


if __name__ == "__main__":
    unittest.main()
