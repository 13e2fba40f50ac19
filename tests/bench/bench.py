#!/usr/bin/python3
"""Throughput benchmark of otel2dd's OTLP receivers (run through run.sh).

The load: tests/bench/loadgen (--load loadgen, the default) sending the 64 distinct bodies of
apm.bodies (t100 scenarios) or llm.bodies (tmix100) with --stamp-ids, or h2load replaying one
body (--load h2load, and the scenarios that have no distinct bodies: t10, t1000, gzip,
tmixnc100, metrics, logs). Below, "h2load" stands for whichever drives the scenario.

For each scenario a fresh otel2dd starts on 127.0.0.1 ephemeral ports with the debug
exporter at verbosity quiet (nothing logged per request), so that the totals it logs on
SIGTERM belong to that scenario alone. Readiness is read from its "listening" log lines by
polling with a deadline; nothing sleeps a fixed time.

Per scenario it records:
  idle RSS     VmRSS from /proc/<pid>/status once both receivers listen
  req/s        2xx responses / h2load's run time (h2load's "status codes" line)
  spans/s      2xx req/s x spans per body
  accepted     spans otel2dd itself counted (its SIGTERM totals line); for gRPC this is the
               proof that the 200s also carried grpc-status 0
  CPU          receiver utime+stime delta from /proc/<pid>/stat over the h2load run, in
               seconds, as % of one core, and in microseconds per accepted span
  peak RSS     VmHWM at the end of the run
and prints a table and writes everything as JSON.

End to end (--dd, or --scenario dd-grpc-t100 / dd-http1-t100 / dd-check): the same h2load
load against an otel2dd whose Datadog exporter sends to sink_intake.py (accepts, counts the
spans of every trace payload with its own decoder), then SIGTERM and the drain; spans
delivered are the sink's count (otel2dd's "datadog exporter totals" line when it has none). dd-check sends 2 x --dd-check-n requests at low rate to tests/e2e/fake_intake.py
and checks that the spans it decoded equal otel2dd's sent counter. See README.md.

LLM Observability (--llm, or --scenario dd-llm-grpc-tmix100 ...): the same end-to-end run
with the LangChain-shaped body tmix100 (10 traces x 10 spans, one LLM span and one workflow
span a trace) and exporters.datadog.llmobs pointed at the sink; dd-grpc-tmix100 and
dd-http1-tmix100 are the APM-only baseline on the same body (llmobs.enabled false), so the
ratio is like for like. h2load replays one body, so its trace ids repeat; --llm-ids rotate
(the default) rewrites the 10 trace ids inside the body file every --llm-rotate-ms while
h2load runs (h2load pread()s the file for every request), so the trace buffer sees new traces
instead of the same 10. dd-llm-grpc-tmixnc100 (baseline dd-grpc-tmixnc100) replays
tmixnc100, the same mix with content-less LLM spans and no log records: each is held for its
log join window (llmobs.log_join_window), the hold's worst case. See RESULTS-llmobs.md.

Metrics and logs (--signals, or --scenario dd-metrics-grpc ...): the same end-to-end run with
the JS SDK's metrics (m280d, delta: 280 points) or logs (l100: 100 records) bodies; received
items come from otel2dd's /metrics at the end of the load, delivered ones from the sink, which
counts series points, sketches and log records. dd-metrics-cumul-* replay cumulative
collections in turn (CumulRotator). See README.md, "Metrics and logs end to end".
"""
import argparse
import json
import mmap
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
GRPC_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_PATHS = {
    "traces": GRPC_PATH,
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}

# name: (transport, body file, spans per body, extra h2load args)
SCENARIOS = {
    "grpc-t100": ("grpc", "t100.grpc", 100, []),
    "http1-t100": ("http", "t100.pb", 100, []),
    "http1-t100-gzip": ("http", "t100.pb.gz", 100, ["-H", "Content-Encoding: gzip"]),
}
# More shapes, with --extra: per-request overhead (10 spans) and big requests (1000).
EXTRA = {
    "http1-t10": ("http", "t10.pb", 10, []),
    "http1-t1000": ("http", "t1000.pb", 1000, []),
    "grpc-t10": ("grpc", "t10.grpc", 10, []),
    "grpc-t1000": ("grpc", "t1000.grpc", 1000, []),
}
DEFAULT_ORDER = ["grpc-t100", "http1-t100", "http1-t100-gzip"]


def die(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.exit(2)


def wait_until(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])  # kB, or a count
    return out


def stat_cpu_s(path):
    with open(path) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()  # after "pid (comm) "; field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_cpu_s(pid):
    return stat_cpu_s("/proc/%d/stat" % pid)


