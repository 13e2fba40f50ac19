#!/usr/bin/python3
"""Start-up time and idle memory of otel2dd, over N fresh processes.

    /usr/bin/python3 tests/bench/startup.py [--bin build/otel2dd] [-n 20] [--json FILE]

Each run starts the binary with the built-in defaults except the addresses (127.0.0.1, the
health port picked free beforehand, the others ephemeral, so it can run beside anything) and
without DD_API_KEY, so nothing touches the network. It measures:

  start to healthy  from just before exec to the first 200 from GET / on the health port,
                    polled every millisecond over a fresh connection (what an orchestrator
                    sees; includes Python's own fork+exec of the binary)
  idle RSS          VmRSS from /proc/<pid>/status once healthy and again after --idle seconds
                    with no traffic (threads started, buffers not yet touched)

and prints the median and the maximum of each. --datadog adds the Datadog exporter (traces,
stats, LLM Obs, key check) with every endpoint on a closed 127.0.0.1 port: the threads and
buffers of a production process, and still no packet leaves the machine.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def health_status(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def one_run(binary, idle_s, datadog, timeout_s=10):
    hport = free_port()
    cfg = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"},
                                             "http": {"endpoint": "127.0.0.1:0"}}}},
        "extensions": {"health_check": {"endpoint": "127.0.0.1:%d" % hport}},
        "exporters": {"debug": {"verbosity": "basic"}},
        "service": {"telemetry": {"metrics": {"address": "127.0.0.1:0"}}},
    }
    if datadog:
        nowhere = "http://127.0.0.1:%d" % free_port()
        cfg["exporters"]["datadog"] = {"api": {"key": "bench-key", "endpoint": nowhere},
                                       "traces": {"endpoint": nowhere},
                                       "llmobs": {"endpoint": nowhere}}
    fd, path = tempfile.mkstemp(prefix="otel2dd-startup-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "OTEL_"))}
    try:
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "--config", path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = t0 + timeout_s
        while True:
            if health_status(hport) == 200:
                ready_s = time.monotonic() - t0
                break
            if p.poll() is not None:
                raise SystemExit("otel2dd exited with %d during start-up" % p.returncode)
            if time.monotonic() > deadline:
                p.kill()
                raise SystemExit("otel2dd not healthy within %ds" % timeout_s)
            time.sleep(0.001)
        rss_ready = rss_kib(p.pid)
        time.sleep(idle_s)  # the measurement interval itself: no traffic for idle_s
        rss_idle = rss_kib(p.pid)
        p.terminate()
        rc = p.wait(30)
        if rc != 0:
            raise SystemExit("otel2dd exited with %d on SIGTERM" % rc)
        return ready_s, rss_ready, rss_idle
    finally:
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("OTEL2DD_BIN",
                                                    os.path.join(ROOT, "build", "otel2dd")))
    ap.add_argument("-n", type=int, default=20, help="runs (default 20)")
    ap.add_argument("--idle", type=float, default=2.0, help="seconds idle before the 2nd RSS")
    ap.add_argument("--datadog", action="store_true",
                    help="with the Datadog exporter (endpoints on a closed local port)")
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    runs = [one_run(a.bin, a.idle, a.datadog) for _ in range(a.n)]
    ms = [r[0] * 1000 for r in runs]
    ready = [r[1] / 1024 for r in runs]
    idle = [r[2] / 1024 for r in runs]
    out = {
        "binary": a.bin, "runs": a.n, "datadog_exporter": a.datadog,
        "start_to_healthy_ms": {"median": round(statistics.median(ms), 1),
                                "max": round(max(ms), 1), "min": round(min(ms), 1)},
        "rss_at_healthy_mib": {"median": round(statistics.median(ready), 1),
                               "max": round(max(ready), 1)},
        "rss_idle_mib": {"median": round(statistics.median(idle), 1),
                         "max": round(max(idle), 1), "after_s": a.idle},
    }
    print("%-22s %8s %8s" % ("", "median", "max"))
    print("%-22s %8.1f %8.1f" % ("start to healthy (ms)", out["start_to_healthy_ms"]["median"],
                                 out["start_to_healthy_ms"]["max"]))
    print("%-22s %8.1f %8.1f" % ("RSS at healthy (MiB)", out["rss_at_healthy_mib"]["median"],
                                 out["rss_at_healthy_mib"]["max"]))
    print("%-22s %8.1f %8.1f" % ("RSS idle %gs (MiB)" % a.idle, out["rss_idle_mib"]["median"],
                                 out["rss_idle_mib"]["max"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
