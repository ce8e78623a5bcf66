#!/usr/bin/env python3
"""The console fed by the daemon, and the console's retention (issue 14),
against the real broker of scripts/test.sh (FW_KAFKA_PORT) and a
redis-server of the test's own with AOF on.

  * daemon_alerts: 300,000 generated events (bench/gen, planted fraud
    multiplied so the shipped rules fire over 10,000 times) go through the
    daemon to its alert topic; a console stores every alert the daemon
    produced, each in the queue of the unit the test's routes name (routed
    again here, independently, from the alert's own fields), and the set of
    stored ids is replay's over the same events; a second console in
    another group re-reads the whole topic and stores nothing more (its own
    metrics say it read every alert again and found each one there), and
    the counters are unchanged.
  * retention: alerts detected longer ago than console.retention_days that
    are closed are deleted with their history, index entries and search
    terms when the console's retention pass runs (10 s after the start);
    old ones still open, and closed ones inside the window, are kept.

usage: test_console_daemon.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) without a broker.  Ends with "N passed, N failed"."""
import collections
import os
import shutil
import sys
import tempfile
import time
import urllib.request

import console_env as ce
import test_daemon as t
from test_daemon import Case, ids, read_lines, replay, wait_for

ROUTES = ("# the daemon test's units\n"
          "callee\tprefix:13\tstation-calls\n"
          "payer_phone\tregex:^1[5-9]\tstation-payers\n"
          "recipient\tprefix:1\tstation-sms\n"
          "subject\tprefix:00\tstation-intl\n")


def unit_of(alert):
    """The unit ROUTES give an alert, worked out here from its fields."""
    f = alert.get("fields") or {}
    callee, payer = str(f.get("callee", "")), str(f.get("payer_phone", ""))
    if callee.startswith("13"):
        return "station-calls"
    if len(payer) > 1 and payer[0] == "1" and payer[1] in "56789":
        return "station-payers"
    if str(f.get("recipient", "")).startswith("1"):
        return "station-sms"
    if alert["subject"].startswith("00"):
        return "station-intl"
    return "default"


