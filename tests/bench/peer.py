#!/usr/bin/python3
"""otel2dd side by side with fluent-bit (issue 14's yardstick). See README.md, "Side by side
with fluent-bit".

    tests/bench/peer.py /path/to/fluent-bit [--otel2dd build-bench/otel2dd] [--runs 3]

Builds nothing: the fluent-bit binary (v5.1.1, built from its own source outside this
repository, with the opentelemetry input and the null output) is the first argument.

fluent-bit runs ingest only: its opentelemetry input on 127.0.0.1 and a free port, the null
output, a config written here (FluentBit.CONFIG). otel2dd runs the whole pipeline: both OTLP
receivers, the Datadog exporter sending traces and stats to sink_intake.py (which counts the
spans it decodes), LLM Obs on for the LLM mix. Both get the same bodies from the same driver
(driver.py), HTTP/1.1 and gRPC; fluent-bit advertises SETTINGS_MAX_CONCURRENT_STREAMS 1, so
its gRPC runs use one stream a connection (-m 1), otel2dd's --o2d-streams (10).

Per run (fluent-bit and otel2dd interleaved, --runs times for each mix and transport):
  spans/s      fluent-bit: spans of the requests answered OK / the driver's time.
               otel2dd: spans the sink counted by the end of the load / the load's wall time
               ("delivered"); also spans the sink counted in all / load start -> otel2dd
               exited after draining ("incl. drain").
  CPU us/span  utime+stime of the process from the start of the load to its exit after
               SIGTERM (wait4 rusage minus /proc/<pid>/stat at the start), per span
               ingested (fluent-bit) or counted at the sink (otel2dd): the drain is part of
               the cost. fluent-bit's exit waits for its null output to take what is queued.
  peak RSS     VmHWM at the end of the load and while the process exits (the larger).
and once per mix and transport, without timing: instructions per span, from a callgrind run
of --cg-requests requests (counters zeroed once the process is ready, so start-up is left
out; otel2dd's count includes its drain), with otel2dd's stage profile (stages.py).
The table gives medians and min-max, and the ratios issue 14 targets.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import driver  # noqa: E402
import stages  # noqa: E402

# mix: (body, otel2dd's llmobs setting, CPU-per-span target as a fraction of fluent-bit's)
MIXES = {
    "apm": ("t100", None, 0.65),
    "llm": ("tmix100", True, 0.85),
}
SPEED_TARGET = 2.0  # otel2dd delivered spans/s over fluent-bit's ingest spans/s


def free_port():
    """A port free on 127.0.0.1 right now (fluent-bit takes a port number, not 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_rusage(proc, timeout):
    """SIGTERM; poll wait4 with a deadline. (exit code, rusage, VmHWM seen while exiting)."""
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    hwm = 0
    while True:
        try:
            hwm = max(hwm, bench.proc_status(proc.pid).get("VmHWM", 0))
        except (OSError, ValueError):
            pass
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru, hwm
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("pid %d did not exit within %ds of SIGTERM" % (proc.pid,
                                                                                timeout))
        time.sleep(0.002)


class FluentBit:
    """fluent-bit with the opentelemetry input and the null output on free 127.0.0.1 ports.
    Its defaults otherwise (opentelemetry input: successful_response_code 201, http2 on,
    buffer_max_size 4M; the HTTP server's workers 1; no mem_buf_limit, so memory is not
    bounded); grace 1 (seconds to wait for pending flushes on SIGTERM; the default 5)."""
    CONFIG = """[SERVICE]
    flush        1
    grace        1
    log_level    warn
    http_server  on
    http_listen  127.0.0.1
    http_port    {mport}

[INPUT]
    name         opentelemetry
    listen       127.0.0.1
    port         {port}
{extra}
[OUTPUT]
    name         null
    match        *
"""

    def __init__(self, binary, workdir, name, workers=None):
        self.binary = binary
        self.port = free_port()
        self.mport = free_port()
        extra = "    http_server.workers %d\n" % workers if workers else ""
        self.cfg_path = os.path.join(workdir, "%s.fb.conf" % name)
        self.log_path = os.path.join(workdir, "%s.fb.log" % name)
        with open(self.cfg_path, "w") as f:
            f.write(self.CONFIG.format(port=self.port, mport=self.mport, extra=extra))
        self.proc = None
        self.wrapper = []

    def start(self, timeout=20):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.wrapper + [self.binary, "-c", self.cfg_path],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("fluent-bit exited with %s:\n%s" % (
                    self.proc.returncode, open(self.log_path, errors="replace").read()[-2000:]))
            for p in (self.port, self.mport):
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                except OSError:
                    return False
            return True
        bench.wait_until(ready, timeout, "fluent-bit to listen (%s)" % self.log_path)
        return self

    def input_records(self):
        """fluentbit_input_records_total of the opentelemetry input, or None."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/metrics" % self.mport,
                                        timeout=5) as r:
                m = json.load(r)
        except (OSError, ValueError):
            return None
        for name, v in (m.get("input") or {}).items():
            if name.startswith("opentelemetry"):
                return v.get("records")
        return None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def rotated_bodies(args, workdir, body):
    """h2load: the LLM mix's trace ids rotate while it replays the body (bench.IdRotator),
    for both processes alike; (bodies dir, rotators or None). loadgen needs none: its
    --stamp-ids gives every request its own ids."""
    if not body.startswith("tmix") or args.driver != "h2load":
        return args.bodies, None
    d = os.path.join(workdir, "bodies")
    os.makedirs(d, exist_ok=True)
    rots = []
    for transport in ("grpc", "http"):
        src = driver.body_file(args.bodies, body, transport)
        dst = os.path.join(d, os.path.basename(src))
        shutil.copyfile(src, dst)
        with open(os.path.join(args.bodies, "bodies.json")) as f:
            tids = json.load(f)[os.path.basename(src)]["trace_ids"]
        rots.append(bench.IdRotator(dst, tids, 0.001))
    return d, rots


def start_rot(rots):
    for r in rots or ():
        r.start()


def stop_rot(rots):
    """Stops and unmaps each rotator once (safe to call again, or before it started)."""
    for r in rots or ():
        if r.fd is None:
            continue
        r.stop_ev.set()
        if r.thread.ident is not None:
            r.thread.join(10)
        r.mm.close()
        os.close(r.fd)
        r.fd = None


def spans_per_body(args, body):
    with open(os.path.join(args.bodies, "bodies.json")) as f:
        return json.load(f)["%s.pb" % body]["spans"]


def run_fb(args, workdir, name, body, transport):
    res = {"peer": "fluent-bit", "body": body, "transport": transport}
    fb = FluentBit(args.fluent_bit, workdir, name, args.fb_workers)
    bodies, rots = rotated_bodies(args, workdir, body)
    try:
        fb.start()
        pid = fb.proc.pid
        cpu0 = bench.proc_cpu_s(pid)
        start_rot(rots)
        t0 = time.monotonic()
        d = driver.run_driver(args.driver, transport, fb.port, bodies, body, args.conns,
                              1, duration=args.duration,
                              items_per_body=spans_per_body(args, body))
        t1 = time.monotonic()
        stop_rot(rots)
        hwm = bench.proc_status(pid)["VmHWM"]
        res["input_records_load_end"] = fb.input_records()
        rc, ru, hwm2 = stop_rusage(fb.proc, 60)
        spans = d["items_ok"]
        res.update({"driver": {k: d[k] for k in ("cmd", "ok", "items_ok", "not_ok",
                                                  "duration_s")},
                    "exit_code": rc, "load_wall_s": t1 - t0, "spans": spans,
                    "spans_per_s": spans / d["duration_s"],
                    "cpu_s": ru.ru_utime + ru.ru_stime - cpu0,
                    "peak_rss_kib": max(hwm, hwm2)})
        res["cpu_us_per_span"] = 1e6 * res["cpu_s"] / spans if spans else None
        res["notes"] = []
        if d["not_ok"]:
            res["notes"].append("%d requests not answered OK" % d["not_ok"])
    finally:
        fb.kill()
        stop_rot(rots)
    return res


def o2d_args(args):
    """What bench.dd_exporters reads, defaults otherwise."""
    a = argparse.Namespace(**vars(args))
    a.dd_flush_interval = a.dd_queue_mib = a.dd_storage = None
    a.llm_buffer_timeout = a.llm_buffer_max_spans = a.llm_buffer_mib = None
    return a


def run_o2d(args, workdir, name, body, transport, llmobs):
    res = {"peer": "otel2dd", "body": body, "transport": transport, "llmobs": llmobs}
    sink = bench.Sink(workdir, name)
    rec = None
    bodies, rots = rotated_bodies(args, workdir, body)
    try:
        sink.start()
        rec = bench.Receiver(args.otel2dd, workdir, name,
                             exporters=bench.dd_exporters(sink.url, o2d_args(args),
                                                          llmobs=llmobs))
        rec.start()
        bench.dd_started(rec)
        if llmobs:
            bench.wait_until(lambda: bench.log_line(rec.lines(), "llmobs exporter started"),
                             20, "the llmobs exporter to start")
        pid = rec.proc.pid
        cpu0, scpu0 = bench.proc_cpu_s(pid), bench.proc_cpu_s(sink.proc.pid)
        port = rec.ports["grpc" if transport == "grpc" else "http"]
        start_rot(rots)
        t0 = time.monotonic()
        d = driver.run_driver(args.driver, transport, port, bodies, body, args.conns,
                              args.o2d_streams, duration=args.duration,
                              items_per_body=spans_per_body(args, body))
        t1 = time.monotonic()
        stop_rot(rots)
        hwm = bench.proc_status(pid)["VmHWM"]
        at_end = stages.sink_spans(stages.sink_counts_decoded(sink))
        rc, _drain, ru, hwm2 = rec.stop_rusage(timeout=120)
        t2 = time.monotonic()
        scpu = bench.proc_cpu_s(sink.proc.pid) - scpu0
        counts, src = sink.stop()
        spans = stages.sink_spans(counts)
        lines = rec.lines()
        ddt = bench.log_line(lines, bench.DD_TOTALS) or {}
        tot = bench.log_line(lines, "totals") or {}
        res.update({"driver": {k: d[k] for k in ("cmd", "ok", "items_ok", "not_ok",
                                                  "duration_s")},
                    "exit_code": rc, "load_wall_s": t1 - t0, "to_drained_s": t2 - t0,
                    "spans_at_load_end": at_end, "spans": spans,
                    "spans_per_s": at_end / (t1 - t0),
                    "spans_per_s_incl_drain": spans / (t2 - t0),
                    "cpu_s": ru.ru_utime + ru.ru_stime - cpu0, "sink_cpu_s": scpu,
                    "minor_faults": ru.ru_minflt,
                    "peak_rss_kib": max(hwm, hwm2), "spans_sent": ddt.get("spans_sent"),
                    "accepted": (tot.get("grpc_spans", 0) or 0) + (tot.get("http_spans", 0)
                                                                   or 0),
                    "refused": tot.get("%s_requests_refused" % transport),
                    "sink_counts": counts})
        res["cpu_us_per_span"] = 1e6 * res["cpu_s"] / spans if spans else None
        notes = []
        if spans != res["spans_sent"]:
            notes.append("the sink counted %d spans, otel2dd says %s sent" % (
                spans, res["spans_sent"]))
        if res["accepted"] != spans:
            notes.append("accepted %d spans, %d reached the sink" % (res["accepted"], spans))
        if res["refused"]:
            notes.append("%d requests refused (retry later)" % res["refused"])
        if d["not_ok"]:
            notes.append("%d requests not answered OK" % d["not_ok"])
        if (counts or {}).get("bad"):
            notes.append("the sink could not decode: %s" % counts["bad"])
        if rc != 0 or src != 0:
            notes.append("exit codes: otel2dd %s, sink %s" % (rc, src))
        res["notes"] = notes
    finally:
        if rec is not None:
            rec.kill()
        sink.kill()
        stop_rot(rots)
    return res


CG = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-line=no", "--vgdb=yes"]


def callgrind_total(path):
    _s, _a, total = stages.parse_callgrind(path)
    return total


def cg_fb(args, workdir, body, transport):
    name = "cg-fb-%s-%s" % (body, transport)
    out = os.path.join(workdir, "%s.callgrind.out" % name)
    fb = FluentBit(args.fluent_bit, workdir, name, args.fb_workers)
    fb.wrapper = CG + ["--callgrind-out-file=" + out]
    bodies, rots = rotated_bodies(args, workdir, body)
    try:
        fb.start(timeout=180)
        subprocess.run(["callgrind_control", "-z", str(fb.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        start_rot(rots)
        d = driver.run_driver(args.driver, transport, fb.port, bodies, body, args.cg_conns,
                              1, requests=args.cg_requests,
                              items_per_body=spans_per_body(args, body))
        stop_rot(rots)
        stop_rusage(fb.proc, 300)
    finally:
        fb.kill()
        stop_rot(rots)
    spans = d["items_ok"]
    total = callgrind_total(out)
    return {"peer": "fluent-bit", "body": body, "transport": transport, "spans": spans,
            "ir": total, "ir_per_span": total / spans if spans else None, "file": out,
            "not_ok": d["not_ok"]}


def cg_o2d(args, workdir, body, transport, llmobs):
    a = o2d_args(args)
    a.otel2dd, a.body, a.transport, a.llmobs = args.otel2dd, body, transport, llmobs
    a.conns, a.streams, a.requests = args.cg_conns, args.o2d_streams, args.cg_requests
    wd = os.path.join(workdir, "cg-o2d-%s-%s" % (body, transport))
    os.makedirs(wd, exist_ok=True)
    r = stages.run_callgrind(a, wd)
    selfc, arcs, total = stages.parse_callgrind(r["callgrind_out"])
    by_stage, funcs_of = stages.attribute_callgrind(selfc, arcs)
    spans = r["sink_spans"]
    return {"peer": "otel2dd", "body": body, "transport": transport, "spans": spans,
            "ir": total, "ir_per_span": total / spans if spans else None,
            "file": r["callgrind_out"], "not_ok": r["driver"]["not_ok"],
            "stages_ir_per_span": {s: v / spans for s, v in by_stage.items()} if spans else {},
            "stage_table": stages.stage_table(by_stage, funcs_of, spans, "Ir/span")}


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return statistics.median(xs), min(xs), max(xs)


def fmt_mm(xs, fmt):
    m, lo, hi = med(xs)
    if m is None:
        return "-"
    return (fmt % m) + " (" + (fmt % lo) + "-" + (fmt % hi) + ")"


def summarize(results, cg):
    rows = []
    ratios = []
    for mix in MIXES:
        for transport in ("http", "grpc"):
            rs = [r for r in results if r.get("mix") == mix and r["transport"] == transport
                  and "error" not in r]
            if not rs:
                continue
            fb = [r for r in rs if r["peer"] == "fluent-bit"]
            o2 = [r for r in rs if r["peer"] == "otel2dd"]
            for peer, group in (("fluent-bit", fb), ("otel2dd", o2)):
                if not group:
                    continue
                c = next((x for x in cg if x["peer"] == peer and x["mix"] == mix and
                          x["transport"] == transport and x.get("ir_per_span")), None)
                rows.append([
                    "%s %s" % (mix, "HTTP/1.1" if transport == "http" else "gRPC"), peer,
                    str(len(group)),
                    fmt_mm([r["spans_per_s"] for r in group], "%.0f"),
                    fmt_mm([r.get("spans_per_s_incl_drain") for r in group], "%.0f")
                    if peer == "otel2dd" else "-",
                    fmt_mm([r["cpu_us_per_span"] for r in group], "%.2f"),
                    "%.0f" % c["ir_per_span"] if c else "-",
                    fmt_mm([r["peak_rss_kib"] / 1024.0 for r in group], "%.1f")])
            if fb and o2:
                sp = med([r["spans_per_s"] for r in o2])[0] / med(
                    [r["spans_per_s"] for r in fb])[0]
                cpu = med([r["cpu_us_per_span"] for r in o2])[0] / med(
                    [r["cpu_us_per_span"] for r in fb])[0]
                ratios.append([mix, "HTTP/1.1" if transport == "http" else "gRPC",
                               "%.2f (target >= %.1f)" % (sp, SPEED_TARGET),
                               "%.2f (target <= %.2f)" % (cpu, MIXES[mix][2])])
    t1 = bench.render_table(["mix / transport", "process", "runs", "spans/s median (min-max)",
                             "incl. drain", "CPU us/span", "Ir/span", "peak RSS MiB"], rows)
    t2 = bench.render_table(["mix", "transport", "otel2dd/fluent-bit spans/s",
                             "otel2dd/fluent-bit CPU per span"], ratios) if ratios else ""
    return t1 + "\n\n" + t2


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fluent_bit", help="the fluent-bit binary (built outside the repo)")
    ap.add_argument("--otel2dd", default=os.path.join(bench.ROOT, "build-bench", "otel2dd"))
    ap.add_argument("--bodies", default=os.path.join(HERE, "out", "bodies"))
    ap.add_argument("--driver", choices=("h2load", "loadgen"), default=driver.DEFAULT_DRIVER)
    ap.add_argument("--loadgen", help="the loadgen binary (default: next to --otel2dd)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--o2d-streams", type=int, default=10,
                    help="gRPC streams a connection for otel2dd (fluent-bit: 1)")
    ap.add_argument("--fb-workers", type=int, default=None,
                    help="fluent-bit's http_server.workers (its default: 1)")
    ap.add_argument("--mix", action="append", choices=sorted(MIXES),
                    help="apm (t100) and/or llm (tmix100, LLM Obs on); default both")
    ap.add_argument("--transport", action="append", choices=("http", "grpc"),
                    help="default both")
    ap.add_argument("--cg-requests", type=int, default=100,
                    help="requests in each callgrind run (0: no callgrind runs)")
    ap.add_argument("--cg-conns", type=int, default=2)
    ap.add_argument("--dd-sql-cache", choices=("on", "off"), default="on",
                    help="exporters.datadog.traces.obfuscation.cache.enabled (the 64 bodies "
                         "repeat, so with it on every query after the first rotation is a hit)")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "peer.json"))
    args = ap.parse_args()
    args.fluent_bit = os.path.abspath(args.fluent_bit)
    args.otel2dd = os.path.abspath(args.otel2dd)
    driver.LOADGEN = os.path.abspath(args.loadgen or os.path.join(
        os.path.dirname(args.otel2dd), "loadgen"))
    for b in (args.fluent_bit, args.otel2dd) + ((driver.LOADGEN,)
                                                if args.driver == "loadgen" else ()):
        if not os.access(b, os.X_OK):
            bench.die("not an executable: %s" % b)
    mixes = args.mix or list(MIXES)
    transports = args.transport or ["http", "grpc"]
    workdir = tempfile.mkdtemp(prefix="otel2dd-peer-")
    load0 = os.getloadavg()
    results, cg = [], []
    for mix in mixes:
        body, llmobs, _t = MIXES[mix]
        for transport in transports:
            for run in range(1, args.runs + 1):
                for peer in ("fluent-bit", "otel2dd"):
                    name = "%s-%s-%s-%d" % (peer, mix, transport, run)
                    sys.stderr.write("peer: %s ...\n" % name)
                    try:
                        if peer == "fluent-bit":
                            r = run_fb(args, workdir, name, body, transport)
                        else:
                            r = run_o2d(args, workdir, name, body, transport, llmobs)
                    except Exception as e:  # keep going: show what ran
                        r = {"peer": peer, "body": body, "transport": transport,
                             "error": str(e)}
                    r.update({"mix": mix, "run": run})
                    sys.stderr.write("peer: %s: %s spans/s, %s us/span %s\n" % (
                        name, r.get("spans_per_s"), r.get("cpu_us_per_span"),
                        r.get("error") or r.get("notes") or ""))
                    results.append(r)
            if args.cg_requests:
                for peer in ("fluent-bit", "otel2dd"):
                    sys.stderr.write("peer: callgrind %s %s %s ...\n" % (peer, mix, transport))
                    try:
                        c = (cg_fb(args, workdir, body, transport) if peer == "fluent-bit"
                             else cg_o2d(args, workdir, body, transport, llmobs))
                    except Exception as e:
                        c = {"peer": peer, "body": body, "transport": transport,
                             "error": str(e)}
                    c["mix"] = mix
                    cg.append(c)
    meta = {"fluent_bit": args.fluent_bit, "otel2dd": args.otel2dd, "driver": args.driver,
            "argv": sys.argv[1:], "started_load": load0, "load_after": os.getloadavg(),
            "git": subprocess.run(["git", "-C", bench.ROOT, "describe", "--always",
                                   "--dirty"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL).stdout.decode().strip(),
            "fluent_bit_version": subprocess.run(
                [args.fluent_bit, "--version"], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT).stdout.decode().splitlines()[:1],
            "workdir": workdir, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "runs": results, "callgrind": cg}, f, indent=1, default=str)
    print(summarize(results, cg))
    for c in cg:
        if c.get("error"):
            print("callgrind %s %s %s: ERROR %s" % (c["peer"], c["mix"], c["transport"],
                                                    c["error"]))
        elif c.get("stage_table"):
            print("\notel2dd stages, %s %s (%d spans, %.0f Ir/span):\n%s" % (
                c["mix"], c["transport"], c["spans"], c["ir_per_span"], c["stage_table"]))
    for r in results:
        if r.get("error"):
            print("%s %s %s run %d: ERROR %s" % (r["peer"], r["mix"], r["transport"],
                                                 r["run"], r["error"]))
        for n in r.get("notes") or ():
            print("note: %s %s %s run %d: %s" % (r["peer"], r["mix"], r["transport"],
                                                 r["run"], n))
    print("results: %s (logs in %s)" % (args.out, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
