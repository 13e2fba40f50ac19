"""The disk queue (exporters.datadog.sending_queue.storage): nothing acknowledged is lost.

- kill -9 loop: a gRPC and an HTTP sender (python3-grpcio, urllib: real OTLP clients of
  the two transports) send requests with unique span ids while otel2dd is killed with SIGKILL
  at random moments, some while the intake is down (a backlog on disk) and some during the
  replay of that backlog, and restarted on the same directory. At the end every span whose
  request was acknowledged reached the fake intake at least once; duplicates are counted and
  bounded by what can be in flight when a kill lands.
- outage: with the intake refusing, requests keep being acknowledged (the disk grows, memory
  does not), and everything drains once it answers again; a restart in between replays.
- full: a small disk limit refuses with "retry later" (HTTP 503, gRPC UNAVAILABLE) and counts
  nothing as lost; with when_full: drop_oldest the oldest go, counted.
- a second otel2dd on the same directory refuses to start, saying why.
"""
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fake_intake import TRACES  # noqa: E402
from harness import IntakeTestCase, Otel2dd, binary_is_sanitized, wait_until  # noqa: E402
from otlp_client import send_grpc, send_http, trace_service_pb2  # noqa: E402

import grpc  # noqa: E402

# Seconds of the outage run (E2E_OUTAGE_S): short in CI; the "several minutes" is a
# manual run, E2E_OUTAGE_S=300.
OUTAGE_S = float(os.environ.get("E2E_OUTAGE_S", "12"))
# Rounds of 10 requests a second in it (E2E_OUTAGE_ROUNDS_S; 0: as fast as they are taken).
OUTAGE_ROUNDS_S = float(os.environ.get("E2E_OUTAGE_ROUNDS_S", "0"))

_next_id = random.randrange(1, 1 << 40)
_id_lock = threading.Lock()


def traces_req(n, pad=0):
    """n SERVER spans with fresh ids; (body, ids as the intake reports them)."""
    global _next_id
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = "disk-e2e"
    ss = rs.scope_spans.add()
    now = time.time_ns()
    ids = []
    with _id_lock:
        first = _next_id
        _next_id += n
    for i in range(n):
        sid = first + i
        s = ss.spans.add()
        s.trace_id = random.getrandbits(128).to_bytes(16, "big")
        s.span_id = sid.to_bytes(8, "big")
        s.name = "op"
        s.kind = 2
        s.start_time_unix_nano = now - 1_000_000
        s.end_time_unix_nano = now
        if pad:
            a = s.attributes.add()
            a.key = "pad"
            a.value.string_value = random.randbytes(pad).hex()
        ids.append(sid)
    return req.SerializeToString(), ids


def metric(text, name, exporter="datadog_traces"):
    """The value of name{exporter="..."} in a /metrics text, or None."""
    want = '%s{exporter="%s"} ' % (name, exporter)
    for line in text.splitlines():
        if line.startswith(want):
            return float(line[len(want):])
    return None


def llm_req(parent):
    """One LLM chat span whose parent (never sent) is `parent`: the trace buffer holds it
    until its deadline. (body, its span id)."""
    global _next_id
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = "disk-e2e"
    s = rs.scope_spans.add().spans.add()
    with _id_lock:
        sid = _next_id
        _next_id += 1
    now = time.time_ns()
    s.trace_id = random.getrandbits(128).to_bytes(16, "big")
    s.span_id = sid.to_bytes(8, "big")
    s.parent_span_id = parent.to_bytes(8, "big")
    s.name = "chat gpt-4o-mini"
    s.kind = 3
    s.start_time_unix_nano = now - 5_000_000
    s.end_time_unix_nano = now
    for k, v in (("gen_ai.system", "openai"), ("gen_ai.operation.name", "chat"),
                 ("gen_ai.request.model", "gpt-4o-mini")):
        a = s.attributes.add()
        a.key = k
        a.value.string_value = v
    return req.SerializeToString(), sid


def replayed(o):
    """Records the APM traces queue found unsettled at this start (its "disk queue open")."""
    for l in o.logs():
        if l.get("msg") == "disk queue open" and l.get("dir", "").endswith("/traces"):
            return l.get("replaying_records", 0)
    return 0


