#!/usr/bin/python3
"""overload.py: no span lost or invented under overload (issue 14). Not run in CI (minutes).

For each sink mode and transport: a fresh sink_intake.py (--span-ids: it decodes every trace
payload and keeps the span ids) and a fresh otel2dd whose Datadog exporter sends to it; then
loadgen at full load for --duration seconds (default 60) with the distinct APM bodies and
--stamp-ids (every request carries span ids of its own); then the load stops, and the check
waits (polling /metrics with a deadline) until otel2dd's trace queue is empty and the sink's
count stands still, stops otel2dd (SIGTERM, its drain) and then the sink, and compares:

    acknowledged  spans of the requests loadgen got 2xx / grpc-status 0 for
    distinct      distinct span ids the sink decoded (a payload delivered twice counts once)
    decoded       every span the sink decoded (distinct + duplicates)

acknowledged must equal distinct. Refused requests (503 / UNAVAILABLE, otel2dd's queue full)
are not acknowledged and must not arrive. Requests without an answer (a transport error)
would make the result ambiguous: they are printed, and the check fails if there are any.

Sink modes: `normal` (answers at once), `slow` (each trace request answered --slow-ms later,
200 by default), `unavailable` (503 for --unavailable-s seconds, from 10 s into the run; the
exporter retries). Prints one table, writes JSON to --out, exits 1 on any mismatch.

    tests/bench/overload.py build/otel2dd [--duration 60] [--sink normal --sink slow]
                                          [--transport grpc --transport http1]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (Receiver, Sink, dd_exporters, proc_status)

PATHS = {"grpc": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
         "http1": "/v1/traces"}


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return bench.prom_samples(r.read().decode())


def metric(samples, name, **labels):
    return sum(v for n, lab, v in samples
               if n == name and all(lab.get(k) == v2 for k, v2 in labels.items()))


class DdArgs:
    """The subset of bench.py's options dd_exporters() reads."""
    llm_buffer_timeout = llm_buffer_max_spans = llm_buffer_mib = None
    dd_flush_interval = dd_storage = None
    dd_fsync = "batch"

    def __init__(self, queue_mib):
        self.dd_queue_mib = queue_mib