def metric(console, name):
    text = urllib.request.urlopen(console.base + "/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def sanitizer_reports(tmp):
    """A sanitizer build's reports in the consoles' logs (they keep running
    after one), as one text; empty when there is none."""
    out = ""
    for name in sorted(os.listdir(tmp)):
        if name.startswith("console-") and name.endswith(".log"):
            with open(os.path.join(tmp, name), errors="replace") as f:
                text = f.read()
            if "Sanitizer" in text or "runtime error:" in text:
                out += f"--- {name}\n{text[-6000:]}\n"
    return out


def teardown(case, tmp, redis, *consoles):
    """Stops the consoles (None: not started) and Redis, removes the files,
    then fails on a sanitizer report the consoles logged."""
    for con in consoles:
        if con:
            con.stop()
    redis.stop()
    reports = sanitizer_reports(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    case.cleanup()
    assert not reports, reports


def test_daemon_alerts():
    c = Case()      # one input partition: the daemon's alerts are replay's
    tmp = tempfile.mkdtemp(prefix="fw-console-daemon-")
    redis = ce.RedisAOF(tmp)
    d = first = second = None
    try:
        events = os.path.join(tmp, "events.jsonl")
        t.run([t.GEN, "--events", "300000", "--seed", "5", "--lists", t.RULES,
               "--fraud-rate", "150", "-q", "-o", events])
        want = replay(events)
        assert len(ids(want)) >= 10000, f"the traffic gives {len(ids(want))} alerts, not 10,000"
        ce.load_routes(t.FW, redis.url, tmp, ROUTES)
        ce.add_user(t.FW, redis.url, "admin", "admin")
        t.produce(c.topic, read_lines(events))
        d = c.daemon().start()
        first = ce.Console(t.FW, t.ROOT, tmp, redis.url, t.BROKER, c.alerts, group="cd-first")
        n = len(ids(want))
        wait_for(lambda: redis.cli("ZCARD", "fw:con:idx:all") == str(n), 300,
                 f"{n} alerts stored (have {redis.cli('ZCARD', 'fw:con:idx:all')})")
        produced = t.alerts_of(c.alerts)
        assert d.stop() == 0
        d = None
        assert ids(produced) == ids(want), "the daemon's alerts are replay's"
        admin = ce.Client(first.base)
        assert admin.login("admin", "password-123")[0] == 200
        by_unit = collections.defaultdict(set)
        for a in want:
            by_unit[unit_of(a)].add(a["alert_id"])
        assert len(by_unit) >= 4, by_unit.keys()
        for unit, want_ids in by_unit.items():
            got = admin.all(f"unit={unit}&state=new")
            assert {a["alert_id"] for a in got} == want_ids, \
                (unit, len(got), len(want_ids))
            assert all(a["unit"] == unit for a in got)
        t.log("units: " + ", ".join(f"{u} {len(v)}" for u, v in sorted(by_unit.items())))
        # the alert as the daemon produced it is what the page shows
        a = want[len(want) // 2]
        st, item = admin.get(f"/api/alerts/{a['alert_id']}")
        assert st == 200 and item["rule_id"] == a["rule_id"] and item["fields"] == a["fields"]
        assert item["history"][0]["note"] == f"routed to {unit_of(a)}", item["history"]
        total = redis.cli("HGET", "fw:con:stats:all", "total")
        assert total == str(n), total
        # a second console, another group: reads it all again, adds nothing
        second = ce.Console(t.FW, t.ROOT, tmp, redis.url, t.BROKER, c.alerts, group="cd-second")
        wait_for(lambda: metric(second, "fraudwatch_console_alerts_already_stored_total")
                 == len(produced), 120, "the second console re-read every alert")
        assert metric(second, "fraudwatch_console_alerts_stored_total") == 0
        assert redis.cli("ZCARD", "fw:con:idx:all") == str(n)
        assert redis.cli("HGET", "fw:con:stats:all", "total") == total
    finally:
        if d:
            d.stop()
        teardown(c, tmp, redis, second, first)


def test_retention():
    c = Case()
    tmp = tempfile.mkdtemp(prefix="fw-console-retention-")
    redis = ce.RedisAOF(tmp)
    con = None
    try:
        ce.load_routes(t.FW, redis.url, tmp)
        ce.add_user(t.FW, redis.url, "admin", "admin")
        r = ce.rng(7)
        day = 86_400_000
        old_ts = int(time.time() * 1000) - 5 * day       # retention_days = 3 below
        old = [ce.make_alert(i, r, ts0=old_ts) for i in range(40)]
        new = [ce.make_alert(100 + i, r) for i in range(20)]
        ce.produce(t.BROKER, c.alerts, old + new)
        args = (t.FW, t.ROOT, tmp, redis.url, t.BROKER, c.alerts)
        extra = ["--set", "console.retention_days=3"]
        con = ce.Console(*args, group="cr", extra=extra)
        wait_for(lambda: redis.cli("ZCARD", "fw:con:idx:all") == "60", 60, "60 alerts stored")
        admin = ce.Client(con.base)
        assert admin.login("admin", "password-123")[0] == 200
        closed = old[:25] + new[:10]
        for a in closed:
            st, b = admin.post(f"/api/alerts/{a['alert_id']}/transition",
                               {"to": "closed", "outcome": "false_alarm", "note": "test"})
            assert st == 200, b
        # its retention pass runs 10 s after a start
        con.stop()
        con = ce.Console(*args, group="cr", extra=extra)
        wait_for(lambda: "retention: closed alerts deleted" in con.log(), 60, "retention pass")
        admin = ce.Client(con.base)
        assert admin.login("admin", "password-123")[0] == 200
        assert 'count=25' in con.log(), con.log()[-2000:]
        gone = {a["alert_id"] for a in old[:25]}
        kept = {a["alert_id"] for a in old[25:] + new}
        everything = {a["alert_id"] for a in admin.all()}
        assert everything == kept, (len(everything), len(kept))
        for a in old[:25]:
            aid = a["alert_id"]
            assert redis.cli("EXISTS", f"fw:con:alert:{aid}") == "0"
            assert redis.cli("EXISTS", f"fw:con:hist:{aid}") == "0"
            assert admin.get(f"/api/alerts/{aid}")[0] == 404
            assert admin.all("q=" + a["fields"]["payee_account"]) == []
            assert admin.all("q=" + aid) == []
        for key in redis.cli("KEYS", "fw:con:idx:*").split():
            if key == "fw:con:idx:terms":
                members = redis.cli("ZRANGE", key, 0, -1).split("\n")
                assert not [m for m in members if m.rsplit("\x1f", 1)[-1] in gone], key
            else:
                assert not set(redis.cli("ZRANGE", key, 0, -1).split()) & gone, key
        for a in old[25:]:
            got = admin.all("q=" + a["fields"]["payee_account"])
            assert [x["alert_id"] for x in got] == [a["alert_id"]]
        # closed and recent: kept, with their history
        st, item = admin.get(f"/api/alerts/{new[0]['alert_id']}")
        assert st == 200 and item["state"] == "closed" and len(item["history"]) == 2, item
    finally:
        teardown(c, tmp, redis, con)


TESTS = [test_daemon_alerts, test_retention]


def main():
    t.configure(sys.argv)
    return t.run_tests(TESTS, "console with the daemon")


if __name__ == "__main__":
    sys.exit(main())
