#!/usr/bin/python3
"""End-to-end tests of TLS on the OTLP receivers (collector/receivers/tls.c, grpc_server.c, http_server.c).

A throwaway CA and server certificates for 127.0.0.1 (IP SAN) are made at test time with the
`openssl` CLI in a temporary directory. Clients:
  - python3-grpcio with grpc.ssl_channel_credentials(CA) for OTLP/gRPC;
  - curl --cacert and http.client over ssl for OTLP/HTTP (protobuf and JSON);
  - raw sockets, python `ssl` and `openssl s_client` for what clients hide: plaintext on the
    TLS ports, garbage, a truncated ClientHello, silence, TLS 1.1, ALPN http/1.1 only, and
    a client that does not read while the server's output backs up inside TLS;
  - the OpenTelemetry JS SDK over TLS when node and tests/e2e/js/node_modules are there;
  - otel2dd itself with broken certificate settings, which must stop it with a message that
    names the file.
Every wait polls with a deadline.

    /usr/bin/python3 tests/e2e/test_tls.py [-v] [TestName ...]
"""
import http.client
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import BIN, Otel2dd, assert_no_sanitizer_report  # noqa: E402

import grpc  # noqa: E402
import test_grpc as tg  # noqa: E402  (protobuf classes, request builders, RawH2)
from hyperframe.frame import PingFrame, SettingsFrame  # noqa: E402

PKI = None  # the temporary directory with the certificates, made once


def openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed:\n%s" % (" ".join(args),
                                                         r.stderr.decode("utf-8", "replace")))
    return r


def make_pki():
    """ca.pem/ca.key; server.pem/server.key (EC P-256) and rsa.pem/rsa.key, both for
    IP:127.0.0.1 and signed by the CA; other.key (a key of no certificate); enc.key (an
    encrypted key); cert.der (the server certificate as DER); chain.pem (leaf + CA)."""
    global PKI
    if PKI is not None:
        return PKI
    d = tempfile.mkdtemp(prefix="otel2dd-tls-")
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=otel2dd test CA",
            cwd=d)
    for name, alg in (("server", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                      ("rsa", ["rsa:2048"])):
        openssl("req", "-newkey", *alg, "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=127.0.0.1", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", "san.cnf",
                cwd=d)
    openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            "other.key", cwd=d)
    openssl("pkey", "-in", "server.key", "-aes256", "-passout", "pass:secret", "-out",
            "enc.key", cwd=d)
    openssl("x509", "-in", "server.pem", "-outform", "DER", "-out", "cert.der", cwd=d)
    with open(os.path.join(d, "chain.pem"), "wb") as out:
        for n in ("server.pem", "ca.pem"):
            with open(os.path.join(d, n), "rb") as f:
                out.write(f.read())
    PKI = d
    return d


def pki(name):
    return os.path.join(make_pki(), name)


def tls_cfg(cert="server.pem", key="server.key", grpc_extra=None, http_extra=None, http=True):
    """TLS on both receivers; http=False leaves the HTTP receiver out (a section without an
    endpoint would otherwise turn it on at its default 0.0.0.0:4318)."""
    g = {"tls": {"cert_file": pki(cert), "key_file": pki(key)}}
    h = {"tls": {"cert_file": pki(cert), "key_file": pki(key)}}
    g.update(grpc_extra or {})
    h.update(http_extra or {})
    return {"protocols": {"grpc": g, "http": h} if http else {"grpc": g}}


