#!/usr/bin/python3
"""Where otel2dd's CPU goes, by pipeline stage: instructions per span from a callgrind run,
or CPU % from perf samples. See README.md, "Stage profile".

    tests/bench/stages.py --otel2dd build/otel2dd --body t100 --transport grpc --requests 200
    tests/bench/stages.py --otel2dd build/otel2dd --body tmix100 --llmobs --requests 200
    tests/bench/stages.py --otel2dd build/otel2dd --mode perf --duration 10
    tests/bench/stages.py --callgrind-out FILE --spans N      # attribute an existing file

callgrind mode: one otel2dd (whole pipeline: the Datadog exporter sends to sink_intake.py,
stats on, LLM Obs on with --llmobs) runs under `valgrind --tool=callgrind`; once its exporter
is ready the counters are zeroed (callgrind_control -z), the driver sends --requests requests,
otel2dd gets SIGTERM, drains its queue to the sink and exits, and callgrind writes its file.
So the count covers receiving, the whole pipeline, the drain and the exit, not the start-up.
Instructions per span = instructions / spans the sink counted.

perf mode: the same set-up without valgrind, `perf record -F 999 -g` on otel2dd while the
driver sends for --duration seconds; CPU % by stage over the samples (user and kernel).

Attribution ("a stage's inclusive cost minus nested stages"): every function is matched
against STAGES below (the first rule that matches names its stage). A function that matches
no rule belongs to the stage of whoever called it. callgrind: the self cost of an unmatched
function is shared between its callers' stages in proportion to the inclusive cost of each
call arc (callgrind records arcs, not whole stacks, so a helper called from two stages is
split by what each caller spent in it); perf: each sample has its whole stack, so the
innermost frame that matches a rule decides. Functions reached only from unmatched roots
(thread starts, main) land in "other", and the top ones are printed by name, so that a new
function that should belong to a stage shows up instead of vanishing.
"""
import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402 (Receiver, Sink, dd_exporters, IdRotator)
import driver  # noqa: E402

# Stage rules, in order: a function takes the stage of the first rule that matches it.
# "fn:" matches the function name (callgrind's recursion suffix 'N stripped), "ob:" the
# object (shared library) it is in; " in:RE" after a rule requires a caller matching RE. Unmatched functions inherit their callers' stages.
# Keep the specific prefixes (apm_sample, apm_pb, dlv_gzip) above the general ones (apm_,
# dlv_). Helpers add and rename functions: the "other" list at the end of the output shows
# what matched nothing.
STAGES = [
    ("compress", [r"fn:^deflate", r"fn:^ZSTD_(compress|CCtx|createCCtx|freeCCtx|initCStream"
                  r"|endStream|flushStream|CStream|c_)", r"fn:^ZSTD_.*CCtx",
                  r"fn:^dlv_(gzip|zstd|codec|compress)", r"fn:^compress_with$",
                  r"fn:^codec_"]),
    ("send", [r"ob:libcurl", r"fn:^curl_", r"fn:^Curl_", r"fn:^http_client_",
              r"fn:^client_main$"]),
    ("receive", [r"ob:libmicrohttpd", r"ob:libnghttp2", r"fn:^MHD_", r"fn:^nghttp2_",
                 r"fn:^grpc_", r"fn:^http_server", r"fn:^h2_track", r"fn:^acceptor",
                 r"fn:^ingest_request", r"fn:^ingest_encode", r"fn:^inflate_body$",
                 r"fn:^o2d_inflate", r"fn:^sync_waiter", r"fn:^status_map"]),
    # scan is otlp_pbcheck.c's walker; perf sees it under otlp_decode when otlp_pb_check is
    # inlined. "in:" restricts a rule to a function with a caller (at any depth) whose name
    # matches: sql_obfuscate.c has a static scan too, called from the translation.
    ("pre-validation", [r"fn:^otlp_pb_check", r"fn:^otlp_pbcheck",
                        r"fn:^scan$ in:^otlp_(decode|pb_check)"]),
    ("decode", [r"fn:^otlp_decode", r"fn:^otlp_json_decode", r"fn:^otlp_pb_decode",
                r"fn:^protobuf_c_message_unpack$", r"fn:^protobuf_c_message_free_unpacked$"]),
    ("sample", [r"fn:^apm_sample", r"fn:^o2d_sample"]),
    ("stats", [r"fn:^stats_", r"fn:^ddsketch_", r"fn:^datadog_stats_item$",
               r"fn:^emit_stats$", r"fn:^emit_agent_stats$", r"fn:^queue_stats$"]),
    ("LLM Obs", [r"fn:^llmobs_", r"fn:^lo_", r"fn:^emit_event$", r"fn:^events_encode$",
                 r"fn:^submit_traces$",
                 r"fn:^submit_logs$", r"fn:^poll_tick$"]),
    ("encode", [r"fn:^protobuf_c_message_pack", r"fn:^protobuf_c_message_get_packed_size$",
                r"fn:^datadog_trace_item", r"fn:^datadog_encode_agent_payload$",
                r"fn:^datadog_agent_trace_item$", r"fn:^datadog_split_item$",
                r"fn:^traces_encode$", r"fn:^agent_traces_encode$", r"fn:^apm_pb",
                r"fn:^apm_msgpack", r"fn:^o2d_msgpack",
                # apm_int.h's inline helpers of the writers (perf sees inlined frames)
                r"fn:^apm_(meta_entry_lens|noted_len|strlen0|span_of)$"]),
    ("translate", [r"fn:^apm_", r"fn:^sql_obfuscate", r"fn:^o2d_resource"]),
    ("redaction", [r"fn:^redact"]),
    # glue that is none of the stages above: named here so that its own cost (and what it
    # calls that matches nothing) is "other" and not the receive stage that called it
    ("other", [r"fn:^pipeline_", r"fn:^dd_(submit|admit|flush)$", r"fn:^dlv_",
               r"fn:^sender_main$", r"fn:^flush_main$", r"fn:^datadog_exporter_",
               r"fn:^ingest_(reserve|release|share|tenant)"]),
]
STAGE_ORDER = ["receive", "decode", "pre-validation", "translate", "sample", "stats",
               "LLM Obs", "encode", "compress", "send", "redaction", "other"]

