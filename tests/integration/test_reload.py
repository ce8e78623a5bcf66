#!/usr/bin/env python3
"""End-to-end tests of live rule reloads: Redis rule store and rules directory.

A real redis-server is started by these tests on a free port, without
persistence, and stopped at the end; Kafka is the broker of scripts/test.sh
(FW_KAFKA_PORT).  The reference for correct alerts is `fraudwatch replay`.

usage: test_reload.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) when no broker is configured.  Ends with "N passed, N failed".
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import test_daemon as t
from test_daemon import (Case, alerts_of, generated, ids, log, produce, read_lines, replay_with,
                         run, wait_for)
from fwtest import Redis, free_port  # scripts/fwtest.py, on the path since test_daemon's import


def push(redis, rules_dir):
    p = subprocess.run([t.FW, "rules", "push", rules_dir, "--redis", redis.url],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return int(redis.cli("GET", "fraudwatch:rules:version"))


def rules_copy(tmp, name, edit=None):
    d = os.path.join(tmp, name)
    shutil.copytree(t.RULES, d)
    if edit:
        edit(d)
    return d


def add_rule(d, rule, fname="extra.json"):
    with open(os.path.join(d, fname), "w") as f:
        json.dump({"rules": [rule]}, f)


def swapped(daemon, version):
    return f'msg="rule set swapped in" version={version} ' in daemon.log_text()


def metric(port, name):
    """The value of an unlabelled metric on /metrics, or None."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return None
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


# ---------------------------------------------------------------- tests ----

EXTRA = {"id": "X1", "name": "short call", "event": "call",
         "where": [{"field": "duration_s", "op": "<", "value": 40}], "subject": "caller"}


def test_reload_under_stream():
    """200k events while 20 pushes alternate two rule sets: every event is
    matched by one set, alerts of rules common to both equal an uninterrupted
    run (their state survives the swaps), and every alert of the rule only
    set B has is one that B produces."""
    c = Case()
    r = Redis()
    try:
        a = rules_copy(c.tmp, "A")
        b = rules_copy(c.tmp, "B", lambda d: add_rule(d, EXTRA))
        path = generated(c.tmp, 200000, 51)
        want_a = replay_with(a, path)
        want_b = {x["alert_id"] for x in replay_with(b, path) if x["rule_id"] == "X1"}
        versions = {push(r, a): "A"}
        d = c.daemon(f"rules.source = {r.url}").start()
        lines = read_lines(path)
        chunk = len(lines) // 20
        for k in range(20):
            produce(c.topic, lines[k * chunk:(k + 1) * chunk if k < 19 else len(lines)])
            which = "B" if k % 2 == 0 else "A"
            versions[push(r, b if which == "B" else a)] = which
            time.sleep(0.2)
        common = {x["alert_id"] for x in want_a}
        wait_for(lambda: common <= ids(alerts_of(c.alerts)), 120, "the common rules' alerts")
        time.sleep(2)
        assert d.stop() == 0
        got = alerts_of(c.alerts)
        got_common = [x for x in got if x["rule_id"] != "X1"]
        assert len(got_common) == len(common) and ids(got_common) == common, \
            f"common rules differ: {len(got_common)} vs {len(common)}"
        x1 = [x for x in got if x["rule_id"] == "X1"]
        assert len(x1) == len(ids(x1)), "an event matched twice"
        assert x1, "set B was active for part of the stream"
        for x in x1:
            assert versions.get(x["ruleset_version"]) == "B", x
            assert x["alert_id"] in want_b, x
        seen = {x["ruleset_version"] for x in got}
        assert len(seen) >= 3, f"alerts under several versions: {seen}"
        log(f"    {len(got)} alerts under versions {sorted(seen)}; {len(x1)} from the B-only rule")
    finally:
        r.stop()
        c.cleanup()


