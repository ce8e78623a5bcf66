#!/usr/bin/env python3
"""Scale-out by key (issue 12 item 3, ha.mode = scaleout), end to end on the
real broker with real processes: several active daemons split the work by
key through the repartition topic; daemons join, are killed with kill -9,
and leave with SIGTERM during a stream; the alert set must equal
`fraudwatch replay` over the same events (copies of an alert_id allowed;
docs/scaling.md, section 8).

usage: test_scaleout.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) without a broker.  Timings are printed, never asserted.
"""
import collections
import contextlib
import os
import signal
import sys
import tempfile
import time

import test_daemon as t
from test_daemon import Case, Daemon, alerts_of, ids, log, read_lines, replay, run, wait_for
from test_state_kafka import alerts_meta

SESSION_MS = 6000


def generate(c, n, seed):
    path = os.path.join(c.tmp, f"gen-{n}-{seed}.jsonl")
    run([t.GEN, "--events", str(n), "--seed", str(seed), "--lists", t.RULES, "--fraud-rate",
         "25", "-q", "-o", path])
    return path


def scaled(c, name, extra=""):
    tmp = tempfile.mkdtemp(prefix=f"fw-{name}-", dir=c.tmp)
    return Daemon(tmp, c.topic, c.group, c.alerts, c.dlq,
                  f"instance.id = {name}\nha.mode = scaleout\nstate.store = kafka\n"
                  f"state.chunk_bytes = 65536\nscale.partitions = 8\n"
                  f"ha.session_timeout_ms = {SESSION_MS}\n"
                  "state.checkpoint_interval_ms = 500\nmetrics.listen = 127.0.0.1:0\n" + extra)


def producer(c, path, k):
    """Produces the events in k chunks, keyed by subscriber (loadgen's rule),
    timestamped in file order; a generator: one chunk per next()."""
    lines = read_lines(path)
    size = (len(lines) + k - 1) // k
    base = int(time.time() * 1000) - len(lines) - 60000
    loadgen = os.path.join(os.path.dirname(t.GEN), "loadgen")
    for i in range(k):
        part = os.path.join(c.tmp, f"part{i}.jsonl")
        with open(part, "wb") as f:
            f.write(b"\n".join(lines[i * size:(i + 1) * size]) + b"\n")
        run([loadgen, "-b", t.BROKER, "-t", c.topic, "--seq-ts", str(base + i * size), "-q", part])
        yield i


def settle(c, want, timeout):
    """Waits until every expected alert is there, or the count stops moving
    for 20 s; returns the alerts with their fw.instance."""
    last, still, t0 = -1, 0, time.time()
    while time.time() - t0 < timeout:
        got = ids(alerts_of(c.alerts))
        if ids(want) <= got:
            break
        still = still + 1 if len(got) == last else 0
        if still >= 20:
            break
        last = len(got)
        time.sleep(1)
    time.sleep(2)   # anything extra would show now
    return alerts_meta(c.alerts)


def compare(want, got):
    missing, extra = ids(want) - ids(got), ids(got) - ids(want)
    by_rule = lambda s, alerts: dict(collections.Counter(a["rule_id"] for a in alerts
                                                          if a["alert_id"] in s))
    assert not missing and not extra, (
        f"{len(missing)} alerts missing {by_rule(missing, want)}, {len(extra)} extra "
        f"{by_rule(extra, got)} of {len(want)}")


def tails(ds, n=30):
    """On a failure: the last lines of every daemon's log (the harness shows
    only the last daemon built, and here several share the work)."""
    for d in ds:
        try:
            lines = d.log_text().splitlines()
        except OSError:
            continue
        log(f"    --- last {n} lines of {d.conf} ---")
        for line in lines[-n:]:
            log("    " + line[:400])


def owners(conf):
    """Partition → owner from `fraudwatch state status` (its table rows
    start with the partition number)."""
    out = run([t.FW, "state", "status", "-c", conf]).stdout.decode()
    rows = [l.split() for l in out.splitlines() if l.strip()[:1].isdigit()]
    return {int(r[0]): r[1] for r in rows if len(r) >= 2}


