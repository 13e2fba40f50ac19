#!/usr/bin/python3
"""`otel2dd validate [--config FILE | FILE]` (collector/commands/validate_cmd.c) through the real binary:
  - the embedded default, and files, print their effective configuration as YAML that an
    independent reader (python3-yaml) parses, followed by a summary in comments;
  - that YAML, with the masked key put back, validates again to the same output;
  - the API key, from DD_API_KEY, inline or from api.key_file, appears nowhere in stdout or
    stderr, valid file or not;
  - ${env:...} substitution: DD_TAGS, DD_TRACE_ENABLED=0, DD_LLMOBS_ENABLED=0, DD_SITE,
    unset variables with their defaults;
  - an invalid file prints "file:line: message" on stderr and exits 1; usage errors exit 2.

    /usr/bin/python3 tests/e2e/test_validate.py [-v] [TestName ...]
"""
import os
import subprocess
import sys
import tempfile
import unittest

import yaml  # python3-yaml: the independent reader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, assert_no_sanitizer_report  # noqa: E402

SECRET = "s3cr3t-9f8e7d6c5b4a"


def run(args, env=None, timeout=10):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "OTEL_"))}
    e.update(env or {})
    p = subprocess.run([BIN, "validate"] + args, capture_output=True, timeout=timeout, env=e)
    assert_no_sanitizer_report(p.stderr)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def body(out):
    """The YAML without its first line, which names the source."""
    return out.split("\n", 1)[1]


def summary(out):
    return out[out.index("# ---- summary ----"):]


