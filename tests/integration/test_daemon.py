#!/usr/bin/env python3
"""End-to-end tests of `fraudwatch run` against a real Kafka broker.

The broker is the project's own (scripts/kafka.sh), started by scripts/test.sh,
which exports FW_KAFKA_PORT.  The other side of every topic is kcat, a real
client.  Each test uses topics and a consumer group of its own, so tests do
not see each other's messages.  The reference for "the right alerts" is
`fraudwatch replay` over the same events (SPEC §5: replay equals stream).

The other tests/integration/*.py import this file for its helpers (Case,
Daemon, kcat, replay, run_tests); importing it reads no command line: each
main() calls configure(sys.argv) first.  The services themselves (the
broker, redis-server, free ports) are scripts/fwtest.py's.

usage: test_daemon.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) when no broker is configured.  Ends with "N passed, N failed".
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from fwtest import run  # noqa: E402  (test_partitions.py imports it from here)
import fwtest  # noqa: E402

# Set by configure() from the command line and the environment (main() of
# every tests/integration/*.py calls it); importing this file reads neither.
FW = GEN = ROOT = RULES = DEMO = None
ONLY = []
KAFKA = None          # fwtest.Kafka: the broker of scripts/test.sh, or None
BROKER = None


def configure(argv):
    """FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...] and FW_KAFKA_PORT /
    FW_KAFKA_RUN_DIR, into this module's globals."""
    global FW, GEN, ROOT, RULES, DEMO, ONLY, KAFKA, BROKER
    if len(argv) < 4:
        sys.exit(f"usage: {os.path.basename(argv[0])} FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]")
    FW, GEN, ROOT = (os.path.abspath(a) for a in argv[1:4])
    ONLY = argv[4:]
    RULES = os.path.join(ROOT, "rules")
    DEMO = os.path.join(ROOT, "scripts", "demo", "events.jsonl")
    KAFKA = fwtest.Kafka.from_env()
    BROKER = KAFKA.addr if KAFKA else None


def log(*a):
    print(*a, flush=True)


def create_topic(name, partitions=1):
    KAFKA.topic(name, partitions)


def produce(topic, lines, keyed=False):
    """Produces one message per line; with keyed, lines are (key, value)."""
    data = b"".join((k.encode() + b"\t" + v + b"\n") if keyed else v + b"\n" for k, v in
                    (l if keyed else (None, l) for l in lines))
    cmd = ["kcat", "-b", BROKER, "-P", "-t", topic, "-z", "none"]
    if keyed:
        cmd += ["-K", "\t"]
    subprocess.run(cmd, input=data, check=True, stderr=subprocess.PIPE)


def produce_raw(topic, payloads):
    """One message per payload, whatever bytes it holds (newlines included)."""
    for p in payloads:
        with tempfile.NamedTemporaryFile() as f:
            f.write(p)
            f.flush()
            run(["kcat", "-b", BROKER, "-P", "-t", topic, f.name])