def _rule(stage, text):
    rule, _, ctx = text.partition(" in:")
    kind, rx = rule.split(":", 1)
    return stage, kind, re.compile(rx), re.compile(ctx) if ctx else None


_RULES = [_rule(stage, r) for stage, rxs in STAGES for r in rxs]
_REC = re.compile(r"'\d+$")


def stage_of(fn, ob, callers=None):
    """The stage a function matches by name or object, or None. `callers`: a function
    giving the names of its callers at any depth (for the rules with "in:")."""
    name = _REC.sub("", fn)
    base = os.path.basename(ob or "")
    for stage, kind, rx, ctx in _RULES:
        if rx.search(name if kind == "fn" else base):
            if ctx is None:
                return stage
            if callers is not None and any(ctx.search(c) for c in callers()):
                return stage
    return None


# ---- callgrind ------------------------------------------------------------------------

def parse_callgrind(path):
    """(self {fn: Ir}, arcs {(caller, callee): inclusive Ir}, objects {fn: ob}, total Ir).
    A function is keyed by (ob, name). Handles name compression ("(id) name") and
    any number of position columns; only the first event (Ir) is read."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    space = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
             "cfl": "fl", "fn": "fn", "cfn": "fn"}
    selfc = collections.Counter()
    arcs = collections.Counter()
    npos = 1
    ob = cob = fn = cfn = None
    in_call = False
    total = None

    def resolve(kind, val):
        ns = names[space[kind]]
        if val.startswith("("):
            end = val.index(")")
            cid = val[1:end]
            rest = val[end + 1:].strip()
            if rest:
                ns[cid] = rest
                return rest
            return ns.get(cid, "(%s)" % cid)
        return val

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line[0] == "#":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) <= npos:
                    continue
                ir = int(parts[npos])
                if in_call:
                    arcs[((ob, fn), (cob or ob, cfn))] += ir
                    in_call = False
                    cob = None
                else:
                    selfc[(ob, fn)] += ir
                continue
            key, _, val = line.partition("=")
            if key in ("ob", "cob", "fl", "fi", "fe", "cfi", "cfl", "fn", "cfn") and _:
                v = resolve(key, val)
                if key == "ob":
                    ob = v
                elif key == "cob":
                    cob = v
                elif key == "fn":
                    fn = v
                    cob = None
                elif key == "cfn":
                    cfn = v
                continue
            if key == "calls" and _:
                in_call = True
                continue
            if line.startswith("positions:"):
                npos = len(line.split()[1:])
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    return selfc, arcs, total


def attribute_callgrind(selfc, arcs):
    """{stage: Ir}, {stage: [(Ir, fn), ...]} (the functions whose self cost went to it)."""
    funcs = set(selfc) | {a for a, _ in arcs} | {b for _, b in arcs}
    callers = collections.defaultdict(list)
    for (a, b), ir in arcs.items():
        if a != b and ir > 0:
            callers[b].append((a, ir))

    def ancestors(f):
        seen, todo = set(), [f]
        while todo:
            for a, _ir in callers.get(todo.pop(), ()):
                if a not in seen:
                    seen.add(a)
                    todo.append(a)
        return [_REC.sub("", a[1] or "") for a in seen]
    fixed = {f: stage_of(f[1] or "", f[0], lambda f=f: ancestors(f)) for f in funcs}
    dist = {f: ({fixed[f]: 1.0} if fixed[f] else {"other": 1.0}) for f in funcs}
    todo = [f for f in funcs if not fixed[f] and callers.get(f)]
    for _ in range(60):  # fixed point over the call graph (converges in its depth)
        changed = 0.0
        for f in todo:
            acc = collections.Counter()
            tot = 0
            for a, ir in callers[f]:
                for s, w in dist[a].items():
                    acc[s] += ir * w
                tot += ir
            new = {s: v / tot for s, v in acc.items()}
            old = dist[f]
            changed = max(changed, max(abs(new.get(s, 0) - old.get(s, 0))
                                       for s in set(new) | set(old)))
            dist[f] = new
        if changed < 1e-9:
            break
    by_stage = collections.Counter()
    funcs_of = collections.defaultdict(collections.Counter)
    for f, ir in selfc.items():
        for s, w in dist[f].items():
            by_stage[s] += ir * w
            funcs_of[s][f] += ir * w
    return by_stage, funcs_of


def fn_label(f):
    ob, name = f
    return "%s (%s)" % (name, os.path.basename(ob or "?"))


def short_label(f):
    """The function's name; an unnamed one (an address) with its object."""
    ob, name = f
    if name and not name.startswith("0x"):
        return name
    return "%s@%s" % (name, os.path.basename(ob or "?").split(".so")[0])


