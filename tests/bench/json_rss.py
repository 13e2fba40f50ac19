#!/usr/bin/env python3
"""json_rss.py: the receiver's memory for large OTLP/JSON bodies. For each otel2dd binary
given, a fresh process (bench.py's Receiver: quiet debug exporter, ephemeral ports on
127.0.0.1) gets the body once, then `--parallel` copies of it at once, each POSTed by curl to
/v1/traces as application/json; after each round it prints the HTTP statuses, the peak RSS
(VmHWM) and the RSS once the answers are in (VmRSS), from /proc/<pid>/status.

  node tests/bench/gen_json_bodies.js /tmp/json_bodies 21000    # t21000.json, ~19.8 MB
  tests/bench/json_rss.py /tmp/json_bodies/t21000.json OLD/otel2dd build/otel2dd
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def post(port, body, n):
    procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               "-H", "Content-Type: application/json",
                               "--data-binary", "@" + body,
                               "http://127.0.0.1:%d/v1/traces" % port],
                              stdout=subprocess.PIPE) for _ in range(n)]
    return [p.communicate(timeout=300)[0].decode() for p in procs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("body")
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--parallel", type=int, default=3)
    args = ap.parse_args()
    size = os.path.getsize(args.body)
    print("body %s: %d bytes" % (args.body, size))
    for binary in args.binaries:
        with tempfile.TemporaryDirectory() as tmp:
            rec = bench.Receiver(binary, tmp, "rss")
            # no fixed port: another otel2dd may hold the default :8888
            rec.config["service"] = {"telemetry": {"metrics": {"address": "127.0.0.1:0"}}}
            with open(rec.cfg_path, "w") as f:
                json.dump(rec.config, f, indent=1)  # JSON is YAML
            rec.start()
            pid = rec.proc.pid
            idle = status_kib(pid, "VmRSS")
            try:
                for n in (1, args.parallel):
                    codes = post(rec.ports["http"], args.body, n)
                    print("%-40s idle %7.1f MiB | %d at once: %s peak %7.1f MiB, after %7.1f MiB"
                          % (binary, idle / 1024, n, ",".join(codes),
                             status_kib(pid, "VmHWM") / 1024, status_kib(pid, "VmRSS") / 1024))
            finally:
                rec.stop()


if __name__ == "__main__":
    main()
