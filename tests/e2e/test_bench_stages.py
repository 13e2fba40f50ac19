#!/usr/bin/python3
"""tests/bench/stages.py's attribution: a callgrind file written here (name compression,
call arcs, an unnamed function in a shared object, a helper called from three stages) and a
perf script excerpt, with the cost of each stage worked out by hand. Nothing is run under
valgrind or perf; this checks the arithmetic the stage profile rests on."""
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import stages  # noqa: E402

# start_thread (libc, matches no rule: "other")
#   -> grpc_worker_main (receive) 690
#        -> otlp_decode (decode) 200 -> memcpy 100, protobuf_c_message_unpack (decode) 50
#        -> dd_submit ("other" by rule) 450 -> apm_translate (translate) 330 -> memcpy 30
#                                            -> memcpy 100
#   -> sender_main ("other" by rule) 300 -> deflate (compress) 200 -> 0x...5d80 (libz) 150
# memcpy's own 230 is split by what each caller spent in it: decode 100, other 100,
# translate 30.
CALLGRIND = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
positions: line
events: Ir
summary: 1000

ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6
fl=(1) ???
fn=(1) start_thread
0 10
cob=(2) /work/build/otel2dd
cfi=(2) receivers.c
cfn=(2) grpc_worker_main
calls=1 0
0 690
cob=(2)
cfi=(2)
cfn=(3) sender_main
calls=1 0
0 300

ob=(2)
fl=(2)
fn=(2)
0 40
cfn=(4) otlp_decode
calls=10 0
0 200
cfn=(5) dd_submit
calls=10 0
0 450

fn=(4)
0 50
cob=(1)
cfi=(1)
cfn=(6) __memcpy_avx_unaligned_erms
calls=20 0
0 100
cob=(3) /usr/lib/x86_64-linux-gnu/libprotobuf-c.so.1.0.0
cfi=(1)
cfn=(7) protobuf_c_message_unpack'2
calls=10 0
0 50

fn=(5)
0 20
cfn=(8) apm_translate
calls=10 0
0 330
cob=(1)
cfi=(1)
cfn=(6)
calls=5 0
0 100

fn=(8)
0 300
cob=(1)
cfi=(1)
cfn=(6)
calls=3 0
0 30

fn=(3)
0 100
cob=(4) /usr/lib/x86_64-linux-gnu/libz.so.1.2.13
cfi=(1)
cfn=(9) deflate
calls=2 0
0 200

ob=(1)
fl=(1)
fn=(6)
0 230

ob=(3)
fl=(1)
fn=(7)
0 50

ob=(4)
fl=(1)
fn=(9)
0 50
cfn=(10) 0x0000000000005d80
calls=9 0
0 150

fn=(10)
0 150

totals: 1000
"""

PERF = """otel2dd 101/102
\t    7f01 __memcpy_avx_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    5501 otlp_decode (/work/build/otel2dd)
\t    5502 grpc_worker_main (/work/build/otel2dd)

otel2dd 101/103
\t    7f02 0x5d80 (/usr/lib/x86_64-linux-gnu/libz.so.1.2.13)
\t    7f03 deflate (/usr/lib/x86_64-linux-gnu/libz.so.1.2.13)
\t    5503 sender_main (/work/build/otel2dd)

otel2dd 101/102
\t    7f01 __memcpy_avx_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    5504 start_thread (/usr/lib/x86_64-linux-gnu/libc.so.6)

otel2dd 101/102
\t    5505 scan (/work/build/otel2dd)
\t    5506 otlp_decode (/work/build/otel2dd)
\t    5507 grpc_worker_main (/work/build/otel2dd)

otel2dd 101/102
\t    5508 scan (/work/build/otel2dd)
\t    5509 sql_obfuscate_sql (/work/build/otel2dd)
\t    550a apm_translate (/work/build/otel2dd)