def stage_table(by_stage, funcs_of, spans, unit, top=3, other_top=15):
    total = sum(by_stage.values())
    rows = []
    for s in STAGE_ORDER + sorted(set(by_stage) - set(STAGE_ORDER)):
        v = by_stage.get(s, 0)
        if not v and s not in STAGE_ORDER[:10]:
            continue
        tops = ", ".join("%s %.0f%%" % (short_label(f), 100.0 * c / v)
                         for f, c in funcs_of[s].most_common(top)) if v else ""
        rows.append([s, "%.0f" % (v / spans) if spans else "-",
                     "%.1f %%" % (100.0 * v / total if total else 0), tops])
    rows.append(["total", "%.0f" % (total / spans) if spans else "-", "100 %", ""])
    out = bench.render_table(["stage", unit, "share", "top functions (self cost)"], rows)
    other = funcs_of.get("other") or {}
    if other:
        out += "\n\n\"other\", by function (self cost, %s):\n" % unit
        out += "\n".join("  %10.0f  %s" % (c / spans if spans else c, fn_label(f))
                         for f, c in other.most_common(other_top))
    return out


# ---- perf ------------------------------------------------------------------------------

def attribute_perf(script_text):
    """perf script output -> ({stage: samples}, {stage: Counter(leaf function)})."""
    by_stage = collections.Counter()
    leaves = collections.defaultdict(collections.Counter)
    frames = []

    def flush():
        if not frames:
            return
        stage = None
        for i, (fn, ob) in enumerate(frames):  # leaf first
            stage = stage_of(fn, ob, lambda i=i: [f for f, _ in frames[i + 1:]])
            if stage:
                break
        stage = stage or "other"
        by_stage[stage] += 1
        leaves[stage][(frames[0][1], frames[0][0])] += 1
        frames.clear()

    for line in script_text.splitlines():
        if not line.strip():
            flush()
            continue
        if line[0] in " \t":
            # "\t    7f12 name+0x1a (/usr/lib/x86_64-linux-gnu/libz.so.1.2.13)"
            m = re.match(r"\s+[0-9a-f]+\s+(.*?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)\s*$", line)
            if m:
                frames.append((m.group(1), m.group(2)))
        else:
            flush()
    flush()
    return by_stage, leaves


# ---- running otel2dd -------------------------------------------------------------------

