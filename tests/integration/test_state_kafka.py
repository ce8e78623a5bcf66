#!/usr/bin/env python3
"""State in Kafka (issue 12), end to end on the real broker with real
processes: checkpoints in the state topic (state.store = kafka), restored on
another "machine" (a fresh state.dir); torn checkpoints skipped; a deleted
state topic refused, then recovered knowingly; failover between three
daemons (ha.mode = standby) through kill -9; the fence of a SIGSTOPped
active daemon.  The reference is `fraudwatch replay` over the same events
(SPEC §5; docs/scaling.md extends it to one active daemon and any standbys).

usage: test_state_kafka.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) without a broker.  Timings are printed, never asserted.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import test_daemon as t
from test_daemon import (Case, Daemon, alerts_of, ids, log, produce, read_lines,
                         replay, run, wait_for)

STATE = "state.store = kafka\nstate.chunk_bytes = 4096\n"
SESSION_MS = 6000


def generated(tmp, n, seed):
    path = os.path.join(tmp, f"gen-{n}-{seed}.jsonl")
    run([t.GEN, "--events", str(n), "--seed", str(seed), "--lists", t.RULES, "--fraud-rate", "5",
         "-q", "-o", path])
    return path


def machine(c, name, extra=""):
    """A daemon with a state.dir of its own (another machine)."""
    tmp = tempfile.mkdtemp(prefix=f"fw-{name}-", dir=c.tmp)
    return Daemon(tmp, c.topic, c.group, c.alerts, c.dlq, STATE + extra)


def records(topic, fmt):
    """Every record of topic in kcat's format fmt; [] while it does not exist."""
    p = subprocess.run(["kcat", "-b", t.BROKER, "-C", "-t", topic, "-o", "beginning", "-e",
                        "-q", "-f", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.stdout.decode(errors="replace").splitlines() if p.returncode == 0 else []


def alerts_meta(topic):
    """(kafka timestamp ms, fw.instance header, alert) for every alert."""
    out = []
    for line in records(topic, "%T\t%h\t%s\n"):
        if not line.strip():
            continue
        ts, hdrs, payload = line.split("\t", 2)
        inst = ""
        for h in hdrs.split(","):
            if h.startswith("fw.instance="):
                inst = h[len("fw.instance="):]
        out.append((int(ts), inst, json.loads(payload)))
    return out


def state_topic(c):
    return f"{c.group}.state"


def log_has(d, text):
    try:
        return text in d.log_text()
    except OSError:
        return False


def fraud_number():
    with open(os.path.join(t.RULES, "fraud_numbers.list")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                return line.split("\t")[0]
    raise AssertionError("no fraud number in rules/fraud_numbers.list")


# ---------------------------------------------------------------- tests ----

def test_restore_on_another_machine():
    """A call from a reported number before the stop, the victim's transfer
    after it, on a daemon with an empty state.dir: R401 fires only if the
    sequence's state came back from the state topic; the whole alert set
    equals replay's."""
    c = Case()
    try:
        ts = 1764547200000
        victim = "13912340001"
        call = {"event_id": "sk-call", "type": "call", "ts": ts, "caller": fraud_number(),
                "callee": victim, "duration_s": 120}
        # Filler so that the checkpoint holds more than one chunk.
        path = generated(c.tmp, 20000, 71)
        first = read_lines(path) + [json.dumps(call).encode()]
        xfer = {"event_id": "sk-xfer", "type": "transfer", "ts": ts + 600000,
                "payer_phone": victim, "payer_account": "6222000011112222",
                "payee_account": "6222999988887777", "amount": 5000, "channel": "mobile"}
        events = os.path.join(c.tmp, "all.jsonl")
        with open(events, "wb") as f:
            f.write(b"\n".join(first + [json.dumps(xfer).encode()]) + b"\n")
        want = replay(events)
        assert any(a["rule_id"] == "R401" and a["event_id"] == "sk-xfer" for a in want), \
            "replay fires R401 on the transfer"
        produce(c.topic, first)
        a = machine(c, "a").start()
        wait_for(lambda: log_has(a, "state topic created"), 30, "the state topic")
        before = [w for w in want if w["event_id"] != "sk-xfer"]
        wait_for(lambda: ids(before) <= ids(alerts_of(c.alerts)), 90, "the first part's alerts")
        assert a.stop() == 0
        chunks = [r for r in records(state_topic(c), "%k\n") if r.startswith("c/")]
        assert len(chunks) >= 2, f"a multi-chunk checkpoint ({len(chunks)} chunk records)"
        b = machine(c, "b").start()          # empty state.dir: only Kafka has the state
        wait_for(lambda: log_has(b, "restoring from the state topic"), 30, "the restore")
        produce(c.topic, [json.dumps(xfer).encode()])
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 60, "R401 after the restore")
        assert b.stop() == 0
        got = alerts_of(c.alerts)
        assert ids(got) == ids(want), f"differ: {ids(want) ^ ids(got)}"
    finally:
        c.cleanup()


def test_torn_checkpoints_skipped():
    """A daemon killed while its checkpoint's chunks are going out leaves
    chunks without a manifest; a manifest whose chunks are missing is torn
    too.  Both are skipped, the newest complete one is restored, and the
    alert set still equals replay's."""
    c = Case()
    try:
        path = generated(c.tmp, 40000, 72)
        want = replay(path)
        lines = read_lines(path)
        produce(c.topic, lines[:20000])
        # Every checkpoint stalls half-way through its chunks.
        os.environ["FW_TEST_CHECKPOINT_STALL_MS"] = "4000"
        try:
            a = machine(c, "a", "state.checkpoint_interval_ms = 300\n").start()
        finally:
            del os.environ["FW_TEST_CHECKPOINT_STALL_MS"]

        def published():
            keys = records(state_topic(c), "%k\n")
            return {k[2:] for k in keys if k.startswith("m/")}

        def torn_now():
            keys = records(state_topic(c), "%k\n")
            done = {k[2:] for k in keys if k.startswith("m/")}
            return done and any(k.startswith("c/") and k.split("/")[1] not in done
                                and k.split("/")[1] > max(done) for k in keys)
        wait_for(lambda: published(), 60, "a first published checkpoint")
        produce(c.topic, lines[20000:30000])
        wait_for(torn_now, 60, "a checkpoint half written")
        a.proc.kill()
        a.proc.wait()
        a.proc = None
        # And a manifest, newer than anything, whose second chunk never came.
        newest = max(published())
        fake = "%016x" % (int(newest, 16) + 10**9)
        man = json.dumps({"format": 1, "id": fake, "chunks": 2, "bytes": 10, "sha256": "0" * 64,
                          "instance": "forged", "created_ms": int(time.time() * 1000)})
        data = f"c/{fake}/000000\tfive!\nm/{fake}\t{man}\n".encode()
        subprocess.run(["kcat", "-b", t.BROKER, "-P", "-t", state_topic(c), "-K", "\t",
                        "-p", "0"], input=data, check=True)
        produce(c.topic, lines[30000:])
        b = machine(c, "b").start()
        wait_for(lambda: log_has(b, "restoring from the state topic"), 60, "the restore")
        text = b.log_text()
        assert "chunks without a manifest" in text, "the half-written checkpoint was skipped"
        assert "chunk 1 of 2 missing" in text, "the forged manifest was skipped"
        assert f"id={newest}" in text, f"restored {newest}, the newest complete one"
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 90, "every alert")
        assert b.stop() == 0
        got = alerts_of(c.alerts)
        assert ids(got) == ids(want), f"differ: {ids(want) ^ ids(got)}"
        # Once b has published, the torn ones and all but the previous
        # complete one are tombstoned.
        out = run([t.FW, "state", "status", "-c", b.conf]).stdout.decode()
        assert "INCOMPLETE" not in out and "no manifest" not in out, out
        assert "2 checkpoints" in out or "1 checkpoint" in out, out
    finally:
        c.cleanup()


def test_deleted_state_topic():
    """The state topic deleted under a group with committed positions: the
    daemon refuses to start and says what to do; with state.on_lost = empty
    it starts from the committed positions with empty windows, loudly."""
    c = Case()
    try:
        produce(c.topic, read_lines(t.DEMO))
        a = machine(c, "a").start()
        wait_for(lambda: len(alerts_of(c.alerts)) > 0, 60, "alerts")
        assert a.stop() == 0
        run([os.path.join(t.ROOT, "scripts", "kafka.sh"), "delete-topic", state_topic(c),
             "--port", str(t.KAFKA.port)])
        time.sleep(2)
        b = machine(c, "b")
        rc = subprocess.run([t.FW, "run", "-c", b.conf], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=60)
        msg = rc.stdout.decode()
        assert rc.returncode == 1, (rc.returncode, msg)
        assert "does not exist, but consumer group" in msg and "state.on_lost=empty" in msg, msg
        status = run([t.FW, "state", "init", "-c", b.conf]).stdout.decode()
        assert "created" in status, status
        b = machine(c, "c", "state.on_lost = empty\n").start()
        wait_for(lambda: log_has(b, "running"), 30, "the daemon running")
        assert "STATE LOST" in b.log_text()
        assert b.stop() == 0
    finally:
        c.cleanup()


def ha(c, name):
    return machine(c, name, f"instance.id = {name}\nha.mode = standby\n"
                            f"ha.session_timeout_ms = {SESSION_MS}\n"
                            "state.checkpoint_interval_ms = 500\n"
                            "metrics.listen = 127.0.0.1:0\n")


def active_of(daemons):
    live = [d for d in daemons if d.proc and log_has(d, "elected: this daemon is now the active")]
    return live[0] if len(live) == 1 else None


def test_failover_kill9():
    """Three daemons, one active: kill -9 the active one mid-stream, then the
    next; each time a standby takes over from the last checkpoint in Kafka.
    The alert set equals replay's (copies allowed)."""
    c = Case()
    try:
        path = generated(c.tmp, 200000, 73)
        want = replay(path)
        lines = read_lines(path)
        parts = [lines[i:i + 10000] for i in range(0, len(lines), 10000)]
        ds = [ha(c, f"fo{i}") for i in range(3)]
        for d in ds:
            d.start()
        wait_for(lambda: active_of(ds), 60, "an active daemon")
        first = active_of(ds)
        for d in ds:      # the role on /metrics, standbys included
            assert t.metric(d, "fraudwatch_ha_active") == (1.0 if d is first else 0.0)
        kills = []
        for k, part in enumerate(parts):
            produce(c.topic, part)
            time.sleep(0.2)
            if k in (6, 13):
                victim = active_of(ds)
                wait_for(lambda: active_of(ds), 60, "an active daemon")
                victim = active_of(ds)
                victim.proc.kill()
                kills.append((int(time.time() * 1000), victim))
                victim.proc.wait()
                victim.proc = None
                wait_for(lambda: active_of(ds), 60, "a standby taking over")
                new = active_of(ds)
                wait_for(lambda: t.metric(new, "fraudwatch_state_restores_total") == 1.0, 30,
                         "the new active daemon's restore")
                log(f"    restore: {t.metric(new, 'fraudwatch_state_restore_bytes'):.0f} bytes "
                    f"in {t.metric(new, 'fraudwatch_state_restore_seconds'):.2f} s")
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 240, "every alert")
        meta = alerts_meta(c.alerts)
        got = [m[2] for m in meta]
        assert ids(got) == ids(want), f"differ: {len(ids(want) - ids(got))} missing, " \
                                      f"{len(ids(got) - ids(want))} extra"
        names = {d.logs[0]: n for n, d in zip(("fo0", "fo1", "fo2"), ds)}
        for t_kill, victim in kills:
            after = [(ts, inst) for ts, inst, _ in meta if ts >= t_kill and inst != ""]
            firsts = sorted(ts for ts, inst in after)
            log(f"    kill -9 of {names[victim.logs[0]]}: first alert of the new active "
                f"{(firsts[0] - t_kill) / 1000 if firsts else float('nan'):.1f} s later "
                f"(ha.session_timeout_ms = {SESSION_MS})")
        log(f"    {len(got)} alerts for {len(want)} distinct")
        for d in ds:
            if d.proc:
                assert d.stop() == 0
    finally:
        for d in locals().get("ds", []):
            if d.proc:
                d.proc.kill()
                d.proc.wait()
        c.cleanup()