def metric_plain(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def config(intake, storage, **queue):
    q = {"storage": storage}
    q.update(queue)
    return {"service": {"shutdown_timeout": "2s"}, "exporters": {"datadog": {
        "api": {"key": "test-key", "endpoint": intake.url},
        "traces": {"endpoint": intake.url, "flush_interval": "100ms"},
        "llmobs": {"enabled": False},
        "sending_queue": q,
        "retry_on_failure": {"max_elapsed_time": "10m"}}}}


class Sender(threading.Thread):
    """Sends requests of 20 spans in a loop over one transport to whatever port the current
    otel2dd listens on; records the span ids of every acknowledged request."""

    def __init__(self, transport, port_of):
        super().__init__(daemon=True)
        self.transport = transport
        self.port_of = port_of
        self.acked = []
        self.refused = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            port = self.port_of()
            if port is None:
                time.sleep(0.01)
                continue
            body, ids = traces_req(20)
            try:
                if self.transport == "grpc":
                    ok = send_grpc(port, body, timeout=5) == grpc.StatusCode.OK
                else:
                    ok = send_http(port, body, timeout=5) == 200
            except Exception:  # noqa: BLE001 - a killed server resets the connection
                ok = False
            if ok:
                self.acked += ids
            else:
                self.refused += 1


class DiskQueue(IntakeTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="o2d-dq-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def wait_delivered(self, ids, timeout=60):
        want = set(ids)
        wait_until(lambda: want <= set(self.intake.span_ids()), timeout,
                   "%d acknowledged spans at the intake (have %d of them)" %
                   (len(want), len(want & set(self.intake.span_ids()))))

    def test_kill_9_loses_nothing_acknowledged(self):
        cur = {"o": None}
        lock = threading.Lock()

        def port_of(kind):
            def get():
                with lock:
                    o = cur["o"]
                    return None if o is None else getattr(o, kind + "_port")
            return get

        senders = [Sender("grpc", port_of("grpc")), Sender("http", port_of("http"))]
        for s in senders:
            s.start()
        rounds = 8
        kills_in_replay = 0
        replayed_total = 0  # records the starts found unsettled and sent again
        for r in range(rounds):
            down = r % 3 == 1  # a backlog builds on disk, replayed by the next round
            if down and not self.intake.down:
                self.intake.go_down()
            elif not down and self.intake.down:
                self.intake.come_up()
            o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
            rep = replayed(o)
            replayed_total += rep
            if rep > 0:
                kills_in_replay += 1
            with lock:
                cur["o"] = o
            # Let the senders get some requests acknowledged, then kill at a random moment.
            before = sum(len(s.acked) for s in senders)
            wait_until(lambda: sum(len(s.acked) for s in senders) >= before + 100, 30,
                       "acknowledged requests in round %d" % r)
            time.sleep(random.uniform(0, 0.3))  # a random moment: the point of the test
            with lock:
                cur["o"] = None
            o.stop(sig=signal.SIGKILL, expect=None)
        for s in senders:
            s.stopping.set()
        for s in senders:
            s.join(10)
        acked = [i for s in senders for i in s.acked]
        self.assertGreater(len(acked), 1000)
        self.assertGreater(kills_in_replay, 0, "no kill landed while a backlog was replayed")
        # The last start drains everything that was ever acknowledged.
        if self.intake.down:
            self.intake.come_up()
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        replayed_total += replayed(o)
        try:
            self.wait_delivered(acked, 90)
        finally:
            o.stop()
        got = self.intake.span_ids()
        missing = set(acked) - set(got)
        self.assertEqual(missing, set(), "%d acknowledged spans lost" % len(missing))
        dups = len(got) - len(set(got))
        # A span is sent twice only when a start replays its record: what was unsettled
        # (in flight, or not yet past the written watermark) when the kill landed. Each
        # record holds one request's 20 spans.
        self.assertLessEqual(dups, 20 * replayed_total,
                             "duplicates: %d, replayed records: %d" % (dups, replayed_total))
        sys.stderr.write("kill -9 loop: %d spans acknowledged, %d delivered, %d duplicates, "
                         "%d records replayed, %d refused requests\n" % (
                             len(acked), len(got), dups, replayed_total,
                             sum(s.refused for s in senders)))

    def test_kill_9_after_delivery_replays_nothing(self):
        # Once everything is delivered and the watermark written, a kill -9 replays nothing:
        # the duplicates of the loop above come only from what was unsettled at a kill.
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        ids = []
        for i in range(20):
            body, got = traces_req(50)
            self.assertEqual(send_http(o.http_port, body), 200)
            ids += got
        self.wait_delivered(ids)
        wait_until(lambda: metric(o.scrape(), "otel2dd_exporter_disk_queue_records") == 0, 10,
                   "every record settled")
        wait_until(lambda: metric(o.scrape(), "otel2dd_exporter_disk_queue_bytes") == 0, 10,
                   "the settled segments removed (the watermark written past them)")
        o.stop(sig=signal.SIGKILL, expect=None)
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        opened = [l for l in o.logs() if l.get("msg") == "disk queue open"
                  and l.get("dir", "").endswith("/traces")]
        self.assertEqual(opened[0]["replaying_records"], 0, opened)
        o.stop()
        got = self.intake.span_ids()
        self.assertEqual(len(got), len(set(got)), "duplicates after a clean kill")

    def test_outage_then_restart_then_drain(self):
        self.intake.default_status[TRACES] = 503
        ids = []
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        for i in range(30):
            body, got = traces_req(50, pad=50)
            send = send_grpc if i % 2 else send_http
            rc = send(o.grpc_port if i % 2 else o.http_port, body)
            self.assertIn(rc, (grpc.StatusCode.OK, 200))
            ids += got
        self.assertGreater(metric(o.scrape(), "otel2dd_exporter_disk_queue_bytes"), 0)
        o.stop()
        self.assertTrue(any(l.get("msg") == "left in the disk queue for the next start"
                            for l in o.logs()))
        u = [l for l in o.logs() if l.get("msg") == "undelivered"][0]
        self.assertEqual(u["total"], 0, u)  # kept on disk is not lost
        self.assertEqual([s for s in self.intake.span_ids() if s in set(ids)], [])
        # The intake answers again: the next start replays the backlog.
        self.intake.default_status[TRACES] = 202
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        self.wait_delivered(ids)
        o.stop()
        opened = [l for l in o.logs() if l.get("msg") == "disk queue open"
                  and l.get("dir", "").endswith("/traces")]
        self.assertGreater(opened[0]["replaying_records"], 0)

    def test_full_refuses_then_drop_oldest(self):
        self.intake.go_down()
        self.addCleanup(lambda: self.intake.down and self.intake.come_up())
        o = Otel2dd(config=config(self.intake, self.dir, disk_max_size_mib=16),
                    verbosity="quiet").start()
        refused = 0
        for _ in range(400):
            body, _ids = traces_req(100, pad=400)  # ~100 KB a request
            rc = send_http(o.http_port, body)
            if rc == 503:
                refused += 1
                break
            self.assertEqual(rc, 200)
        self.assertEqual(refused, 1, "the full disk queue never refused")
        self.assertEqual(send_grpc(o.grpc_port, traces_req(100, pad=400)[0]),
                         grpc.StatusCode.UNAVAILABLE)
        o.stop()
        u = [l for l in o.logs() if l.get("msg") == "undelivered"][0]
        self.assertEqual(u["total"], 0, u)
        shutil.rmtree(self.dir)
        os.mkdir(self.dir)
        o = Otel2dd(config=config(self.intake, self.dir, disk_max_size_mib=16,
                                  when_full="drop_oldest"), verbosity="quiet").start()
        for _ in range(400):
            body, _ids = traces_req(100, pad=400)
            self.assertEqual(send_http(o.http_port, body), 200)
        self.assertGreater(metric(o.scrape(), "otel2dd_exporter_disk_queue_dropped_items_total"), 0)
        o.stop()

    def test_outage_memory_flat_disk_grows_then_drains(self):
        # A steady load while the intake refuses: everything is acknowledged, the disk grows,
        # the memory does not; then the intake answers and all of it arrives.
        self.intake.default_status[TRACES] = 503
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        acked = []
        rss = []
        disk = []
        t0 = time.monotonic()
        t_end = t0 + OUTAGE_S
        rounds = 0
        while time.monotonic() < t_end:
            if OUTAGE_ROUNDS_S > 0:
                time.sleep(max(0.0, t0 + rounds / OUTAGE_ROUNDS_S - time.monotonic()))
            rounds += 1
            for _ in range(10):
                body, ids = traces_req(100, pad=50)
                self.assertEqual(send_http(o.http_port, body), 200)
                acked += ids
            text = o.scrape()
            rss.append(metric_plain(text, "otel2dd_process_resident_memory_bytes"))
            disk.append(metric(text, "otel2dd_exporter_disk_queue_bytes"))
        self.assertGreater(disk[-1], disk[len(disk) // 4] + 5e6, disk)  # several MB more
        # Once the retrying bodies are in memory, more backlog does not add to the memory:
        # the last half of the run moved by less than the disk grew meanwhile. (Not in an
        # ASan build: its quarantine keeps freed memory resident, up to 256 MB.)
        half = len(rss) // 2
        if not binary_is_sanitized():
            self.assertLess(max(rss[half:]) - rss[half], (disk[-1] - disk[half]) / 2,
                            "rss %r, disk %r" % (rss[half:], disk[half:]))
        print("outage %.0f s: %d spans acknowledged, disk %.1f -> %.1f MB, RSS %.1f -> %.1f MB "
              "(max %.1f)" % (OUTAGE_S, len(acked), disk[0] / 1e6, disk[-1] / 1e6, rss[0] / 1e6,
                              rss[-1] / 1e6, max(rss) / 1e6), file=sys.stderr)
        self.intake.default_status[TRACES] = 202
        t_drain = time.monotonic()
        self.wait_delivered(acked, max(120, OUTAGE_S))
        print("drained in %.1f s" % (time.monotonic() - t_drain), file=sys.stderr)
        o.stop()

    def test_disk_full_filesystem_refuses_never_acknowledges(self):
        # A 4 MiB filesystem: write(2) fails with ENOSPC long before disk_max_size_mib.
        mnt = os.path.join(self.dir, "small")
        os.mkdir(mnt)
        rc = os.system("mount -t tmpfs -o size=4m tmpfs %s 2>/dev/null" % mnt)
        if rc != 0:
            self.skipTest("cannot mount a small tmpfs here (not root?)")
        self.addCleanup(lambda: os.system("umount %s" % mnt))
        self.intake.go_down()
        self.addCleanup(lambda: self.intake.down and self.intake.come_up())
        o = Otel2dd(config=config(self.intake, mnt), verbosity="quiet").start()
        acked = []
        refused = 0
        for _ in range(200):
            body, ids = traces_req(100, pad=200)
            rc = send_http(o.http_port, body)
            if rc == 200:
                acked += ids
            else:
                self.assertEqual(rc, 503)
                refused += 1
                if refused >= 3:
                    break
        self.assertGreater(refused, 0, "a full filesystem never refused")
        self.assertEqual(send_grpc(o.grpc_port, traces_req(100, pad=200)[0]),
                         grpc.StatusCode.UNAVAILABLE)
        self.assertGreater(metric(o.scrape(), "otel2dd_exporter_disk_queue_write_errors_total"),
                           0)
        # Room again once the intake takes the backlog: what was acknowledged arrives, and
        # new requests are taken again.
        self.intake.come_up()
        self.wait_delivered(acked, 120)
        wait_until(lambda: send_http(o.http_port, traces_req(10)[0]) == 200, 30,
                   "a request accepted again")
        o.stop()

    def test_llm_span_held_by_the_trace_buffer_survives_kill_9(self):
        # An LLM span waits in the trace buffer for its parent (which never comes) for a
        # long time; killed meanwhile, the next start gives it back to the buffer, and it is
        # sent once the (now short) deadline passes.
        def cfg(timeout):
            c = config(self.intake, self.dir)
            c["exporters"]["datadog"]["llmobs"] = {
                "enabled": True, "endpoint": self.intake.url, "ml_app": "disk-e2e",
                "trace_buffer": {"timeout": timeout}}
            return c
        o = Otel2dd(config=cfg("10m"), verbosity="quiet").start()
        held = []
        for i in range(3):
            body, sid = llm_req(random.getrandbits(60) + 1)
            send = send_grpc if i % 2 else send_http
            self.assertIn(send(o.grpc_port if i % 2 else o.http_port, body),
                          (grpc.StatusCode.OK, 200))
            held.append(sid)
        # the APM side is sent at once; the LLM Obs side waits in the buffer
        self.wait_delivered(held)
        self.assertEqual(self.intake.events(), [])
        o.stop(sig=signal.SIGKILL, expect=None)
        o = Otel2dd(config=cfg("1s"), verbosity="quiet").start()
        self.assertTrue(any(l.get("msg") == "llmobs: trace buffer inputs replayed from disk"
                            and l.get("inputs") == 3 for l in o.logs()), o.raw[-10:])
        wait_until(lambda: sorted(int(e["span_id"]) for e in self.intake.events()) ==
                   sorted(held), 30, "the held LLM spans at the LLM Obs intake")
        o.stop()
        # Settled once sent: a third start replays nothing.
        o = Otel2dd(config=cfg("1s"), verbosity="quiet").start()
        self.assertFalse(any(l.get("msg") == "llmobs: trace buffer inputs replayed from disk"
                             for l in o.logs()))
        o.stop()

    def test_a_large_request_fits_a_segment(self):
        # One request of ~10 MB (one TracerPayload): a memory queue takes it, so must a disk
        # queue (a record cannot span segments: they are sized for it).
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        body, ids = traces_req(2000, pad=2500)
        self.assertGreater(len(body), 9_000_000)
        self.assertEqual(send_http(o.http_port, body, timeout=60), 200)
        self.wait_delivered(ids, 60)
        o.stop()

    def test_grpc_streams_wait_for_their_sync_together(self):
        # With fsync: batch, a gRPC request is parked until its sync ran while the
        # connection's other streams go on: 30 streams in flight on one connection are all
        # answered OK and delivered. Connections that vanish with requests parked, and
        # streams the client resets, leave otel2dd serving (their connection is freed when
        # the sync waiter gives its requests back: an ASan run of this test checks that).
        from hyperframe.frame import RstStreamFrame
        from test_grpc import RawH2, framed, grpc_status
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        self.assertTrue(any(l.get("msg") == "listening" and l.get("server") == "grpc" and
                            l.get("sync_waiter") is True for l in o.logs()),
                        "the gRPC receiver says it parks requests until their sync")
        h = RawH2(o.grpc_port)
        acked = []
        sids = list(range(1, 61, 2))
        reqs = {sid: traces_req(5) for sid in sids}
        for sid in sids:
            h.headers(sid)
            h.data(sid, framed(reqs[sid][0]), end=True)
        for sid in sids:
            hdrs, _, rst = h.result(sid, timeout=30)
            self.assertEqual(grpc_status(hdrs), 0, "stream %d: %r" % (sid, hdrs))
            acked += reqs[sid][1]
        h.close()
        gone = []
        for _ in range(8):
            g = RawH2(o.grpc_port)
            for sid in range(1, 21, 2):
                g.headers(sid)
                g.data(sid, framed(traces_req(5)[0]), end=True)
                if sid % 4 == 1:
                    g.send(RstStreamFrame(sid, error_code=8))  # CANCEL
            gone.append(g)
        for g in gone:
            g.close()
        self.wait_delivered(acked, 60)
        body, ids = traces_req(3)
        self.assertEqual(send_grpc(o.grpc_port, body, timeout=10), grpc.StatusCode.OK)
        self.wait_delivered(ids, 60)
        self.assertEqual(o.stop(), 0)

    def test_http_connections_parked_until_their_sync(self):
        # With fsync: batch an HTTP/1.1 request's connection is suspended until its sync
        # ran, and resumed by the sync waiter to be answered; the receiving thread (one per
        # core) serves other connections meanwhile. 16 senders in flight: every request is
        # answered 200 (a connection never resumed would time out) and delivered, each
        # append is synced (committed) before its answer.
        o = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet").start()
        self.assertTrue(any(l.get("msg") == "listening" and l.get("server") == "http" and
                            l.get("sync_waiter") is True for l in o.logs()),
                        "the HTTP receiver says it parks requests until their sync")
        acked, errors = [], []
        lock = threading.Lock()

        def sender():
            for _ in range(15):
                body, ids = traces_req(4)
                try:
                    status = send_http(o.http_port, body, timeout=30)
                except Exception as e:  # noqa: BLE001 (reported below)
                    status = repr(e)
                with lock:
                    (acked.extend(ids) if status == 200 else errors.append(status))
        threads = [threading.Thread(target=sender) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        text = o.scrape()
        commits = metric(text, "otel2dd_exporter_disk_queue_commits_total")
        appends = metric(text, "otel2dd_exporter_disk_queue_committed_appends_total")
        self.assertEqual(appends, 16 * 15)  # every answered request was synced first
        self.assertGreater(commits, 0)
        self.assertLessEqual(commits, appends)
        self.wait_delivered(acked, 60)
        self.assertEqual(o.stop(), 0)

    def test_second_process_on_the_same_directory(self):
        with Otel2dd(config=config(self.intake, self.dir), verbosity="quiet"):
            second = Otel2dd(config=config(self.intake, self.dir), verbosity="quiet")
            with self.assertRaises(AssertionError):
                second.start(timeout=10)
            second.stop(expect=None)
            self.assertTrue(any(l.get("msg") == "cannot open the disk queue"
                                for l in second.logs()), second.raw[-5:])


if __name__ == "__main__":
    unittest.main()