def threads_cpu_s(pid):
    """{tid: (name, cpu seconds)}: shows whether the load spread over the worker threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            out[tid] = (name, stat_cpu_s("/proc/%d/task/%s/stat" % (pid, tid)))
        except OSError:
            continue
    return out


# --redaction: the processors.redaction section every scenario's otel2dd gets (None: none).
REDACTION = {
    "off": None,
    # every built-in pattern, keys all kept: the cost of scanning every value
    "builtins": {"allow_all_keys": True,
                 "patterns": ["email", "credit_card", "aws_access_key", "bearer_token",
                              "openai_api_key", "anthropic_api_key", "google_api_key",
                              "ipv4", "ipv6"]},
    # message contents dropped, patterns on the rest
    "drop": {"allow_all_keys": True, "drop_message_contents": True,
             "patterns": ["email", "credit_card"]},
}


class Receiver:
    """One otel2dd process with a quiet debug exporter and ephemeral ports."""
    processors = None  # set from --redaction
    wrapper = []  # a command to run otel2dd under (stages.py: valgrind --tool=callgrind ...)

    def __init__(self, binary, workdir, name, exporters=None):
        self.binary = binary
        self.cfg_path = os.path.join(workdir, "%s.yaml" % name)
        self.log_path = os.path.join(workdir, "%s.log" % name)
        cfg = {
            "receivers": {"otlp": {"protocols": {
                "grpc": {"endpoint": "127.0.0.1:0"},
                "http": {"endpoint": "127.0.0.1:0"},
            }}},
            "extensions": {"health_check": {"endpoint": "127.0.0.1:0"}},
            "exporters": exporters or {"debug": {"verbosity": "quiet"}},
            "service": {"telemetry": {"metrics": {"address": "127.0.0.1:0"}}},
        }
        if Receiver.processors is not None:
            cfg["processors"] = {"redaction": Receiver.processors}
        self.config = cfg
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)  # JSON is YAML
        self.proc = None
        self.ports = {}

    def lines(self):
        out = []
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return out
        for raw in data.splitlines():
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout=20):
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("DD_") or k.startswith("OTEL_"))}
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.wrapper + [self.binary, "--config", self.cfg_path],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("otel2dd exited with %s:\n%s" % (self.proc.returncode,
                                                                    self.tail()))
            ports = {l.get("server"): l.get("port") for l in self.lines()
                     if l.get("msg") == "listening"}
            return ports if ("grpc" in ports and "http" in ports) else None

        self.ports = wait_until(ready, timeout, "otel2dd to listen (%s)" % self.log_path)
        return self

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("otel2dd did not exit within %ds of SIGTERM" % timeout)

    def stop_rusage(self, timeout=60):
        """SIGTERM, then poll wait4() with a deadline: (exit code, seconds from the signal to
        the exit, the whole process's rusage, the last VmHWM read while it drained). The
        rusage counts every thread over the process's life, the drain included. Its
        ru_maxrss is not used: Linux carries the forked Python parent's peak over exec()."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        deadline = t0 + timeout
        hwm = 0
        while True:
            try:
                hwm = max(hwm, proc_status(self.proc.pid).get("VmHWM", 0))
            except (OSError, ValueError):
                pass  # exiting: the memory map is gone
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                t1 = time.monotonic()
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                return self.proc.returncode, t1 - t0, ru, hwm
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("otel2dd did not exit within %ds of SIGTERM" % timeout)
            time.sleep(0.002)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def find_totals(lines):
    """The last log line that reports totals; its shape is read loosely on purpose."""
    for l in reversed(lines):
        msg = str(l.get("msg", ""))
        if "total" in msg.lower() or "totals" in l:
            return l
    return None


def accepted_spans(totals, transport):
    """Spans otel2dd says it accepted on `transport`, or None if the line does not say."""
    if not totals:
        return None
    t = totals.get("totals", totals)
    # main.c logs "grpc_spans"/"http_spans"; other shapes are tried in case it changes:
    # {"grpc":{"traces":{"items":N}}},
    # "grpc_traces_items": N, "spans_grpc": N, {"items":{"grpc":{"traces":N}}}.
    candidates = []
    v = t.get(transport)
    if isinstance(v, dict):
        s = v.get("traces")
        if isinstance(s, dict):
            candidates += [s.get("items"), s.get("spans")]
        candidates += [s if isinstance(s, int) else None, v.get("spans"), v.get("items")]
    for k in ("%s_spans" % transport, "%s_traces_items" % transport, "spans_%s" % transport,
              "%s_trace_items" % transport, "traces_%s_items" % transport,
              "items_%s_traces" % transport):
        candidates.append(t.get(k))
    items = t.get("items")
    if isinstance(items, dict):
        v = items.get(transport)
        if isinstance(v, dict):
            candidates.append(v.get("traces"))
        elif isinstance(v, int):
            candidates.append(v)
    for c in candidates:
        if isinstance(c, int) and not isinstance(c, bool):
            return c
    return None


H2_FINISHED = re.compile(r"finished in ([0-9.]+)(ms|s)")
H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
H2_REQ = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2_LAT = re.compile(r"time for request:\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)\s+"
                    r"([0-9.]+)(us|ms|s)")


def to_ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_h2load(out):
    r = {}
    m = H2_FINISHED.search(out)
    if m:
        r["duration_s"] = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    m = H2_STATUS.search(out)
    if m:
        r["status_2xx"], r["status_3xx"], r["status_4xx"], r["status_5xx"] = map(int,
                                                                                 m.groups())
    m = H2_REQ.search(out)
    if m:
        (r["req_total"], r["req_started"], r["req_done"], r["req_succeeded"], r["req_failed"],
         r["req_errored"], r["req_timeout"]) = map(int, m.groups())
    m = H2_LAT.search(out)
    if m:
        r["latency_min_ms"] = to_ms(m.group(1), m.group(2))
        r["latency_max_ms"] = to_ms(m.group(3), m.group(4))
        r["latency_mean_ms"] = to_ms(m.group(5), m.group(6))
    return r


def h2load_cmd(h2load, transport, body, port, extra, args, signal="traces"):
    if getattr(args, "rps", None):
        extra = ["--rps", str(args.rps)] + extra
    if transport == "grpc":
        return [h2load, "-c", str(args.conns), "-m", str(args.streams), "-D",
                str(args.duration), "-d", body, "-H", "content-type: application/grpc",
                "-H", "te: trailers"] + extra + [
                    "http://127.0.0.1:%d%s" % (port, GRPC_PATHS[signal])]
    return [h2load, "--h1", "-c", str(args.conns), "-D", str(args.duration), "-d", body,
            "-H", "Content-Type: application/x-protobuf"] + extra + [
                "http://127.0.0.1:%d/v1/%s" % (port, signal)]


# --load loadgen (the default): trace scenarios replay these distinct-bodies files
# (gen_bodies.js) with tests/bench/loadgen instead of h2load's one body. The other bodies
# (tmixnc100, metrics, logs) have no distinct set yet: h2load.
LOADGEN_BODIES = {"t100.pb": "apm.bodies", "t100.grpc": "apm.bodies",
                  "t100.pb.gz": "apm.gz.bodies",
                  "t10.pb": "apm10.bodies", "t10.grpc": "apm10.bodies",
                  "t1000.pb": "apm1000.bodies", "t1000.grpc": "apm1000.bodies",
                  "tmix100.pb": "llm.bodies", "tmix100.grpc": "llm.bodies"}


def uses_loadgen(args, body_name, sig="traces"):
    return args.load == "loadgen" and sig == "traces" and body_name in LOADGEN_BODIES


def loadgen_cmd(args, transport, bodies, port, extra, sig="traces"):
    cmd = [args.loadgen, "--grpc" if transport == "grpc" else "--h1", "-c", str(args.conns),
           "-m", str(args.streams), "-t", str(args.loadgen_threads), "-D", str(args.duration),
           "-f", bodies]
    if not args.no_stamp_ids and ".gz." not in os.path.basename(bodies):
        cmd.append("--stamp-ids")  # gzip'd bodies cannot be stamped: their ids repeat
    for i in range(0, len(extra) - 1, 2):
        if extra[i] == "-H":
            cmd += ["-H", extra[i + 1]]
    path = GRPC_PATHS[sig] if transport == "grpc" else "/v1/%s" % sig
    return cmd + ["http://127.0.0.1:%d%s" % (port, path)]


def loadgen_figures(out):
    """loadgen's JSON in the keys parse_h2load gives (status_2xx: acknowledged requests, for
    gRPC those with grpc-status 0; a gRPC refusal is in req_failed), plus items_ok."""
    j = json.loads(out)
    st = {int(k): v for k, v in j["status"].items()}
    r = {"duration_s": j["duration_s"], "loadgen": j, "items_ok": j["items_ok"],
         "status_2xx": j["requests"]["ok"],
         "status_3xx": sum(v for k, v in st.items() if 300 <= k < 400),
         "status_4xx": sum(v for k, v in st.items() if 400 <= k < 500),
         "status_5xx": sum(v for k, v in st.items() if k >= 500),
         "req_total": j["requests"]["sent"], "req_done": j["requests"]["answered"],
         "req_succeeded": j["requests"]["ok"],
         "req_failed": (j["requests"]["answered"] - j["requests"]["ok"]
                        if j["mode"] == "grpc" else 0),
         "req_errored": j["errors_total"] - j["errors"]["timeout"],
         "req_timeout": j["errors"]["timeout"],
         "latency_p50_ms": j["latency_ms"]["p50"], "latency_p99_ms": j["latency_ms"]["p99"],
         "latency_max_ms": j["latency_ms"]["max"]}
    return r


def run_scenario(name, spec, args, workdir, h2load):
    transport, body_name, spans_per_req, extra = spec
    lgen = uses_loadgen(args, body_name)
    if lgen:
        body_name = LOADGEN_BODIES[body_name]
    body = os.path.join(args.bodies, body_name)
    if not os.path.exists(body):
        die("missing body %s (run gen_bodies.js)" % body)
    rec = Receiver(args.bin, workdir, name)
    res = {"scenario": name, "transport": transport, "body": body_name,
           "body_bytes": os.path.getsize(body), "spans_per_request": spans_per_req,
           "connections": args.conns, "streams": args.streams if transport == "grpc" else 1,
           "duration_s_requested": args.duration}
    try:
        rec.start()
        pid = rec.proc.pid
        st = proc_status(pid)
        res["idle_rss_kib"] = st["VmRSS"]
        res["threads"] = st.get("Threads")
        port = rec.ports["grpc" if transport == "grpc" else "http"]
        if lgen:
            cmd = loadgen_cmd(args, transport, body, port, extra)
        else:
            cmd = h2load_cmd(h2load, transport, body, port, extra, args)
        res["load_tool"] = "loadgen" if lgen else "h2load"
        res["h2load_cmd"] = " ".join(cmd)
        cpu0 = proc_cpu_s(pid)
        thr0 = threads_cpu_s(pid)
        t0 = time.monotonic()
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE if lgen else subprocess.STDOUT)
        out_b, err_b = lg.communicate(timeout=args.duration + 120)
        wall = time.monotonic() - t0
        cpu1 = proc_cpu_s(pid)
        thr1 = threads_cpu_s(pid)
        res["thread_cpu_s"] = sorted(
            ((round(c - thr0.get(tid, (n, 0.0))[1], 2), n) for tid, (n, c) in thr1.items()),
            reverse=True)
        st = proc_status(pid)
        res["rss_end_kib"] = st["VmRSS"]
        res["peak_rss_kib"] = st["VmHWM"]
        out = out_b.decode("utf-8", "replace")
        res["h2load_rc"] = lg.returncode
        if lgen:
            if lg.returncode != 0:
                raise RuntimeError("loadgen exited %d: %s" % (lg.returncode, err_b.decode()))
            res.update(loadgen_figures(out))
        else:
            res.update(parse_h2load(out))
        if "status_2xx" not in res or "duration_s" not in res:
            raise RuntimeError("could not parse h2load output:\n%s" % out[-3000:])
        dur = res["duration_s"]
        res["req_per_s"] = res["status_2xx"] / dur if dur > 0 else 0.0
        res["spans_per_s"] = (res["items_ok"] / dur if lgen and dur > 0
                              else res["req_per_s"] * spans_per_req)
        res["receiver_cpu_s"] = cpu1 - cpu0
        res["receiver_cpu_pct"] = 100.0 * (cpu1 - cpu0) / wall if wall > 0 else 0.0
        rc = rec.stop()
        res["exit_code"] = rc
        lines = rec.lines()
        totals = find_totals(lines)
        res["totals_line"] = totals
        acc = accepted_spans(totals, transport)
        res["accepted_spans"] = acc
        sent_2xx = res["items_ok"] if lgen else res["status_2xx"] * spans_per_req
        res["spans_2xx"] = sent_2xx
        spans_for_cpu = acc if acc else sent_2xx
        res["cpu_us_per_span"] = (1e6 * res["receiver_cpu_s"] / spans_for_cpu
                                  if spans_for_cpu else None)
        notes = []
        if rc != 0:
            notes.append("otel2dd exited %s on SIGTERM; log tail:\n%s" % (rc, rec.tail(8)))
        # Requests still in flight when h2load stops its clock are answered and counted by
        # otel2dd but not by h2load, so the two may differ by at most that many requests.
        in_flight = 0 if lgen else args.conns * res["streams"] * spans_per_req
        if acc is None:
            notes.append("no totals line with accepted spans found in the otel2dd log")
        elif abs(acc - sent_2xx) > in_flight:
            notes.append("otel2dd accepted %d spans but h2load saw %d x 2xx = %d spans" %
                         (acc, res["status_2xx"], sent_2xx))
        bad = sum(res.get(k, 0) for k in ("status_3xx", "status_4xx", "status_5xx",
                                          "req_failed", "req_errored", "req_timeout"))
        if bad:
            notes.append("not all OK: %d 3xx, %d 4xx, %d 5xx, %d failed, %d errored, "
                         "%d timeout" % tuple(res.get(k, 0) for k in (
                             "status_3xx", "status_4xx", "status_5xx", "req_failed",
                             "req_errored", "req_timeout")))
        refused = (totals or {}).get("%s_requests_refused" % transport)
        res["requests_refused"] = refused
        if refused:
            notes.append("otel2dd refused %d requests (retry later / errors)" % refused)
        errors = [l for l in lines if l.get("level") == "error"]
        if errors:
            notes.append("%d error log lines, first: %s" % (len(errors), json.dumps(errors[0])))
        res["notes"] = notes
        res["h2load_output"] = out
    finally:
        rec.kill()
    return res