def test_fencing_sigstop():
    """SIGSTOP the active daemon past the session timeout: a standby takes
    over; SIGCONT: the old one finds it lost the role and stops before
    producing — none of its alerts was produced after the SIGSTOP — and the
    alert set equals replay's."""
    c = Case()
    try:
        path = generated(c.tmp, 120000, 74)
        want = replay(path)
        lines = read_lines(path)
        ds = [ha(c, f"fe{i}") for i in range(2)]
        for d in ds:
            d.start()
        wait_for(lambda: active_of(ds), 60, "an active daemon")
        a = active_of(ds)
        name_a = "fe0" if a is ds[0] else "fe1"
        produce(c.topic, lines[:20000])
        wait_for(lambda: len(alerts_of(c.alerts)) > 10, 60, "some alerts")
        produce(c.topic, lines[20000:80000])          # a backlog in its queue
        time.sleep(0.3)
        a.proc.send_signal(signal.SIGSTOP)
        t_stop = int(time.time() * 1000)
        produce(c.topic, lines[80000:])
        b = ds[1] if a is ds[0] else ds[0]
        wait_for(lambda: log_has(b, "elected: this daemon is now the active"), 60, "takeover")
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 180, "every alert")
        a.proc.send_signal(signal.SIGCONT)
        rc = a.proc.wait(60)
        a.proc = None
        text = a.log_text()
        assert rc == 3, f"the fenced daemon exits 3, got {rc}"
        assert "lost the active role" in text, "it says it lost the role"
        assert "fenced: lost the active role" in text, "the fence stopped it"
        log("    " + [l for l in text.splitlines() if "lost the active role" in l][0][:300])
        time.sleep(2)
        meta = alerts_meta(c.alerts)
        late = [(ts, al["alert_id"]) for ts, inst, al in meta
                if inst == name_a and ts > t_stop + 200]
        assert not late, f"{len(late)} alerts produced by {name_a} after its SIGSTOP"
        got = [m[2] for m in meta]
        assert ids(got) == ids(want), f"differ: {ids(want) ^ ids(got)}"
        assert b.stop() == 0
        log(f"    {name_a}: {sum(1 for m in meta if m[1] == name_a)} alerts before SIGSTOP, "
            f"none after")
    finally:
        for d in locals().get("ds", []):
            if d.proc:
                d.proc.send_signal(signal.SIGCONT)
                d.proc.kill()
                d.proc.wait()
        c.cleanup()