def test_limit_and_window_change():
    """A threshold whose limit changes mid-window fires at the new limit with
    the counts gathered before the reload; a rule whose window changed starts
    fresh."""
    c = Case()
    r = Redis()
    try:
        def rule(limit, window):
            return {"id": "T1", "event": "ping", "subject": "k",
                    "threshold": {"group_by": "k", "window_s": window, "count": {">=": limit}}}

        d5 = rules_copy(c.tmp, "five", lambda d: add_rule(d, rule(5, 3600)))
        d4 = rules_copy(c.tmp, "four", lambda d: add_rule(d, rule(4, 3600)))
        d4w = rules_copy(c.tmp, "four-w", lambda d: add_rule(d, rule(4, 7200)))
        push(r, d5)
        d = c.daemon(f"rules.source = {r.url}").start()

        def ev(i, key="k1"):
            return json.dumps({"event_id": f"p{i}", "type": "ping", "ts": 1764547200000 + i * 1000,
                               "k": key}).encode()

        produce(c.topic, [ev(i) for i in range(3)])
        wait_for(lambda: "partition assigned" in d.log_text(), 30, "assignment")
        time.sleep(2)
        v = push(r, d4)                               # limit 5 -> 4, same window
        wait_for(lambda: swapped(d, v), 10, f"version {v}")
        produce(c.topic, [ev(3)])                     # 4th event: fires at the new limit
        wait_for(lambda: any(x["rule_id"] == "T1" for x in alerts_of(c.alerts)), 30, "T1 alert")
        got = [x for x in alerts_of(c.alerts) if x["rule_id"] == "T1"]
        assert [x["event_id"] for x in got] == ["p3"], got
        assert got[0]["evidence"]["count"] == 4 and got[0]["ruleset_version"] == v

        v2 = push(r, d4w)                             # window changed: state starts fresh
        wait_for(lambda: swapped(d, v2), 10, f"version {v2}")
        produce(c.topic, [ev(i, "k2") for i in range(10, 13)] + [ev(i) for i in range(20, 23)])
        time.sleep(3)
        got = [x for x in alerts_of(c.alerts) if x["rule_id"] == "T1"]
        assert [x["event_id"] for x in got] == ["p3"], f"fresh window must not fire: {got}"
        produce(c.topic, [ev(23)])                    # 4th event in the new window
        wait_for(lambda: len([x for x in alerts_of(c.alerts) if x["rule_id"] == "T1"]) == 2, 30,
                 "the fresh window's alert")
        assert d.stop() == 0
    finally:
        r.stop()
        c.cleanup()