# ---- End to end: h2load -> otel2dd -> a Datadog intake (--dd) ----------------------------

# name: (transport, body file, spans per body, extra h2load args)
DD_SCENARIOS = {
    "dd-grpc-t100": ("grpc", "t100.grpc", 100, []),
    "dd-http1-t100": ("http", "t100.pb", 100, []),
}
# LLM Obs: (transport, body, spans per body, extra h2load args, options). llmobs False is the
# APM-only baseline on the same body (exporters.datadog.llmobs.enabled: false).
DD_SCENARIOS.update({
    "dd-grpc-tmix100": ("grpc", "tmix100.grpc", 100, [], {"llmobs": False}),
    "dd-llm-grpc-tmix100": ("grpc", "tmix100.grpc", 100, [], {"llmobs": True}),
    "dd-http1-tmix100": ("http", "tmix100.pb", 100, [], {"llmobs": False}),
    "dd-llm-http1-tmix100": ("http", "tmix100.pb", 100, [], {"llmobs": True}),
    # tmixnc100: the LLM spans without messages and no log records, so every one is held
    # for its log join window (llmobs.log_join_window): what the hold costs.
    "dd-grpc-tmixnc100": ("grpc", "tmixnc100.grpc", 100, [], {"llmobs": False}),
    "dd-llm-grpc-tmixnc100": ("grpc", "tmixnc100.grpc", 100, [], {"llmobs": True}),
})
LLM_ORDER = ["dd-grpc-tmix100", "dd-llm-grpc-tmix100", "dd-http1-tmix100",
             "dd-llm-http1-tmix100"]
# Metrics and logs end to end (opts "signal"): items per body are OTLP data points or log
# records. dd-metrics-* replay the delta body: a replayed cumulative body repeats its
# timestamps and values, which the cumulative-to-delta cache answers with out-of-order drops
# and zero deltas; the delta body has every point translated and sent (counters become counts,
# histograms sketches) as from an application exporting delta, the temporality Datadog
# recommends for OTLP. dd-metrics-cumul-* replay the cumulative body with the SDK's successive
# collections copied in while h2load runs (CumulRotator), to measure the cache's path.
DD_SCENARIOS.update({
    "dd-metrics-grpc": ("grpc", "m280d.grpc", 280, [], {"signal": "metrics"}),
    "dd-metrics-http1": ("http", "m280d.pb", 280, [], {"signal": "metrics"}),
    "dd-metrics-cumul-grpc": ("grpc", "m280.grpc", 280, [], {"signal": "metrics",
                                                              "rounds": "m280.rounds"}),
    "dd-metrics-cumul-http1": ("http", "m280.pb", 280, [], {"signal": "metrics",
                                                            "rounds": "m280.rounds"}),
    "dd-logs-grpc": ("grpc", "l100.grpc", 100, [], {"signal": "logs"}),
    "dd-logs-http1": ("http", "l100.pb", 100, [], {"signal": "logs"}),
})
SIGNALS_ORDER = ["dd-metrics-grpc", "dd-metrics-http1", "dd-logs-grpc", "dd-logs-http1"]
DM_TOTALS = "datadog metrics exporter totals"
LOGS_TOTALS = "logs exporter totals"
SERIES_PATH, SKETCHES_PATH, LOGS_PATH = "/api/v2/series", "/api/beta/sketches", "/api/v2/logs"
LLM_EVENTS_PER_BODY = 20  # 10 traces x (workflow + LLM span)
DD_CHECK = "dd-check"  # low-rate cross-check against tests/e2e/fake_intake.py
DD_ORDER = [DD_CHECK, "dd-grpc-t100", "dd-http1-t100"]
DD_TOTALS = "datadog exporter totals"
LLM_TOTALS = "llmobs exporter totals"
LLM_PATH = "/api/v2/llmobs"


class _MappedRotator:
    """A thread that rewrites a mapped body file (self.mm over self.fd) while h2load replays
    it; the subclass starts self.thread, which runs until self.stop_ev is set."""

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10)
        self.mm.close()
        os.close(self.fd)


class IdRotator(_MappedRotator):
    """Rewrites the trace ids of a body in place while h2load replays it: h2load pread()s its
    -d file for every request, so requests sent after a rotation carry new trace ids. The
    body is a private copy (the generated one is left alone). Each rotation writes 10 fresh
    random 16-byte ids at the 100 places the old ones were; the spans of one trace keep their
    links (span ids do not change, and span ids need only be unique within a trace). A
    request read while a rotation is half done may carry a trace split between an old and a
    new id; the next request carries the whole new trace, so that costs at most a wait."""

    def __init__(self, path, trace_ids, interval_s):
        import threading
        self.path = path
        self.interval_s = interval_s
        with open(path, "rb") as f:
            data = f.read()
        self.offsets = []  # per trace: the offsets of its id bytes
        for tid in trace_ids:
            raw = bytes.fromhex(tid)
            offs, i = [], data.find(b"\x0a\x10" + raw)
            while i >= 0:
                offs.append(i + 2)
                i = data.find(b"\x0a\x10" + raw, i + 1)
            if not offs:
                raise RuntimeError("trace id %s not found in %s" % (tid, path))
            self.offsets.append(offs)
        self.fd = os.open(path, os.O_RDWR)
        self.mm = mmap.mmap(self.fd, 0)
        self.rotations = 0
        self.cpu_s = 0.0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.thread_time()
        mm, offsets = self.mm, self.offsets
        while not self.stop_ev.wait(self.interval_s):
            ids = os.urandom(16 * len(offsets))
            for k, offs in enumerate(offsets):
                tid = ids[16 * k:16 * k + 16]
                for o in offs:
                    mm[o:o + 16] = tid
            self.rotations += 1
        self.cpu_s = time.thread_time() - t0


