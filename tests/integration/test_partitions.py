#!/usr/bin/env python3
"""End-to-end: several input partitions, rules keyed across them.

A victim's call is keyed by the caller and lands in the caller's partition;
their transfer is keyed by the payer and lands in theirs; a mule account's
payers are spread over every partition.  With a backlog, librdkafka hands
over whole fetch batches per partition, so unless the daemon interleaves the
partitions by message time (src/kafka_order.c) the engine sees the steps
of a sequence or the members of a window out of order and alerts differ
from `fraudwatch replay` over the file.  These tests produce a generated
stream with bench/loadgen, keyed by subscriber into 4 partitions, each
message stamped one millisecond after the one before it (--seq-ts: at full
speed wall-clock stamps tie by the hundreds within a millisecond, and ties
across partitions can only come out in arrival order), start the daemon on
the full topic, and require exactly replay's alerts for every rule.

usage: test_partitions.py FRAUDWATCH GEN SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) without FW_KAFKA_PORT.  Ends with "N passed, N failed".
"""
import os
import subprocess
import sys
import time

import test_daemon as t
from test_daemon import Case, alerts_of, ids, read_lines, replay, run


def generate(c, n, seed, fraud_rate):
    path = f"{c.tmp}/gen-{n}-{seed}.jsonl"
    run([t.GEN, "--events", str(n), "--seed", str(seed), "--lists", t.RULES,
         "--fraud-rate", str(fraud_rate), "-q", "-o", path])
    return path


def produce_keyed(topic, path):
    """Keyed by subscriber (loadgen's rule), timestamps in file order."""
    n = len(read_lines(path))
    loadgen = os.path.join(os.path.dirname(t.GEN), "loadgen")
    run([loadgen, "-b", t.BROKER, "-t", topic, "--seq-ts", str(int(time.time() * 1000) - n),
         "-q", path])


def run_backlog(partitions, extra=""):
    c = Case(partitions=partitions)
    try:
        path = generate(c, 150000, 77, 25)
        want = replay(path)
        cross = [a for a in want if a["rule_id"] in ("R301", "R302", "R401", "R402", "R403")]
        assert len(cross) > 50, f"only {len(cross)} alerts of rules keyed across partitions"
        produce_keyed(c.topic, path)
        d = c.daemon("engine.threads = 2\n" + extra).start()
        # Until replay's count is reached, or the count has not moved for 10 s
        # (alerts missing: the comparison below names them).
        last, still, t0 = -1, 0, time.time()
        while time.time() - t0 < 300:
            n = len(alerts_of(c.alerts))
            if n >= len(want):
                break
            still = still + 1 if n == last else 0
            if n > 0 and still >= 10:
                break
            last = n
            time.sleep(1)
        time.sleep(2)   # anything extra would show now
        got = alerts_of(c.alerts)
        assert d.stop() == 0, "SIGTERM exit status"
        missing, extra_ids = ids(want) - ids(got), ids(got) - ids(want)
        rules = lambda s, alerts: sorted({a["rule_id"] for a in alerts if a["alert_id"] in s})
        show = lambda s, alerts: "; ".join(f"{a['rule_id']} {a['subject']} {a['event_id']}"
                                           for a in alerts if a["alert_id"] in s)
        assert not missing and not extra_ids, (
            f"{len(missing)} alerts missing ({rules(missing, want)}), {len(extra_ids)} extra "
            f"({rules(extra_ids, got)}) of {len(want)}\nmissing: {show(missing, want)}\n"
            f"extra: {show(extra_ids, got)}")
    finally:
        c.cleanup()


def test_four_partitions_backlog_equals_replay():
    """4 partitions keyed by subscriber, consumed as a backlog: every rule's
    alerts equal replay's, sequences and cross-key windows included."""
    run_backlog(4)


def test_loadgen_waits_for_a_topic_created_late():
    """bench/loadgen (the harness's producer, here and in the scale-out and
    bench tests) asks again for a topic's metadata instead of giving up on
    the first answer: a topic created two seconds after it starts gets every
    message.  Before, it exited 1 at once ("Unknown topic or partition"),
    and a broker silent for longer than its one 10 s request failed a CI
    run the same way."""
    c = Case(partitions=1)
    try:
        path = generate(c, 500, 5, 1)
        late = f"{c.topic}-late"
        loadgen = os.path.join(os.path.dirname(t.GEN), "loadgen")
        p = subprocess.Popen([loadgen, "-b", t.BROKER, "-t", late, "-q", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert p.poll() is None, f"loadgen gave up before the topic existed: {p.communicate()}"
        t.create_topic(late, 1)
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, f"loadgen exited {p.returncode}: {err}"
        assert "asking again" in err, err
        assert " 500 delivered, 0 failed" in err + out, err + out
    finally:
        c.cleanup()


def main():
    t.configure(sys.argv)
    return t.run_tests([v for k, v in globals().items() if k.startswith("test_")],
                       "partition tests")


if __name__ == "__main__":
    sys.exit(main())
