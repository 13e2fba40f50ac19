#!/usr/bin/python3
"""End-to-end: bearer token authentication on both receivers (extensions.bearertokenauth).

otel2dd reads its tokens from a file (the way the ECS task definition gives it one from
Secrets Manager); three kinds of client send with the right token, a wrong one and none:
curl (OTLP/HTTP), grpcio (OTLP/gRPC) and the OpenTelemetry JS SDK with
OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token> (the space percent-encoded, as the
SDKs require), over gRPC and HTTP. Then the file is rotated (a new token added, the old one
removed) and otel2dd follows it without a restart. Also: the 401 carries WWW-Authenticate,
the gRPC answer is UNAUTHENTICATED, failures are counted per protocol and reason in /metrics,
no token is ever logged, and wrong-token answers take as long whether the token matched
nothing or all but its last character (a loose check here; the comparison itself is over
SHA-256 digests with CRYPTO_memcmp, collector/receivers/auth.c).

    /usr/bin/python3 tests/e2e/test_auth.py -v
"""
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Otel2dd, wait_until  # noqa: E402
from otlp_client import PB, TRACE_EXPORT  # noqa: E402
from test_grpc import span, traces_req  # noqa: E402
from test_js_sdk import NODE, SENDER, js_deps_problem  # noqa: E402

import grpc  # noqa: E402

AUTH = {"auth": {"authenticator": "bearertokenauth"}}


def auth_config(path, extra=None):
    cfg = {"receivers": {"otlp": {"protocols": {"grpc": dict(AUTH), "http": dict(AUTH)}}},
           "extensions": {"bearertokenauth": {"filename": path}}}
    if extra:
        cfg["receivers"]["otlp"].update(extra)
    return cfg