class CumulRotator(_MappedRotator):
    """Replays a cumulative metrics series the way one application reports it: while h2load
    runs, the body it reads (a private copy) is overwritten in place with the SDK's next
    cumulative collection (m280.rounds: 100 collections of one MeterProvider, values growing,
    all of one length), its time_unix_nano set to the current time; start_time_unix_nano
    stays, as a cumulative series keeps its start. So each series sees newer, larger points,
    as from an application, instead of the same point again (which the cumulative-to-delta
    cache drops as out of order, or answers with a zero delta and, for histograms, no sketch).

    The JS SDK gives every point of a collection the same time: its 8 bytes behind the fixed64
    tag of field 3 (0x19) are found once per collection; a rotation is one join and one copy.
    What stays unrealistic, and shows in the drop counters: requests read between two
    rotations carry the same collection (the later one processed is dropped as out of order),
    requests on different connections may be translated in another order than they were read
    (the older one is dropped), and after the 100th collection the values start again from the
    first (a counter reset: one request's counters give nothing)."""

    def __init__(self, path, offset, rounds_path, meta, interval_s):
        import struct
        import threading
        self.interval_s = interval_s
        with open(rounds_path, "rb") as f:
            data = f.read()
        n, size = meta["rounds"], meta["round_bytes"]
        if len(data) != n * size or os.path.getsize(path) != offset + size:
            raise RuntimeError("%s does not hold %d collections of %d bytes like %s" %
                               (rounds_path, n, size, path))
        self.variants = []
        for k, tns in enumerate(meta["time_unix_nano"]):
            body = data[k * size:(k + 1) * size]
            needle = b"\x19" + struct.pack("<Q", int(tns))
            segs, start, i = [], 0, body.find(needle)
            while i >= 0:
                segs.append(body[start:i + 1])
                start = i + len(needle)
                i = body.find(needle, start)
            segs.append(body[start:])
            if len(segs) - 1 != meta["points"]:
                raise RuntimeError("collection %d: time_unix_nano found %d times, not %d" %
                                   (k, len(segs) - 1, meta["points"]))
            self.variants.append(segs)
        self.places = meta["points"]
        self.offset = offset
        self.fd = os.open(path, os.O_RDWR)
        self.mm = mmap.mmap(self.fd, 0)
        # the first collection, so that every request comes from the same SDK as the rounds
        self.mm[offset:] = struct.pack("<Q", time.time_ns()).join(self.variants[0])
        self.rotations = 0
        self.cpu_s = 0.0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import struct
        t0 = time.thread_time()
        last = 0
        while not self.stop_ev.wait(self.interval_s):
            now = max(time.time_ns(), last + 1)  # strictly newer, whatever the clock does
            last = now
            segs = self.variants[(self.rotations + 1) % len(self.variants)]
            self.mm[self.offset:] = struct.pack("<Q", now).join(segs)
            self.rotations += 1
        self.cpu_s = time.thread_time() - t0


