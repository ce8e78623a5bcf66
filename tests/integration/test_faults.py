#!/usr/bin/env python3
"""SIGTERM during a rebalance: two `fraudwatch run` daemons, one group, a real broker.

Owns the fault cases that need a real broker's group coordinator (issue 6);
the request-level faults are tests/test_faults.c on librdkafka's mock
cluster, and docs/faults.md describes both.  The helpers (topics, kcat,
the Daemon class, replay) are test_daemon.py's, imported, not copied.

Why this shape: a consumer group rebalance is driven by the broker and by
the members' heartbeats, so it is only realistic against the real broker
(scripts/kafka.sh).  Daemon A owns all four partitions of a keyed topic;
daemon B joins, which starts a cooperative rebalance (A revokes half of its
partitions, checkpointing first, then B is assigned them), and one of the
two gets SIGTERM while that is in progress:

  * test_sigterm_old_member_during_rebalance: A is stopped the moment its
    revocation callback starts (its log line "rebalance: checkpointing
    before hand-over"); B ends up with every partition.
  * test_sigterm_new_member_during_rebalance: B is stopped the moment it has
    started (it is joining); A gets every partition back.

The stopped daemon must exit 0 and the survivor must finish the stream.

What is compared, and why not everything: window and sequence state does not
move with a partition (docs/architecture.md, "Limits of this design"): the
member that takes a partition over starts from the committed offset without
the previous owner's state.  So the stream is produced in two phases whose
event times are 30 days apart, longer than any window or suppression of the
rules: phase 1 is processed by A alone before the rebalance, phase 2 starts
while the rebalance runs.  Then:
  - the alerts of phase 1 equal replay's (no hand-over touched it) for the
    rules keyed by the partition key (the subscriber, as in
    test_four_partitions_keyed: with four partitions, rules keyed by another
    field see another order) and for the stateless rules;
  - every alert of a stateless rule (no threshold, no sequence, no
    suppression) equals replay's over the whole stream, and the rule ALL
    fires once for every event: no event is lost anywhere;
  - alerts of the keyed stateful rules in phase 2 may differ where a key's
    window straddled the hand-over; the difference is counted and printed,
    not asserted (the documented limit).
Copies are allowed only with the same alert_id (set comparison).

usage: test_faults.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) when no broker is configured (FW_KAFKA_PORT).
"""
import json
import os
import shutil
import sys

import test_daemon as t
from test_daemon import (Case, Daemon, alerts_of, ids, log, produce, read_lines, replay_with,
                         run, wait_for)

SUBSCRIBER = t.SUBSCRIBER
DAY_MS = 86400 * 1000
START_TS = 1764547200000

# A rule that fires once for every event: its alerts prove each event was
# processed (at least once).
ALL_RULE = {"id": "ALL", "name": "every event", "event": "*", "where": []}


def rules_dir(tmp):
    d = os.path.join(tmp, "rules")
    shutil.copytree(t.RULES, d)
    with open(os.path.join(d, "all.json"), "w") as f:
        json.dump({"rules": [ALL_RULE]}, f)
    return d


def stateless_rules(d):
    out = set()
    for name in os.listdir(d):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(d, name)) as f:
            doc = json.load(f)
        for r in doc["rules"] if isinstance(doc, dict) else doc:
            if "threshold" not in r and "sequence" not in r and not r.get("suppress_s"):
                out.add(r["id"])
    return out


def gen_phase(tmp, n, seed, start_ts):
    path = os.path.join(tmp, f"phase-{seed}.jsonl")
    run([t.GEN, "--events", str(n), "--seed", str(seed), "--lists", t.RULES, "--fraud-rate", "5",
         "--start-ts", str(start_ts), "-q", "-o", path])
    return read_lines(path)


def keyed(lines):
    out = []
    for line in lines:
        ev = json.loads(line)
        out.append((str(ev.get(SUBSCRIBER.get(ev["type"], ""), "x")), line))
    return out


def log_has(d, text):
    try:
        return text in d.log_text()
    except OSError:
        return False