class Validate(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_no_secret(self, out, err):
        for text in (out, err):
            self.assertNotIn(SECRET, text)
            self.assertNotIn(SECRET[:10], text)

    def test_embedded_with_key_masked_and_round_trip(self):
        rc, out, err = run([], env={"DD_API_KEY": SECRET, "DD_SITE": "ap1.datadoghq.com"})
        self.assertEqual(rc, 0, err)
        self.assert_no_secret(out, err)
        cfg = yaml.safe_load(out)
        dd = cfg["exporters"]["datadog"]
        self.assertEqual(dd["api"]["key"], "<secret>")
        self.assertEqual(dd["api"]["site"], "ap1.datadoghq.com")
        self.assertEqual(cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
                         "0.0.0.0:4317")
        self.assertEqual(cfg["service"]["shutdown_timeout"], "20s")
        self.assertIs(dd["traces"]["enabled"], True)
        self.assertNotIn("debug", cfg["exporters"])
        s = summary(out)
        self.assertIn("https://trace.agent.ap1.datadoghq.com/api/v0.2/traces", s)
        self.assertIn("https://llmobs-intake.ap1.datadoghq.com/api/v2/llmobs", s)
        self.assertIn("# LLM Observability: on", s)
        self.assertIn("OTLP/gRPC: listens on 0.0.0.0:4317 (plaintext)", s)
        # Round trip: the output, key put back, is a valid file with the same values.
        path = self.write("back.yaml", out.replace("<secret>", SECRET))
        rc, out2, err2 = run([path])
        self.assertEqual(rc, 0, err2)
        self.assert_no_secret(out2, err2)
        self.assertEqual(body(out2), body(out))
        self.assertTrue(out2.startswith("# otel2dd effective configuration, from " + path))

    def test_key_file_never_printed(self):
        key = self.write("api-key", SECRET + "\n")
        path = self.write("c.yaml", "exporters:\n  datadog:\n    api:\n"
                                    "      key_file: %s\n" % key)
        for args in ([path], ["--config", path], ["-c", path]):
            rc, out, err = run(args)
            self.assertEqual(rc, 0, err)
            self.assert_no_secret(out, err)
            dd = yaml.safe_load(out)["exporters"]["datadog"]
            self.assertEqual(dd["api"]["key"], "<secret>")
            self.assertEqual(dd["api"]["key_file"], key)

    def test_secret_absent_from_errors(self):
        cases = [
            # an inline key in a broken ${
            "exporters:\n  datadog:\n    api:\n      key: %s${\n" % SECRET,
            "exporters:\n  datadog:\n    api:\n      key: ${vault:%s}\n" % SECRET,
            # too long
            "exporters:\n  datadog:\n    api:\n      key: %s\n" % (SECRET * 20),
            # an error elsewhere in a file that holds the key
            "exporters:\n  datadog:\n    api:\n      key: %s\n    tags: \"a\\x01\"\n" % SECRET,
        ]
        for text in cases:
            rc, out, err = run([self.write("bad.yaml", text)], env={"DD_API_KEY": SECRET})
            self.assertEqual(rc, 1, text)
            self.assertEqual(out, "")
            self.assert_no_secret(out, err)
            self.assertRegex(err, r"bad\.yaml:\d+: ")
        # a key_file that is not one key: the message names the file, not its content
        key = self.write("api-key", (SECRET + "\n") * 40)
        rc, out, err = run([self.write("kf.yaml", "exporters:\n  datadog:\n    api:\n"
                                                  "      key_file: %s\n" % key)])
        self.assertEqual(rc, 1)
        self.assertIn("must hold one API key", err)
        self.assert_no_secret(out, err)

    def test_no_key_debug_only(self):
        rc, out, err = run([])
        self.assertEqual(rc, 0, err)
        cfg = yaml.safe_load(out)
        # Datadog is off: its section is shown as comments, the debug exporter runs.
        self.assertNotIn("datadog", cfg["exporters"])
        self.assertIn("  # datadog:\n", out)
        self.assertEqual(cfg["exporters"]["debug"]["verbosity"], "basic")
        s = summary(out)
        self.assertIn("nowhere: no Datadog API key is set", s)
        self.assertIn("LLM Observability: off (no API key)", s)
        rc, out2, err2 = run([self.write("back.yaml", out)])
        self.assertEqual(rc, 0, err2)

    def test_env_substitution(self):
        env = {"DD_API_KEY": SECRET, "DD_TAGS": "team:ml env:shadow", "DD_TRACE_ENABLED": "0",
               "DD_LLMOBS_ENABLED": "false", "DD_SERVICE": "checkout"}
        rc, out, err = run([], env=env)
        self.assertEqual(rc, 0, err)
        dd = yaml.safe_load(out)["exporters"]["datadog"]
        self.assertEqual(dd["tags"], "team:ml env:shadow")
        self.assertIs(dd["traces"]["enabled"], False)
        self.assertIs(dd["llmobs"]["enabled"], False)
        self.assertEqual(dd["agent"]["endpoint"], "")  # DD_TRACE_AGENT_URL unset: ""
        s = summary(out)
        self.assertIn("APM traces and stats: off", s)
        self.assertNotIn("/api/v0.2/traces", s)
        self.assertIn("LLM Observability: off (DD_LLMOBS_ENABLED is false)", s)
        self.assertIn("tags added to every span and LLM Obs event: 2", s)
        self.assertIn("service checkout", s)
        # in a file, ${env:NAME:-default} when unset, the variable when set
        path = self.write("e.yaml", "service:\n  shutdown_timeout: ${env:O2D_T_SHUT:-7s}\n"
                                    "exporters:\n  datadog:\n    api:\n"
                                    "      key: ${env:DD_API_KEY}\n"
                                    "    tags: ${env:O2D_T_TAGS:-a:1,b:2}\n")
        rc, out, err = run([path], env={"DD_API_KEY": SECRET})
        self.assertEqual(rc, 0, err)
        cfg = yaml.safe_load(out)
        self.assertEqual(cfg["service"]["shutdown_timeout"], "7s")
        self.assertEqual(cfg["exporters"]["datadog"]["tags"], "a:1,b:2")
        rc, out, err = run([path], env={"DD_API_KEY": SECRET, "O2D_T_SHUT": "1m",
                                        "O2D_T_TAGS": "cost:$5"})
        self.assertEqual(rc, 0, err)
        cfg = yaml.safe_load(out)
        self.assertEqual(cfg["service"]["shutdown_timeout"], "1m")
        # '$' is doubled so that validating the output does not expand it again
        self.assertEqual(cfg["exporters"]["datadog"]["tags"], "cost:$$5")
        self.assert_no_secret(out, err)

    def test_invalid_files(self):
        cases = [
            ("service:\n  shutdown_timeout: 20\n",
             ":2: shutdown_timeout must be a duration from 100ms to 168h such as 500ms, 30s, "
             "5m or 1h, got '20'"),
            ("exporters:\n  datadog:\n    traces:\n      enabled: yes\n",
             ":4: enabled must be true, false, 1 or 0, got 'yes'"),
            ("exporters:\n  datadog:\n    tag: a:b\n",
             ":3: unknown key 'tag' under exporters.datadog; did you mean 'tags'?"),
            ("receivers:\n  otlp:\n    protocols:\n      http:\n        tls: true\n",
             ":5: receivers.otlp.protocols.http.tls must be a map, got a single value"),
        ]
        for text, msg in cases:
            path = self.write("bad.yaml", text)
            rc, out, err = run([path])
            self.assertEqual((rc, out), (1, ""), text)
            self.assertEqual(err, path + msg + "\n")
        rc, out, err = run([os.path.join(self.tmp.name, "missing.yaml")])
        self.assertEqual(rc, 1)
        self.assertIn("missing.yaml: cannot open: No such file or directory", err)
        # a bad variable read by the embedded default names its line there
        rc, out, err = run([], env={"DD_TAGS": "a:1,\x01"})
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"^<embedded default>:\d+: tags: '\?' holds a control character")

    def test_usage(self):
        a = self.write("a.yaml", "")
        for args in (["a", "b"], ["--config", a, a], ["--bogus"], ["-c"]):
            rc, out, err = run(args)
            self.assertEqual(rc, 2, args)
            self.assertIn("usage: otel2dd validate", err)
        rc, out, err = run(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("usage: otel2dd validate", out)
        # an empty file is valid: every default
        rc, out, err = run([a])
        self.assertEqual(rc, 0, err)
        self.assertIn("endpoint: 0.0.0.0:4318", out)


if __name__ == "__main__":
    unittest.main()
