#!/usr/bin/env python3
"""A rollback under load (issue 11.4): `fraudwatch rules rollback` while a
daemon consumes 200k generated events from the real broker, its rules from
a redis-server of the test's own.

The shape is test_reload.py's test_reload_under_stream: set A is the
shipped rules, set B is A plus one rule (X1).  A is pushed (version 1), B
is pushed (version 2), the daemon starts on B, and half way through the
stream `rules rollback 1` publishes version 3 = A.  Every rule of A is
unchanged by both swaps, so its window and sequence state must survive
them: the alerts of A's rules equal `fraudwatch replay` with A over the
whole stream, exactly.  X1 fires only under version 2, and each of its
alerts is one that replay with B produces.  The rollback is in the history
as a rollback of 1, appended after the two pushes.

usage: test_history_load.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) when no broker is configured.  Ends with "N passed, N failed".
"""
import json
import subprocess
import sys
import time

import test_daemon as t
from test_daemon import Case, alerts_of, generated, ids, log, produce, read_lines, replay_with, wait_for
from test_reload import EXTRA, add_rule, rules_copy, swapped
from fwtest import Redis


def fw(redis, *args):
    p = subprocess.run([t.FW, *args, "--redis", redis.url], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"{args}: {p.stdout}\n{p.stderr}"
    return p.stdout


def test_rollback_under_load():
    c = Case()
    r = Redis()
    try:
        a = rules_copy(c.tmp, "A")
        b = rules_copy(c.tmp, "B", lambda d: add_rule(d, EXTRA))
        path = generated(c.tmp, 200000, 61)
        want_a = replay_with(a, path)
        want_x1 = {x["alert_id"] for x in replay_with(b, path) if x["rule_id"] == "X1"}
        fw(r, "rules", "push", a, "-m", "set A")
        fw(r, "rules", "push", b, "-m", "set B: short calls", "--author", "ops")
        d = c.daemon(f"rules.source = {r.url}").start()
        wait_for(lambda: swapped(d, 2) or "version=2" in d.log_text(), 30, "version 2 loaded")
        lines = read_lines(path)
        chunk = len(lines) // 20
        for k in range(20):
            produce(c.topic, lines[k * chunk:(k + 1) * chunk if k < 19 else len(lines)])
            if k == 9:
                # some of B's alerts first, so the rollback lands mid-stream
                wait_for(lambda: any(x["rule_id"] == "X1" for x in alerts_of(c.alerts)), 120,
                         "an X1 alert under version 2")
                out = fw(r, "rules", "rollback", "1", "-m", "X1 too noisy")
                assert "as version 3" in out, out
            time.sleep(0.2)
        wait_for(lambda: swapped(d, 3), 30, "the rollback (version 3) swapped in")
        common = ids(want_a)
        wait_for(lambda: common <= ids(alerts_of(c.alerts)), 180, "the alerts of A's rules")
        time.sleep(2)
        assert d.stop() == 0
        got = alerts_of(c.alerts)
        got_a = [x for x in got if x["rule_id"] != "X1"]
        assert len(got_a) == len(common) and ids(got_a) == common, \
            f"A's rules differ from replay: {len(got_a)} alerts vs {len(common)}"
        x1 = [x for x in got if x["rule_id"] == "X1"]
        assert x1, "B was active for the first part of the stream"
        assert len(x1) == len(ids(x1)), "an event matched twice"
        for x in x1:
            assert x["ruleset_version"] == 2, f"X1 fired after the rollback: {x}"
            assert x["alert_id"] in want_x1, x
        seen = {x["ruleset_version"] for x in got}
        assert seen == {2, 3}, f"alerts under versions {seen}"
        hist = [json.loads(line) for line in
                fw(r, "rules", "history", "--json").splitlines()]
        assert [(h["version"], h["action"]) for h in hist] == \
            [(3, "rollback"), (2, "push"), (1, "push")], hist
        assert hist[0]["rollback_of"] == 1 and hist[0]["message"] == "X1 too noisy"
        n3 = sum(1 for x in got if x["ruleset_version"] == 3)
        log(f"    {len(got)} alerts: {len(x1)} X1 under version 2, {n3} under version 3 "
            f"(the rollback); A's rules equal replay ({len(common)})")
    finally:
        r.stop()
        c.cleanup()


TESTS = [test_rollback_under_load]


def main():
    t.configure(sys.argv)
    return t.run_tests(TESTS, "history load tests")


if __name__ == "__main__":
    sys.exit(main())