def start_pipeline(args, workdir, name, wrapper=None):
    """The sink (it counts the spans it receives) and otel2dd with the Datadog exporter pointed at it."""
    sink = bench.Sink(workdir, name)
    sink.start()
    rec = bench.Receiver(args.otel2dd, workdir, name,
                         exporters=bench.dd_exporters(sink.url, args, llmobs=args.llmobs))
    if wrapper:
        rec.wrapper = wrapper
    rec.start(timeout=180 if wrapper else 20)
    bench.dd_started(rec, timeout=180 if wrapper else 20)
    if args.llmobs:
        bench.wait_until(lambda: bench.log_line(rec.lines(), "llmobs exporter started"),
                         180 if wrapper else 20, "the llmobs exporter to start")
    return sink, rec


def private_bodies(args, workdir):
    """A copy of the body this run replays (the rotator rewrites its trace ids), and the
    rotator, or None."""
    if not args.body.startswith("tmix") or args.driver != "h2load":
        return args.bodies, None  # loadgen --stamp-ids: every request its own ids
    d = os.path.join(workdir, "bodies")
    os.makedirs(d, exist_ok=True)
    path = driver.body_file(args.bodies, args.body, args.transport)
    dst = os.path.join(d, os.path.basename(path))
    shutil.copyfile(path, dst)
    with open(os.path.join(args.bodies, "bodies.json")) as f:
        tids = json.load(f)[os.path.basename(path)]["trace_ids"]
    return d, bench.IdRotator(dst, tids, 0.001)


def spans_per_body(args):
    with open(os.path.join(args.bodies, "bodies.json")) as f:
        return json.load(f)["%s.pb" % args.body]["spans"]


def sink_spans(counts):
    """Spans the sink decoded from trace payloads (sink_intake.py counts them itself)."""
    return ((counts or {}).get("items") or {}).get("/api/v0.2/traces", 0)


def sink_counts_decoded(sink):
    """The sink's counts once every trace payload it has received is decoded."""
    import urllib.request
    with urllib.request.urlopen(sink.url + "/_counts?wait=1", timeout=60) as r:
        return json.loads(r.read())


def run_callgrind(args, workdir):
    out = os.path.join(workdir, "callgrind.out.%p")
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
               "--dump-instr=no", "--dump-line=no", "--vgdb=yes"]
    sink, rec = start_pipeline(args, workdir, "stages", wrapper)
    res = {"mode": "callgrind"}
    try:
        pid = rec.proc.pid
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        bodies, rot = private_bodies(args, workdir)
        if rot:
            rot.start()
        port = rec.ports["grpc" if args.transport == "grpc" else "http"]
        d = driver.run_driver(args.driver, args.transport, port, bodies, args.body,
                              args.conns, args.streams, requests=args.requests,
                              items_per_body=spans_per_body(args))
        if rot:
            rot.stop()
        res["driver"] = {k: d[k] for k in ("cmd", "ok", "items_ok", "not_ok",
                                            "duration_s")}
        rc, drain_s, _ru, _hwm = rec.stop_rusage(timeout=600)
        res["exit_code"] = rc
        counts, _ = sink.stop()
        res["sink_spans"] = sink_spans(counts)
        res["sink_counts"] = counts
    finally:
        rec.kill()
        sink.kill()
    res["callgrind_out"] = out.replace("%p", str(pid))
    return res