def consume(topic, fmt="%s\n"):
    out = run(["kcat", "-b", BROKER, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", fmt]).stdout
    return out


def alerts_of(topic):
    return [json.loads(l) for l in consume(topic).decode().splitlines() if l.strip()]


def replay_with(rules, events_path):
    out = run([FW, "replay", "--rules", rules, "--threads", "2", events_path]).stdout
    return [json.loads(l) for l in out.decode().splitlines()]


def replay(events_path):
    return replay_with(RULES, events_path)


def wait_for(pred, timeout, what, state=None):
    """Polls pred every 0.5 s; after `timeout` s fails naming `what` and,
    when given, what state() shows then (the topics, say)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        time.sleep(0.5)
    seen = f"; found: {state()}" if state else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")


class Daemon:
    last = None
    started = []   # every Daemon started: run_tests kills what a failed test left
    def __init__(self, tmp, topic, group, alerts, dlq, extra=""):
        self.tmp = tmp
        self.conf = os.path.join(tmp, "fraudwatch.conf")
        with open(self.conf, "w") as f:
            f.write(f"""# written by test_daemon.py
kafka.bootstrap.servers = {BROKER}
input.topics = {topic}
kafka.group.id = {group}
output.topic = {alerts}
deadletter.topic = {dlq}
engine.threads = 2
rules.source = dir:{RULES}
state.dir = {tmp}/state
state.checkpoint_interval_ms = 500
metrics.listen = off
log.level = info
shutdown.timeout_s = 20
kafka.consumer.auto.offset.reset = earliest
{extra}
""")
        self.proc = None
        self.logs = []
        Daemon.last = self

    def start(self):
        logf = open(os.path.join(self.tmp, f"daemon-{len(self.logs)}.log"), "wb")
        self.logs.append(logf.name)
        self.proc = subprocess.Popen([FW, "run", "-c", self.conf], stdout=logf, stderr=logf)
        Daemon.started.append(self)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon did not exit within %ss of %s" % (timeout, sig))
        self.proc = None
        return rc

    def log_text(self):
        return "".join(open(p, errors="replace").read() for p in self.logs)


class Case:
    """Fresh topics, group and temp dir for one test."""

    def __init__(self, partitions=1):
        self.id = uuid.uuid4().hex[:8]
        self.topic, self.alerts, self.dlq = (f"t-{self.id}-in", f"t-{self.id}-alerts",
                                             f"t-{self.id}-dlq")
        self.group = f"g-{self.id}"
        self.tmp = tempfile.mkdtemp(prefix="fw-it-")
        create_topic(self.topic, partitions)
        create_topic(self.alerts, 1)
        create_topic(self.dlq, 1)

    def daemon(self, extra=""):
        return Daemon(self.tmp, self.topic, self.group, self.alerts, self.dlq, extra)

    def cleanup(self):
        # Called from a test's `finally`: when the test is failing, show the
        # daemon's log now, before its directory goes (run_tests' own dump
        # would find nothing).
        if sys.exc_info()[0] is not None:
            dump_daemon_log()
        shutil.rmtree(self.tmp, ignore_errors=True)


def read_lines(path):
    with open(path, "rb") as f:
        return [l.rstrip(b"\n") for l in f if l.strip()]


def generated(tmpdir, n, seed):
    path = os.path.join(tmpdir, f"gen-{n}-{seed}.jsonl")
    run([GEN, "--events", str(n), "--seed", str(seed), "--lists", RULES, "--fraud-rate", "5",
         "-q", "-o", path])
    return path


def ids(alerts):
    return {a["alert_id"] for a in alerts}


# ---------------------------------------------------------------- tests ----

def test_replay_equals_stream():
    """One partition: the daemon's alert set equals replay's, no duplicates;
    malformed lines reach the dead-letter topic; SIGTERM exits 0."""
    c = Case()
    try:
        want = replay(DEMO)
        produce(c.topic, read_lines(DEMO))
        d = c.daemon().start()
        wait_for(lambda: len(alerts_of(c.alerts)) >= len(want), 60, f"{len(want)} alerts")
        time.sleep(1)
        got = alerts_of(c.alerts)
        assert d.stop() == 0, "SIGTERM exit status"
        assert ids(got) == ids(want), f"alert sets differ: {ids(want) ^ ids(got)}"
        assert len(got) == len(want), f"{len(got)} alerts for {len(want)} distinct"
        for a in got:
            assert a["ruleset_version"] == 1
        dead = consume(c.dlq, "%h\n").decode().splitlines()
        assert len(dead) == 3, dead
        assert any("fw.reason=not valid JSON" in h for h in dead), dead
        assert all("fw.source.topic=" + c.topic in h for h in dead), dead
    finally:
        c.cleanup()


def test_fetch_wakeup():
    """A backlog through a consumer queue far smaller than a fetch: the
    daemon wakes librdkafka's fetcher each time the full queue drains to
    half (librdkafka 2.0.2 would look again only a second later), and the
    stream still gives replay's alerts, every event once."""
    c = Case()
    try:
        path = generated(c.tmp, 30000, 43)
        want = replay(path)
        produce(c.topic, read_lines(path))
        d = c.daemon("kafka.consumer.queued.max.messages.kbytes = 256\n"
                     "metrics.listen = 127.0.0.1:0").start()
        wait_for(lambda: metric(d, "fraudwatch_events_total") >= 30000, 120, "30000 events in")
        wait_for(lambda: len(alerts_of(c.alerts)) >= len(want), 60, f"{len(want)} alerts")
        assert metric(d, "fraudwatch_events_total") == 30000, "every event once"
        # The operator's key reached librdkafka; the count cap is the
        # daemon's own 1,000,000 (librdkafka's default would be 100,000).
        assert metric(d, "fraudwatch_consumer_queue_max_bytes") == 256 * 1024
        assert metric(d, "fraudwatch_consumer_queue_max_messages") == 1000000
        wakeups = metric(d, "fraudwatch_consumer_fetch_wakeups_total")
        assert wakeups >= 1, "the fetcher was never woken"
        log(f"  {wakeups:.0f} fetch wake-ups for 30000 events through a 256 KiB queue")
        got = alerts_of(c.alerts)
        assert d.stop() == 0
        assert ids(got) == ids(want), f"alert sets differ: {ids(want) ^ ids(got)}"
        assert len(got) == len(want), f"{len(got)} alerts for {len(want)} distinct"
    finally:
        c.cleanup()


SUBSCRIBER = {"call": "caller", "sms": "sender", "transfer": "payer_phone"}
KEYED_RULES = {"R101", "R102", "R103", "R104", "R203"}  # subject = the subscriber


def test_four_partitions_keyed():
    """Four partitions keyed by the subscriber: the same alerts as replay for
    the rules whose subject is that subscriber."""
    c = Case(partitions=4)
    try:
        path = generated(c.tmp, 30000, 41)
        want = [a for a in replay(path) if a["rule_id"] in KEYED_RULES]
        assert len(want) > 5, "the generated traffic exercises the keyed rules"
        msgs = []
        for line in read_lines(path):
            ev = json.loads(line)
            msgs.append((str(ev.get(SUBSCRIBER.get(ev["type"], ""), "x")), line))
        produce(c.topic, msgs, keyed=True)
        d = c.daemon("engine.threads = 3").start()
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 90, "the keyed rules' alerts")
        assert d.stop() == 0
        got = [a for a in alerts_of(c.alerts) if a["rule_id"] in KEYED_RULES]
        assert ids(got) == ids(want), f"differ: {ids(want) ^ ids(got)}"
    finally:
        c.cleanup()


def test_kill9_restart():
    """kill -9 mid-stream, then restart: every alert of an uninterrupted run
    is produced (copies carry the same alert_id) and none other."""
    c = Case()
    try:
        path = generated(c.tmp, 60000, 43)
        want = replay(path)
        lines = read_lines(path)
        chunks = [lines[i:i + 6000] for i in range(0, len(lines), 6000)]
        # A short session, so the restarted member need not wait 45 s for
        # the killed one to be declared dead.
        d = c.daemon("engine.threads = 2\nstate.checkpoint_interval_ms = 200\n"
                     "kafka.consumer.session.timeout.ms = 6000").start()
        for k, chunk in enumerate(chunks[:5]):
            produce(c.topic, chunk)
            time.sleep(0.3)
        d.proc.kill()                       # mid-stream: chunk 5 is still arriving
        d.proc.wait()
        d.proc = None
        partial = len(alerts_of(c.alerts))
        for chunk in chunks[5:]:
            produce(c.topic, chunk)
        d.start()
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 90, "every alert after restart")
        assert d.stop() == 0
        got = alerts_of(c.alerts)
        assert ids(got) == ids(want), f"extra alerts: {ids(got) - ids(want)}"
        assert partial < len(want)
        log(f"    kill -9 after {partial} of {len(want)} alerts; {len(got) - len(want)} re-sent copies")
    finally:
        c.cleanup()


