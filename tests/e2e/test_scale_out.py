#!/usr/bin/python3
"""End-to-end: several otel2dd instances behind one TCP load balancer, scaled in and out.

HAProxy in TCP mode (/usr/sbin/haproxy, standing in for the NLB; its health check is
otel2dd's health endpoint, as an NLB target group's would be) spreads connections over
three otel2dd processes, all sending to one fake Datadog intake. Four JS SDK applications
(two over gRPC, two over OTLP/HTTP protobuf) send traces with LLM spans (an OpenLLMetry
workflow with an llm and a tool span under an APM SERVER span) for a while. Midway one
instance that has taken part of the traffic is stopped, and a fourth is added.

The stop is a SIGTERM: that is what ECS sends a task when the service scales in (SIGKILL
only after stopTimeout, and otel2dd drains within service.shutdown_timeout, shorter than it),
so it is the path a scaled service takes every day. With SIGTERM every span any instance
acknowledged must arrive, the stopped instance's included; with SIGKILL, the spans the killed
instance had acknowledged but not yet sent would be lost (no disk queue here) and the check
would narrow to the survivors' spans. Checked:
  - every acknowledged span arrives exactly once;
  - stats hits, summed over the stats payloads of all instances, equal the number of spans
    the stats count (top-level, measured, or of a counted span.kind) among those received,
    and each instance's payloads carry its own AgentHostname (its hostname: on ECS each task
    has its own; here each process is given one), so that Datadog adds them up;
  - each trace's LLM Obs tree is whole: the workflow a root, the llm and tool under it, once;
  - the added instance gets traffic: gRPC connections are spread again by max_connection_age.

    /usr/bin/python3 tests/e2e/test_scale_out.py -v
"""
import collections
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_intake import FakeIntake  # noqa: E402
from harness import Otel2dd, wait_until  # noqa: E402
from test_auth import metric  # noqa: E402
from test_js_sdk import NODE, js_deps_problem  # noqa: E402

HAPROXY = "/usr/sbin/haproxy"
APP = os.path.join(HERE, "js", "gateway_app.js")
APPS = [("gw-grpc-1", "grpc"), ("gw-grpc-2", "grpc"), ("gw-http-1", "proto"),
        ("gw-http-2", "proto")]
SECONDS = 16          # how long each app sends
ADD_AFTER = 3         # instance 4 starts this long after instance 2 got its SIGTERM
COUNTED_KINDS = {"server", "client", "producer", "consumer"}


def free_port():
    """A port free now, below the ephemeral range (32768 up on Linux), so that no outgoing
    connection takes it as its source port before the process meant for it binds it."""
    rnd = random.Random()
    for _ in range(100):
        port = rnd.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port found")


def haproxy_config(fg, fh, instances):
    """TCP frontends for gRPC and HTTP, each with a backend of every instance (the ones not
    started yet are marked down by the health check until they answer)."""
    lines = ["global", "    maxconn 2000",
             "defaults", "    mode tcp", "    timeout connect 2s", "    timeout client 60s",
             "    timeout server 60s", "    option redispatch", "    retries 3",
             "frontend grpc", "    bind 127.0.0.1:%d" % fg, "    default_backend grpc",
             "frontend http", "    bind 127.0.0.1:%d" % fh, "    default_backend http"]
    for name, key in (("grpc", "grpc"), ("http", "http")):
        lines += ["backend " + name, "    balance leastconn", "    option httpchk GET /",
                  "    default-server inter 200ms fall 1 rise 1 on-marked-down "
                  "shutdown-sessions"]
        for i, p in enumerate(instances):
            lines.append("    server s%d 127.0.0.1:%d check port %d" % (i + 1, p[key], p["health"]))
    return "\n".join(lines) + "\n"