def test_sigterm_handover():
    """SIGTERM of the active daemon: its final checkpoint is published, it
    leaves the control group last, and the standby is elected at once and
    goes on from that checkpoint: the alert set equals replay's with no
    copy at all (nothing is produced twice)."""
    c = Case()
    try:
        path = generated(c.tmp, 60000, 75)
        want = replay(path)
        lines = read_lines(path)
        ds = [ha(c, f"ho{i}") for i in range(2)]
        for d in ds:
            d.start()
        wait_for(lambda: active_of(ds), 60, "an active daemon")
        a = active_of(ds)
        b = ds[1] if a is ds[0] else ds[0]
        produce(c.topic, lines[:30000])
        first = [w for w in replay_first(c, lines[:30000])]
        wait_for(lambda: ids(first) <= ids(alerts_of(c.alerts)), 90, "the first half's alerts")
        t0 = time.time()
        assert a.stop() == 0, "a clean stop"
        wait_for(lambda: log_has(b, "elected: this daemon is now the active"), 30, "the standby")
        log(f"    SIGTERM → standby elected in {time.time() - t0:.1f} s (final checkpoint included)")
        produce(c.topic, lines[30000:])
        wait_for(lambda: ids(want) <= ids(alerts_of(c.alerts)), 90, "every alert")
        assert b.stop() == 0
        got = alerts_of(c.alerts)
        assert ids(got) == ids(want), f"differ: {ids(want) ^ ids(got)}"
        assert len(got) == len(ids(got)), f"{len(got) - len(ids(got))} alerts produced twice"
    finally:
        for d in locals().get("ds", []):
            if d.proc:
                d.proc.kill()
                d.proc.wait()
        c.cleanup()


def replay_first(c, lines):
    path = os.path.join(c.tmp, "first.jsonl")
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    return replay(path)


TESTS = [test_restore_on_another_machine, test_torn_checkpoints_skipped,
         test_deleted_state_topic, test_failover_kill9, test_sigterm_handover,
         test_fencing_sigstop]


def main():
    t.configure(sys.argv)
    return t.run_tests(TESTS, "state-in-Kafka tests")


if __name__ == "__main__":
    sys.exit(main())