@contextlib.contextmanager
def case(partitions):
    """A fresh Case and the list of daemons a test starts: on a failure the
    tail of every daemon's log; in the end every daemon still running is
    killed (a paused one resumed first) and the case cleaned up."""
    c = Case(partitions=partitions)
    ds = []
    try:
        yield c, ds
    except BaseException:
        tails(ds)
        raise
    finally:
        for d in ds:
            if d.proc:
                d.proc.send_signal(signal.SIGCONT)
                d.proc.kill()
                d.proc.wait()
        c.cleanup()


def test_join_and_kill():
    """8 input partitions keyed by subscriber, a 500 000-event stream: daemons
    1 → 3 → 2 → 1, two of them killed with kill -9 along the way.  The
    alert set equals replay's, and more than one daemon produced alerts."""
    with case(8) as (c, ds):
        path = generate(c, 500000, 78)
        want = replay(path)
        cross = [a for a in want if a["rule_id"] in ("R301", "R302", "R401", "R402", "R403")]
        assert len(cross) > 50, f"only {len(cross)} alerts of rules keyed across partitions"
        ds.append(scaled(c, "so0").start())
        t0 = time.time()
        for i in producer(c, path, 10):
            if i == 1:
                ds += [scaled(c, "so1").start(), scaled(c, "so2").start()]
                for d in ds[1:]:
                    wait_for(lambda: t.metric(d, "fraudwatch_scale_partitions_owned") > 0, 60,
                             "a new daemon owning partitions")
                log("    1 → 3 daemons, each owning partitions")
            elif i == 4:
                wait_for(lambda: t.metric(ds[1], "fraudwatch_events_total") > 0, 60,
                         "so1 applying events")
                ds[1].proc.kill()
                ds[1].proc.wait()
                ds[1].proc = None
                log(f"    kill -9 so1: 3 → 2 at {int(time.time() * 1000)}")
            elif i == 6:
                ds[2].proc.kill()
                ds[2].proc.wait()
                ds[2].proc = None
                log(f"    kill -9 so2: 2 → 1 at {int(time.time() * 1000)}")
            time.sleep(0.5)
        meta = settle(c, want, 300)
        got = [m[2] for m in meta]
        log(f"    {len(got)} alerts ({len(ids(got))} distinct, replay {len(want)}) "
            f"{time.time() - t0:.0f} s after the first daemon started")
        extra = ids(got) - ids(want)
        for ts, inst, a in meta:
            if a["alert_id"] in extra:
                log(f"    extra: {a['rule_id']} {a['subject']} event {a['event_id']} by {inst} "
                    f"at {ts}")
        compare(want, got)
        by = collections.Counter(inst for _, inst, _ in meta)
        log(f"    alerts by daemon: {dict(by)}")
        assert len([k for k in by if k]) >= 2, f"one daemon did all the work: {dict(by)}"
        # the survivor owns every partition now, and says so
        out = run([t.FW, "state", "status", "-c", ds[0].conf]).stdout.decode()
        owned = [l for l in out.splitlines() if l.strip()[:1].isdigit()]
        assert len(owned) == 8 and all(" so0 " in l for l in owned), out
        assert ds[0].stop() == 0
        ds[0].proc = None