def instance_config(intake, ports, n):
    return {
        "receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": "127.0.0.1:%d" % ports["grpc"],
                     "keepalive": {"server_parameters": {"max_connection_age": "2s",
                                                         "max_connection_age_grace": "5s"}}},
            "http": {"endpoint": "127.0.0.1:%d" % ports["http"]}}}},
        "extensions": {"health_check": {"endpoint": "127.0.0.1:%d" % ports["health"]}},
        "exporters": {"datadog": {
            "hostname": "gw-%d" % n,
            "api": {"key": "test-key", "endpoint": intake.url},
            "traces": {"endpoint": intake.url, "flush_interval": "200ms"},
            "llmobs": {"endpoint": intake.url, "ml_app": "gw-ml-app",
                       "trace_buffer": {"timeout": "2s"}},
        }},
        "service": {"shutdown_timeout": "15s"},
    }


def counted_by_stats(s):
    m = s["metrics"]
    return (m.get("_top_level") == 1 or m.get("_dd.top_level") == 1 or
            m.get("_dd.measured") == 1 or s["meta"].get("span.kind") in COUNTED_KINDS)


class ScaleOutTest(unittest.TestCase):
    def setUp(self):
        problem = js_deps_problem()
        if problem is not None:
            self.skipTest(problem)
        if not os.access(HAPROXY, os.X_OK):
            self.skipTest("%s not installed (configs/install-deps.sh)" % HAPROXY)

    def test_scale_in_and_out(self):
        tmp = tempfile.mkdtemp(prefix="otel2dd-scale-")
        # Instances 1 to 3 listen on ports of their own choosing; the added one's, and the
        # balancer's, are chosen here: the balancer's configuration names them all.
        ports = [{"grpc": 0, "http": 0, "health": 0} for _ in range(3)]
        ports.append({"grpc": free_port(), "http": free_port(), "health": free_port()})
        fg, fh = free_port(), free_port()
        cfg_path = os.path.join(tmp, "haproxy.cfg")
        intake = FakeIntake().start()
        insts = [Otel2dd(config=instance_config(intake, ports[i], i + 1)) for i in range(4)]
        hap = apps = None
        try:
            for i, o in enumerate(insts[:3]):
                o.start()
                ports[i] = {"grpc": o.grpc_port, "http": o.http_port, "health": o.health_port}
            with open(cfg_path, "w") as f:
                f.write(haproxy_config(fg, fh, ports))
            hap = subprocess.Popen([HAPROXY, "-db", "-q", "-f", cfg_path],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            def port_open(p):
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                    return True
                except OSError:
                    return False
            wait_until(lambda: port_open(fg) and port_open(fh), 10, "haproxy to listen")

            t0 = time.monotonic()
            apps = [subprocess.Popen([NODE, APP, "--protocol", proto, "--url",
                                      "http://127.0.0.1:%d" % (fg if proto == "grpc" else fh),
                                      "--service", svc, "--seconds", str(SECONDS)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for svc, proto in APPS]
            # Scale in: once instance 2 serves some of the traffic (the balancer's choice, and
            # max_connection_age moving gRPC connections), it gets SIGTERM and drains (in a
            # thread: stop() waits).
            def taken(o):
                m = o.scrape()
                return sum(metric(m, "otel2dd_receiver_accepted_items_total", transport=t,
                                  signal="traces") or 0 for t in ("grpc", "http"))
            accepted_2 = wait_until(lambda: taken(insts[1]), SECONDS / 2,
                                    "instance 2 to take spans")
            stopped_at = time.monotonic()
            stopper = threading.Thread(target=insts[1].stop)
            stopper.start()
            # Scale out: instance 4.
            wait_until(lambda: time.monotonic() - stopped_at >= ADD_AFTER, ADD_AFTER + 1,
                       "the time to add an instance")
            insts[3].start()
            outs = []
            for p in apps:
                out, err = p.communicate(timeout=SECONDS + 60)
                self.assertEqual(p.returncode, 0, err.decode()[-2000:])
                outs.append(json.loads(out.decode().strip().splitlines()[-1]))
            stopper.join(30)
            added = [metric(insts[3].scrape(), "otel2dd_receiver_accepted_items_total",
                            transport=t, signal="traces") for t in ("grpc", "http")]
            for o in (insts[0], insts[2], insts[3]):
                o.stop()  # SIGTERM: flushes the stats buckets still open
        finally:
            if apps:
                for p in apps:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
            if hap is not None:
                hap.terminate()
                hap.wait(10)
            for o in insts:
                if o.proc is not None and o.returncode is None:
                    o.stop(expect=None)
            intake.stop()
            shutil.rmtree(tmp)

        self.assertEqual(intake.errors, [])
        acked = {}  # span id (int) -> (trace id hex, service)
        acked_traces = {}
        for (svc, _), out in zip(APPS, outs):
            for trace_hex, ids in out["acked"]:
                acked_traces[trace_hex] = svc
                for sid in ids:
                    acked[int(sid, 16)] = (trace_hex, svc)
        sent = sum(o["traces"] for o in outs)
        failed = sum(o["failed_spans"] for o in outs)
        ours = {svc for svc, _ in APPS}
        received = [s for s in intake.spans if s["service"] in ours]
        counts = collections.Counter(s["span_id"] for s in received)
        sys.stderr.write(
            "scale-out: %d traces sent, %d acknowledged (%d spans), %d spans in failed exports; "
            "%d spans received; instance 2 had taken %s spans when it got SIGTERM (%.1f s in); "
            "the added instance took %s (gRPC, HTTP)\n" %
            (sent, len(acked_traces), len(acked), failed, len(received), accepted_2,
             stopped_at - t0, added))

        # Every acknowledged span arrives, exactly once; nothing arrives twice.
        missing = [sid for sid in acked if counts[sid] == 0]
        self.assertEqual(missing[:10], [], "%d acknowledged spans missing" % len(missing))
        twice = [sid for sid, n in counts.items() if n > 1]
        self.assertEqual(twice[:10], [], "%d spans arrived more than once" % len(twice))
        self.assertGreater(len(acked_traces), sent * 0.8)

        # Stats: the instances' payloads add up to what the stats count.
        # Each instance that sent spans (AgentPayload.hostName) sent its own stats payloads:
        # the stopped one (it had taken spans) and the added one included.
        # (Only our instances' names: on a shared machine a stray process of another test
        # may retry to a port this intake took over.)
        ours_hosts = {"gw-%d" % n for n in (1, 2, 3, 4)}
        hostnames = collections.Counter(sp.get("AgentHostname") for sp in intake.stats_payloads
                                        if sp.get("AgentHostname") in ours_hosts)
        senders = {p["hostName"] for p in intake.agent_payloads if p["hostName"] in ours_hosts}
        self.assertEqual(set(hostnames), senders)
        self.assertLessEqual({"gw-2", "gw-4"}, senders)
        hits = sum(g["Hits"] for g in intake.groups() if g["Service"] in ours)
        want = sum(1 for s in received if counted_by_stats(s))
        self.assertEqual(hits, want)
        # Per trace: the SERVER root (top-level) and the llm CLIENT span (its kind).
        self.assertEqual(hits, 2 * len({s["trace_id"] for s in received}))

        # LLM Obs: each acknowledged trace's tree whole, each event once.
        by_trace = collections.defaultdict(list)
        for e in intake.events():
            by_trace[e["_dd"].get("apm_trace_id")].append(e)
        broken = []
        for trace_hex in acked_traces:
            evs = by_trace.get(trace_hex, [])
            kinds = sorted(e["meta"]["span"]["kind"] for e in evs)
            wf = [e for e in evs if e["meta"]["span"]["kind"] == "workflow"]
            ok = (kinds == ["llm", "tool", "workflow"] and wf[0]["parent_id"] == "undefined" and
                  all(e["parent_id"] == wf[0]["span_id"] for e in evs if e is not wf[0]) and
                  len({e["trace_id"] for e in evs}) == 1)
            if not ok:
                broken.append((trace_hex, [(e["name"], e["span_id"], e["parent_id"])
                                           for e in evs]))
        self.assertEqual(broken[:5], [], "%d LLM Obs trees not whole" % len(broken))

        # The added instance took part: max_connection_age sent gRPC connections back
        # through the balancer.
        self.assertGreater(added[0] or 0, 0)


if __name__ == "__main__":
    unittest.main()
