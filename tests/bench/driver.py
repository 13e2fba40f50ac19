"""The load driver for peer.py and stages.py: one function, run_driver(), that sends OTLP
trace requests to a receiver and returns how many were answered OK.

Drivers:
  h2load   Debian's nghttp2-client (h2load 1.52), replaying one body file (-d) over HTTP/1.1
           (--h1) or gRPC (h2c, content-type application/grpc). It counts HTTP statuses
           only: a gRPC answer with :status 200 and grpc-status != 0 is "OK" to it, so the
           callers check the receiver's own counts (otel2dd: the sink's spans; fluent-bit:
           its input's records).
  loadgen  tests/bench/loadgen.c (our generator: HTTP/1.1 keep-alive and gRPC h2c over
           nghttp2), rotating the 64 distinct bodies of apm.bodies (for t100) or llm.bodies
           (for tmix100) with --stamp-ids (every request its own trace and span ids). It
           counts a gRPC answer OK only with grpc-status 0, and the spans of the requests
           answered OK (items_ok). The binary: driver.LOADGEN, $O2D_LOADGEN or build/loadgen.

Switching the default driver is the one line DEFAULT_DRIVER below.
"""
import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DRIVER = "loadgen"
LOADGEN = None  # the loadgen binary; peer.py and stages.py set it (next to otel2dd's)
LOADGEN_THREADS = 1
# body name -> the distinct-bodies file gen_bodies.js writes for loadgen (64 bodies each)
LOADGEN_BODIES = {"t100": "apm.bodies", "tmix100": "llm.bodies"}
GRPC_TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

H2_FINISHED = re.compile(r"finished in ([0-9.]+)(ms|s)")
H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
H2_REQ = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout")


def body_file(bodies, body, transport):
    """The file of body `body` (t100, tmix100, ...) for a transport: .grpc carries the
    5-byte gRPC message prefix, .pb is the bare request."""
    return os.path.join(bodies, "%s.%s" % (body, "grpc" if transport == "grpc" else "pb"))


def seconds(d):
    """h2load's -D takes whole seconds."""
    return str(max(1, int(round(float(d)))))


def h2load_cmd(transport, port, body_path, conns, streams, duration=None, requests=None,
               h2load="h2load"):
    """h2load's command line: either -D seconds or -n requests."""
    cmd = [h2load, "-c", str(conns)]
    cmd += ["-D", seconds(duration)] if requests is None else ["-n", str(requests)]
    if transport == "grpc":
        return cmd + ["-m", str(streams), "-d", body_path,
                      "-H", "content-type: application/grpc", "-H", "te: trailers",
                      "http://127.0.0.1:%d%s" % (port, GRPC_TRACES)]
    return cmd + ["--h1", "-d", body_path, "-H", "Content-Type: application/x-protobuf",
                  "http://127.0.0.1:%d/v1/traces" % port]


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
    return r


def run_h2load(transport, port, body_path, conns, streams, duration, requests, timeout):
    cmd = h2load_cmd(transport, port, body_path, conns, streams, duration, requests)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    r = parse_h2load(out)
    if "status_2xx" not in r or "duration_s" not in r:
        raise RuntimeError("could not parse h2load's output:\n%s" % out[-2000:])
    # h2load's "failed" counts non-2xx answers and transport errors ("errored") alike
    bad = r.get("req_failed", 0)
    return {"driver": "h2load", "cmd": " ".join(cmd), "rc": p.returncode, "ok": r["status_2xx"],
            "not_ok": bad, "duration_s": r["duration_s"], "parsed": r, "output": out}


def loadgen_path():
    for p in (LOADGEN, os.environ.get("O2D_LOADGEN"),
              os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "loadgen")):
        if p and os.access(p, os.X_OK):
            return p
    return None


def loadgen_bodies(bodies, body):
    """The loadgen bodies file (O2DLOAD1 records) standing for body `body`."""
    return os.path.join(bodies, LOADGEN_BODIES.get(body, body + ".bodies"))


def run_loadgen(transport, port, bodies, body, conns, streams, duration, requests, timeout):
    """tests/bench/loadgen (or $O2D_LOADGEN): distinct bodies in rotation. Its JSON result
    gives requests OK (2xx and, for gRPC, grpc-status 0) and the items (spans) they
    carried."""
    exe = loadgen_path()
    if exe is None:
        raise RuntimeError("loadgen not found: build it (cmake --build build --target "
                           "loadgen) and set O2D_LOADGEN, or use --driver h2load")
    path = loadgen_bodies(bodies, body)
    cmd = [exe, "--grpc" if transport == "grpc" else "--h1", "-f", path, "-c", str(conns),
           "-t", str(LOADGEN_THREADS), "--stamp-ids"]
    if transport == "grpc":
        cmd += ["-m", str(streams)]
    cmd += ["-D", seconds(duration)] if requests is None else ["-n", str(requests)]
    url = ("http://127.0.0.1:%d%s" % (port, GRPC_TRACES) if transport == "grpc"
           else "http://127.0.0.1:%d/v1/traces" % port)
    if transport != "grpc":
        cmd += ["-H", "Content-Type: application/x-protobuf"]
    cmd.append(url)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    try:
        r = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("loadgen exited %d without a JSON result: %s" % (
            p.returncode, (out + p.stderr.decode("utf-8", "replace"))[-2000:]))
    req = r.get("requests") or {}
    return {"driver": "loadgen", "cmd": " ".join(cmd), "rc": p.returncode,
            "ok": req.get("ok", 0), "items_ok": r.get("items_ok"),
            "not_ok": req.get("sent", 0) - req.get("ok", 0),
            "duration_s": r.get("duration_s"), "parsed": r, "output": out}


def run_driver(driver, transport, port, bodies, body, conns, streams, duration=None,
               requests=None, timeout=None, items_per_body=None):
    """Sends body `body` (t100, tmix100) from directory `bodies` to 127.0.0.1:port for
    `duration` seconds or `requests` requests over `transport` (http: HTTP/1.1, grpc: h2c
    with `streams` concurrent streams a connection), on `conns` connections. Returns
    {"ok": requests answered OK, "items_ok": the spans they carried, "not_ok": the others
    (errors, non-2xx, not answered), "duration_s": the driver's measured time, "cmd": its
    command line, ...}. h2load replays one body: items_ok is ok x items_per_body."""
    if timeout is None:
        timeout = (duration or 0) + 600
    if driver == "h2load":
        r = run_h2load(transport, port, body_file(bodies, body, transport), conns, streams,
                       duration, requests, timeout)
        r["items_ok"] = r["ok"] * items_per_body if items_per_body else None
        return r
    if driver == "loadgen":
        return run_loadgen(transport, port, bodies, body, conns, streams, duration, requests,
                           timeout)
    raise ValueError("unknown driver %r" % driver)