def client_ctx(alpn=("h2",), verify=True):
    ctx = ssl.create_default_context(cafile=pki("ca.pem"))
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_connect(port, alpn=("h2",), timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return client_ctx(alpn).wrap_socket(raw, server_hostname="127.0.0.1")


def client_hello():
    """The bytes of a real TLS ClientHello, made with an in-memory SSLObject."""
    ctx = client_ctx()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[0] == 0x16 and len(hello) > 100, hello[:16]
    return hello


def closed_within(sock, timeout):
    """Waits for the peer to close; returns (seconds, bytes the server sent) or (None, b"")."""
    t0 = time.monotonic()
    got = b""
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, got
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return None, got
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0, got
        if not chunk:
            return time.monotonic() - t0, got
        got += chunk


def assert_not_plaintext_answer(tc, got, what):
    """What a TLS port may say to a non-TLS client: nothing, or a TLS alert record."""
    tc.assertTrue(got == b"" or got[0] == 0x15,
                  "%s: the server answered %r, not nothing or a TLS alert" % (what, got[:40]))


def grpc_channel(port, options=()):
    with open(pki("ca.pem"), "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    return grpc.secure_channel("127.0.0.1:%d" % port, creds, options=list(options))


def export(channel, spans, timeout=10, **kw):
    return tg.unary(channel, tg.TRACES)(tg.traces_req(spans, **kw), timeout=timeout)


def curl(url, body, ctype, cacert=True, extra=()):
    """POSTs with curl; returns (exit code, http code, stderr)."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
           "-H", "Content-Type: " + ctype, "--data-binary", "@-"]
    if cacert:
        cmd += ["--cacert", pki("ca.pem")]
    cmd += list(extra) + [url]
    r = subprocess.run(cmd, input=body, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode("utf-8", "replace")


def s_client(port, *args):
    """openssl s_client with the given options; returns (rc, all output)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile",
           pki("ca.pem")] + list(args)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def traces_json(n):
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "test-tls"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "%032x" % (i + 1), "spanId": "%016x" % (i + 1), "name": "op-%d" % i,
            "kind": 2, "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000100000000"} for i in range(n)]}]}]}).encode()


# ---- one shared instance with TLS on both receivers ----

class Shared(unittest.TestCase):
    o = None

    @classmethod
    def setUpClass(cls):
        cls.o = Otel2dd(tls_cfg()).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.o.stop()
        cls.o.__exit__(None, None, None)
        assert rc == 0, "otel2dd exited with %s" % rc
        # Hostile and plaintext clients are logged at debug level only, on both ports.
        noisy = [l for l in cls.o.logs() if l.get("level") == "error" or
                 (l.get("level") == "warn" and l.get("msg") == "microhttpd")]
        assert not noisy, "warnings about clients' TLS: %r" % noisy[:3]

    def setUp(self):
        self.base = self.o.items("traces")

    def wait_spans(self, n):
        self.o.wait_items("traces", self.base + n)
        self.assertEqual(self.o.items("traces"), self.base + n)

    def assert_serving(self):
        """Both receivers still answer a TLS client. Waits until otel2dd has logged the two
        spans, so that the next test's count starts after them (the log is read
        asynchronously and may trail the answers)."""
        before = self.o.items("traces")
        with grpc_channel(self.o.grpc_port) as ch:
            export(ch, [tg.span(1)])
        rc, code, err = curl("https://127.0.0.1:%d/v1/traces" % self.o.http_port,
                             traces_json(1), "application/json")
        self.assertEqual((rc, code), (0, "200"), err)
        self.o.wait_items("traces", before + 2)