def sigterm_during_rebalance(victim):
    c = Case(partitions=4)
    daemons = []
    try:
        rules = rules_dir(c.tmp)
        stateless = stateless_rules(rules)
        assert "ALL" in stateless and len(stateless) > 1, stateless
        phase1 = gen_phase(c.tmp, 8000, 71, START_TS)
        phase2 = gen_phase(c.tmp, 8000, 72, START_TS + 30 * DAY_MS)
        both = os.path.join(c.tmp, "both.jsonl")
        with open(both, "wb") as f:
            f.write(b"\n".join(phase1 + phase2) + b"\n")
        p1 = os.path.join(c.tmp, "p1.jsonl")
        with open(p1, "wb") as f:
            f.write(b"\n".join(phase1) + b"\n")
        want = replay_with(rules, both)
        want1 = replay_with(rules, p1)
        assert len([a for a in want if a["rule_id"] == "ALL"]) == len(phase1) + len(phase2)

        extra = (f"rules.source = dir:{rules}\nstate.checkpoint_interval_ms = 300\n"
                 "kafka.consumer.session.timeout.ms = 10000\n"
                 "kafka.consumer.heartbeat.interval.ms = 1000\n")
        dirs = [os.path.join(c.tmp, n) for n in ("a", "b")]
        for d in dirs:
            os.mkdir(d)
        a = Daemon(dirs[0], c.topic, c.group, c.alerts, c.dlq, extra)
        daemons.append(a)
        produce(c.topic, keyed(phase1), keyed=True)
        a.start()
        comparable = stateless | t.KEYED_RULES
        want1c = {x["alert_id"] for x in want1 if x["rule_id"] in comparable}
        wait_for(lambda: want1c <= ids(alerts_of(c.alerts)), 120, "phase 1 done by A alone")
        assert log_has(a, "partition=3"), "A owns every partition"
        b = Daemon(dirs[1], c.topic, c.group, c.alerts, c.dlq, extra)  # Daemon.last: B's log
        daemons.append(b)

        ph2 = keyed(phase2)
        half = len(ph2) // 2
        produce(c.topic, ph2[:half], keyed=True)  # A is busy with these ...
        b.start()                             # ... when B joins
        if victim == "old":
            # A's side of the rebalance is a revocation, checkpointed first —
            # or, when one of A's commits (every 300 ms here) reached the
            # coordinator just as B's join moved the generation on, librdkafka
            # 2.0.2 calls A's assignment lost (ILLEGAL_GENERATION) and A takes
            # part of it back (kafka_in.c).  A holds its commits from the
            # revocation to the next round (kafka.h), which closes the wide
            # window; one sent before A knows of the rebalance can still
            # cross.  Either way it is mid-rebalance.
            wait_for(lambda: log_has(a, "rebalance: checkpointing before hand-over") or
                     log_has(a, "msg=\"partition lost\""), 60, "A's revocation")
            log("    A's side of the rebalance: " +
                ("revocation" if log_has(a, "rebalance: checkpointing before hand-over")
                 else "assignment lost (a commit crossed B's join)"))
            rc = a.stop()
            assert rc == 0, f"A: exit status {rc} on SIGTERM during its revocation"
            survivor = b
        else:
            wait_for(lambda: log_has(b, "msg=\"running\""), 60, "B started")
            rc = b.stop()
            assert rc == 0, f"B: exit status {rc} on SIGTERM while joining"
            survivor = a
        log(f"    SIGTERM to the {'old' if victim == 'old' else 'new'} member: exit 0")
        produce(c.topic, ph2[half:], keyed=True)
        want_all = {x["alert_id"] for x in want if x["rule_id"] == "ALL"}
        wait_for(lambda: want_all <= ids(alerts_of(c.alerts)), 180,
                 "an ALL alert for every event")
        # The survivor owns every partition by now and is idle: stop it.
        rc = survivor.stop()
        assert rc == 0, f"survivor: exit status {rc} on SIGTERM"

        got = alerts_of(c.alerts)
        sl_want = {x["alert_id"] for x in want if x["rule_id"] in stateless}
        sl_got = {x["alert_id"] for x in got if x["rule_id"] in stateless}
        assert sl_got == sl_want, (f"stateless alerts differ: {len(sl_want - sl_got)} lost, "
                                   f"{len(sl_got - sl_want)} not in replay")
        p1_got = {x["alert_id"] for x in got
                  if x["event_ts"] < START_TS + 30 * DAY_MS and x["rule_id"] in comparable}
        assert p1_got == want1c, f"phase 1 differs: {p1_got ^ want1c}"
        keyed_want = {x["alert_id"] for x in want if x["rule_id"] in t.KEYED_RULES}
        keyed_got = {x["alert_id"] for x in got if x["rule_id"] in t.KEYED_RULES}
        stateful_diff = keyed_want ^ keyed_got
        for d in daemons:
            text = d.log_text()
            for bad in ("Sanitizer", "runtime error:"):
                assert bad not in text, f"sanitizer report in a daemon's log: {bad}"
        log(f"    {len(want)} alerts in replay, {len(got)} messages; "
            f"keyed stateful alerts of phase 2 differing across the hand-over: "
            f"{len(stateful_diff)} of {len(keyed_want)}")
    except Exception:
        for d in daemons:        # before cleanup() removes the logs
            Daemon.last = d
            t.dump_daemon_log()
        raise
    finally:
        for d in daemons:
            if d.proc:
                d.proc.kill()
                d.proc.wait()
                d.proc = None
        c.cleanup()


def test_sigterm_old_member_during_rebalance():
    """A, revoking partitions for B, gets SIGTERM: exit 0, B finishes."""
    sigterm_during_rebalance("old")


def test_sigterm_new_member_during_rebalance():
    """B, joining, gets SIGTERM: exit 0, A takes everything back and finishes."""
    sigterm_during_rebalance("new")


TESTS = [test_sigterm_old_member_during_rebalance, test_sigterm_new_member_during_rebalance]


def main():
    t.configure(sys.argv)
    return t.run_tests(TESTS, "integration tests")


if __name__ == "__main__":
    sys.exit(main())