def test_dead_letters():
    """Malformed, oversize and non-UTF-8 messages go to the dead-letter
    topic with reason and source position; the stream goes on."""
    c = Case()
    try:
        good = json.dumps({"event_id": "after-bad", "type": "call", "ts": 1764547200000,
                           "caller": "17012340000", "callee": "13800000000",
                           "duration_s": 60}).encode()
        payloads = [b"this is not json",
                    b'{"event_id":"big","type":"sms","ts":1,"text":"' + b"x" * 5000 + b'"}',
                    b'{"event_id":"u","type":"sms","ts":1,"text":"\xff\xfe"}',
                    b'{"event_id":"nots","type":"sms"}',
                    good]
        produce_raw(c.topic, payloads)
        d = c.daemon("limits.max_event_bytes = 2048").start()
        wait_for(lambda: len(consume(c.dlq, "%h\n").decode().splitlines()) >= 4, 60, "4 dead letters")
        wait_for(lambda: any(a["event_id"] == "after-bad" for a in alerts_of(c.alerts)), 30,
                 "the alert of the event after the bad ones")
        assert d.stop() == 0
        dead = consume(c.dlq, "%o|%h|%S\n").decode().splitlines()
        assert len(dead) == 4, dead
        reasons = "\n".join(dead)
        for r in ("not valid JSON", "larger than the maximum event size", "not valid UTF-8",
                  "missing ts"):
            assert "fw.reason=" + r in reasons, (r, reasons)
        assert "fw.source.offset=1" in reasons and "fw.source.partition=0" in reasons, reasons
        assert "fw.source.size=" in reasons, reasons
    finally:
        c.cleanup()