def prom_samples(text):
    """Prometheus text -> [(name, {label: value}, value)]."""
    out = []
    for m in re.finditer(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def signal_figures(rec, transport, signal):
    """What otel2dd's /metrics says of the run so far: items accepted on this transport and
    signal, requests refused, and for metrics the points translated and dropped by reason."""
    port = rec.ports.get("metrics")
    if port is None:
        return {}
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        samples = prom_samples(r.read().decode())
    out = {"accepted": 0, "refused_requests": 0, "translated_points": None, "dropped": {}}
    for name, lab, v in samples:
        if lab.get("transport") == transport and lab.get("signal") == signal:
            if name == "otel2dd_receiver_accepted_items_total":
                out["accepted"] += int(v)
            elif name == "otel2dd_receiver_refused_requests_total":
                out["refused_requests"] += int(v)
        if name == "otel2dd_translated_metric_points_total":
            out["translated_points"] = int(v)
        elif name == "otel2dd_metric_points_dropped_total" and v:
            out["dropped"][lab.get("reason", "?")] = int(v)
    return out


class Sink:
    """tests/bench/sink_intake.py as a child process (its CPU is its own, read from /proc)."""

    def __init__(self, workdir, name, extra=()):
        self.extra = list(extra)  # sink_intake.py options: --span-ids, --delay-ms ...
        self.err_path = os.path.join(workdir, "%s.sink.err" % name)
        self.proc = None
        self.port = None
        self.lines = []

    def start(self, timeout=20):
        import queue
        import threading
        err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "sink_intake.py")] +
                                     self.extra,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=err)
        err.close()
        q = queue.Queue()

        def reader():
            for raw in self.proc.stdout:
                q.put(raw.decode("utf-8", "replace").rstrip("\n"))
            q.put(None)
        threading.Thread(target=reader, daemon=True).start()
        self.q = q
        deadline = time.monotonic() + timeout
        while self.port is None:
            try:
                line = q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("timed out after %ds waiting for the sink" % timeout)
            if line is None:
                raise RuntimeError("the sink exited: %s" % open(self.err_path).read()[-2000:])
            self.lines.append(line)
            m = re.match(r"sink listening 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def counts(self):
        import urllib.request
        with urllib.request.urlopen(self.url + "/_counts", timeout=10) as r:
            return json.loads(r.read())

    def stop(self, timeout=20):
        """SIGTERM; its final counts line (a dict) and its exit code."""
        import queue
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        counts = None
        while True:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RuntimeError("the sink did not exit within %ds" % timeout)
            if line is None:
                break
            self.lines.append(line)
            if line.startswith("sink counts "):
                counts = json.loads(line[len("sink counts "):])
        return counts, self.proc.wait(timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def dd_exporters(url, args, llmobs=None):
    dd = {"api": {"key": "bench", "endpoint": url},
          "traces": {"endpoint": url},
          "metrics": {"endpoint": url},
          "logs": {"endpoint": url}}
    if llmobs is False:
        dd["llmobs"] = {"enabled": False}
    elif llmobs:
        lo = {"enabled": True, "endpoint": url}
        tb = {}
        if args.llm_buffer_timeout:
            tb["timeout"] = args.llm_buffer_timeout
        if args.llm_buffer_max_spans:
            tb["max_spans"] = args.llm_buffer_max_spans
        if args.llm_buffer_mib:
            tb["max_size_mib"] = args.llm_buffer_mib
        if tb:
            lo["trace_buffer"] = tb
        dd["llmobs"] = lo
    if getattr(args, "dd_sql_cache", "on") == "off":
        dd["traces"]["obfuscation"] = {"cache": {"enabled": False}}
    if args.dd_flush_interval:
        dd["traces"]["flush_interval"] = args.dd_flush_interval
    if args.dd_queue_mib:
        dd["sending_queue"] = {"max_size_mib": args.dd_queue_mib}
    if args.dd_storage:
        # a fresh directory per scenario: nothing replayed from an earlier run
        if os.path.isdir(args.dd_storage):
            shutil.rmtree(args.dd_storage)
        q = dd.setdefault("sending_queue", {})
        q["storage"] = args.dd_storage
        q["fsync"] = args.dd_fsync
    return {"datadog": dd}


def latency_percentiles(path):
    """p50 and p99 of the request times h2load --log-file wrote (ms), or (None, None)."""
    try:
        with open(path) as f:
            us = sorted(int(l.split("\t")[2]) for l in f if l.count("\t") >= 2)
    except OSError:
        return None, None
    if not us:
        return None, None
    return us[len(us) // 2] / 1000.0, us[min(len(us) - 1, (len(us) * 99) // 100)] / 1000.0


def proc_io(pid):
    """/proc/<pid>/io as a dict (write_bytes: what the process sent to storage)."""
    try:
        with open("/proc/%d/io" % pid) as f:
            return {k: int(v) for k, v in (l.split(":") for l in f if ":" in l)}
    except OSError:
        return {}


def disk_commit_figures(rec):
    """The disk queue's group commits so far, per exporter, from /metrics: commits, the
    appends they carried, and the mean fdatasync time (ms)."""
    port = rec.ports.get("metrics")
    if port is None:
        return None
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for fam, key in (("commits_total", "commits"), ("committed_appends_total", "appends"),
                     ("sync_seconds_total", "sync_s")):
        for m in re.finditer(r'^otel2dd_exporter_disk_queue_%s\{exporter="([^"]+)"\} (\S+)$'
                             % fam, text, re.M):
            out.setdefault(m.group(1), {})[key] = float(m.group(2))
    for v in out.values():
        if v.get("commits"):
            v["appends_per_commit"] = round(v.get("appends", 0) / v["commits"], 2)
            v["sync_ms_mean"] = round(1000 * v.get("sync_s", 0) / v["commits"], 3)
    return out


def log_line(lines, msg):
    for l in reversed(lines):
        if l.get("msg") == msg:
            return l
    return None


def dd_started(rec, timeout=20):
    """Waits for "datadog exporter started" and the API key check's answer (a log line)."""
    def ready():
        lines = rec.lines()
        if log_line(lines, "datadog exporter started") is None:
            return None
        for l in lines:
            m = str(l.get("msg", ""))
            if m.startswith("API key") or m.startswith("could not validate"):
                return l
        return None
    return wait_until(ready, timeout, "the Datadog exporter to start and check the key")


def run_dd_scenario(name, spec, args, workdir, h2load):
    transport, body_name, spans_per_req, extra = spec[:4]
    opts = spec[4] if len(spec) > 4 else {}
    llmobs = opts.get("llmobs")  # None: otel2dd's default (the t100 bodies have no LLM spans)
    sig = opts.get("signal", "traces")
    lgen = uses_loadgen(args, body_name, sig)
    if lgen:
        body_name = LOADGEN_BODIES[body_name]
    body = os.path.join(args.bodies, body_name)
    if not os.path.exists(body):
        die("missing body %s (run gen_bodies.js)" % body)
    res = {"scenario": name, "kind": "dd", "load_tool": "loadgen" if lgen else "h2load", "transport": transport, "body": body_name,
           "body_bytes": os.path.getsize(body), "spans_per_request": spans_per_req,
           "connections": args.conns, "streams": args.streams if transport == "grpc" else 1,
           "duration_s_requested": args.duration, "llmobs": llmobs, "signal": sig,
           "unit": {"traces": "spans", "metrics": "points", "logs": "records"}[sig]}
    rotator = None
    if opts.get("rounds"):
        with open(os.path.join(args.bodies, "bodies.json")) as f:
            meta = json.load(f)[opts["rounds"]]
        private = os.path.join(workdir, "%s.%s" % (name, body_name))
        shutil.copyfile(body, private)
        body = private
        rotator = CumulRotator(body, 5 if transport == "grpc" else 0,
                               os.path.join(args.bodies, opts["rounds"]), meta,
                               args.cumul_rotate_ms / 1000.0)
        res["cumul_rotate_ms"] = args.cumul_rotate_ms
    if "tmix" in body_name:  # h2load only: loadgen --stamp-ids gives each request its ids
        res["llm_ids"] = args.llm_ids
        if args.llm_ids == "rotate":
            with open(os.path.join(args.bodies, "bodies.json")) as f:
                tids = json.load(f)[body_name]["trace_ids"]
            private = os.path.join(workdir, "%s.%s" % (name, body_name))
            shutil.copyfile(body, private)
            body = private
            rotator = IdRotator(body, tids, args.llm_rotate_ms / 1000.0)
            res["llm_rotate_ms"] = args.llm_rotate_ms
    sink = Sink(workdir, name)
    rec = None
    try:
        sink.start()
        rec = Receiver(args.bin, workdir, name,
                       exporters=dd_exporters(sink.url, args, llmobs=llmobs))
        res["exporter_config"] = rec.config["exporters"]
        if args.preview_mib:
            # extensions.preview on: every request's spans also go to the preview's store
            rec.config.setdefault("extensions", {})["preview"] = {
                "endpoint": "127.0.0.1:0", "max_size_mib": args.preview_mib}
            with open(rec.cfg_path, "w") as f:
                json.dump(rec.config, f, indent=1)
        res["preview_mib"] = args.preview_mib
        rec.start()
        pid = rec.proc.pid
        res["key_check"] = dd_started(rec).get("msg")
        if llmobs:
            res["llmobs_started"] = wait_until(
                lambda: log_line(rec.lines(), "llmobs exporter started"), 20,
                "the llmobs exporter to start")
        st = proc_status(pid)
        res["idle_rss_kib"] = st["VmRSS"]
        res["threads"] = st.get("Threads")
        port = rec.ports["grpc" if transport == "grpc" else "http"]
        h2log = os.path.join(workdir, "%s.h2load.log" % name)
        if lgen:
            cmd = loadgen_cmd(args, transport, body, port, extra, sig)
        else:
            cmd = h2load_cmd(h2load, transport, body, port, extra, args, sig)
            cmd = cmd[:1] + ["--log-file", h2log] + cmd[1:]
        res["h2load_cmd"] = " ".join(cmd)
        sink_pid = sink.proc.pid
        cpu0, sink_cpu0 = proc_cpu_s(pid), proc_cpu_s(sink_pid)
        thr0 = threads_cpu_s(pid)
        io0 = proc_io(pid)
        perf = None
        if args.perf:
            res["perf_data"] = os.path.join(workdir, "%s.perf.data" % name)
            perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", args.perf_call_graph,
                                     "-p", str(pid), "-o",
                                     res["perf_data"]], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        if rotator is not None:
            rotator.start()
        t0 = time.monotonic()
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE if lgen else subprocess.STDOUT)
        out_b, err_b = lg.communicate(timeout=args.duration + 120)
        t_load = time.monotonic()
        if rotator is not None:
            rotator.stop()
            kind = "cumul" if isinstance(rotator, CumulRotator) else "llm_id"
            res["%s_rotations" % kind] = rotator.rotations
            res["%s_rotator_cpu_s" % kind] = rotator.cpu_s
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        cpu1 = proc_cpu_s(pid)
        thr1 = threads_cpu_s(pid)
        io1 = proc_io(pid)
        res["disk_write_bytes_load"] = io1.get("write_bytes", 0) - io0.get("write_bytes", 0)
        st = proc_status(pid)
        sink_at_load_end = sink.counts()
        if sig != "traces":
            res["otel2dd_at_load_end"] = signal_figures(rec, transport, sig)
        res["thread_cpu_s"] = sorted(
            ((round(c - thr0.get(tid, (n, 0.0))[1], 2), n, int(tid))
             for tid, (n, c) in thr1.items()), reverse=True)
        res["rss_load_end_kib"] = st["VmRSS"]
        res["hwm_load_end_kib"] = st["VmHWM"]
        out = out_b.decode("utf-8", "replace")
        res["h2load_rc"] = lg.returncode
        res["h2load_output"] = out
        if lgen:
            if lg.returncode != 0:
                raise RuntimeError("loadgen exited %d: %s" % (lg.returncode, err_b.decode()))
            res.update(loadgen_figures(out))
        else:
            res.update(parse_h2load(out))
            res["latency_p50_ms"], res["latency_p99_ms"] = latency_percentiles(h2log)
        if "status_2xx" not in res or "duration_s" not in res:
            raise RuntimeError("could not parse h2load output:\n%s" % out[-3000:])
        if args.dd_storage:
            res["disk_commits"] = disk_commit_figures(rec)
        if args.preview_mib:
            # what the store kept and skipped (a busy store skips a request, never waits)
            pport = [l.get("port") for l in rec.lines()
                     if l.get("msg") == "listening" and l.get("server") == "preview"]
            with urllib.request.urlopen("http://127.0.0.1:%d/api/status" % pport[0],
                                        timeout=10) as r:
                res["preview"] = json.load(r)["preview"]
            sys.stderr.write("bench: %s preview %s\n" % (name, json.dumps(res["preview"])))

        # SIGTERM: the receivers close, the exporter sends what is queued, then exits.
        rc, drain_s, ru, hwm_drain = rec.stop_rusage(timeout=60)
        t_end = time.monotonic()
        sink_cpu2 = proc_cpu_s(sink_pid)
        res["exit_code"] = rc
        res["drain_s"] = drain_s
        res["load_wall_s"] = t_load - t0
        res["load_to_drained_s"] = t_end - t0
        res["cpu_load_s"] = cpu1 - cpu0
        res["cpu_load_pct"] = 100.0 * (cpu1 - cpu0) / (t_load - t0)
        total_cpu = ru.ru_utime + ru.ru_stime
        res["cpu_life_s"] = total_cpu  # start-up and idle wait included (small)
        res["cpu_drain_s"] = total_cpu - cpu1
        res["cpu_load_and_drain_s"] = total_cpu - cpu0
        res["hwm_drain_kib"] = hwm_drain
        res["peak_rss_kib"] = max(hwm_drain, st["VmHWM"])
        res["sink_cpu_s"] = sink_cpu2 - sink_cpu0
        res["sink_cpu_pct"] = 100.0 * res["sink_cpu_s"] / (t_end - t0)
        sink_final, sink_rc = sink.stop()
        res["sink_counts"] = sink_final
        res["sink_counts_at_load_end"] = sink_at_load_end

        lines = rec.lines()
        if sig != "traces":
            finish_signal(res, sig, lines, sink_final, sink_rc)
            return res
        tot = find_totals([l for l in lines if l.get("msg") == "totals"])
        ddt = log_line(lines, DD_TOTALS)
        res["totals_line"] = tot
        res["dd_totals_line"] = ddt
        lot = log_line(lines, LLM_TOTALS)
        res["llmobs_totals_line"] = lot
        if lot is not None:
            res["llm_events_sent"] = lot.get("events_sent")
            res["llm_buffer"] = {k: lot.get("buffer_" + k) for k in (
                "settled_by_root", "settled_by_deadline", "forced_by_bound", "spans_held")}
            res["llm_events_dropped"] = {k[len("events_dropped_"):]: v for k, v in lot.items()
                                         if k.startswith("events_dropped_") and v}
            res["llm_bytes_sent"] = lot.get("bytes_sent")
            res["llm_bodies_sent"] = lot.get("bodies_sent")
        acc = accepted_spans(tot, transport)
        res["accepted_spans"] = acc
        refused = (tot or {}).get("%s_requests_refused" % transport)
        res["requests_refused"] = refused
        sent = (ddt or {}).get("spans_sent")
        res["spans_sent"] = sent
        res["spans_dropped"] = {k[len("spans_dropped_"):]: v for k, v in (ddt or {}).items()
                                if k.startswith("spans_dropped_")}
        dur = res["duration_s"]
        # h2load: gRPC refusals are HTTP 200 with grpc-status 14, so they look 2xx to h2load
        res["non_2xx"] = sum(res.get(k, 0) for k in ("status_3xx", "status_4xx",
                                                     "status_5xx", "req_failed"))
        res["accepted_spans_per_s"] = (acc or 0) / dur if dur > 0 else 0.0
        tb = (ddt or {}).get("bytes_sent") or 0
        # delivered: the spans the sink decoded (its own count), else otel2dd's sent counter
        sink_spans = (sink_final or {}).get("spans")
        res["sink_spans"] = sink_spans
        if sink_spans is not None:
            sent_otel2dd, sent = sent, sink_spans
        if sent is not None:
            res["delivered_spans_per_s"] = sent / res["load_to_drained_s"]
            res["delivered_spans_per_s_load_window"] = sent / dur if dur > 0 else 0.0
            b_load = (sink_at_load_end.get("bytes") or {}).get("/api/v0.2/traces", 0)
            if sink_at_load_end.get("spans") is not None:
                res["delivered_by_load_end_est"] = sink_at_load_end["spans"]
            else:
                # Every body carries the same spans, so bytes are proportional to spans.
                res["delivered_by_load_end_est"] = int(sent * b_load / tb) if tb else None
            if res["delivered_by_load_end_est"] is not None and dur > 0:
                res["delivered_spans_per_s_in_window_est"] = (
                    res["delivered_by_load_end_est"] / res["load_wall_s"])
            res["cpu_s_per_million_spans"] = (1e6 * res["cpu_load_and_drain_s"] / sent
                                              if sent else None)
        notes = []
        if rc != 0:
            notes.append("otel2dd exited %s on SIGTERM; log tail:\n%s" % (rc, rec.tail(8)))
        if ddt is None:
            notes.append("no %r line in the otel2dd log" % DD_TOTALS)
        if sent is not None and acc is not None and sent != acc:
            notes.append("accepted %d spans but sent %d (dropped: %s)" %
                         (acc, sent, res["spans_dropped"]))
        if sink_spans is not None and sink_spans != res["spans_sent"]:
            notes.append("otel2dd says %s spans sent, the sink decoded %d" %
                         (res["spans_sent"], sink_spans))
        if lgen and acc is not None and res["items_ok"] != acc:
            notes.append("loadgen had %d spans acknowledged, otel2dd accepted %d" %
                         (res["items_ok"], acc))
        if refused:
            notes.append("otel2dd refused %d requests (queue full: retry later)" % refused)
        if res["non_2xx"]:
            notes.append("h2load saw %d non-2xx answers" % res["non_2xx"])
        if sink_rc != 0:
            notes.append("the sink exited %s" % sink_rc)
        if sink_final and tb and (sink_final.get("bytes") or {}).get(
                "/api/v0.2/traces") != tb:
            notes.append("otel2dd says %d trace bytes sent, the sink read %s" % (
                tb, sink_final.get("bytes")))
        if llmobs:
            if lot is None:
                notes.append("no %r line in the otel2dd log" % LLM_TOTALS)
            elif not lgen:  # the distinct bodies have no fixed event count per body
                want = (acc or 0) // spans_per_req * LLM_EVENTS_PER_BODY
                if res["llm_events_sent"] != want:
                    notes.append("llmobs sent %s events, accepted spans imply %d (dropped: %s)"
                                 % (res["llm_events_sent"], want, res["llm_events_dropped"]))
                lb = (sink_final or {}).get("bytes", {}).get(LLM_PATH)
                if lb != res["llm_bytes_sent"]:
                    notes.append("llmobs says %s bytes sent, the sink read %s" % (
                        res["llm_bytes_sent"], lb))
        errors = [l for l in lines if l.get("level") == "error"]
        if errors:
            notes.append("%d error log lines, first: %s" % (len(errors), json.dumps(errors[0])))
        warns = [l for l in lines if l.get("level") in ("warn", "warning")]
        if warns:
            notes.append("%d warning log lines, first: %s" % (len(warns), json.dumps(warns[0])))
        res["notes"] = notes
    finally:
        if rec is not None:
            rec.kill()
        sink.kill()
        if rotator is not None and not rotator.stop_ev.is_set():
            rotator.stop()
    return res


def finish_signal(res, sig, lines, sink_final, sink_rc):
    """The figures of a metrics or logs run (run_dd_scenario), from otel2dd's /metrics at the
    end of the load, its exporter's totals line and the sink's counts. Received: OTLP items
    the receiver accepted; sent: what the exporter counted sent (metrics: series points plus
    sketches); delivered: what the sink decoded and counted."""
    notes = []
    fig = res.get("otel2dd_at_load_end") or {}
    acc = fig.get("accepted")
    res["accepted_items"] = acc
    res["requests_refused"] = fig.get("refused_requests")
    dur = res["duration_s"]
    res["accepted_per_s"] = (acc or 0) / dur if dur > 0 else 0.0
    items = (sink_final or {}).get("items", {})
    if sig == "metrics":
        t = log_line(lines, DM_TOTALS) or {}
        res["exporter_totals_line"] = log_line(lines, DM_TOTALS)
        sent = t.get("series_points_sent", 0) + t.get("sketches_points_sent", 0)
        res["series_sent"], res["sketches_sent"] = (t.get("series_points_sent"),
                                                    t.get("sketches_points_sent"))
        res["sink_series_points"] = items.get(SERIES_PATH, 0)
        res["sink_sketches"] = items.get(SKETCHES_PATH, 0)
        delivered = res["sink_series_points"] + res["sink_sketches"]
        res["translated_points"] = fig.get("translated_points")
        res["points_dropped"] = fig.get("dropped")
        res["bytes_sent"] = (t.get("series_bytes_sent") or 0) + (t.get("sketches_bytes_sent")
                                                                 or 0)
        dropped = {k: v for k, v in t.items() if "_dropped_" in k and v}
        if fig.get("dropped"):
            notes.append("the translator dropped points: %s" % fig["dropped"])
    else:
        t = log_line(lines, LOGS_TOTALS) or {}
        res["exporter_totals_line"] = log_line(lines, LOGS_TOTALS)
        sent = t.get("records_sent", 0)
        delivered = items.get(LOGS_PATH, 0)
        res["bytes_sent"] = t.get("bytes_sent")
        dropped = {k: v for k, v in t.items() if "_dropped_" in k and v}
    res["items_sent"] = sent
    res["items_delivered"] = delivered
    res["exporter_dropped"] = dropped
    res["delivered_per_s"] = delivered / res["load_to_drained_s"]
    res["delivered_per_s_load_window"] = delivered / dur if dur > 0 else 0.0
    res["cpu_s_per_million_items"] = (1e6 * res["cpu_load_and_drain_s"] / acc if acc else None)
    if res.get("exit_code"):
        notes.append("otel2dd exited %s on SIGTERM" % res.get("exit_code"))
    if not res["exporter_totals_line"]:
        notes.append("no exporter totals line in the otel2dd log")
    if sent != delivered:
        notes.append("the exporter says %d sent, the sink counted %d" % (sent, delivered))
    if dropped:
        notes.append("the exporter dropped: %s" % dropped)
    bad = (sink_final or {}).get("bad")
    if bad:
        notes.append("the sink could not decode: %s" % bad)
    if sink_rc != 0:
        notes.append("the sink exited %s" % sink_rc)
    if res["requests_refused"]:
        notes.append("otel2dd refused %d requests" % res["requests_refused"])
    res["non_2xx"] = sum(res.get(k, 0) for k in ("status_3xx", "status_4xx", "status_5xx"))
    if res["non_2xx"]:
        notes.append("h2load saw %d non-2xx answers" % res["non_2xx"])
    in_flight = res["connections"] * res["streams"] * res["spans_per_request"]
    if acc is not None and abs(acc - res["status_2xx"] * res["spans_per_request"]) > in_flight:
        notes.append("otel2dd accepted %d items, h2load saw %d x 2xx" % (acc, res["status_2xx"]))
    errors = [l for l in lines if l.get("level") == "error"]
    if errors:
        notes.append("%d error log lines, first: %s" % (len(errors), json.dumps(errors[0])))
    warns = [l for l in lines if l.get("level") in ("warn", "warning")]
    if warns:
        notes.append("%d warning log lines, first: %s" % (len(warns), json.dumps(warns[0])))
    res["notes"] = notes


def run_dd_check(args, workdir, h2load):
    """A low-rate run against the decoding fake intake of tests/e2e: the spans it decoded
    must equal otel2dd's sent counter and the spans of the requests answered OK."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    from fake_intake import FakeIntake  # noqa: E402 (python3-protobuf, python3-msgpack, protoc)
    res = {"scenario": DD_CHECK, "kind": "dd-check", "requests_per_transport": args.dd_check_n}
    intake = FakeIntake(api_key="bench").start()
    rec = None
    try:
        rec = Receiver(args.bin, workdir, DD_CHECK, exporters=dd_exporters(intake.url, args))
        rec.start()
        res["key_check"] = dd_started(rec).get("msg")
        sent_ok = 0
        runs = []
        for transport, body_name in (("grpc", "t100.grpc"), ("http", "t100.pb")):
            body = os.path.join(args.bodies, body_name)
            port = rec.ports[transport]
            base = h2load_cmd(h2load, transport, body, port, [], args)
            # -n N requests on 2 connections (-m 1) instead of -D: a low rate.
            cmd = [base[0], "-n", str(args.dd_check_n), "-c", "2"]
            skip = {"-c", "-D", "-m"}
            i = 1
            while i < len(base):
                if base[i] in skip:
                    i += 2
                    continue
                cmd.append(base[i])
                i += 1
            if transport == "grpc":
                cmd[1:1] = ["-m", "1"]
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 timeout=120).stdout.decode("utf-8", "replace")
            p = parse_h2load(out)
            runs.append({"transport": transport, "cmd": " ".join(cmd), "parsed": p})
            sent_ok += p.get("status_2xx", 0) * 100
        res["h2load"] = runs
        rc, drain_s, ru, hwm = rec.stop_rusage(timeout=60)
        res["peak_rss_kib"] = hwm
        res["exit_code"] = rc
        res["drain_s"] = drain_s
        lines = rec.lines()
        tot = log_line(lines, "totals")
        ddt = log_line(lines, DD_TOTALS)
        res["totals_line"], res["dd_totals_line"] = tot, ddt
        res["accepted_spans"] = (tot or {}).get("grpc_spans", 0) + (tot or {}).get(
            "http_spans", 0)
        res["refused"] = (tot or {}).get("grpc_requests_refused", 0) + (tot or {}).get(
            "http_requests_refused", 0)
        res["spans_sent"] = (ddt or {}).get("spans_sent")
        res["spans_2xx"] = sent_ok
        with intake.lock:
            res["intake_spans"] = len(intake.spans)
            res["intake_errors"] = list(intake.errors)
            res["intake_trace_posts"] = len([r for r in intake.requests
                                             if r["path"] == "/api/v0.2/traces"])
            res["intake_stats_hits"] = sum(g.get("Hits", 0) for g in intake.stats_groups)
        want = args.dd_check_n * 2 * 100
        checks = {
            "every request answered 2xx": sent_ok == want,
            "nothing refused": res["refused"] == 0,
            "accepted == requests x 100": res["accepted_spans"] == want,
            "otel2dd spans_sent == requests x 100": res["spans_sent"] == want,
            "fake intake decoded == spans_sent": res["intake_spans"] == res["spans_sent"],
            "fake intake: no decoding errors": not res["intake_errors"],
            "exit 0": rc == 0,
        }
        res["checks"] = checks
        res["ok"] = all(checks.values())
        res["notes"] = ["check failed: %s" % k for k, v in checks.items() if not v]
        if not res["ok"]:
            res["error"] = "cross-check failed: %s" % ", ".join(
                k for k, v in checks.items() if not v)
    finally:
        if rec is not None:
            rec.kill()
        intake.stop()
    return res


def baseline_of(name):
    """dd-llm-grpc-tmix100 -> dd-grpc-tmix100 (the APM-only run on the same body)."""
    return name.replace("dd-llm-", "dd-", 1) if name.startswith("dd-llm-") else None


def add_llm_ratios(results):
    """Each LLM Obs run's delivered spans/s over the mean of its baseline's runs."""
    base = {}
    for r in results:
        if r.get("kind") == "dd" and r.get("llmobs") is False and "error" not in r:
            base.setdefault(r["scenario"], []).append(r.get("delivered_spans_per_s", 0))
    for r in results:
        b = base.get(baseline_of(r.get("scenario", "")) or "")
        if b and "error" not in r and r.get("kind") == "dd":
            mean = sum(b) / len(b)
            r["apm_only_delivered_mean"] = mean
            r["ratio_to_apm_only"] = r.get("delivered_spans_per_s", 0) / mean if mean else None


def render_table(hdr, rows):
    """Columns padded to their widest cell, the first left-aligned, a rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths)))
             for row in [hdr] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_dd_table(results):
    hdr = ["scenario", "run", "2xx", "non-2xx", "refused", "accepted/s", "sent",
           "delivered/s", "deliv/s load", "drain s", "CPU s", "CPU s/M", "peak RSS",
           "sink CPU", "p50/p99 ms", "LLM ev sent", "root/dl/bound", "vs APM",
           "CPU s by thread (load)"]
    rows = []
    for r in results:
        if r.get("kind") != "dd" or r.get("signal", "traces") != "traces":
            continue
        if "error" in r:
            rows.append([r["scenario"], "ERROR: " + r["error"].splitlines()[0]] +
                        [""] * (len(hdr) - 2))
            continue
        lb = r.get("llm_buffer") or {}
        rows.append([
            r["scenario"], str(r.get("run", 1)), str(r["status_2xx"]), str(r["non_2xx"]),
            str(r["requests_refused"]),
            "%.0f" % r["accepted_spans_per_s"],
            str(r["spans_sent"]),
            "%.0f" % r.get("delivered_spans_per_s", 0),
            "%.0f" % r.get("delivered_spans_per_s_load_window", 0),
            "%.2f" % r["drain_s"],
            "%.2f" % r["cpu_load_and_drain_s"],
            "%.2f" % r["cpu_s_per_million_spans"] if r.get("cpu_s_per_million_spans") else "?",
            "%.1f MiB" % (r["peak_rss_kib"] / 1024.0),
            "%.2f s" % r["sink_cpu_s"],
            "%.1f/%.1f" % (r["latency_p50_ms"], r["latency_p99_ms"])
            if r.get("latency_p99_ms") is not None else "-",
            str(r["llm_events_sent"]) if r.get("llm_events_sent") is not None else "-",
            "%s/%s/%s" % (lb.get("settled_by_root"), lb.get("settled_by_deadline"),
                          lb.get("forced_by_bound")) if lb else "-",
            "%.2f" % r["ratio_to_apm_only"] if r.get("ratio_to_apm_only") else "-",
            " ".join("%.1f" % c for c, *_ in r.get("thread_cpu_s", []) if c >= 0.05),
        ])
    if not rows:
        return ""
    return render_table(hdr, rows)