def write_tokens(path, lines):
    """Written beside and renamed, as a secrets agent does."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, path)


def http_export(port, body, authorization=None, conn=None):
    """(status, headers dict lower-cased, body) of one OTLP/HTTP trace export."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        h = {"Content-Type": PB}
        if authorization is not None:
            h["Authorization"] = authorization
        c.request("POST", "/v1/traces", body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if own:
            c.close()


def grpc_export(port, body, authorization=None):
    """(grpc.StatusCode, details) of one OTLP/gRPC trace export."""
    md = [("authorization", authorization)] if authorization is not None else None
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        call = ch.unary_unary(TRACE_EXPORT, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        try:
            call(body, timeout=10, metadata=md)
        except grpc.RpcError as e:
            return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def js_send(protocol, port, spans, token, service="auth-js"):
    """What send_spans.js reports (a dict) and its exit code, with the token in
    OTEL_EXPORTER_OTLP_HEADERS as an application sets it."""
    url = "http://127.0.0.1:%d" % port
    env = dict(os.environ)
    if token is not None:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = "authorization=Bearer%20" + token
    r = subprocess.run([NODE, SENDER, "--protocol", protocol, "--url", url, "--spans",
                        str(spans), "--gzip", "off", "--timeout-ms", "5000", "--service", service],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = r.stdout.decode().strip().splitlines()
    return (json.loads(out[-1]) if out else {}), r.returncode


def metric(text, name, **labels):
    """The value of the sample of family name with exactly these labels, or None."""
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    prefix = "%s{%s} " % (name, want) if labels else name + " "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None


class AuthTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="otel2dd-auth-")
        self.path = os.path.join(self.dir, "tokens")
        self.tok_a = "tokA-" + secrets.token_hex(16)
        self.tok_b = "tokB-" + secrets.token_hex(16)
        write_tokens(self.path, ["# two apps", "app-a:" + self.tok_a, "app-b:" + self.tok_b])

    def tearDown(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)

    def assert_no_token_logged(self, o, tokens):
        for line in o.raw:
            for t in tokens:
                self.assertNotIn(t, line)

    def test_clients_rotation_and_counters(self):
        body = traces_req([span(1)], service="auth-curl")
        with Otel2dd(config=auth_config(self.path)) as o:
            # curl, OTLP/HTTP: right, wrong, none, another scheme.
            def curl(*hdr):
                args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                        "-H", "Content-Type: " + PB, "--data-binary", "@-"]
                for h in hdr:
                    args += ["-H", h]
                args.append("http://127.0.0.1:%d/v1/traces" % o.http_port)
                return subprocess.run(args, input=body, stdout=subprocess.PIPE,
                                      timeout=30).stdout.decode()
            self.assertEqual(curl("Authorization: Bearer " + self.tok_a), "200")
            self.assertEqual(curl("Authorization: bearer " + self.tok_b), "200")
            self.assertEqual(curl("Authorization: Bearer " + self.tok_a[:-1] + "x"), "401")
            self.assertEqual(curl(), "401")
            self.assertEqual(curl("Authorization: Basic " + self.tok_a), "401")
            status, headers, data = http_export(o.http_port, body)
            self.assertEqual(status, 401)
            self.assertEqual(headers.get("www-authenticate"), "Bearer")
            self.assertIn(b"authorization", data)

            # grpcio, OTLP/gRPC.
            self.assertEqual(grpc_export(o.grpc_port, body, "Bearer " + self.tok_a)[0],
                             grpc.StatusCode.OK)
            code, details = grpc_export(o.grpc_port, body, "Bearer " + self.tok_b + "x")
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
            self.assertIn("not valid", details)
            code, details = grpc_export(o.grpc_port, body)
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
            self.assertIn("missing authorization", details)
            o.wait_items("traces", 3)

            # The JS SDK over gRPC and OTLP/HTTP protobuf: the right token, a wrong one, none.
            problem = js_deps_problem()
            if problem is None:
                for proto, port in (("grpc", o.grpc_port), ("proto", o.http_port)):
                    rep, rc = js_send(proto, port, 30, self.tok_a)
                    self.assertEqual((rc, rep.get("sent")), (0, 30), (proto, rep))
                    rep, rc = js_send(proto, port, 5, "wrong" + self.tok_a)
                    self.assertEqual((rc, rep.get("sent")), (1, 0), (proto, rep))
                    rep, rc = js_send(proto, port, 5, None)
                    self.assertEqual((rc, rep.get("sent")), (1, 0), (proto, rep))
                o.wait_items("traces", 63)
            else:
                sys.stderr.write("JS SDK part skipped: %s\n" % problem)

            # Rotation: a new token added, then the old ones removed; no restart.
            tok_c = "tokC-" + secrets.token_hex(16)
            write_tokens(self.path, ["app-a:" + self.tok_a, "app-a:" + tok_c,
                                     "app-b:" + self.tok_b])
            wait_until(lambda: http_export(o.http_port, body, "Bearer " + tok_c)[0] == 200, 10,
                       "the added token to be accepted")
            self.assertEqual(http_export(o.http_port, body, "Bearer " + self.tok_a)[0], 200)
            write_tokens(self.path, ["app-a:" + tok_c])
            wait_until(lambda: http_export(o.http_port, body, "Bearer " + self.tok_a)[0] == 401,
                       10, "the removed token to be refused")
            self.assertEqual(grpc_export(o.grpc_port, body, "Bearer " + self.tok_b)[0],
                             grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(grpc_export(o.grpc_port, body, "Bearer " + tok_c)[0],
                             grpc.StatusCode.OK)
            # An unusable file keeps the tokens loaded before, and says so once.
            write_tokens(self.path, ["not a token"])
            o.wait_log(lambda l: l.get("msg", "").startswith("bearer token file unusable"),
                       timeout=10, what="the unusable file's warning")
            self.assertEqual(http_export(o.http_port, body, "Bearer " + tok_c)[0], 200)

            m = o.scrape()
            self.assertGreaterEqual(metric(m, "otel2dd_receiver_auth_failures_total",
                                           protocol="http", reason="missing"), 1)
            self.assertGreaterEqual(metric(m, "otel2dd_receiver_auth_failures_total",
                                           protocol="http", reason="bad_scheme"), 1)
            self.assertGreaterEqual(metric(m, "otel2dd_receiver_auth_failures_total",
                                           protocol="http", reason="wrong_token"), 2)
            self.assertGreaterEqual(metric(m, "otel2dd_receiver_auth_failures_total",
                                           protocol="grpc", reason="missing"), 1)
            self.assertGreaterEqual(metric(m, "otel2dd_receiver_auth_failures_total",
                                           protocol="grpc", reason="wrong_token"), 2)
            self.assertGreaterEqual(metric(m, "otel2dd_receiver_refused_requests_total",
                                           transport="http", signal="traces",
                                           reason="unauthenticated"), 4)
            self.assertGreaterEqual(metric(m, "otel2dd_receiver_tenant_accepted_items_total",
                                           tenant="app-a"), 3)
            self.assertIsNotNone(metric(m, "otel2dd_receiver_tenant_accepted_items_total",
                                        tenant="other"))
        self.assert_no_token_logged(o, [self.tok_a, self.tok_b, tok_c])

    def test_config_tokens_and_one_protocol(self):
        """Tokens in the configuration (as ${env:...} from the task's secret), auth on the
        HTTP receiver only: gRPC stays open."""
        body = traces_req([span(1)], service="auth-cfg")
        cfg = {"receivers": {"otlp": {"protocols": {"http": dict(AUTH)}}},
               "extensions": {"bearertokenauth": {"token": "${env:O2D_TEST_TOKEN}"}}}
        with Otel2dd(config=cfg, env=dict(os.environ, O2D_TEST_TOKEN=self.tok_a)) as o:
            self.assertEqual(http_export(o.http_port, body, "Bearer " + self.tok_a)[0], 200)
            self.assertEqual(http_export(o.http_port, body, "Bearer " + self.tok_b)[0], 401)
            self.assertEqual(grpc_export(o.grpc_port, body)[0], grpc.StatusCode.OK)
            m = o.scrape()
            self.assertIsNone(metric(m, "otel2dd_receiver_auth_failures_total",
                                     protocol="grpc", reason="missing"))
            self.assertEqual(metric(m, "otel2dd_receiver_auth_failures_total",
                                    protocol="http", reason="wrong_token"), 1)
        self.assert_no_token_logged(o, [self.tok_a])

    def test_wrong_token_timing(self):
        """Wrong tokens that match nothing and all but the last character are answered in the
        same time, within a loose bound (a shared 2-core machine is noisy; the comparison is
        constant-time by construction). Requests alternate on one keep-alive connection so
        that drift hits both kinds alike; medians of many tries."""
        body = b""
        near = self.tok_a[:-1] + ("0" if self.tok_a[-1] != "0" else "1")
        far = "".join("Z" for _ in self.tok_a)
        with Otel2dd(config=auth_config(self.path)) as o:
            c = http.client.HTTPConnection("127.0.0.1", o.http_port, timeout=10)
            times = {"near": [], "far": []}
            try:
                for i in range(400):
                    kind = ("near", "far")[i % 2]
                    tok = near if kind == "near" else far
                    t0 = time.perf_counter()
                    status, _, _ = http_export(o.http_port, body, "Bearer " + tok, conn=c)
                    times[kind].append(time.perf_counter() - t0)
                    self.assertEqual(status, 401)
                    if i % 50 == 49:  # 401 closes the connection: open a new one now and then
                        c.close()
                        c = http.client.HTTPConnection("127.0.0.1", o.http_port, timeout=10)
            finally:
                c.close()
        mn, mf = statistics.median(times["near"]), statistics.median(times["far"])
        sys.stderr.write("wrong-token answer medians: near %.1f us, far %.1f us\n" %
                         (mn * 1e6, mf * 1e6))
        # A systematic difference would show as a ratio far from 1 in medians of 200 each.
        self.assertLess(max(mn, mf) / min(mn, mf), 1.5)


if __name__ == "__main__":
    unittest.main()
