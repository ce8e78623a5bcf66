#!/usr/bin/env python3
"""End to end: a watchlist entry that expires, in a daemon reading its rules
from Redis (issue 11.5, SPEC §2 "Watchlist entries that expire").

`lists add NUMBER --until T` reaches the running daemon as a delta; the
entry then matches events with ts < T and not ts >= T, by event time (a late
event from before T still matches after later ones passed it), with no
reload when T passes; and `rules pull` + `replay` of the same events gives
the same alerts (replay equals stream).

A real redis-server is started on a free port and stopped at the end;
Kafka is the broker of scripts/test.sh (FW_KAFKA_PORT).

usage: test_list_expiry.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) when no broker is configured.
"""
import json
import os
import subprocess
import sys
import time

import test_daemon as t
from test_daemon import Case, alerts_of, produce, wait_for
from fwtest import Redis  # scripts/fwtest.py, on the path since test_daemon's import


def test_entry_expires_by_event_time():
    c = Case()
    r = Redis()
    try:
        p = subprocess.run([t.FW, "rules", "push", t.RULES, "--redis", r.url],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        d = c.daemon(f"rules.source = {r.url}").start()
        wait_for(lambda: "rule set loaded from redis" in d.log_text(), 30, "first load")
        number = "17099990002"
        until = 1764547205000   # 2025-12-01T00:00:05Z
        gen = r.cli("GET", "fraudwatch:generation")
        swaps0 = d.log_text().count("rule set swapped in")
        # --lateness: T is long past on the wall clock; keep the entry in Redis
        p = subprocess.run([t.FW, "lists", "add", "fraud_numbers", number,
                            "--until", "2025-12-01T08:00:05+08:00", "--reason", "e2e",
                            "--by", "tester", "--lateness", "36500d", "--redis", r.url],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert "until 2025-12-01T00:00:05Z" in p.stdout, p.stdout
        assert r.cli("GET", "fraudwatch:generation") != gen
        wait_for(lambda: "lists_delta=1" in d.log_text(), 30, "the add applied as a delta")
        # The reloader logs the delta when it has built the set; the main
        # loop swaps it in at its next tick, and logs that after.
        wait_for(lambda: d.log_text().count("rule set swapped in") > swaps0, 30,
                 "the delta swapped in")
        swaps = d.log_text().count("rule set swapped in")

        def call(name, ts):
            return json.dumps({"event_id": name, "type": "call", "ts": ts,
                               "caller": number, "callee": "13800002222", "duration_s": 100,
                               "caller_region": "x", "callee_region": "y"}).encode()

        events = [call("x1", until - 1), call("x2", until), call("x3", until + 60000),
                  call("x4", until - 2)]   # x4 arrives after later ones: still before T
        produce(c.topic, events)

        def r105():
            return sorted(x["event_id"] for x in alerts_of(c.alerts) if x["rule_id"] == "R105")

        wait_for(lambda: r105() == ["x1", "x4"], 30, "R105 for x1 and x4 only")
        time.sleep(2)
        assert r105() == ["x1", "x4"], r105()
        assert d.log_text().count("rule set swapped in") == swaps, "a reload happened"

        # replay of the pulled set over the same events: the same alerts
        pulled = os.path.join(c.tmp, "pulled")
        p = subprocess.run([t.FW, "rules", "pull", pulled, "--redis", r.url],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        with open(os.path.join(pulled, "fraud_numbers.list")) as f:
            assert f"{number}\t2025-12-01T00:00:05Z\te2e\n" in f.read()
        ev = os.path.join(c.tmp, "events.jsonl")
        with open(ev, "wb") as f:
            f.write(b"\n".join(events) + b"\n")
        rep = sorted(x["event_id"] for x in t.replay_with(pulled, ev) if x["rule_id"] == "R105")
        assert rep == ["x1", "x4"], rep
        stream_ids = sorted(x["alert_id"] for x in alerts_of(c.alerts) if x["rule_id"] == "R105")
        replay_ids = sorted(x["alert_id"] for x in t.replay_with(pulled, ev)
                            if x["rule_id"] == "R105")
        assert stream_ids == replay_ids, (stream_ids, replay_ids)
        assert d.stop() == 0
    finally:
        r.stop()
        c.cleanup()


TESTS = [test_entry_expires_by_event_time]


def main():
    t.configure(sys.argv)
    return t.run_tests(TESTS, "list expiry tests")


if __name__ == "__main__":
    sys.exit(main())
