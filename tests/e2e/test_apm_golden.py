#!/usr/bin/python3
"""Golden APM fixtures through the real binary: for every tests/data/apm/NNN-*.json, writes
its "input" to a file, runs `$OTEL2DD_BIN translate [--config FILE] <file>` with the
fixture's "config" (exporters.datadog.traces.* keys, DD_SERVICE/DD_ENV/DD_VERSION in the
environment, "tags" as DD_TAGS) and compares agentPayload.tracerPayloads with "expect".

Matching: objects in "expect" are subsets of the output, except meta, metrics and tags, which
must match exactly; arrays match in length and element by element; numbers compare as numbers
whether printed as JSON numbers or decimal strings. A failure prints the fixture's rule.
A fixture's "now" is the clock the unit test passes in: here the binary reads the real one, so
starts computed from it are checked against the time of the run.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import sanitizer_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "data", "apm")
EXACT = ("meta", "metrics", "tags")


def as_num(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def match(exp, got, exact, path):
    if isinstance(exp, bool) or exp is None or isinstance(exp, str):
        return None if exp == got else f"{path}: want {exp!r}, got {got!r}"
    if isinstance(exp, (int, float)):
        g = as_num(got)
        if g is None or abs(g - exp) > 1e-9 * abs(exp):
            return f"{path}: want {exp!r}, got {got!r}"
        return None
    if isinstance(exp, dict):
        if not isinstance(got, dict):
            return f"{path}: want an object, got {got!r}"
        for k, v in exp.items():
            if k not in got:
                return f"{path}.{k}: missing"
            err = match(v, got[k], k in EXACT, f"{path}.{k}")
            if err:
                return err
        if exact:
            extra = sorted(set(got) - set(exp))
            if extra:
                return f"{path}: unexpected keys {extra}"
        return None
    if isinstance(exp, list):
        if not isinstance(got, list) or len(got) != len(exp):
            return f"{path}: want {len(exp)} elements, got {got!r}"
        for i, (e, g) in enumerate(zip(exp, got)):
            err = match(e, g, False, f"{path}[{i}]")
            if err:
                return err
        return None
    return f"{path}: cannot compare {exp!r}"


def yaml_config(cfg):
    lines = ["exporters:", "  datadog:"]
    if cfg.get("tags"):
        lines.append(f"    tags: {json.dumps(','.join(cfg['tags']))}")
    lines.append("    traces:")
    for key in ("span_name_as_resource_name", "compute_top_level_by_span_kind"):
        if key in cfg:
            lines.append(f"      {key}: {'true' if cfg[key] else 'false'}")
    if cfg.get("span_name_remappings"):
        lines.append("      span_name_remappings:")
        for k, v in cfg["span_name_remappings"].items():
            lines.append(f"        {json.dumps(k)}: {json.dumps(v)}")
    if cfg.get("ignore_resources"):
        lines.append("      ignore_resources:")
        for r in cfg["ignore_resources"]:
            lines.append(f"        - {json.dumps(r)}")
    return "\n".join(lines) + "\n"


def run_fixture(binary, path, tmp):
    with open(path) as f:
        fx = json.load(f)
    inp = os.path.join(tmp, "input.json")
    with open(inp, "w") as f:
        json.dump(fx["input"], f)
    cmd = [binary, "translate"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("DD_SERVICE", "DD_ENV", "DD_VERSION", "DD_TAGS")}
    cfg = fx.get("config") or {}
    for k in ("DD_SERVICE", "DD_ENV", "DD_VERSION"):
        if k in cfg:
            env[k] = cfg[k]
    if cfg.get("tags"):
        env["DD_TAGS"] = ",".join(cfg["tags"])  # read by the embedded default
    if any(k in cfg for k in ("span_name_as_resource_name", "compute_top_level_by_span_kind",
                              "span_name_remappings", "ignore_resources")):
        cfile = os.path.join(tmp, "config.yaml")
        with open(cfile, "w") as f:
            f.write(yaml_config(cfg))
        cmd += ["--config", cfile]
    cmd.append(inp)
    t0 = time.time_ns()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    t1 = time.time_ns()
    if p.returncode != 0 or sanitizer_report(p.stderr):
        return f"exit {p.returncode}: {p.stderr.strip()}", fx
    try:
        out = json.loads(p.stdout)
    except ValueError as e:
        return f"output is not JSON: {e}", fx
    got = out.get("agentPayload", {}).get("tracerPayloads", [])
    expect = fx["expect"]["payloads"]
    if "now" in fx:
        err = clock_window(fx, expect, got, t0, t1) or stats_window(out, t0, t1)
        if err:
            return err, fx
    if "stats_hits" in fx["expect"]:
        hits = sum(int(g["Hits"]) for p in out.get("stats", []) for s in p.get("Stats", [])
                   for b in s.get("Stats", []) for g in b.get("Stats", []))
        if hits != fx["expect"]["stats_hits"]:
            return f"stats: want {fx['expect']['stats_hits']} hits in all, got {hits}", fx
    return match(expect, got, False, "tracerPayloads"), fx


def stats_window(out, t0, t1):
    """Stats bucket a span by its end (start + duration): a start moved to now - duration puts
    the span in the bucket of the run's time, never in one of 1970."""
    starts = [b["Start"] for p in out.get("stats", []) for s in p.get("Stats", [])
              for b in s.get("Stats", [])]
    if not starts:
        return "no stats bucket"
    for b in starts:
        if not t0 - 10 * 10**9 < int(b) <= t1:
            return f"stats bucket starts at {b}, not at the time of the run ({t0}..{t1})"
    return None


def clock_window(fx, expect, got, t0, t1):
    """The fixture's "now" is the clock the unit test passes in; `otel2dd translate` reads the
    real one. A start expected at now - d must be, in the output, the real clock at the run
    (between t0 and t1) minus the same d; the expected start is then set to what came out."""
    now = int(fx["now"])
    for i, (ep, gp) in enumerate(zip(expect, got)):
        for j, (ec, gc) in enumerate(zip(ep.get("chunks", []), gp.get("chunks", []))):
            for k, (es, gs) in enumerate(zip(ec.get("spans", []), gc.get("spans", []))):
                if "start" not in es:
                    continue
                real_now = int(gs.get("start", 0)) + now - int(es["start"])
                if not t0 <= real_now <= t1:
                    return (f"tracerPayloads[{i}].chunks[{j}].spans[{k}].start: want the clock "
                            f"at the run ({t0}..{t1}) minus {now - int(es['start'])}, got "
                            f"{gs.get('start')!r}")
                es["start"] = gs["start"]
    return None


def main():
    binary = os.environ.get("OTEL2DD_BIN", os.path.join(ROOT, "build", "otel2dd"))
    probe = subprocess.run([binary, "translate", "--help"], capture_output=True, text=True)
    if probe.returncode != 0 or "otel2dd translate" not in probe.stdout:
        print(f"FAIL: `{binary} translate --help` exited {probe.returncode}\n"
              f"{probe.stdout}{probe.stderr}")
        return 1
    files = sorted(glob.glob(os.path.join(FIXTURES, "[0-9][0-9][0-9]-*.json")))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            err, fx = run_fixture(binary, path, tmp)
            if err:
                failed += 1
                print(f"FAIL {os.path.basename(path)}\n  rule: {fx['rule']}\n  {err}")
    print(f"{len(files)} fixtures, {failed} failed")
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main())