def run_one(args, sink_mode, transport, workdir):
    name = "overload-%s-%s" % (sink_mode, transport)
    extra = ["--span-ids"]
    if sink_mode == "slow":
        extra += ["--delay-ms", str(args.slow_ms)]
    elif sink_mode == "unavailable":
        extra += ["--unavailable", "10:%g" % args.unavailable_s]
    sink = bench.Sink(workdir, name, extra).start()
    rec = bench.Receiver(args.bin, workdir, name,
                         exporters=bench.dd_exporters(sink.url, DdArgs(args.queue_mib),
                                                      llmobs=False))
    res = {"sink": sink_mode, "transport": transport}
    try:
        rec.start()
        port = rec.ports["grpc" if transport == "grpc" else "http"]
        cmd = [args.loadgen, "--grpc" if transport == "grpc" else "--h1", "-c",
               str(args.conns), "-m", str(args.streams), "-t", "1", "-D", str(args.duration),
               "--stamp-ids", "--timeout", "30", "--grace", "30", "-f", args.bodies_file,
               "http://127.0.0.1:%d%s" % (port, PATHS[transport])]
        res["loadgen_cmd"] = " ".join(cmd)
        t0 = time.monotonic()
        lg = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 120)
        if lg.returncode != 0:
            raise RuntimeError("loadgen exited %d: %s" % (lg.returncode, lg.stderr))
        out = json.loads(lg.stdout)
        res["loadgen"] = out
        # drain: the trace queue empty and the sink's count unchanged for a second
        deadline = time.monotonic() + args.drain_timeout
        last, stable_since = -1, None
        while True:
            s = scrape(rec.ports["metrics"])
            queued = metric(s, "otel2dd_exporter_queue_items", exporter="datadog_traces")
            got = sink.counts().get("spans", 0)
            now = time.monotonic()
            if got != last:
                last, stable_since = got, now
            if queued == 0 and now - stable_since >= 1.0:
                break
            if now > deadline:
                res["note"] = "queue not drained within %ds (%d items left)" % (
                    args.drain_timeout, queued)
                break
            time.sleep(0.2)
        res["drain_s"] = round(time.monotonic() - t0 - out["duration_s"], 2)
        s = scrape(rec.ports["metrics"])
        res["otel2dd"] = {
            "accepted_spans": metric(s, "otel2dd_receiver_accepted_items_total",
                                     signal="traces"),
            "refused_requests": metric(s, "otel2dd_receiver_refused_requests_total"),
            "sent_spans": metric(s, "otel2dd_exporter_sent_items_total",
                                 exporter="datadog_traces"),
            "retried_spans": metric(s, "otel2dd_exporter_retried_items_total",
                                    exporter="datadog_traces"),
            "dropped_spans": {lab.get("reason"): v for n, lab, v in s
                              if n == "otel2dd_exporter_dropped_items_total" and
                              lab.get("exporter") == "datadog_traces" and v},
        }
        res["otel2dd_exit"] = rec.stop(timeout=60)
    finally:
        rec.kill()
        counts, rc = sink.stop(timeout=120)
    res["sink_counts"] = {k: counts.get(k) for k in ("spans", "spans_distinct", "refused",
                                                     "status", "requests")}
    acked = out["items_ok"]
    res["acknowledged"] = acked
    res["distinct"] = counts.get("spans_distinct", 0)
    res["decoded"] = counts.get("spans", 0)
    refused = sum(v for k, v in out["status"].items() if k in ("503", "429"))
    if transport == "grpc":
        refused = sum(v for k, v in out["grpc_status"].items() if k in ("14", "8"))
    res["refused_requests"] = refused
    res["unanswered"] = out["errors_total"]
    res["ok"] = acked == res["distinct"] and out["errors_total"] == 0
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin", nargs="?", default=os.path.join(ROOT, "build", "otel2dd"))
    ap.add_argument("--loadgen", default=None, help="default: loadgen next to the otel2dd binary")
    ap.add_argument("--bodies", default=os.path.join(HERE, "out", "bodies"))
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--queue-mib", type=int, default=None,
                    help="the exporter's sending_queue.max_size_mib (default: otel2dd's)")
    ap.add_argument("--sink", action="append", choices=("normal", "slow", "unavailable"))
    ap.add_argument("--transport", action="append", choices=("grpc", "http1"))
    ap.add_argument("--slow-ms", type=float, default=200)
    ap.add_argument("--unavailable-s", type=float, default=20)
    ap.add_argument("--drain-timeout", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "overload.json"))
    args = ap.parse_args()
    args.loadgen = args.loadgen or os.path.join(os.path.dirname(os.path.abspath(args.bin)),
                                                "loadgen")
    args.bodies_file = os.path.join(args.bodies, "apm.bodies")
    for f in (args.bin, args.loadgen, args.bodies_file):
        if not os.path.exists(f):
            sys.exit("overload.py: %s is missing (build otel2dd and loadgen; run "
                     "`node tests/bench/gen_bodies.js %s`)" % (f, args.bodies))
    workdir = tempfile.mkdtemp(prefix="o2d-overload-")
    results = []
    for sink_mode in args.sink or ["normal", "slow"]:
        for transport in args.transport or ["grpc", "http1"]:
            r = run_one(args, sink_mode, transport, workdir)
            results.append(r)
            print("%-11s %-5s acknowledged %9d  distinct %9d  decoded %9d  refused req %6d  "
                  "unanswered %d  drain %.1fs  %s%s" % (
                      r["sink"], r["transport"], r["acknowledged"], r["distinct"],
                      r["decoded"], r["refused_requests"], r["unanswered"], r["drain_s"],
                      "OK" if r["ok"] else "MISMATCH",
                      (" (" + r["note"] + ")") if r.get("note") else ""), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    hdr = ["sink", "transport", "acked spans", "sink distinct", "sink decoded", "dup",
           "refused req", "unanswered", "acked/s", "otel2dd sent", "dropped", "drain s",
           "result"]
    rows = []
    for r in results:
        lg = r["loadgen"]
        rows.append([r["sink"], r["transport"], "{:,}".format(r["acknowledged"]),
                     "{:,}".format(r["distinct"]), "{:,}".format(r["decoded"]),
                     str(r["decoded"] - r["distinct"]), str(r["refused_requests"]),
                     str(r["unanswered"]),
                     "{:,.0f}".format(r["acknowledged"] / max(lg["duration_s"], 1e-9)),
                     "{:,.0f}".format(r["otel2dd"]["sent_spans"]),
                     json.dumps(r["otel2dd"]["dropped_spans"]), "%.1f" % r["drain_s"],
                     "OK" if r["ok"] else "**MISMATCH**"])
    print(bench.render_table(hdr, rows))
    print("results: %s" % args.out)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