class GrpcTlsTest(Shared):
    def test_listening_says_tls(self):
        for server in ("grpc", "http"):
            l = self.o.wait_log(lambda l: l.get("msg") == "listening" and
                                l.get("server") == server)
            self.assertIs(l.get("tls"), True, l)

    def test_grpcio_exports_spans(self):
        with grpc_channel(self.o.grpc_port) as ch:
            resp = export(ch, [tg.span(i) for i in range(100)])
            self.assertEqual(tg.trace_service_pb2.ExportTraceServiceResponse.FromString(resp)
                             .partial_success.rejected_spans, 0)
            export(ch, [tg.span(i) for i in range(50)])
        self.wait_spans(150)

    def test_grpcio_gzip_and_large_concurrent_calls(self):
        """Requests bigger than a TLS record and many streams at once: reads end mid-record
        and OpenSSL holds bytes epoll cannot see."""
        with grpc_channel(self.o.grpc_port) as ch:
            call = tg.unary(ch, tg.TRACES)
            futs = []
            for i in range(40):
                req = tg.traces_req([tg.span(i * 10 + j) for j in range(10)],
                                    pad=200000 if i % 4 == 0 else 0)
                futs.append(call.future(req, timeout=30,
                                        compression=grpc.Compression.Gzip if i % 2 else None))
            for f in futs:
                f.result()
        self.wait_spans(400)

    def test_raw_h2_with_and_without_alpn(self):
        """ALPN h2 is selected; a client that offers no ALPN is served HTTP/2 as well."""
        for alpn in (("h2", "http/1.1"), ()):
            s = tls_connect(self.o.grpc_port, alpn=alpn)
            self.assertEqual(s.selected_alpn_protocol(), "h2" if alpn else None)
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            h = RawTlsH2(s)
            h.wait(h.settings, what="SETTINGS over TLS")
            h.headers(1)
            h.data(1, tg.framed(tg.traces_req([tg.span(1)])), end=True)
            hdrs, body, _ = h.result(1)
            self.assertEqual(tg.grpc_status(hdrs), tg.GRPC_OK)
            h.close()
        self.wait_spans(2)

    def test_close_notify_answered(self):
        """A client's close_notify ends the connection with the server's close_notify (seen
        through an in-memory SSLObject, so that a plain TCP close cannot pass for it)."""
        raw = socket.create_connection(("127.0.0.1", self.o.grpc_port), timeout=10)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = client_ctx()
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python sets it: a bare EOF must fail
        obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname="127.0.0.1")

        def pump(step):
            while True:
                try:
                    return step()
                except ssl.SSLWantReadError:
                    raw.sendall(out.read())
                    chunk = raw.recv(65536)
                    if not chunk:
                        inc.write_eof()
                    else:
                        inc.write(chunk)
                finally:
                    if out.pending:
                        raw.sendall(out.read())
        pump(obj.do_handshake)
        self.assertEqual(obj.selected_alpn_protocol(), "h2")
        pump(lambda: obj.write(tg.PREFACE + SettingsFrame(0).serialize()))
        # Read the server's frames up to its SETTINGS ACK: nothing more is coming then.
        buf, acked = b"", False
        while not acked:
            buf += pump(lambda: obj.read(65536))
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                n = 9 + int.from_bytes(buf[:3], "big")
                acked |= buf[3] == 0x4 and buf[4] & 0x1
                buf = buf[n:]
        pump(obj.unwrap)  # raises SSLEOFError if the server closes without close_notify
        took, _ = closed_within(raw, 10)
        raw.close()
        self.assertIsNotNone(took)

    def test_alpn_without_h2_refused(self):
        with self.assertRaises(ssl.SSLError) as cm:
            tls_connect(self.o.grpc_port, alpn=("http/1.1",))
        self.assertIn("NO_APPLICATION_PROTOCOL", str(cm.exception).upper().replace(" ", "_"))
        rc, out = s_client(self.o.grpc_port, "-alpn", "http/1.1")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("no application protocol", out)
        self.assert_serving()

    def test_plaintext_h2c_closed_while_tls_client_works(self):
        with grpc_channel(self.o.grpc_port) as ch:
            export(ch, [tg.span(1)])  # a TLS connection open before
            s = socket.create_connection(("127.0.0.1", self.o.grpc_port), timeout=10)
            s.sendall(tg.PREFACE + SettingsFrame(0).serialize())
            took, got = closed_within(s, 10)
            s.close()
            self.assertIsNotNone(took, "a plaintext HTTP/2 client was not closed")
            assert_not_plaintext_answer(self, got, "h2c on the TLS port")
            export(ch, [tg.span(2)])  # the same channel goes on
        self.wait_spans(2)

    def test_plaintext_http1_closed(self):
        for port in (self.o.grpc_port, self.o.http_port):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 2\r\n\r\n{}")
            took, got = closed_within(s, 10)
            s.close()
            self.assertIsNotNone(took, "plaintext HTTP/1.1 on port %d was not closed" % port)
            assert_not_plaintext_answer(self, got, "HTTP/1.1 on port %d" % port)
        self.assert_serving()

    def test_garbage_closed(self):
        garbage = (b"\x00\xffGARBAGE\r\n" * 400)[:4096]
        for port in (self.o.grpc_port, self.o.http_port):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                s.sendall(garbage)
            except (ConnectionResetError, BrokenPipeError):
                pass
            took, got = closed_within(s, 10)
            s.close()
            self.assertIsNotNone(took, "garbage on port %d did not close the connection" % port)
            assert_not_plaintext_answer(self, got, "garbage on port %d" % port)
        self.assert_serving()

    def test_tls_then_not_http2(self):
        """A TLS client without ALPN that then speaks HTTP/1.1, or garbage, is closed after
        the server's SETTINGS (nghttp2 sends no GOAWAY to a peer without the HTTP/2 preface,
        as on the plaintext port)."""
        for payload in (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"\x00\xff" * 2000):
            s = tls_connect(self.o.grpc_port, alpn=())
            s.sendall(payload)
            got = b""
            s.settimeout(10)
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except (ConnectionResetError, ssl.SSLError):
                pass
            s.close()
            # The server's SETTINGS, then the close (a timeout would have raised above).
            self.assertEqual(got[3], 0x4, got[:40])
        self.assert_serving()

    def test_hello_then_hang_up(self):
        """Half a ClientHello, then the client closes: the server cleans up at once."""
        hello = client_hello()
        for port in (self.o.grpc_port, self.o.http_port):
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(hello[:len(hello) // 2])
                s.close()
        self.assert_serving()

    def test_tls11_refused_tls12_accepted(self):
        for port in (self.o.grpc_port, self.o.http_port):
            # SECLEVEL=0 so that the client itself does offer TLS 1.1.
            rc, out = s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("Cipher is (NONE)", out)  # no session was set up
            rc, out = s_client(port, "-tls1_2", "-alpn", "h2")
            self.assertEqual(rc, 0, out)
            self.assertIn("Protocol  : TLSv1.2", out)
            self.assertIn("Verify return code: 0 (ok)", out)
            self.assertRegex(out, r"Cipher is ECDHE-ECDSA-(AES\d+-GCM|CHACHA20)")
        rc, out = s_client(self.o.grpc_port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        self.assertIn("alert protocol version", out)

    def test_tls12_cbc_suite_refused(self):
        """Only AEAD suites for TLS 1.2 (and none that HTTP/2 forbids)."""
        for port in (self.o.grpc_port, self.o.http_port):
            rc, out = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256")
            self.assertNotEqual(rc, 0, out)

    def test_no_compression_no_renegotiation(self):
        rc, out = s_client(self.o.grpc_port, "-tls1_2")
        self.assertEqual(rc, 0, out)
        self.assertIn("Compression: NONE", out)
        self.assertIn("Secure Renegotiation IS supported", out)  # the extension, not the act
        # A client-initiated renegotiation ("R" in s_client) is refused.
        p = subprocess.Popen(["openssl", "s_client", "-connect",
                              "127.0.0.1:%d" % self.o.grpc_port, "-CAfile", pki("ca.pem"),
                              "-tls1_2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        out, _ = p.communicate(b"R\n", timeout=30)
        out = out.decode("utf-8", "replace")
        self.assertIn("RENEGOTIATING", out)
        self.assertRegex(out, r"(no renegotiation|alert|errno|error)")
        self.assert_serving()

    def test_session_resumption(self):
        """Session tickets: a second connection resumes the first one's session."""
        ctx = client_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # a TLS 1.2 session is there at once
        s1 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.o.grpc_port), 10),
                             server_hostname="127.0.0.1")
        sess = s1.session
        s1.close()
        s2 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.o.grpc_port), 10),
                             server_hostname="127.0.0.1", session=sess)
        self.assertTrue(s2.session_reused)
        s2.close()


