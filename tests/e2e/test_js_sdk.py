#!/usr/bin/python3
"""End-to-end: the real OpenTelemetry JS SDK sends to otel2dd over every OTLP transport.

For each exporter (grpc = OTLP/gRPC, proto = OTLP/HTTP protobuf, http = OTLP/HTTP JSON) with
gzip on and off, js/send_spans.js sends SPANS spans (and LOGS log records) through the SDK's
batch processor and stock OTLP exporter to a fresh otel2dd; the test asserts that the sender
saw every export succeed and that otel2dd's debug exporter counted exactly that many items.
Waits poll with deadlines (harness.wait_items); nothing sleeps a fixed time.

Needs node and tests/e2e/js/node_modules. When node_modules is missing the test runs
`npm ci` there itself (CI does so beforehand); it skips, saying why, only when that is not
possible. Run:

    /usr/bin/python3 tests/e2e/test_js_sdk.py -v
    OTEL2DD_BIN=/path/to/otel2dd /usr/bin/python3 tests/e2e/test_js_sdk.py -v
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import BIN, Otel2dd  # noqa: E402

JS_DIR = os.path.join(HERE, "js")
SENDER = os.path.join(JS_DIR, "send_spans.js")
NODE = os.environ.get("NODE", shutil.which("node") or "node")
SPANS = int(os.environ.get("E2E_JS_SPANS", "1500"))  # >= 1000, several requests per run
BATCH = 400  # SDK maxExportBatchSize: 1500 spans -> 4 requests, the last one partial
PROTOCOLS = ("grpc", "proto", "http")
SEND_TIMEOUT = 120

_deps_problem = None  # why the JS dependencies are unusable, once known


def js_deps_problem():
    """None when node_modules is usable, else a reason to skip. Runs `npm ci` if needed."""
    global _deps_problem
    if _deps_problem is not None:
        return _deps_problem or None
    _deps_problem = ""
    if shutil.which(NODE) is None and not os.path.exists(NODE):
        _deps_problem = "node not found (set NODE or install Node.js >= 18)"
        return _deps_problem
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules")):
        npm = shutil.which("npm")
        if npm is None:
            _deps_problem = ("tests/e2e/js/node_modules is missing and npm is not available; "
                             "run `npm ci` in tests/e2e/js")
            return _deps_problem
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if r.returncode != 0:
            _deps_problem = ("tests/e2e/js/node_modules is missing and `npm ci` failed "
                             "(rc %d):\n%s" % (r.returncode,
                                               r.stdout.decode("utf-8", "replace")[-2000:]))
            return _deps_problem
    return None


def send(protocol, port, count, gzip, signal="traces"):
    """Runs send_spans.js; returns (exit code, parsed JSON report, raw output)."""
    url = "http://127.0.0.1:%d" % port  # proto/http: the sender adds /v1/traces or /v1/logs
    cmd = [NODE, SENDER, "--protocol", protocol, "--url", url, "--spans", str(count),
           "--gzip", "on" if gzip else "off", "--batch", str(BATCH), "--signal", signal]
    return run_node(cmd, SEND_TIMEOUT)


def run_node(cmd, timeout):
    """Runs a node script in tests/e2e/js whose last JSON line on stdout is its report;
    returns (exit code, parsed JSON report or None, raw output)."""
    r = subprocess.run(cmd, cwd=JS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    report = None
    for line in reversed(out.strip().splitlines()):
        try:
            report = json.loads(line)
            break
        except ValueError:
            continue
    return r.returncode, report, "stdout:\n%s\nstderr:\n%s" % (out[-3000:], err[-3000:])


class JsSdkEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        problem = js_deps_problem()
        if problem:
            raise unittest.SkipTest(problem)
        if not os.access(BIN, os.X_OK):
            raise AssertionError("otel2dd binary not found at %s; build it first "
                                 "(cmake --build build) or set OTEL2DD_BIN" % BIN)

    def run_one(self, signal, protocol, gzip):
        with Otel2dd(verbosity="basic") as o:
            port = o.grpc_port if protocol == "grpc" else o.http_port
            rc, report, raw = send(protocol, port, SPANS, gzip, signal)
            ctx = "%s %s gzip=%s\n%s\notel2dd log tail:\n%s" % (
                signal, protocol, gzip, raw, "\n".join(o.raw[-20:]))
            self.assertIsNotNone(report, "sender printed no JSON report\n" + ctx)
            self.assertEqual(report.get("failed"), 0, "sender saw failed exports\n" + ctx)
            self.assertEqual(report.get("errors"), [], ctx)
            self.assertEqual(report.get("partial_success"), [],
                             "otel2dd answered with a partial success\n" + ctx)
            self.assertEqual(report.get("sent"), SPANS, ctx)
            self.assertEqual(rc, 0, "sender exited %d\n%s" % (rc, ctx))
            # Every export was acknowledged before the sender exited, so otel2dd must have
            # counted them all already; the wait only absorbs log-pipe latency.
            got = o.wait_items(signal, SPANS, timeout=30)
            self.assertEqual(got, SPANS, "otel2dd counted %d %s, sender sent %d\n%s" %
                             (got, signal, SPANS, ctx))
            errors = [l for l in o.logs() if l.get("level") == "error"]
            self.assertEqual(errors, [], "otel2dd logged errors\n" + ctx)
            rc = o.stop()
            self.assertEqual(rc, 0, "otel2dd exited %s on SIGTERM\n%s" % (rc, ctx))
            # Nothing arrives late or twice.
            self.assertEqual(o.items(signal), SPANS, ctx)


def _add_cases():
    for signal in ("traces", "logs"):
        for protocol in PROTOCOLS:
            for gzip in (False, True):
                name = "test_%s_%s_%s" % (signal, protocol, "gzip" if gzip else "plain")

                def case(self, signal=signal, protocol=protocol, gzip=gzip):
                    self.run_one(signal, protocol, gzip)

                case.__name__ = name
                case.__doc__ = "%s over %s, gzip %s" % (signal, protocol,
                                                       "on" if gzip else "off")
                setattr(JsSdkEndToEnd, name, case)


_add_cases()

if __name__ == "__main__":
    unittest.main()