def metric(d, name):
    """A metric's value from the daemon's /metrics (metrics.listen = 127.0.0.1:0)."""
    import re
    import urllib.request
    m = None
    for _ in range(100):
        m = re.search(r"serving /metrics.*port=(\d+)", d.log_text())
        if m:
            break
        time.sleep(0.1)
    assert m, "the daemon did not say where /metrics is"
    body = urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/metrics", timeout=10).read()
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_far_future_events():
    """Events stamped further ahead of the wall clock than limits.max_future_s
    are dead-lettered with the reason; events more than engine.lateness_s away
    from the stream clock are counted; neither disturbs other keys' windows."""
    c = Case()
    try:
        now = int(time.time() * 1000)
        base = now - 3600 * 1000                       # the stream runs an hour behind
        lines = [json.dumps({"event_id": f"o{i}", "type": "sms", "ts": base + i,
                             "sender": f"1{i:010d}", "text": "hi"}).encode() for i in range(1100)]
        produce(c.topic, lines)
        d = c.daemon("engine.lateness_s = 60\nmetrics.listen = 127.0.0.1:0").start()
        # The stream clock starts once 1024 events are in.
        wait_for(lambda: metric(d, "fraudwatch_events_total") >= 1100, 60, "1100 events in")
        lines = [json.dumps({"event_id": "year9999", "type": "heartbeat",
                              "ts": 253402300799999}).encode(),
                  json.dumps({"event_id": "plus2h", "type": "call", "ts": now + 7200 * 1000,
                              "caller": "17012340000", "callee": "13800000000"}).encode(),
                  json.dumps({"event_id": "ahead", "type": "heartbeat", "ts": now}).encode(),
                  json.dumps({"event_id": "behind", "type": "heartbeat",
                              "ts": base - 600 * 1000}).encode(),
                  json.dumps({"event_id": "after", "type": "call", "ts": base + 2000,
                              "caller": "17012340000", "callee": "13800000000",
                              "duration_s": 60}).encode()]
        produce(c.topic, lines)
        wait_for(lambda: any(a["event_id"] == "after" for a in alerts_of(c.alerts)), 60,
                 "the alert of the event after the far-future ones")
        dead = consume(c.dlq, "%h|%s\n").decode().splitlines()
        assert len(dead) == 2, dead
        for line in dead:
            assert "fw.reason=ts is further ahead of the wall clock than limits.max_future_s" \
                in line, line
        assert {json.loads(l.split("|", 1)[1])["event_id"] for l in dead} == {"year9999", "plus2h"}
        wait_for(lambda: metric(d, 'fraudwatch_events_off_clock_total{side="ahead"}') == 1, 30,
                 "one event counted ahead of the stream clock")
        assert metric(d, 'fraudwatch_events_off_clock_total{side="behind"}') == 1
        # By the way: the consumer queue's default caps as librdkafka was
        # given them (kafka_in.c; a key dropped there would show here).
        assert metric(d, "fraudwatch_consumer_queue_max_bytes") == 16 * 1024 * 1024
        assert metric(d, "fraudwatch_consumer_queue_max_messages") == 1000000
        assert d.stop() == 0
    finally:
        c.cleanup()


def test_key_budget():
    """A flood of new keys past engine.max_keys evicts (counted, logged)
    instead of growing without bound; the daemon goes on and stops cleanly."""
    c = Case()
    try:
        base = 1764547200000
        lines = [json.dumps({"event_id": f"k{i}", "type": "call", "ts": base + i * 10,
                             "caller": f"1{i:010d}", "callee": "13800000000",
                             "duration_s": 10}).encode() for i in range(3000)]
        produce(c.topic, lines)
        d = c.daemon("engine.max_keys = 1000\nmetrics.listen = 127.0.0.1:0").start()
        wait_for(lambda: metric(d, "fraudwatch_events_total") >= 3000, 60, "3000 events in")
        assert metric(d, "fraudwatch_state_evictions_total") > 0
        assert "key state budget reached" in d.log_text()
        assert d.stop() == 0
    finally:
        c.cleanup()