def test_join_hands_over_cleanly():
    """A daemon joining a running one: the first hands over the partitions
    the group moves (final checkpoint, no unit stopped as lost), its
    forwarder's and its control group's commits during the rebalance do not
    make librdkafka 2.0.2 take its other partitions for lost (kafka.h), and
    the alert set still equals replay's."""
    with case(4) as (c, ds):
        path = generate(c, 60000, 91)
        want = replay(path)
        chunks = producer(c, path, 2)
        next(chunks)
        ds.append(scaled(c, "hj0").start())
        wait_for(lambda: t.metric(ds[0], "fraudwatch_scale_partitions_owned") == 8, 60,
                 "the first daemon owning all 8 partitions")
        wait_for(lambda: t.metric(ds[0], "fraudwatch_events_total") > 0, 60,
                 "the first daemon applying events")
        ds.append(scaled(c, "hj1").start())
        owned = lambda d: t.metric(d, "fraudwatch_scale_partitions_owned")
        wait_for(lambda: owned(ds[1]) > 0 and owned(ds[0]) + owned(ds[1]) == 8, 60,
                 "the 8 partitions split between the two")
        time.sleep(3)    # a late loss would show by now
        text = ds[0].log_text()
        assert "partition lost" not in text and "unit fenced" not in text, \
            "the first daemon lost partitions when the second joined"
        assert "lost=1" not in text, "the forwarder lost its input partitions"
        assert "partitions handed over" in text
        log(f"    split {owned(ds[0]):.0f} + {owned(ds[1]):.0f}, nothing lost; "
            + " ".join(l.split("msg=")[1] for l in text.splitlines()
                       if "partitions handed over" in l))
        next(chunks)
        meta = settle(c, want, 180)
        compare(want, [m[2] for m in meta])
        for d in ds:
            assert d.stop() == 0


def test_sigterm_handover():
    """Two daemons share the work; SIGTERM one mid-stream: it writes its
    units' final checkpoints and exits 0, the other takes its partitions
    over from them.  The alert set equals replay's."""
    with case(4) as (c, ds):
        path = generate(c, 100000, 79)
        want = replay(path)
        ds += [scaled(c, "st0").start(), scaled(c, "st1").start()]
        for i in producer(c, path, 4):
            if i == 1:
                wait_for(lambda: t.metric(ds[1], "fraudwatch_scale_partitions_owned") > 0, 60,
                         "the second daemon owning partitions")
                assert ds[1].stop() == 0, "SIGTERM exit status"
                assert "unit handed over: final checkpoint written" in ds[1].log_text()
                ds[1].proc = None
            time.sleep(0.5)
        got = [m[2] for m in settle(c, want, 180)]
        compare(want, got)
        wait_for(lambda: t.metric(ds[0], "fraudwatch_scale_partitions_owned") == 8, 60,
                 "the survivor owning all 8 partitions")
        assert ds[0].stop() == 0
        ds[0].proc = None


def test_sigstop_rejoin():
    """Two daemons; one is paused (SIGSTOP) past the session timeout while
    the stream goes on, then resumed: the other takes its partitions over
    from their last checkpoints; the resumed one finds its partitions gone,
    stops those units without a checkpoint, rejoins and works again.  The
    alert set equals replay's; both stop cleanly."""
    with case(4) as (c, ds):
        path = generate(c, 150000, 80)
        want = replay(path)
        ds += [scaled(c, "ss0").start(), scaled(c, "ss1").start()]
        for i in producer(c, path, 5):
            if i == 1:
                for d in ds:
                    wait_for(lambda: t.metric(d, "fraudwatch_scale_partitions_owned") > 0, 60,
                             "both daemons owning partitions")
                ds[1].proc.send_signal(signal.SIGSTOP)
                log("    SIGSTOP ss1")
            elif i == 3:
                wait_for(lambda: t.metric(ds[0], "fraudwatch_scale_partitions_owned") == 8,
                         60, "ss0 taking every partition over")
                ds[1].proc.send_signal(signal.SIGCONT)
                log("    SIGCONT ss1")
            time.sleep(0.5)
        got = [m[2] for m in settle(c, want, 180)]
        compare(want, got)
        text = ds[1].log_text()
        assert ("partition lost: stopping its unit, no checkpoint" in text or
                "the control group refused this member" in text), \
            "the resumed daemon did not notice it lost its partitions"
        for d in ds:
            assert d.stop() == 0


