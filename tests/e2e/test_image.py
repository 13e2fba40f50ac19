"""Builds the container image from configs/Dockerfile with podman and runs it: non-root uid,
health 200, OTLP/HTTP accepted, `podman healthcheck run` passes, `podman stop` exits 0 fast.

Nothing comes from an image registry: the Dockerfile's base, debian:12-slim, is made here
with debootstrap from the Debian mirror apt uses, and imported under that name into a podman
store private to this test (its own --root), so the machine's images are never touched. The
debootstrapped base is cached as a tarball under the build directory; a second run skips
debootstrap. Timings and the image size are printed and written to
<build>/test_image.json.

Needs root, podman, runc and debootstrap (configs/install-deps.sh test).

    /usr/bin/python3 tests/e2e/test_image.py [-v]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from harness import wait_until  # noqa: E402

BUILD = os.environ.get("OTEL2DD_BUILD", os.path.join(ROOT, "build"))
# The mirror of the machine's /etc/apt/sources.list (deb.debian.org), overridable for CI.
MIRROR = os.environ.get("O2D_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE = "docker.io/library/debian:12-slim"  # the Dockerfile's FROM
IMAGE = "localhost/otel2dd:test"
BINARY = "/usr/local/bin/otel2dd"
# This machine's podman needs both: crun refuses its hybrid cgroup layout, and runc fails
# to set the default rlimits; neither matters to what is tested.
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n'

SPAN = {"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "img"}}]},
    "scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "GET /", "kind": 2, "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000250000000"}]}]}]}

timings = {}


def sanitizer_build():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "O2D_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def run(cmd, timeout=120, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                       p.stdout.decode()[-2000:],
                                                       p.stderr.decode()[-4000:]))
    return p


def base_tarball():
    """The debootstrapped Debian 12 minbase as a tarball, built once per build directory."""
    cache = os.path.join(BUILD, "image-cache")
    tar = os.path.join(cache, "debian-12-minbase.tar")
    if os.path.exists(tar):
        timings["debootstrap_s"] = 0.0
        return tar
    os.makedirs(cache, exist_ok=True)
    rootfs = tempfile.mkdtemp(prefix="rootfs-", dir=cache)
    try:
        t0 = time.monotonic()
        run(["debootstrap", "--variant=minbase", "bookworm", rootfs, MIRROR], timeout=900)
        timings["debootstrap_s"] = round(time.monotonic() - t0, 1)
        # What debian:12-slim leaves out too: package caches and lists, 80 MB here.
        for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for name in os.listdir(os.path.join(rootfs, d)):
                p = os.path.join(rootfs, d, name)
                if os.path.isfile(p) and name != "lock":
                    os.unlink(p)
        for name in os.listdir(os.path.join(rootfs, "var/cache/apt")):
            if name.endswith(".bin"):
                os.unlink(os.path.join(rootfs, "var/cache/apt", name))
        run(["tar", "-C", rootfs, "-cf", tar + ".tmp", "."], timeout=300)
        os.rename(tar + ".tmp", tar)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tar


def http_get(port, path="/"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


@unittest.skipIf(sanitizer_build(), "the image is built from source, not from this "
                 "sanitizer build: tested once, from the plain build")
class TestImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
        if missing:
            raise AssertionError("missing %s: run configs/install-deps.sh test" % missing)
        if os.geteuid() != 0:
            raise AssertionError("debootstrap and this podman setup need root")
        cls.tmp = tempfile.mkdtemp(prefix="otel2dd-image-")
        conf = os.path.join(cls.tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF)
        cls.env = dict(os.environ, CONTAINERS_CONF=conf)
        cls.podman_cmd = ["podman", "--root", os.path.join(cls.tmp, "storage"),
                          "--runroot", os.path.join(cls.tmp, "run")]
        cls.name = "otel2dd-test-%d" % os.getpid()
        t_all = time.monotonic()
        try:
            tar = base_tarball()
            t0 = time.monotonic()
            with open(tar, "rb") as f:
                cls.podman(["import", "-", BASE], stdin=f)
            timings["import_s"] = round(time.monotonic() - t0, 1)
            t0 = time.monotonic()
            # --format docker keeps HEALTHCHECK (OCI image configs have no such field).
            cls.podman(["build", "--format", "docker", "--pull=never", "-f",
                        os.path.join(ROOT, "configs", "Dockerfile"), "-t", IMAGE, ROOT],
                       timeout=1200)
            timings["build_s"] = round(time.monotonic() - t0, 1)
            timings["setup_s"] = round(time.monotonic() - t_all, 1)
            size = cls.podman(["image", "inspect", "--format", "{{.Size}}", IMAGE]).stdout
            timings["image_bytes"] = int(size.decode().strip())
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def podman(cls, args, timeout=120, check=True, stdin=None):
        return run(cls.podman_cmd + args, timeout=timeout, check=check, env=cls.env,
                   stdin=stdin)

    @classmethod
    def cleanup(cls):
        cls.podman(["rm", "-f", "-t", "0", cls.name], check=False)
        cls.podman(["rmi", "-a", "-f"], check=False, timeout=300)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()
        print("\nimage timings: %s" % json.dumps(timings), file=sys.stderr)
        with open(os.path.join(BUILD, "test_image.json"), "w") as f:
            json.dump(timings, f, indent=1)

    def test_1_image_config(self):
        img = json.loads(self.podman(["image", "inspect", IMAGE]).stdout)[0]
        cfg = img["Config"]
        self.assertEqual(cfg["User"], "10001:10001")
        self.assertEqual(cfg["Entrypoint"], [BINARY])
        self.assertEqual(sorted(cfg["ExposedPorts"]),
                         ["13133/tcp", "4317/tcp", "4318/tcp", "8888/tcp"])
        self.assertEqual(cfg["StopSignal"], "SIGTERM")
        hc = img["Healthcheck"]
        self.assertEqual(hc["Test"], ["CMD", BINARY, "health"])
        self.assertEqual((hc["Interval"], hc["Timeout"], hc["StartPeriod"], hc["Retries"]),
                         (10 * 10**9, 3 * 10**9, 5 * 10**9, 3))

    def test_2_run_check_stop(self):
        t0 = time.monotonic()
        # --read-only without the usual tmpfs mounts: what ECS's readonlyRootFilesystem gives.
        # --timeout: should this test be killed, the container still dies within 10 minutes.
        self.podman(["run", "-d", "--name", self.name, "--timeout", "600",
                     "--read-only", "--read-only-tmpfs=false",
                     "-p", "127.0.0.1::4317", "-p", "127.0.0.1::4318", "-p", "127.0.0.1::13133",
                     IMAGE])

        def port(p):
            out = self.podman(["port", self.name, "%d/tcp" % p]).stdout.decode().strip()
            return int(out.rsplit(":", 1)[1])

        health_port, http_port = port(13133), port(4318)
        status = wait_until(lambda: http_get(health_port)[0] == 200 and 200, 30,
                            "the container's health endpoint to answer 200")
        timings["start_to_healthy_s"] = round(time.monotonic() - t0, 2)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(http_get(health_port)[1]), {"status": "ready"})

        # Runs as 10001, as PID 1, seen from the host and from inside.
        pid = self.podman(["inspect", "--format", "{{.State.Pid}}", self.name]).stdout
        with open("/proc/%d/status" % int(pid)) as f:
            uids = [l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))]
        self.assertEqual(uids, [["10001"] * 4, ["10001"] * 4])
        out = self.podman(["exec", self.name, "id", "-u"]).stdout.decode().strip()
        self.assertEqual(out, "10001")
        # The health check runs the binary itself: the image has no curl or wget.
        p = self.podman(["exec", self.name, "sh", "-c", "command -v curl wget"], check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)

        req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % http_port,
                                     data=json.dumps(SPAN).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)

        def received():
            logs = self.podman(["logs", self.name]).stderr.decode()
            return any(json.loads(l).get("msg") == "received"
                       for l in logs.splitlines() if l.startswith("{"))
        wait_until(received, 10, "the debug exporter to log the span")

        p = self.podman(["healthcheck", "run", self.name], check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        health = self.podman(["inspect", "--format", "{{.State.Health.Status}}",
                              self.name]).stdout.decode().strip()
        self.assertEqual(health, "healthy")

        t0 = time.monotonic()
        self.podman(["stop", "-t", "30", self.name], timeout=60)
        timings["stop_s"] = round(time.monotonic() - t0, 2)
        code = self.podman(["inspect", "--format", "{{.State.ExitCode}}",
                            self.name]).stdout.decode().strip()
        self.assertEqual(code, "0")
        self.assertLess(timings["stop_s"], 5, "SIGTERM to exit took %.1fs" % timings["stop_s"])
        logs = self.podman(["logs", self.name]).stderr.decode()
        self.assertIn('"msg":"stopping","signal":"SIGTERM"', logs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