def healthz(d):
    """(status, body) of the daemon's /healthz."""
    import re
    import urllib.error
    import urllib.request
    m = re.search(r"serving /metrics.*port=(\d+)", d.log_text())
    assert m, "the daemon did not say where /healthz is"
    try:
        r = urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/healthz", timeout=10)
        return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_healthz_when_checkpoints_fail():
    """Every checkpoint failing (state.dir gone) turns /healthz to 503 with
    the reason once input has waited metrics.healthz_unsaved_s; a working
    state.dir brings it back to 200."""
    c = Case()
    try:
        base = 1764547200000
        batch = lambda k: [json.dumps({"event_id": f"h{k}-{i}", "type": "sms", "ts": base + i,
                                       "sender": "95588", "text": "hi"}).encode()
                           for i in range(50)]
        produce(c.topic, batch(0))
        d = c.daemon("state.checkpoint_interval_ms = 200\nmetrics.healthz_unsaved_s = 3\n"
                     "metrics.listen = 127.0.0.1:0").start()
        wait_for(lambda: metric(d, "fraudwatch_checkpoints_total") >= 1, 60, "a checkpoint")
        assert healthz(d)[0] == 200
        state = os.path.join(c.tmp, "state")
        shutil.rmtree(state)
        with open(state, "w") as f:
            f.write("not a directory\n")
        produce(c.topic, batch(1))
        wait_for(lambda: healthz(d)[0] == 503, 60, "/healthz 503")
        assert "no checkpoint has covered the input" in healthz(d)[1]
        os.unlink(state)
        os.mkdir(state)
        wait_for(lambda: healthz(d)[0] == 200, 60, "/healthz 200 again")
        assert d.stop() == 0
    finally:
        c.cleanup()