otel2dd 101/102
\t    ffff tcp_recvmsg ([kernel.kallsyms])
\t    7f09 recv (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    7f0a MHD_run_from_select (/usr/lib/x86_64-linux-gnu/libmicrohttpd.so.12)
"""


class StageRules(unittest.TestCase):
    def test_first_rule_wins(self):
        self.assertEqual(stages.stage_of("apm_sample", "otel2dd"), "sample")
        self.assertEqual(stages.stage_of("apm_translate", "otel2dd"), "translate")
        self.assertEqual(stages.stage_of("apm_pb_tracer_payload", "otel2dd"), "encode")
        self.assertEqual(stages.stage_of("dlv_gzip", "otel2dd"), "compress")
        self.assertEqual(stages.stage_of("dlv_dest_enqueue", "otel2dd"), "other")
        self.assertEqual(stages.stage_of("otlp_pb_check", "otel2dd"), "pre-validation")
        self.assertEqual(stages.stage_of("protobuf_c_message_unpack'2", "x"), "decode")
        self.assertEqual(stages.stage_of("0x1234", "/usr/lib/libcurl.so.4"), "send")
        self.assertIsNone(stages.stage_of("memcpy", "/usr/lib/libc.so.6"))
        # "in:": otlp_pbcheck.c's scan, not sql_obfuscate.c's
        self.assertEqual(stages.stage_of("scan'2", "x", lambda: ["scan", "otlp_decode"]),
                         "pre-validation")
        self.assertIsNone(stages.stage_of("scan", "x", lambda: ["sql_obfuscate_sql"]))
        self.assertIsNone(stages.stage_of("scan", "x"))


class Callgrind(unittest.TestCase):
    def setUp(self):
        fd, self.path = tempfile.mkstemp(suffix=".callgrind")
        with os.fdopen(fd, "w") as f:
            f.write(CALLGRIND)

    def tearDown(self):
        os.unlink(self.path)

    def test_parse(self):
        selfc, arcs, total = stages.parse_callgrind(self.path)
        self.assertEqual(total, 1000)
        self.assertEqual(sum(selfc.values()), 1000)
        libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
        o2d = "/work/build/otel2dd"
        self.assertEqual(selfc[(libc, "__memcpy_avx_unaligned_erms")], 230)
        self.assertEqual(arcs[((o2d, "otlp_decode"), (libc, "__memcpy_avx_unaligned_erms"))],
                         100)
        # cob= not given: the callee is in the caller's object
        self.assertEqual(arcs[((o2d, "grpc_worker_main"), (o2d, "dd_submit"))], 450)

    def test_attribution(self):
        selfc, arcs, _ = stages.parse_callgrind(self.path)
        by_stage, funcs_of = stages.attribute_callgrind(selfc, arcs)
        got = {s: round(v, 6) for s, v in by_stage.items() if v}
        self.assertEqual(got, {"receive": 40, "decode": 200, "translate": 330,
                               "compress": 200, "other": 230})
        other = {f[1]: round(c, 6) for f, c in funcs_of["other"].items()}
        self.assertEqual(other, {"start_thread": 10, "dd_submit": 20,
                                 "__memcpy_avx_unaligned_erms": 100, "sender_main": 100})
        table = stages.stage_table(by_stage, funcs_of, 10, "Ir/span")
        self.assertIn("total", table)
        self.assertIn("dd_submit (otel2dd)", table)


class Perf(unittest.TestCase):
    def test_innermost_matching_frame(self):
        by_stage, leaves = stages.attribute_perf(PERF)
        self.assertEqual(dict(by_stage), {"decode": 1, "compress": 1, "other": 1,
                                          "receive": 1, "pre-validation": 1,
                                          "translate": 1})
        self.assertEqual(list(leaves["other"]),
                         [("/usr/lib/x86_64-linux-gnu/libc.so.6",
                           "__memcpy_avx_unaligned_erms")])


if __name__ == "__main__":
    unittest.main()