def test_deleted_state_topic():
    """The scale-out state topic deleted under units with committed
    positions: the daemon refuses to go on and says what to do; with
    state.on_lost = empty it goes on with empty windows, loudly."""
    with case(2) as (c, ds):
        path = generate(c, 20000, 81)
        for _ in producer(c, path, 1):
            pass
        a = scaled(c, "dl0").start()
        ds.append(a)
        wait_for(lambda: len(alerts_of(c.alerts)) > 0, 60, "alerts")
        wait_for(lambda: t.metric(a, "fraudwatch_checkpoints_total") > 0, 60, "checkpoints")
        assert a.stop() == 0
        run([os.path.join(t.ROOT, "scripts", "kafka.sh"), "delete-topic",
             f"{c.group}.scale-state", "--port", str(t.KAFKA.port)])
        time.sleep(2)
        b = scaled(c, "dl1").start()
        ds.append(b)
        wait_for(lambda: b.proc.poll() is not None, 90, "the daemon refusing")
        text = b.log_text()
        assert b.proc.returncode == 3, (b.proc.returncode, text[-2000:])
        assert "has committed positions" in text and "state.on_lost=empty" in text, text[-2000:]
        b.proc = None
        d = scaled(c, "dl2")
        with open(d.conf, "a") as f:
            f.write("state.on_lost = empty\n")
        ds.append(d.start())
        wait_for(lambda: "STATE LOST" in d.log_text(), 60, "the loud start with empty state")
        assert d.stop() == 0


def test_two_equal():
    """Two daemons started together, no kills, 100 000 events over 8 input
    partitions: `state status` names both as owners of the 8 repartition
    partitions, both produce alerts (each alert carries the fw.instance of
    one of them), and the alert set equals replay's."""
    with case(8) as (c, ds):
        path = generate(c, 100000, 82)
        want = replay(path)
        ds += [scaled(c, "eq0").start(), scaled(c, "eq1").start()]
        for d in ds:
            wait_for(lambda: t.metric(d, "fraudwatch_scale_partitions_owned") > 0, 60,
                     "both daemons owning partitions")
        seen = {}
        def split():
            seen.clear()
            seen.update(owners(ds[0].conf))
            return len(seen) == 8 and set(seen.values()) == {"eq0", "eq1"}
        wait_for(split, 60, "state status naming both daemons as the 8 partitions' owners")
        log(f"    owners: {seen}")
        for _ in producer(c, path, 4):
            time.sleep(0.5)
        meta = settle(c, want, 180)
        compare(want, [m[2] for m in meta])
        by = collections.Counter(inst for _, inst, _ in meta)
        log(f"    alerts by daemon: {dict(by)}")
        assert set(by) == {"eq0", "eq1"}, f"alerts by daemon: {dict(by)}"
        for d in ds:
            assert d.stop() == 0


def test_forwarder_fetch_wakeup():
    """One daemon catching up a 30 000-event backlog on 2 input partitions
    through a 256 KiB consumer queue: its forwarder wakes librdkafka's
    fetcher after the queue was full (fraudwatch_scale_fetch_wakeups_total),
    and the alert set equals replay's."""
    with case(2) as (c, ds):
        path = generate(c, 30000, 83)
        want = replay(path)
        for _ in producer(c, path, 1):
            pass
        ds.append(scaled(c, "wk0", "kafka.consumer.queued.max.messages.kbytes = 256\n").start())
        meta = settle(c, want, 180)
        compare(want, [m[2] for m in meta])
        wakeups = t.metric(ds[0], "fraudwatch_scale_fetch_wakeups_total")
        log(f"    {wakeups:.0f} forwarder fetch wake-ups")
        assert wakeups >= 1, "the forwarder never woke its fetcher"
        assert ds[0].stop() == 0


TESTS = [test_two_equal, test_forwarder_fetch_wakeup, test_sigterm_handover, test_sigstop_rejoin, test_deleted_state_topic,
         test_join_and_kill, test_join_hands_over_cleanly]


def main():
    t.configure(sys.argv)
    return t.run_tests(TESTS, "scale-out tests")


if __name__ == "__main__":
    sys.exit(main())