def run_perf(args, workdir):
    sink, rec = start_pipeline(args, workdir, "stages")
    res = {"mode": "perf"}
    data = os.path.join(workdir, "perf.data")
    try:
        pid = rec.proc.pid
        bodies, rot = private_bodies(args, workdir)
        perf = subprocess.Popen(["perf", "record", "-F", str(args.perf_freq), "--call-graph",
                                 args.call_graph, "-p", str(pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rot:
            rot.start()
        port = rec.ports["grpc" if args.transport == "grpc" else "http"]
        d = driver.run_driver(args.driver, args.transport, port, bodies, args.body,
                              args.conns, args.streams, duration=args.duration,
                              items_per_body=spans_per_body(args))
        if rot:
            rot.stop()
        perf.send_signal(signal.SIGINT)
        perf.wait(120)
        res["driver"] = {k: d[k] for k in ("cmd", "ok", "items_ok", "not_ok",
                                            "duration_s")}
        rc, _drain, _ru, _hwm = rec.stop_rusage(timeout=120)
        res["exit_code"] = rc
        counts, _ = sink.stop()
        res["sink_spans"] = sink_spans(counts)
    finally:
        rec.kill()
        sink.kill()
    res["perf_data"] = data
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--otel2dd", default=os.path.join(bench.ROOT, "build", "otel2dd"))
    ap.add_argument("--bodies", default=os.path.join(HERE, "out", "bodies"))
    ap.add_argument("--body", default="t100", help="t100 (APM) or tmix100 (the LLM mix)")
    ap.add_argument("--llmobs", action="store_true",
                    help="exporters.datadog.llmobs on (the sink takes its events)")
    ap.add_argument("--transport", choices=("grpc", "http"), default="grpc")
    ap.add_argument("--driver", choices=("h2load", "loadgen"), default=driver.DEFAULT_DRIVER)
    ap.add_argument("--loadgen", help="the loadgen binary (default: next to --otel2dd)")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--mode", choices=("callgrind", "perf"), default="callgrind")
    ap.add_argument("--requests", type=int, default=200, help="callgrind: requests sent")
    ap.add_argument("--duration", type=float, default=10, help="perf: seconds of load")
    ap.add_argument("--perf-freq", type=int, default=999)
    ap.add_argument("--call-graph", default="dwarf,16384",
                    help="perf record --call-graph (fp if the build keeps frame pointers)")
    ap.add_argument("--callgrind-out", help="only attribute this callgrind file")
    ap.add_argument("--spans", type=int, help="with --callgrind-out: spans it covered")
    ap.add_argument("--dd-sql-cache", choices=("on", "off"), default="on",
                    help="exporters.datadog.traces.obfuscation.cache.enabled (the 64 bodies "
                         "repeat, so with it on every query after the first rotation is a hit)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    # what bench.dd_exporters reads
    args.dd_flush_interval = args.dd_queue_mib = args.dd_storage = None
    args.llm_buffer_timeout = args.llm_buffer_max_spans = args.llm_buffer_mib = None

    if args.callgrind_out:
        res = {"mode": "callgrind", "callgrind_out": args.callgrind_out,
               "sink_spans": args.spans}
    else:
        args.otel2dd = os.path.abspath(args.otel2dd)
        driver.LOADGEN = os.path.abspath(args.loadgen or os.path.join(
            os.path.dirname(args.otel2dd), "loadgen"))
        workdir = tempfile.mkdtemp(prefix="otel2dd-stages-")
        res = run_callgrind(args, workdir) if args.mode == "callgrind" else run_perf(args,
                                                                                    workdir)
        res["workdir"] = workdir
        want = res["driver"]["items_ok"]
        if res["sink_spans"] != want:
            print("note: the sink counted %s spans, the driver's OK answers carried %d" %
                  (res["sink_spans"], want))
    spans = res.get("sink_spans") or 0
    if res["mode"] == "callgrind":
        selfc, arcs, total = parse_callgrind(res["callgrind_out"])
        by_stage, funcs_of = attribute_callgrind(selfc, arcs)
        res["total_ir"] = total
        res["ir_per_span"] = total / spans if spans and total else None
        res["stages_ir"] = dict(by_stage)
        print("%s: %s Ir over %s spans = %.0f instructions a span" % (
            res["callgrind_out"], total, spans, total / spans if spans else 0))
        print(stage_table(by_stage, funcs_of, spans, "Ir/span"))
    else:
        p = subprocess.run(["perf", "script", "-i", res["perf_data"], "-F",
                            "comm,tid,ip,sym,dso"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=1800)
        by_stage, leaves = attribute_perf(p.stdout.decode("utf-8", "replace"))
        total = sum(by_stage.values())
        res["stages_samples"] = dict(by_stage)
        rows = [[s, str(by_stage.get(s, 0)), "%.1f %%" % (100.0 * by_stage.get(s, 0) / total
                                                          if total else 0),
                 ", ".join("%s %.0f%%" % (f[1], 100.0 * c / by_stage[s])
                           for f, c in leaves[s].most_common(3)) if by_stage.get(s) else ""]
                for s in STAGE_ORDER if by_stage.get(s) or s in STAGE_ORDER[:10]]
        print("%s: %d samples, %s spans delivered" % (res["perf_data"], total, spans))
        print(bench.render_table(["stage", "samples", "CPU %", "top leaf functions"], rows))
        other = leaves.get("other") or {}
        if other:
            print("\n\"other\", by leaf function (samples):")
            for (ob, fn), c in other.most_common(15):
                print("  %6d  %s (%s)" % (c, fn, os.path.basename(ob)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