def test_watchlist_change():
    """A watchlist add/remove takes effect without a rule push."""
    c = Case()
    r = Redis()
    try:
        push(r, t.RULES)
        d = c.daemon(f"rules.source = {r.url}").start()
        number = "17099990001"

        def call(i):
            return json.dumps({"event_id": f"w{i}", "type": "call", "ts": 1764547200000 + i,
                               "caller": number, "callee": "13800001111", "duration_s": 100,
                               "caller_region": "x", "callee_region": "y"}).encode()

        def r105():
            return [x["event_id"] for x in alerts_of(c.alerts) if x["rule_id"] == "R105"]

        produce(c.topic, [call(1)])
        wait_for(lambda: "partition assigned" in d.log_text(), 30, "assignment")
        time.sleep(2)
        assert r105() == []
        gen = r.cli("GET", "fraudwatch:generation")
        p = subprocess.run([t.FW, "lists", "add", "fraud_numbers", number, "--redis", r.url],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert r.cli("GET", "fraudwatch:generation") != gen
        time.sleep(2.5)
        produce(c.topic, [call(2)])
        wait_for(lambda: r105() == ["w2"], 30, "R105 after the list add")
        p = subprocess.run([t.FW, "lists", "remove", "fraud_numbers", number, "--redis", r.url],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        time.sleep(2.5)
        produce(c.topic, [call(3)])
        time.sleep(3)
        assert r105() == ["w2"], r105()
        assert d.stop() == 0
    finally:
        r.stop()
        c.cleanup()


def test_redis_restart_and_lost_notification():
    """Redis killed and restarted mid-stream: the stream goes on, the next push
    is picked up.  A push whose notification is lost (subscriber cut off) is
    still picked up within two seconds by the version check.  rules status
    shows the daemon."""
    c = Case()
    r = Redis()
    try:
        b = rules_copy(c.tmp, "B", lambda d: add_rule(d, EXTRA))
        push(r, t.RULES)
        d = c.daemon(f"rules.source = {r.url}\ninstance.id = it-daemon").start()
        lines = read_lines(t.DEMO)
        produce(c.topic, lines[:1000])
        wait_for(lambda: "partition assigned" in d.log_text(), 30, "assignment")
        wait_for(lambda: "it-daemon" in subprocess.run(
            [t.FW, "rules", "status", "--redis", r.url], capture_output=True, text=True).stdout,
            10, "the heartbeat in rules status")
        r.kill()                                      # Redis gone
        n = len(alerts_of(c.alerts))
        produce(c.topic, lines[1000:2000])
        wait_for(lambda: len(alerts_of(c.alerts)) > n, 30, "alerts while Redis is down")
        assert d.proc.poll() is None
        r.start()                                     # back, empty (no persistence)
        time.sleep(1)
        v = push(r, b)
        wait_for(lambda: swapped(d, v), 15, "the push after the restart")
        # Lost notification: cut the subscriber off, then push at once.
        r.cli("CLIENT", "KILL", "TYPE", "pubsub")
        v2 = push(r, t.RULES)
        t0 = time.time()
        wait_for(lambda: swapped(d, v2), 5, "the push whose notification was lost")
        assert time.time() - t0 <= 2.5, "picked up by the periodic check"
        produce(c.topic, lines[2000:])
        time.sleep(2)
        assert d.stop() == 0
    finally:
        r.stop()
        c.cleanup()


def test_push_while_lists_churn():
    """Issue 10.4: a 1M-entry watchlist gets a one-number `lists add` every
    0.5 s while a new rule set is pushed.  The daemon swaps the pushed set in
    (the deadline is a hang guard: before the fix every read of the list was
    restarted by the next add, and no set was swapped in at all), it stays in
    `rules status` throughout, each add is applied without reading the list
    (fraudwatch_watchlist_full_reads_total does not move, the server sees no
    SSCAN), and an event from a number added after the push fires the pushed
    rule."""
    c = Case()
    r = Redis()
    stop = threading.Event()
    adds, missing, threads = [], [], []
    try:
        a = os.path.join(c.tmp, "A")
        shutil.copytree(t.RULES, a)
        with open(os.path.join(a, "big.list"), "w") as f:
            f.write("".join(f"{1500000000 + i}\n" for i in range(1000000)))
        b = os.path.join(c.tmp, "B")
        shutil.copytree(a, b)
        add_rule(b, {"id": "X2", "name": "caller on the big list", "event": "call",
                     "where": [{"field": "caller", "in_list": "big"}], "subject": "caller"})
        push(r, a)
        mport = free_port()
        d = c.daemon(f"rules.source = {r.url}\ninstance.id = churn-it\n"
                     f"metrics.listen = 127.0.0.1:{mport}").start()

        def listed():
            return "churn-it" in subprocess.run([t.FW, "rules", "status", "--redis", r.url],
                                                capture_output=True, text=True).stdout

        wait_for(listed, 60, "the daemon in rules status")
        wait_for(lambda: "partition assigned" in d.log_text(), 30, "assignment")

        def churn():
            i = 0
            while not stop.is_set():
                v = f"1990000{i:04d}"
                p = subprocess.run([t.FW, "lists", "add", "big", v, "--redis", r.url],
                                   capture_output=True, text=True)
                assert p.returncode == 0, p.stderr
                adds.append(v)
                i += 1
                stop.wait(0.5)

        def watch_status():
            while not stop.is_set():
                if not listed():
                    missing.append(time.time())
                stop.wait(1.0)

        threads = [threading.Thread(target=churn), threading.Thread(target=watch_status)]
        for th in threads:
            th.start()
        wait_for(lambda: len(adds) >= 6, 60, "six adds")
        v = push(r, b)
        t0 = time.time()
        wait_for(lambda: swapped(d, v), 120, f"the pushed version {v} while the list churns")
        log(f"    push applied after {time.time() - t0:.2f}s, {len(adds)} adds so far")

        full = "fraudwatch_watchlist_full_reads_total"
        delta = "fraudwatch_watchlist_delta_reads_total"
        full0, delta0 = metric(mport, full), metric(mport, delta) or 0
        sscan0 = r.cli("INFO", "commandstats")
        wait_for(lambda: (metric(mport, delta) or 0) >= delta0 + 4, 60, "four deltas applied")
        sscan1 = r.cli("INFO", "commandstats")
        assert metric(mport, full) == full0, (full0, metric(mport, full))

        def sscans(info):
            for line in info.splitlines():
                if line.startswith("cmdstat_sscan:"):
                    return int(line.split("calls=")[1].split(",")[0])
            return 0

        assert sscans(sscan1) == sscans(sscan0), "a one-number add made a read of the list"
        stop.set()
        for th in threads:
            th.join()
        assert not missing, f"the daemon dropped out of rules status {len(missing)} times"

        # The last number added is live for the pushed rule.
        number = adds[-1]
        time.sleep(2)
        produce(c.topic, [json.dumps({"event_id": "churn-call", "type": "call",
                                      "ts": 1764547200000, "caller": number,
                                      "callee": "13800001111", "duration_s": 100}).encode()])
        wait_for(lambda: any(x["rule_id"] == "X2" and x["event_id"] == "churn-call"
                             for x in alerts_of(c.alerts)), 30, "the X2 alert")
        text = d.log_text()
        assert 'msg="reading watchlist whole" list=big' in text
        assert 'msg="watchlist read whole" list=big entries=' in text
        assert d.stop() == 0
    finally:
        stop.set()
        for th in threads:
            th.join()
        r.stop()
        c.cleanup()


def test_dir_reload():
    """rules.source = dir: a changed file is picked up (inotify), an invalid
    one is refused with the error logged and the last good set kept, SIGHUP
    reloads."""
    c = Case()
    try:
        d_rules = rules_copy(c.tmp, "R")
        d = c.daemon(f"rules.source = dir:{d_rules}").start()
        wait_for(lambda: "partition assigned" in d.log_text(), 30, "assignment")
        add_rule(d_rules, EXTRA)
        wait_for(lambda: swapped(d, 2), 10, "reload after a file change")
        with open(os.path.join(d_rules, "bad.json"), "w") as f:
            f.write('{"rules": [{"id": "B1", "event": "call", "treshold": {}}]}')
        wait_for(lambda: "unknown member \\\"treshold\\\"" in d.log_text()
                 or 'unknown member "treshold"' in d.log_text(), 10, "the refusal")
        os.remove(os.path.join(d_rules, "bad.json"))
        wait_for(lambda: swapped(d, 3), 10, "reload after the fix")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: swapped(d, 4), 10, "reload on SIGHUP")
        produce(c.topic, read_lines(t.DEMO))
        wait_for(lambda: any(x["rule_id"] == "X1" for x in alerts_of(c.alerts)), 30, "X1 alerts")
        assert all(x["ruleset_version"] == 4 for x in alerts_of(c.alerts))
        assert d.stop() == 0
    finally:
        c.cleanup()


def test_dir_hazards():
    """rules.source = dir: a sparse 3 GiB file, a FIFO and a link to /dev/zero
    dropped into the directory: each reload is refused, naming the file and
    the reason, and counted; the daemon keeps running with its last good set
    (its alerts are the old rules' alerts), and a later good change is
    applied."""
    c = Case()
    try:
        d_rules = rules_copy(c.tmp, "R")
        mport = free_port()
        d = c.daemon(f"rules.source = dir:{d_rules}\nmetrics.listen = 127.0.0.1:{mport}").start()
        wait_for(lambda: "partition assigned" in d.log_text(), 30, "assignment")
        failures = "fraudwatch_rule_reload_failures_total"
        assert metric(mport, failures) == 0

        huge = os.path.join(d_rules, "huge.json")
        with open(huge, "wb"):
            pass
        os.truncate(huge, 3 << 30)                    # sparse: no disk, no memory
        wait_for(lambda: "huge.json: 3221225472 bytes, over the 64 MiB limit for a rule file"
                 in d.log_text(), 15, "the refusal of huge.json")
        assert d.proc.poll() is None, "the daemon died"
        wait_for(lambda: metric(mport, failures) == 1, 10, "one reload failure counted")

        fifo, zero = os.path.join(d_rules, "x.json"), os.path.join(d_rules, "zero.list")
        os.mkfifo(fifo)
        os.symlink("/dev/zero", zero)
        wait_for(lambda: "x.json: not a regular file (a FIFO)" in d.log_text()
                 and "zero.list: not a regular file (a symbolic link to a character device)"
                 in d.log_text(), 15, "the refusal of the FIFO and the link to /dev/zero")
        assert d.proc.poll() is None, "the daemon died"
        wait_for(lambda: metric(mport, failures) >= 2, 10, "the failures counted")

        # The stream goes on with the last good set: the shipped rules' alerts.
        want = ids(replay_with(t.RULES, t.DEMO))
        produce(c.topic, read_lines(t.DEMO))
        wait_for(lambda: ids(alerts_of(c.alerts)) == want, 60, "the old set's alerts")
        assert all(x["ruleset_version"] == 1 for x in alerts_of(c.alerts))

        # A good change: the extra rule, then the hazards go (the last
        # removal is the first reload that succeeds).
        add_rule(d_rules, EXTRA)
        for p in (huge, fifo, zero):
            os.remove(p)
        wait_for(lambda: swapped(d, 2), 15, "the good set after the hazards went")
        produce(c.topic, [json.dumps({"event_id": "after-fix", "type": "call",
                                      "ts": 1764547200000, "caller": "13800000001",
                                      "callee": "13800000002", "duration_s": 10}).encode()])
        wait_for(lambda: any(x["rule_id"] == "X1" and x["event_id"] == "after-fix"
                             and x["ruleset_version"] == 2 for x in alerts_of(c.alerts)),
                 30, "an alert of the new rule")
        assert d.stop() == 0

        # At startup there is no last good set to keep: the daemon says why
        # and exits 1 at once (a supervisor's restart only repeats that).
        os.mkfifo(fifo)
        d.start()
        try:
            rc = d.proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError("the daemon hung at startup on a FIFO in its rules directory")
        d.proc = None
        assert rc == 1, rc
        text = d.log_text()
        assert "there is no earlier set to run with" in text, text[-2000:]
        assert "x.json: not a regular file (a FIFO)" in text, text[-2000:]
    finally:
        c.cleanup()


TESTS = [test_dir_reload, test_dir_hazards, test_watchlist_change, test_limit_and_window_change,
         test_redis_restart_and_lost_notification, test_reload_under_stream,
         test_push_while_lists_churn]


def main():
    t.configure(sys.argv)
    return t.run_tests(TESTS, "reload tests")


if __name__ == "__main__":
    sys.exit(main())
