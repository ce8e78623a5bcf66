#!/usr/bin/env python3
"""Checks bench/gen, the bench's traffic generator, as the bench relies on it:

  determinism   the same seed and options give the same bytes (events and
                truth); another seed gives other bytes;
  the stream    exactly --events lines, each a JSON object with a unique
                event_id, a type of call/sms/transfer and an integer ts;
                some of them late (ts below one already seen);
  ground truth  every truth line's events are in the stream, and its subject
                is a value of (a field of) its events; and the truth agrees
                with what the shipped rules make of the stream:
                `fraudwatch replay` detects every truth line (recall 100 %)
                and raises no alert outside the truth (precision 100 %),
                scored by bench/report.py.

usage: test_gen.py GEN FRAUDWATCH SOURCE_ROOT   (ends with "N passed, N failed")
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

GEN, FW, ROOT = (os.path.abspath(a) for a in sys.argv[1:4])
RULES = os.path.join(ROOT, "rules")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import report  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402

TMP = tempfile.mkdtemp(prefix="fwtest-gen-")


def gen(name, *args):
    ev, tr = os.path.join(TMP, name + ".jsonl"), os.path.join(TMP, name + ".truth")
    subprocess.run([GEN, *args, "--lists", RULES, "--truth", tr, "-o", ev, "-q"], check=True)
    return ev, tr


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_same_seed_same_bytes():
    a = gen("a", "--events", "30000", "--seed", "7")
    b = gen("b", "--events", "30000", "--seed", "7")
    c = gen("c", "--events", "30000", "--seed", "8")
    assert digest(a[0]) == digest(b[0]), "same seed, different events"
    assert digest(a[1]) == digest(b[1]), "same seed, different truth"
    assert digest(a[0]) != digest(c[0]), "seeds 7 and 8 gave the same events"
    assert digest(a[1]) != digest(c[1]), "seeds 7 and 8 gave the same truth"


def stream():
    if not hasattr(stream, "cache"):
        ev, tr = gen("q", "--events", "60000", "--seed", "11", "--fraud-rate", "10")
        with open(ev, encoding="utf-8") as f:
            events = [json.loads(l) for l in f]
        stream.cache = (ev, tr, events, report.read_jsonl(tr))
    return stream.cache


def test_stream_shape():
    _, _, events, _ = stream()
    assert len(events) == 60000, f"{len(events)} events, asked for 60000"
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids), "event ids repeat"
    types = {e["type"] for e in events}
    assert types == {"call", "sms", "transfer"}, f"types {types}"
    assert all(isinstance(e["ts"], int) for e in events), "a ts that is not an integer"
    late, hi = 0, 0
    for e in events:
        if e["ts"] < hi:
            late += 1
        hi = max(hi, e["ts"])
    # default --late-frac 0.01 of ordinary events, held back 1-120 s
    assert 100 < late < 2000, f"{late} late events, expected about 1 %"


def test_truth_names_real_events_and_subjects():
    _, _, events, truth = stream()
    by_id = {e["event_id"]: e for e in events}
    assert len(truth) > 100, f"only {len(truth)} truth lines at --fraud-rate 10"
    scen = {t["scenario"] for t in truth if not t.get("incidental")}
    assert len(scen) == 16, f"{len(scen)} scenario kinds planted: {sorted(scen)}"
    for t in truth:
        assert t["event_ids"], f"truth line without events: {t}"
        for eid in t["event_ids"]:
            assert eid in by_id, f"{t['scenario']}: event {eid} is not in the stream"
        values = {str(v) for eid in t["event_ids"] for v in by_id[eid].values()}
        for part in t["subject"].split("|"):
            assert part in values, f"{t['scenario']}: subject part {part} in none of its events"


def test_truth_agrees_with_the_rules():
    ev, tr, _, truth = stream()
    p = subprocess.run([FW, "replay", "--rules", RULES, "--threads", "2", ev],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, text=True)
    alerts = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    q = report.score(alerts, truth)
    missed = q["missed"][:5]
    assert q["recall"] == 1.0 and not q["missed"], f"missed truth lines: {missed}"
    for name, s in q["scenarios"].items():
        assert s["recall"] == 1.0, f"{name}: recall {s['recall']}"
    fps = q["false_positive_alerts"][:5]
    assert q["false_positives"] == 0, f"alerts outside the truth: {fps}"
    assert q["unique_alerts"] >= len(truth), "fewer alerts than truth lines"


def main():
    try:
        return runner.run(globals())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
