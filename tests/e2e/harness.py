"""Starts build/otel2dd for an end-to-end test and reads what it logs.

The binary runs on 127.0.0.1 with ephemeral ports (endpoint port 0); the ports it got are
read from its "listening" log lines. Every wait polls with a deadline; nothing sleeps a
fixed time to let something happen.

    with Otel2dd() as o:
        send(o.grpc_port, ...)
        o.wait_items("traces", 1000)

`config` (a dict, or a YAML string) is deep-merged over the default test configuration. A
mapping whose top-level keys are not configuration sections (receivers, exporters,
extensions, service) is merged under receivers.otlp, so {"protocols": {"grpc": {...}}} and
{"memory_limit_mib": 1} both work.

No run passes unseen: stop() (and the with-block's end, which calls it when the test did not)
fails the test when otel2dd printed a sanitizer report (ASan/UBSan builds) or exited with
another status than the one expected (0 unless the test says otherwise). A test that starts
the binary itself (subprocess.run) passes its stderr to assert_no_sanitizer_report.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("OTEL2DD_BIN", os.path.join(ROOT, "build", "otel2dd"))
SECTIONS = {"receivers", "exporters", "extensions", "service", "processors", "connectors"}


def binary_is_sanitized(path=None):
    """True when the otel2dd binary is an AddressSanitizer build: its memory figures then
    measure ASan's quarantine and shadow, not otel2dd."""
    try:
        with open(path or BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def deep_merge(base, extra):
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


def wait_until(pred, timeout, what, interval=0.02):
    """Polls pred() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# Lines that open or sum up an ASan/LSan/UBSan report. Under ASan a report on an error path
# exits 1, the same status as a refused configuration, so the status alone cannot tell.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
                   "WARNING: AddressSanitizer")


def sanitizer_report(text):
    """The lines of text (a string or a list of lines) that belong to a sanitizer report."""
    lines = text.splitlines() if isinstance(text, str) else text
    return [l for l in lines if any(m in l for m in SANITIZER_MARKS)]


def assert_no_sanitizer_report(text, what="otel2dd"):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if sanitizer_report(text):
        lines = text.splitlines() if isinstance(text, str) else text
        raise AssertionError("%s printed a sanitizer report:\n%s" % (what, "\n".join(lines[-80:])))


def request_in_flight(port):
    """A POST /v1/traces to 127.0.0.1:port that the server holds: its headers announce 1000
    bytes of body and "Expect: 100-continue"; once "100 Continue" is back the server has taken
    the request for sure. Returns the socket, the body not sent."""
    hold = socket.create_connection(("127.0.0.1", port), timeout=10)
    hold.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: "
                 b"application/x-protobuf\r\nExpect: 100-continue\r\n"
                 b"Content-Length: 1000\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = hold.recv(4096)
        if not chunk:
            raise AssertionError("closed before 100 Continue")
        got += chunk
    if not got.startswith(b"HTTP/1.1 100"):
        raise AssertionError(got)
    return hold


class Otel2dd:
    def __init__(self, config=None, verbosity="basic", args=None, env=None,
                 config_yaml_extra=None, grpc=True, http=True, preexec_fn=None):
        if config is None:
            config = config_yaml_extra
        protocols = {}
        if grpc:
            protocols["grpc"] = {"endpoint": "127.0.0.1:0"}
        if http:
            protocols["http"] = {"endpoint": "127.0.0.1:0"}
        cfg = {
            "receivers": {"otlp": {"protocols": protocols}},
            "extensions": {"health_check": {"endpoint": "127.0.0.1:0"}},
            "exporters": {"debug": {"verbosity": verbosity}},
            # Prometheus text at /metrics; never the default :8888, tests run side by side.
            "service": {"telemetry": {"metrics": {"address": "127.0.0.1:0"}}},
        }
        if isinstance(config, str):
            import yaml  # python3-yaml
            config = yaml.safe_load(config) or {}
        if config:
            if set(config) & SECTIONS:
                deep_merge(cfg, config)
            else:
                deep_merge(cfg["receivers"]["otlp"], config)
        self.config = cfg
        self.extra_args = list(args or [])
        self.env = env
        self.preexec_fn = preexec_fn  # runs in the child before exec (resource limits)
        self.proc = None
        self.returncode = None  # set by stop()
        self.lines = []  # parsed JSON log lines
        self.raw = []  # every stderr line, parsed or not
        self.stdout = []
        self._lock = threading.Lock()
        self.grpc_port = self.http_port = self.health_port = self.metrics_port = None

    # ---- lifecycle ----
    def start(self, timeout=20):
        fd, self.config_path = tempfile.mkstemp(prefix="otel2dd-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            json.dump(self.config, f, indent=1)  # JSON is YAML
        env = dict(os.environ)
        for k in list(env):
            # The test's own settings only: no Datadog or OpenTelemetry variables, and no
            # proxy from the machine (a test that wants one passes it in env).
            if (k.startswith("DD_") or k.startswith("OTEL_") or
                    k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")):
                del env[k]
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen([BIN, "--config", self.config_path] + self.extra_args,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env,
                                     preexec_fn=self.preexec_fn)
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, False), daemon=True),
        ]
        for t in self._readers:
            t.start()
        protos = self.config["receivers"]["otlp"]["protocols"]
        want = [s for s in ("grpc", "http") if s in protos]
        if self.config.get("extensions", {}).get("health_check", {}).get("endpoint"):
            want.append("health")
        if (self.config.get("service", {}).get("telemetry", {}).get("metrics", {})
                .get("address")):
            want.append("metrics")

        def ready():
            if self.proc.poll() is not None:
                # Its last lines may still be in the pipes: the readers end at EOF.
                for t in self._readers:
                    t.join(5)
                with self._lock:
                    raw = list(self.raw)
                raise AssertionError("otel2dd exited with %s:\n%s" %
                                     (self.proc.returncode, "\n".join(raw[-30:])))
            ports = {l.get("server"): l.get("port") for l in self.logs()
                     if l.get("msg") == "listening"}
            return all(s in ports for s in want) and ports

        ports = wait_until(ready, timeout, "otel2dd to listen")
        self.grpc_port = ports.get("grpc")
        self.http_port = ports.get("http")
        self.health_port = ports.get("health")
        self.metrics_port = ports.get("metrics")
        return self

    def _read(self, stream, is_err):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                if not is_err:
                    self.stdout.append(line)
                    continue
                self.raw.append(line)
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    self.lines.append(obj)

    def stop(self, sig=signal.SIGTERM, timeout=30, expect=0):
        """Signals otel2dd (unless it has exited already), waits for it to exit and returns its
        exit code. Fails if it printed a sanitizer report, or if expect is not None and the
        exit code differs from it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("otel2dd did not exit within %ss of signal %s" % (timeout, sig))
        for t in self._readers:  # the pipes hit EOF once the process is gone
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.returncode = rc
        with self._lock:
            raw = list(self.raw)
        assert_no_sanitizer_report(raw)
        if expect is not None and rc != expect:
            raise AssertionError("otel2dd exited with %s, expected %s:\n%s" %
                                 (rc, expect, "\n".join(raw[-30:])))
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc is not None and self.returncode is None:
                try:
                    self.stop()
                except AssertionError as e:
                    if exc_type is None:
                        raise
                    # The test failed already and its error is the one reported; this one
                    # (a sanitizer report, say) must not vanish with it.
                    sys.stderr.write("also, at stop: %s\n" % e)
        finally:
            if getattr(self, "config_path", None) and os.path.exists(self.config_path):
                os.unlink(self.config_path)

    # ---- reading the log ----
    def logs(self):
        with self._lock:
            return list(self.lines)

    def items(self, signal_name):
        """Items (spans, log records, data points) the debug exporter logged as received."""
        return sum(l.get("items", 0) for l in self.logs()
                   if l.get("msg") == "received" and l.get("signal") == signal_name)

    def wait_items(self, signal_name, count, timeout=30):
        wait_until(lambda: self.items(signal_name) >= count, timeout,
                   "%d %s (have %d)" % (count, signal_name, self.items(signal_name)))
        return self.items(signal_name)

    def wait_log(self, pred, timeout=10, what="a log line"):
        def find():
            for l in self.logs():
                if pred(l):
                    return l
            return None
        return wait_until(find, timeout, what)

    def pid(self):
        return self.proc.pid

    # ---- the metrics endpoint ----
    def scrape(self, timeout=10):
        """The text GET /metrics answers (its status must be 200)."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=timeout)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise AssertionError("GET /metrics answered %d: %r" % (r.status, body[:200]))
            return body.decode("utf-8")
        finally:
            c.close()


def totals(o, msg="datadog exporter totals"):
    """The first log line of o whose msg is msg (an exporter's totals, logged at exit), or None."""
    for line in o.logs():
        if line.get("msg") == msg:
            return line
    return None


# Every Otel2dd is checked at stop now; the older name stays for the tests that use it.
Otel2ddChecked = Otel2dd


class IntakeTestCase(unittest.TestCase):
    """A TestCase with a fake_intake.FakeIntake(**intake_args) started before each test as
    self.intake and stopped after it; a test fails if the intake recorded an error."""
    intake_args = {}

    def setUp(self):
        from fake_intake import FakeIntake
        self.intake = FakeIntake(**self.intake_args).start()

    def tearDown(self):
        self.intake.stop()
        self.assertEqual(self.intake.errors, [])