class HttpTlsTest(Shared):
    def url(self, path="/v1/traces"):
        return "https://127.0.0.1:%d%s" % (self.o.http_port, path)

    def test_curl_protobuf_and_json(self):
        rc, code, err = curl(self.url(), tg.traces_req([tg.span(i) for i in range(7)]),
                             "application/x-protobuf")
        self.assertEqual((rc, code), (0, "200"), err)
        rc, code, err = curl(self.url(), traces_json(5), "application/json")
        self.assertEqual((rc, code), (0, "200"), err)
        rc, code, err = curl(self.url(), traces_json(3), "application/json",
                             extra=["--tlsv1.2", "--tls-max", "1.2", "--http1.1"])
        self.assertEqual((rc, code), (0, "200"), err)
        self.wait_spans(15)

    def test_curl_without_the_ca_fails_verification(self):
        rc, code, err = curl(self.url(), traces_json(1), "application/json", cacert=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("certificate", err.lower())

    def test_keep_alive_and_errors_over_tls(self):
        c = http.client.HTTPSConnection("127.0.0.1", self.o.http_port, timeout=30,
                                        context=client_ctx(alpn=None))
        for i in range(5):
            c.request("POST", "/v1/traces", body=traces_json(2),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        c.request("POST", "/v1/nope", body=b"{}", headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 404)
        big = tg.traces_req([tg.span(i) for i in range(10)], pad=300000)  # many TLS records
        c.request("POST", "/v1/traces", body=big,
                  headers={"Content-Type": "application/x-protobuf"})
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        c.close()
        self.wait_spans(20)

    def test_plaintext_and_tls_at_the_same_time(self):
        """A plaintext client that stays connected does not stop a TLS client."""
        s = socket.create_connection(("127.0.0.1", self.o.http_port), timeout=10)
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
        rc, code, err = curl(self.url(), traces_json(4), "application/json")
        self.assertEqual((rc, code), (0, "200"), err)
        took, got = closed_within(s, 10)
        s.close()
        self.assertIsNotNone(took)
        assert_not_plaintext_answer(self, got, "plaintext HTTP/1.1")
        self.wait_spans(4)


class RawTlsH2(tg.RawH2):
    """test_grpc.RawH2 over an established TLS socket."""

    def __init__(self, sock):
        import hpack
        self.sock = sock
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.frames = []
        self.eof = False
        self.sock.sendall(tg.PREFACE + SettingsFrame(0).serialize())


class BackpressureTlsTest(unittest.TestCase):
    def test_client_that_does_not_read(self):
        """PINGs over TLS without reading the ACKs: the server's writes block inside
        OpenSSL (WANT_WRITE), it stops reading, and once the client reads every PING is
        answered, including those OpenSSL had already decrypted when reading stopped."""
        with Otel2dd(tls_cfg(http=False), verbosity="quiet", http=False) as o:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.connect(("127.0.0.1", o.grpc_port))
            s = client_ctx().wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(tg.PREFACE + SettingsFrame(0).serialize())
            ping = PingFrame(0, opaque_data=b"backpres").serialize()
            batch = ping * 1928  # two full TLS records and a bit: reads stop mid-record
            s.setblocking(False)
            pend, sent = b"", 0
            deadline = time.monotonic() + 90
            # An SSL write that would block must be retried with the same bytes.
            while True:
                self.assertLess(time.monotonic(), deadline, "the server never stopped reading")
                pend = pend or batch
                try:
                    n = s.send(pend)
                except ssl.SSLWantWriteError:
                    if not select.select([], [s], [], 1.0)[1]:
                        break
                    continue
                except ssl.SSLWantReadError:
                    select.select([s], [], [], 1.0)
                    continue
                except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
                    self.fail("the server cut the connection after %d bytes: %r" % (sent, e))
                sent += n
                pend = pend[n:]
            pings = (sent + len(pend)) // len(ping)
            buf, acks, goaway, eof = b"", 0, False, False
            while acks < pings and not eof:
                self.assertLess(time.monotonic(), deadline, "ACKs missing: %d/%d" % (acks, pings))
                if s.pending() == 0:
                    select.select([s], [s] if pend else [], [], 1.0)
                if pend:
                    try:
                        n = s.send(pend)
                        pend = pend[n:]
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        pass
                try:
                    chunk = s.recv(1 << 16)
                    eof = not chunk
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except (ConnectionResetError, ssl.SSLEOFError):
                    chunk, eof = b"", True
                buf += chunk
                frames, buf = tg.split_frames(buf)
                acks += sum(1 for t, f in frames if t == 0x6 and f & 0x1)
                goaway |= any(t == 0x7 for t, _ in frames)
            self.assertGreater(pings, 1000)
            self.assertEqual(acks, pings)
            self.assertFalse(goaway)
            self.assertFalse(eof)
            s.close()


# ---- the handshake bound ----

class HandshakeBoundTest(unittest.TestCase):
    def check_silent_and_truncated(self, o, bound, slack):
        hello = client_hello()
        for port in (o.grpc_port, o.http_port):
            socks = []
            for data in (b"", hello[:5], hello[:len(hello) // 2]):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                if data:
                    s.sendall(data)
                socks.append((s, len(data)))
            results = [None] * len(socks)

            def wait(i, s):
                results[i] = closed_within(s, bound + slack)
            threads = [threading.Thread(target=wait, args=(i, s)) for i, (s, _) in
                       enumerate(socks)]
            for t in threads:
                t.start()
            # A TLS client on another connection is served meanwhile.
            if port == o.grpc_port:
                with grpc_channel(port) as ch:
                    export(ch, [tg.span(1)])
            else:
                rc, code, err = curl("https://127.0.0.1:%d/v1/traces" % port, traces_json(1),
                                     "application/json")
                self.assertEqual((rc, code), (0, "200"), err)
            for t in threads:
                t.join()
            for (s, n), (took, got) in zip(socks, results):
                s.close()
                self.assertIsNotNone(took, "port %d: a client that sent %d bytes of a "
                                     "handshake was not closed within %.1fs" %
                                     (port, n, bound + slack))
                self.assertGreater(took, bound * 0.5, "closed before the bound")
        o.wait_items("traces", 2)

    def test_short_bound_from_idle_settings(self):
        """max_connection_idle (gRPC) and idle_timeout (HTTP) shorter than 10 s bound the
        handshake."""
        cfg = tls_cfg(grpc_extra={"keepalive": {"server_parameters": {
            "max_connection_idle": "1s"}}}, http_extra={"idle_timeout": "1s"})
        with Otel2dd(cfg) as o:
            self.check_silent_and_truncated(o, 1.0, 4.0)

    def test_default_grpc_bound_is_10s(self):
        with Otel2dd(tls_cfg(http=False), http=False) as o:
            s = socket.create_connection(("127.0.0.1", o.grpc_port), timeout=10)
            s.sendall(client_hello()[:20])
            took, _ = closed_within(s, 15)
            s.close()
            self.assertIsNotNone(took, "not closed within 15 s")
            self.assertGreater(took, 9.0)


# ---- configuration errors stop the start ----

class ConfigErrorTest(unittest.TestCase):
    def run_with(self, proto, tls):
        cfg = Otel2dd({"protocols": {proto: {"tls": tls}}}).config
        fd, path = tempfile.mkstemp(prefix="otel2dd-tls-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        try:
            r = subprocess.run([BIN, "--config", path], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        finally:
            os.unlink(path)
        assert_no_sanitizer_report(r.stderr)
        return r.returncode, r.stderr.decode("utf-8", "replace")

    def expect_error(self, tls, *needles):
        for proto in ("grpc", "http"):
            rc, err = self.run_with(proto, tls)
            self.assertNotEqual(rc, 0, "%s started with %r:\n%s" % (proto, tls, err))
            lines = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
            errors = [l["msg"] for l in lines if l.get("level") == "error"]
            self.assertTrue(errors, err)
            msg = errors[0]
            self.assertIn("receivers.otlp.protocols.%s.tls" % proto, msg)
            for n in needles:
                self.assertIn(n, msg)
            self.assertFalse([l for l in lines if l.get("msg") == "listening" and
                              l.get("server") == proto], "it listened before failing")

    def test_only_cert_or_only_key(self):
        self.expect_error({"cert_file": pki("server.pem")}, "cert_file is set",
                          "key_file is not")
        self.expect_error({"key_file": pki("server.key")}, "key_file is set",
                          "cert_file is not")

    def test_missing_file(self):
        missing = os.path.join(make_pki(), "nope.pem")
        self.expect_error({"cert_file": missing, "key_file": pki("server.key")}, missing,
                          "cannot open", "No such file")
        self.expect_error({"cert_file": pki("server.pem"), "key_file": missing}, missing,
                          "key_file")

    def test_not_pem(self):
        self.expect_error({"cert_file": pki("cert.der"), "key_file": pki("server.key")},
                          pki("cert.der"), "no PEM certificate")
        self.expect_error({"cert_file": pki("server.pem"), "key_file": pki("san.cnf")},
                          pki("san.cnf"), "no PEM private key")
        # the two files swapped
        self.expect_error({"cert_file": pki("server.key"), "key_file": pki("server.pem")},
                          pki("server.key"), "no PEM certificate")
        self.expect_error({"cert_file": make_pki(), "key_file": pki("server.key")},
                          "not a regular file")

    def test_key_does_not_match(self):
        self.expect_error({"cert_file": pki("server.pem"), "key_file": pki("other.key")},
                          pki("other.key"), "does not match", pki("server.pem"))
        self.expect_error({"cert_file": pki("server.pem"), "key_file": pki("rsa.key")},
                          "does not match")

    def test_encrypted_key_no_prompt(self):
        self.expect_error({"cert_file": pki("server.pem"), "key_file": pki("enc.key")},
                          pki("enc.key"), "no PEM private key", "passphrase")

    def test_empty_file(self):
        empty = os.path.join(make_pki(), "empty.pem")
        open(empty, "w").close()
        self.expect_error({"cert_file": empty, "key_file": pki("server.key")}, empty, "empty")


class CertVariantsTest(unittest.TestCase):
    def test_rsa_key_and_full_chain(self):
        """An RSA certificate (ECDHE-RSA on TLS 1.2), and a cert_file with the CA behind
        the leaf (sent as the chain)."""
        with Otel2dd(tls_cfg(cert="rsa.pem", key="rsa.key")) as o:
            for port in (o.grpc_port, o.http_port):
                rc, out = s_client(port, "-tls1_2", "-alpn", "h2")
                self.assertEqual(rc, 0, out)
                self.assertRegex(out, r"Cipher is ECDHE-RSA-(AES\d+-GCM|CHACHA20)")
            with grpc_channel(o.grpc_port) as ch:
                export(ch, [tg.span(1)])
            o.wait_items("traces", 1)
        with Otel2dd(tls_cfg(cert="chain.pem")) as o:
            for port in (o.grpc_port, o.http_port):
                rc, out = s_client(port, "-showcerts")
                self.assertEqual(rc, 0, out)
                self.assertIn(" 1 s:CN = otel2dd test CA", out)
            rc, code, err = curl("https://127.0.0.1:%d/v1/traces" % o.http_port,
                                 traces_json(2), "application/json")
            self.assertEqual((rc, code), (0, "200"), err)
            o.wait_items("traces", 2)


# ---- the real OpenTelemetry JS SDK over TLS (optional) ----

JS_DIR = os.path.join(HERE, "js")
NODE = os.environ.get("NODE", shutil.which("node") or "node")


class JsSdkTlsTest(unittest.TestCase):
    def test_js_sdk_grpc_and_http_over_tls(self):
        if shutil.which(NODE) is None and not os.path.exists(NODE):
            self.skipTest("node not found")
        if not os.path.isdir(os.path.join(JS_DIR, "node_modules")):
            self.skipTest("tests/e2e/js/node_modules missing (npm ci there)")
        env = dict(os.environ)
        # The gRPC exporter's root certificates, and Node's for the HTTP exporters.
        env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = pki("ca.pem")
        env["NODE_EXTRA_CA_CERTS"] = pki("ca.pem")
        n = 600
        with Otel2dd(tls_cfg()) as o:
            total = 0
            for protocol, port in (("grpc", o.grpc_port), ("proto", o.http_port),
                                   ("http", o.http_port)):
                cmd = [NODE, "send_spans.js", "--protocol", protocol, "--url",
                       "https://127.0.0.1:%d" % port, "--spans", str(n), "--gzip", "on",
                       "--batch", "200"]
                r = subprocess.run(cmd, cwd=JS_DIR, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=120)
                out = r.stdout.decode("utf-8", "replace")
                ctx = "%s: rc %d\n%s\n%s" % (protocol, r.returncode, out[-2000:],
                                             r.stderr.decode("utf-8", "replace")[-2000:])
                self.assertEqual(r.returncode, 0, ctx)
                report = json.loads(out.strip().splitlines()[-1])
                self.assertEqual((report.get("sent"), report.get("failed")), (n, 0), ctx)
                total += n
                o.wait_items("traces", total)
            self.assertEqual(o.items("traces"), total)


def tearDownModule():
    if PKI is not None:
        shutil.rmtree(PKI, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
