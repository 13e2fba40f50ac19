#!/usr/bin/python3
"""Independent check of the APM stats encoding.

Runs the unit test binary test_stats with O2D_STATS_DUMP=<file>: its sample_payload_dump test
writes one StatsPayload (msgpack) built from a known input. This script decodes it with
Python's msgpack (not msgpack-c) and the DDSketch summaries with Python protobuf classes
generated here by protoc (not protobuf-c), then checks the keys and types against the agent's
tinylib/msgp encoding (pkg/proto/pbgo/trace/stats_gen.go), the counters against the input, and
the quantiles recomputed from the decoded bins (sketches-go's LogarithmicMapping, read from the
payload's own mapping) within 1% of the exact quantiles of the input.

The input (same formulas as tests/unit/test_stats.c sample_payload_dump): one group, service
"sample", resource "GET /sample"; 5000 ok spans of floor(1e3 * 1e8^(i/4999)) ns (1 us..100 s)
and 1000 error spans of 50 ms + 7919 ns * i.
"""
import math
import os
import subprocess
import sys
import tempfile

import msgpack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEC = 10**9
T0 = 1700000000 * SEC


def find_binary():
    if os.environ.get("O2D_TEST_STATS_BIN"):
        return os.environ["O2D_TEST_STATS_BIN"]
    build = os.environ.get("OTEL2DD_BUILD", os.path.join(ROOT, "build"))
    return os.path.join(build, "tests", "test_stats")


def trunc_ns(ns):
    """The agent's nsTimestampToFloat: keep sign, exponent and 9 stored mantissa bits."""
    import struct

    (b,) = struct.unpack("<Q", struct.pack("<d", float(ns)))
    (d,) = struct.unpack("<d", struct.pack("<Q", b & 0xFFFFF80000000000))
    return d


def load_pb2(tmp):
    subprocess.run(
        ["protoc", "--python_out=" + tmp, "-I", os.path.join(ROOT, "proto"),
         "datadog/sketches/ddsketch.proto"],
        check=True,
    )
    sys.path.insert(0, tmp)
    from datadog.sketches import ddsketch_pb2  # noqa: E402

    return ddsketch_pb2


def quantile(sk, q):
    """sketches-go DDSketch.GetValueAtQuantile over a decoded sketch."""
    gamma = sk.mapping.gamma
    offset = sk.mapping.indexOffset
    ra = 1 - 2 / (1 + gamma)
    multiplier = 1 / math.log(gamma)
    bins = list(sk.positiveValues.contiguousBinCounts)
    base = sk.positiveValues.contiguousBinIndexOffset
    total = sk.zeroCount + sum(bins) + sum(sk.positiveValues.binCounts.values())
    rank = q * (total - 1)
    if rank < sk.zeroCount:
        return 0.0
    rank -= sk.zeroCount
    n = 0.0
    for i, c in enumerate(bins):
        n += c
        if n > rank:
            return math.exp((base + i - offset) / multiplier) * (1 + ra)
    return math.exp((base + len(bins) - 1 - offset) / multiplier) * (1 + ra)


def check_keys(obj, keys, what):
    assert isinstance(obj, dict), what
    assert list(obj.keys()) == keys, (what, list(obj.keys()))


def main():
    binary = find_binary()
    if not os.path.exists(binary):
        # The unit tests are part of every build (cmocka is required), so a missing binary
        # means a broken build, not a check that may be skipped.
        print("FAIL: %s not built" % binary)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        pb2 = load_pb2(tmp)
        dump = os.path.join(tmp, "stats.msgpack")
        env = dict(os.environ, O2D_STATS_DUMP=dump)
        r = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert r.returncode == 0, r.stdout.decode(errors="replace")
        raw = open(dump, "rb").read()

        sp = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        check_keys(sp, ["AgentHostname", "AgentEnv", "Stats", "AgentVersion", "ClientComputed",
                        "SplitPayload"], "StatsPayload")
        assert sp["AgentHostname"] == "collector-1" and sp["AgentEnv"] == "agentenv"
        assert sp["ClientComputed"] is False and sp["SplitPayload"] is False
        assert len(sp["Stats"]) == 1
        cp = sp["Stats"][0]
        check_keys(cp, ["Hostname", "Env", "Version", "Stats", "Lang", "TracerVersion",
                        "RuntimeID", "Sequence", "AgentAggregation", "Service", "ContainerID",
                        "Tags", "GitCommitSha", "ImageTag"], "ClientStatsPayload")
        assert (cp["Hostname"], cp["Env"], cp["Version"]) == ("sample-host", "prod", "9.9.9")
        assert len(cp["Stats"]) == 1
        bucket = cp["Stats"][0]
        check_keys(bucket, ["Start", "Duration", "Stats", "AgentTimeShift"], "ClientStatsBucket")
        assert bucket["Start"] == T0 and bucket["Duration"] == 10 * SEC
        assert len(bucket["Stats"]) == 1
        g = bucket["Stats"][0]
        check_keys(g, ["Service", "Name", "Resource", "HTTPStatusCode", "Type", "DBType", "Hits",
                       "Errors", "Duration", "OkSummary", "ErrorSummary", "Synthetics",
                       "TopLevelHits", "SpanKind", "PeerTags", "IsTraceRoot", "GRPCStatusCode",
                       "HTTPMethod", "HTTPEndpoint"], "ClientGroupedStats")
        assert isinstance(g["OkSummary"], bytes) and isinstance(g["ErrorSummary"], bytes)
        assert (g["Service"], g["Name"], g["Resource"]) == ("sample", "op", "GET /sample")
        assert g["SpanKind"] == "server" and g["IsTraceRoot"] == 1 and g["PeerTags"] == []

        ok_in = [math.floor(1e3 * 1e8 ** (i / 4999.0)) for i in range(5000)]
        err_in = [50000000 + 7919 * i for i in range(1000)]
        assert g["Hits"] == 6000 and g["Errors"] == 1000 and g["TopLevelHits"] == 6000
        assert g["Duration"] == sum(ok_in) + sum(err_in), (g["Duration"], sum(ok_in) + sum(err_in))

        for key, values in (("OkSummary", ok_in), ("ErrorSummary", err_in)):
            sk = pb2.DDSketch()
            sk.ParseFromString(g[key])
            assert abs(sk.mapping.gamma - 1.01 / 0.99) < 1e-15, sk.mapping.gamma
            assert sk.mapping.indexOffset == 0
            assert sk.mapping.interpolation == pb2.IndexMapping.NONE
            assert sk.HasField("negativeValues") and len(sk.negativeValues.contiguousBinCounts) == 0
            assert sum(sk.positiveValues.contiguousBinCounts) + sk.zeroCount == len(values)
            truncated = sorted(trunc_ns(v) for v in values)
            exact = sorted(values)
            for q in (0.5, 0.75, 0.9, 0.95, 0.99, 1.0):
                got = quantile(sk, q)
                k = int(math.floor(q * (len(values) - 1)))
                # the sketch is exact to 1% on what it was given (durations truncated as the
                # agent does); against the raw input the truncation adds < 0.2%
                err_t = abs(got - truncated[k]) / truncated[k]
                err_x = abs(got - exact[k]) / exact[k]
                print("%s p%g: exact %d truncated %.0f sketch %.0f err %.4f%% (raw %.4f%%)"
                      % (key, q * 100, exact[k], truncated[k], got, err_t * 100, err_x * 100))
                assert err_t <= 0.01 + 1e-9, (key, q, got, truncated[k])
                assert err_x <= 0.0121, (key, q, got, exact[k])
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
