#!/usr/bin/python3
"""End-to-end: client certificates (tls.client_ca_file) on both TLS receivers.

With tls.client_ca_file set, a client must present a certificate signed by one of its CAs:
grpcio and curl with the test CA's client certificate are served; without a certificate, or
with one from another CA, the gRPC handshake fails (OpenSSL refuses it) and HTTP answers 401
(libmicrohttpd only asks for the certificate over GnuTLS; the receiver checks it before the
first request of the connection is served). A client_ca_file without TLS, or holding no
certificate, stops the start with a message naming the key.

    /usr/bin/python3 tests/e2e/test_mtls.py -v
"""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import BIN, Otel2dd  # noqa: E402
from test_grpc import span, traces_req  # noqa: E402
from test_tls import curl, make_pki, openssl, pki, tls_cfg  # noqa: E402
from otlp_client import PB, TRACE_EXPORT  # noqa: E402

import grpc  # noqa: E402


def make_clients():
    """client.pem/client.key signed by the test CA; rogue.pem/rogue.key self-signed."""
    d = make_pki()
    if os.path.exists(os.path.join(d, "rogue.pem")):
        return
    with open(os.path.join(d, "client.cnf"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            "client.key", "-out", "client.csr", "-subj", "/CN=app-a", cwd=d)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.cnf",
            cwd=d)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2", "-subj", "/CN=rogue",
            cwd=d)


def read(name):
    with open(pki(name), "rb") as f:
        return f.read()


def grpc_export(port, cert=None):
    creds = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"),
        private_key=read(cert + ".key") if cert else None,
        certificate_chain=read(cert + ".pem") if cert else None)
    with grpc.secure_channel("127.0.0.1:%d" % port, creds) as ch:
        call = ch.unary_unary(TRACE_EXPORT, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        try:
            call(traces_req([span(1)], service="mtls"), timeout=10)
        except grpc.RpcError as e:
            return e.code()
    return grpc.StatusCode.OK


class MtlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        make_clients()

    def test_client_certificates(self):
        ca = {"tls": {"client_ca_file": pki("ca.pem")}}
        cfg = tls_cfg()
        for p in ("grpc", "http"):
            cfg["protocols"][p]["tls"].update(ca["tls"])
        body = traces_req([span(2)], service="mtls")
        with Otel2dd(config=cfg) as o:
            self.assertEqual(grpc_export(o.grpc_port, "client"), grpc.StatusCode.OK)
            self.assertEqual(grpc_export(o.grpc_port), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(grpc_export(o.grpc_port, "rogue"), grpc.StatusCode.UNAVAILABLE)
            url = "https://127.0.0.1:%d/v1/traces" % o.http_port
            rc, code, err = curl(url, body, PB, extra=["--cert", pki("client.pem"), "--key",
                                                       pki("client.key")])
            self.assertEqual((rc, code), (0, "200"), err)
            rc, code, err = curl(url, body, PB)
            self.assertEqual(code, "401", err)
            rc, code, err = curl(url, body, PB, extra=["--cert", pki("rogue.pem"), "--key",
                                                       pki("rogue.key")])
            self.assertIn(code, ("401", "000"), err)  # refused in the handshake, or answered 401
            o.wait_items("traces", 2)
            m = o.scrape()
            self.assertIn('otel2dd_receiver_refused_requests_total{transport="http",'
                          'signal="traces",reason="unauthenticated"}', m)

    def test_bad_settings(self):
        def start(extra):
            cfg = Otel2dd(config=extra).config
            path = os.path.join(make_pki(), "mtls-bad.json")
            with open(path, "w") as f:
                import json
                json.dump(cfg, f)
            r = subprocess.run([BIN, "--config", path], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            return r.returncode, r.stderr.decode()
        rc, err = start({"protocols": {"grpc": {"tls": {"client_ca_file": pki("ca.pem")}}}})
        self.assertEqual(rc, 1, err)
        self.assertIn("receivers.otlp.protocols.grpc.tls.client_ca_file is set but TLS is off",
                      err)
        cfg = tls_cfg()
        cfg["protocols"]["http"]["tls"]["client_ca_file"] = pki("server.key")
        rc, err = start(cfg)
        self.assertEqual(rc, 1, err)
        self.assertIn("receivers.otlp.protocols.http.tls.client_ca_file", err)
        self.assertIn("holds no PEM certificate", err)


if __name__ == "__main__":
    unittest.main()