def fmt_signal_table(results):
    """Metrics and logs end to end: received = OTLP points or records accepted, delivered =
    what the sink counted (metrics: series points + sketches)."""
    hdr = ["scenario", "run", "2xx", "non-2xx", "refused", "unit", "received/s", "delivered",
           "delivered/s", "drain s", "CPU s", "CPU s/M recv", "peak RSS", "sink CPU",
           "p50/p99 ms", "dropped", "CPU s by thread (load)"]
    rows = []
    for r in results:
        if r.get("kind") != "dd" or r.get("signal", "traces") == "traces":
            continue
        if "error" in r:
            rows.append([r["scenario"], "ERROR: " + r["error"].splitlines()[0]] +
                        [""] * (len(hdr) - 2))
            continue
        drops = dict(r.get("points_dropped") or {}, **(r.get("exporter_dropped") or {}))
        rows.append([
            r["scenario"], str(r.get("run", 1)), str(r["status_2xx"]), str(r["non_2xx"]),
            str(r.get("requests_refused")), r["unit"],
            "%.0f" % r["accepted_per_s"],
            "%d" % r["items_delivered"] + (" (%d+%d)" % (r["sink_series_points"],
                                                        r["sink_sketches"])
                                           if r["signal"] == "metrics" else ""),
            "%.0f" % r["delivered_per_s"],
            "%.2f" % r["drain_s"],
            "%.2f" % r["cpu_load_and_drain_s"],
            "%.2f" % r["cpu_s_per_million_items"] if r.get("cpu_s_per_million_items") else "?",
            "%.1f MiB" % (r["peak_rss_kib"] / 1024.0),
            "%.2f s" % r["sink_cpu_s"],
            "%.1f/%.1f" % (r["latency_p50_ms"], r["latency_p99_ms"])
            if r.get("latency_p99_ms") is not None else "-",
            ",".join("%s=%s" % kv for kv in drops.items()) or "-",
            " ".join("%.1f" % c for c, *_ in r.get("thread_cpu_s", []) if c >= 0.05),
        ])
    if not rows:
        return ""
    return render_table(hdr, rows)