def test_static_membership():
    """instance.id set: the daemon is a static member of its group
    (group.instance.id), so a restart takes its partitions back at once."""
    c = Case()
    try:
        produce(c.topic, [json.dumps({"event_id": "s1", "type": "sms", "ts": 1764547200000,
                                      "sender": "95588", "text": "hi"}).encode()])
        iid = f"fw-static-{c.id}"
        d = c.daemon(f"instance.id = {iid}\nmetrics.listen = 127.0.0.1:0").start()
        wait_for(lambda: metric(d, "fraudwatch_events_total") >= 1, 60, "the event in")
        out = subprocess.run([fwtest.KAFKA_SH, "group", c.group, "--port", str(KAFKA.port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
        assert iid in out, out
        assert d.stop() == 0
    finally:
        c.cleanup()


def test_broker_outage():
    """The broker stopped for 10 s and started again: the daemon recovers by
    itself and loses nothing."""
    c = Case()
    try:
        path = generated(c.tmp, 20000, 47)
        want = replay(path)
        lines = read_lines(path)
        half = len(lines) // 2
        produce(c.topic, lines[:half])
        d = c.daemon().start()
        wait_for(lambda: len(alerts_of(c.alerts)) > 0, 60, "first alerts")
        KAFKA.stop()
        time.sleep(10)
        KAFKA.start()
        assert d.proc.poll() is None, "daemon survived the outage"
        produce(c.topic, lines[half:])
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 120, "every alert after the outage")
        assert d.stop() == 0
        assert ids(alerts_of(c.alerts)) == ids(want)
    finally:
        c.cleanup()


def test_sigterm_commits():
    """SIGTERM: clean exit, offsets and state checkpointed; a restart produces
    no alert a second time and picks up new events where it stopped."""
    c = Case()
    try:
        lines = read_lines(DEMO)
        want = replay(DEMO)
        produce(c.topic, lines[:2000])
        d = c.daemon("state.checkpoint_interval_ms = 3600000").start()
        wait_for(lambda: len(alerts_of(c.alerts)) > 0, 60, "alerts")
        time.sleep(2)
        t0 = time.time()
        assert d.stop() == 0
        assert time.time() - t0 < 20, "bounded shutdown"
        first = alerts_of(c.alerts)
        produce(c.topic, lines[2000:])
        d.start()
        wait_for(lambda: len(alerts_of(c.alerts)) >= len(want), 60, "the rest of the alerts")
        time.sleep(1)
        assert d.stop() == 0
        got = alerts_of(c.alerts)
        assert len(got) == len(want), f"{len(got)} alerts, {len(want)} expected: duplicates after restart"
        assert ids(got) == ids(want)
        assert len(first) < len(want)
    finally:
        c.cleanup()


def test_bad_config():
    """Bad configuration: a clear message naming the key, non-zero exit."""
    tmp = tempfile.mkdtemp(prefix="fw-it-")
    try:
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("kafka.bootstrap.servers = %s\nengine.thread = 4\n" % BROKER)
        p = subprocess.run([FW, "run", "-c", conf], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "engine.thread" in p.stderr and "unknown" in p.stderr, p.stderr
        with open(conf, "w") as f:
            f.write("kafka.consumer.no.such.property = 1\n")
        p = subprocess.run([FW, "run", "-c", conf, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0 and "no.such.property" in p.stderr, p.stderr
        p = subprocess.run([FW, "run", "-c", "/nonexistent.conf"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0 and "/nonexistent.conf" in p.stderr, p.stderr
        with open(conf, "w") as f:
            f.write("kafka.consumer.sasl.password = hunter2\n")
        p = subprocess.run([FW, "run", "-c", conf, "--check-config", "--set", "engine.threads=3"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert "hunter2" not in p.stdout and "engine.threads = 3" in p.stdout, p.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def checkpoint_positions(path):
    """{(topic, partition): offset} of a checkpoint file (its header)."""
    import struct
    with open(path, "rb") as f:
        b = f.read()
    o = 8                                           # magic
    (glen,) = struct.unpack_from("<Q", b, o)
    o += 8 + glen                                   # group
    (n,) = struct.unpack_from("<Q", b, o)
    o += 8
    pos = {}
    for _ in range(n):
        (tlen,) = struct.unpack_from("<Q", b, o)
        topic = b[o + 8:o + 8 + tlen].decode()
        o += 8 + tlen
        part, off = struct.unpack_from("<QQ", b, o)
        o += 16
        pos[(topic, part)] = off
    return pos


def test_kill9_during_background_checkpoint():
    """kill -9 while a periodic checkpoint is being written in the background
    (FW_TEST_CHECKPOINT_STALL_MS holds the writer before its fsync): the
    previous checkpoint stays in place and valid, the restart resumes from
    its positions, and every alert of an uninterrupted run is produced."""
    c = Case()
    try:
        path = generated(c.tmp, 60000, 61)
        want = replay(path)
        lines = read_lines(path)
        chunks = [lines[i:i + 6000] for i in range(0, len(lines), 6000)]
        d = c.daemon("state.checkpoint_interval_ms = 300\nlog.level = debug\n"
                     "kafka.consumer.session.timeout.ms = 6000")
        state = os.path.join(c.tmp, "state")
        ck, tmp = os.path.join(state, "checkpoint"), os.path.join(state, "checkpoint.tmp")
        os.environ["FW_TEST_CHECKPOINT_STALL_MS"] = "1500"
        try:
            d.start()
        finally:
            del os.environ["FW_TEST_CHECKPOINT_STALL_MS"]
        for chunk in chunks[:3]:
            produce(c.topic, chunk)
            time.sleep(0.3)
        wait_for(lambda: 'mode=background' in d.log_text() and os.path.exists(ck), 60,
                 "a background checkpoint in place")
        produce(c.topic, chunks[3])
        wait_for(lambda: os.path.exists(tmp), 30, "the next checkpoint being written")
        with open(ck, "rb") as f:
            before = f.read()
        d.proc.kill()
        d.proc.wait()
        d.proc = None
        assert os.path.exists(tmp), "the checkpoint being written was not published"
        with open(ck, "rb") as f:
            assert f.read() == before, "the checkpoint in place is untouched"
        resume = checkpoint_positions(ck)
        partial = len(alerts_of(c.alerts))
        for chunk in chunks[4:]:
            produce(c.topic, chunk)
        d.start()
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 90, "every alert after restart")
        assert d.stop() == 0
        text = open(d.logs[1], errors="replace").read()
        assert "state loaded" in text, "the restart loaded the checkpoint"
        for (topic, part), off in resume.items():
            assert f"topic={topic} partition={part} offset={off}" in text, (topic, part, off)
        got = alerts_of(c.alerts)
        assert ids(got) == ids(want), f"extra alerts: {ids(got) - ids(want)}"
        log(f"    kill -9 mid-write after {partial} of {len(want)} alerts, resumed at "
            f"{sorted(resume.values())}; {len(got) - len(want)} re-sent copies")
    finally:
        c.cleanup()


def test_checkpoint_waits_for_acks():
    """A checkpoint is put in place (and its offsets committed) only once
    every alert before its cut is acknowledged: with the producer holding
    alerts back for 1.5 s (linger.ms), every time a new checkpoint file
    appears, the alert topic already holds every alert of the events before
    its position."""
    c = Case()
    try:
        path = generated(c.tmp, 30000, 59)
        want = replay(path)
        lines = read_lines(path)
        index = {json.loads(l)["event_id"]: i for i, l in enumerate(lines)}
        d = c.daemon("state.checkpoint_interval_ms = 200\nkafka.producer.linger.ms = 1500")
        ck = os.path.join(c.tmp, "state", "checkpoint")
        d.start()
        seen, checked = None, 0
        for k in range(0, len(lines), 3000):
            produce(c.topic, lines[k:k + 3000])
            t0 = time.time()
            while time.time() - t0 < 1.0:
                try:
                    st = os.stat(ck)
                except FileNotFoundError:
                    time.sleep(0.02)
                    continue
                if (st.st_mtime_ns, st.st_ino) != seen:
                    seen = (st.st_mtime_ns, st.st_ino)
                    (off,) = checkpoint_positions(ck).values()
                    got = ids(alerts_of(c.alerts))
                    need = {a["alert_id"] for a in want if index[a["event_id"]] < off}
                    assert need <= got, (f"checkpoint at offset {off} in place with "
                                         f"{len(need - got)} of its alerts not delivered")
                    checked += 1
                time.sleep(0.02)
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 60, "every alert")
        assert d.stop() == 0
        assert checked >= 2, f"only {checked} checkpoints seen"
        log(f"    {checked} checkpoints checked against their alerts")
    finally:
        c.cleanup()


def dump_daemon_log():
    d = Daemon.last
    if d and d.logs:
        try:
            text = d.log_text().splitlines()
        except OSError:
            return
        log("    --- last 40 lines of the daemon's log ---")
        for line in text[-40:]:
            log("    " + line[:400])
        if d.proc:
            d.proc.kill()
            d.proc.wait()
            d.proc = None


TESTS = [test_bad_config, test_replay_equals_stream, test_dead_letters, test_far_future_events,
         test_key_budget, test_healthz_when_checkpoints_fail, test_static_membership,
         test_four_partitions_keyed, test_fetch_wakeup,
         test_sigterm_commits, test_kill9_restart, test_broker_outage,
         test_kill9_during_background_checkpoint, test_checkpoint_waits_for_acks]


def run_tests(tests, what="integration tests"):
    """The test loop of every tests/integration/*.py: skip (77) without a
    broker; run the tests named on the command line (or all), each timed,
    a failure with its traceback and the daemon's log; "N passed, N failed"."""
    if not KAFKA:
        print(f"FW_KAFKA_PORT not set: no broker, {what} skipped")
        return 77
    passed = failed = 0
    for fn in tests:
        if ONLY and not any(o in fn.__name__ for o in ONLY):
            continue
        t0 = time.time()
        try:
            fn()
            passed += 1
            log(f"ok   {fn.__name__} ({time.time() - t0:.1f}s)")
        except Exception:
            failed += 1
            log(f"FAIL {fn.__name__} ({time.time() - t0:.1f}s)")
            traceback.print_exc(file=sys.stdout)
            dump_daemon_log()
        finally:
            # A test that failed before stopping its daemons would leave them
            # running past the harness, on the shared broker, for the rest of
            # the suite.
            for d in Daemon.started:
                if d.proc and d.proc.poll() is None:
                    d.proc.kill()
                    d.proc.wait()
                d.proc = None
            Daemon.started.clear()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main():
    configure(sys.argv)
    return run_tests(TESTS)


if __name__ == "__main__":
    sys.exit(main())