def fmt_table(results):
    hdr = ["scenario", "req/s", "spans/s", "accepted", "CPU s", "CPU %", "us/span",
           "idle RSS", "peak RSS", "CPU s by thread"]
    rows = []
    for r in results:
        if r.get("kind") in ("dd", "dd-check"):
            continue
        if "error" in r:
            rows.append([r["scenario"], "ERROR: " + r["error"].splitlines()[0]] +
                        [""] * (len(hdr) - 2))
            continue
        rows.append([
            r["scenario"],
            "%.1f" % r["req_per_s"],
            "%.0f" % r["spans_per_s"],
            str(r["accepted_spans"]) if r["accepted_spans"] is not None else "?",
            "%.2f" % r["receiver_cpu_s"],
            "%.0f" % r["receiver_cpu_pct"],
            "%.2f" % r["cpu_us_per_span"] if r["cpu_us_per_span"] else "?",
            "%.1f MiB" % (r["idle_rss_kib"] / 1024.0),
            "%.1f MiB" % (r["peak_rss_kib"] / 1024.0),
            " ".join("%.1f" % c for c, *_ in r.get("thread_cpu_s", []) if c >= 0.05),
        ])
    if not rows:
        return ""
    return render_table(hdr, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin", nargs="?", default=os.path.join(ROOT, "build", "otel2dd"),
                    help="otel2dd binary (default build/otel2dd)")
    ap.add_argument("--bodies", default=os.path.join(HERE, "out", "bodies"))
    ap.add_argument("--out", default=os.path.join(HERE, "out", "results.json"))
    ap.add_argument("--duration", type=int, default=10, help="seconds per h2load run")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--streams", type=int, default=10, help="h2load -m for gRPC")
    ap.add_argument("--scenario", action="append", default=[],
                    help="run only these (repeatable): %s" % ", ".join(
                        list(SCENARIOS) + list(EXTRA)))
    ap.add_argument("--extra", action="store_true",
                    help="also run the 10- and 1000-span bodies")
    ap.add_argument("--h2load", default=shutil.which("h2load") or "h2load")
    ap.add_argument("--load", choices=("loadgen", "h2load"), default="loadgen",
                    help="the load generator of the trace scenarios: loadgen with the 64 "
                         "distinct bodies (default), or h2load replaying one body (for "
                         "comparison with earlier figures)")
    ap.add_argument("--loadgen", default=None,
                    help="tests/bench/loadgen binary (default: next to the otel2dd binary)")
    ap.add_argument("--loadgen-threads", type=int, default=1, help="loadgen -t")
    ap.add_argument("--no-stamp-ids", action="store_true",
                    help="loadgen without --stamp-ids: the 64 bodies' ids repeat")
    ap.add_argument("--dd", action="store_true",
                    help="end to end through the Datadog exporter: %s" % ", ".join(DD_ORDER))
    ap.add_argument("--dd-sql-cache", choices=("on", "off"), default="on",
                    help="exporters.datadog.traces.obfuscation.cache.enabled (the 64 bodies "
                         "repeat, so with it on every query after the first rotation is a hit)")
    ap.add_argument("--dd-flush-interval", default=None,
                    help="exporters.datadog.traces.flush_interval (default: otel2dd's)")
    ap.add_argument("--dd-queue-mib", type=int, default=None,
                    help="exporters.datadog.sending_queue.max_size_mib (default: otel2dd's)")
    ap.add_argument("--dd-storage", default=None,
                    help="exporters.datadog.sending_queue.storage: the disk queue in this "
                         "directory (emptied before each scenario)")
    ap.add_argument("--dd-fsync", choices=("batch", "never"), default="batch",
                    help="sending_queue.fsync with --dd-storage")
    ap.add_argument("--perf", action="store_true",
                    help="dd scenarios: perf record -g the otel2dd process during the load "
                         "(<logs dir>/<scenario>.perf.data)")
    ap.add_argument("--perf-call-graph", default="fp",
                    help="perf record --call-graph (fp; dwarf for the Release build, which "
                         "has no frame pointers)")
    ap.add_argument("--dd-check-n", type=int, default=100,
                    help="requests per transport in the %s cross-check" % DD_CHECK)
    ap.add_argument("--llm", action="store_true",
                    help="LLM Obs end to end on the tmix100 body, with the APM-only baseline "
                         "on the same body: %s" % ", ".join(LLM_ORDER))
    ap.add_argument("--llm-ids", choices=("rotate", "repeat"), default="rotate",
                    help="tmix100 scenarios: rotate = rewrite the body's 10 trace ids every "
                         "--llm-rotate-ms while h2load runs (default); repeat = replay the "
                         "same ids in every request")
    ap.add_argument("--llm-rotate-ms", type=float, default=1.0)
    ap.add_argument("--llm-buffer-timeout", default=None,
                    help="exporters.datadog.llmobs.trace_buffer.timeout (default otel2dd's)")
    ap.add_argument("--llm-buffer-max-spans", type=int, default=None)
    ap.add_argument("--llm-buffer-mib", type=int, default=None,
                    help="exporters.datadog.llmobs.trace_buffer.max_size_mib")
    ap.add_argument("--signals", action="store_true",
                    help="metrics and logs end to end through the Datadog exporters: %s "
                         "(and by name: dd-metrics-cumul-grpc, dd-metrics-cumul-http1)"
                         % ", ".join(SIGNALS_ORDER))
    ap.add_argument("--cumul-rotate-ms", type=float, default=1.0,
                    help="dd-metrics-cumul-*: copy the next cumulative collection into the "
                         "replayed body this often")
    ap.add_argument("--rps", type=float, default=None,
                    help="h2load --rps: requests a second per connection (an offered rate "
                         "below capacity, so that no request is refused and CPU per item is "
                         "that of the items delivered; default: as fast as answered)")
    ap.add_argument("--preview-mib", type=int, default=0,
                    help="dd scenarios: extensions.preview on with this max_size_mib "
                         "(default 0: off), for the preview's cost per span")
    ap.add_argument("--runs", type=int, default=1,
                    help="run the whole scenario list this many times, interleaved")
    ap.add_argument("--redaction", choices=sorted(REDACTION), default="off",
                    help="processors.redaction for every scenario: off, builtins (every "
                         "built-in pattern) or drop (drop_message_contents)")
    args = ap.parse_args()
    Receiver.processors = REDACTION[args.redaction]
    args.bin = os.path.abspath(args.bin)
    if not os.access(args.bin, os.X_OK):
        die("otel2dd binary not found or not executable: %s" % args.bin)
    if shutil.which(args.h2load) is None and not os.access(args.h2load, os.X_OK):
        die("h2load not found (Debian: apt-get install nghttp2-client)")
    args.loadgen = os.path.abspath(args.loadgen or os.path.join(os.path.dirname(args.bin),
                                                                "loadgen"))
    if args.load == "loadgen" and not os.access(args.loadgen, os.X_OK):
        die("loadgen not found: %s (cmake --build build --target loadgen)" % args.loadgen)
    allsc = dict(SCENARIOS, **EXTRA)
    allsc.update(DD_SCENARIOS)
    allsc[DD_CHECK] = None
    names = list(args.scenario)
    if args.dd:
        names += [n for n in DD_ORDER if n not in names]
    if args.llm:
        names += [n for n in LLM_ORDER if n not in names]
    if args.signals:
        names += [n for n in SIGNALS_ORDER if n not in names]
    if not names:
        names = DEFAULT_ORDER + (list(EXTRA) if args.extra else [])
    for n in names:
        if n not in allsc:
            die("unknown scenario %s" % n)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="otel2dd-bench-")
    load_before = os.getloadavg()
    results = []
    for run in range(1, args.runs + 1):
        for n in names:
            sys.stderr.write("bench: %s (run %d) ...\n" % (n, run))
            rdir = workdir if args.runs == 1 else os.path.join(workdir, "run%d" % run)
            os.makedirs(rdir, exist_ok=True)
            try:
                if n == DD_CHECK:
                    r = run_dd_check(args, rdir, args.h2load)
                elif n in DD_SCENARIOS:
                    r = run_dd_scenario(n, allsc[n], args, rdir, args.h2load)
                else:
                    r = run_scenario(n, allsc[n], args, rdir, args.h2load)
            except Exception as e:  # keep going: one broken transport should not hide others
                r = {"scenario": n, "error": str(e)}
            r["run"] = run
            results.append(r)
    add_llm_ratios(results)
    meta = {
        "binary": args.bin,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"nproc": os.cpu_count(), "uname": " ".join(os.uname()),
                 "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "h2load": subprocess.run([args.h2load, "--version"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT).stdout.decode().strip(),
        "load": args.load, "loadgen": args.loadgen,
        "git": subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode().strip(),
        "logs": workdir,
        "argv": sys.argv[1:],
        "redaction": args.redaction,
    }
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    for table in (fmt_table(results), fmt_dd_table(results), fmt_signal_table(results)):
        if table:
            print(table)
    for r in results:
        if r.get("kind") == "dd-check" and "checks" in r:
            print("%s: %s: fake intake decoded %s spans, otel2dd sent %s, requests carried "
                  "%s" % (r["scenario"], "OK" if r["ok"] else "FAILED", r["intake_spans"],
                          r["spans_sent"], r["spans_2xx"]))
    for r in results:
        for note in r.get("notes", []):
            print("note: %s: %s" % (r["scenario"], note))
    print("results: %s (otel2dd logs in %s)" % (args.out, workdir))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
