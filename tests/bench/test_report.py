#!/usr/bin/env python3
"""Checks bench/report.py's arithmetic on small inputs worked out by hand:
nearest-rank percentiles, per-alert latency from a side file, recall and
precision against a truth file (incidental lines, duplicates, a prefix
run), throughput over time from a metrics trace, and the markdown report.

usage: test_report.py SOURCE_ROOT      (ends with "N passed, N failed")
"""
import json
import os
import sys
import tempfile

ROOT = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(ROOT, "bench"))
import report  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402


def eq(got, want, what):
    assert got == want, f"{what}: got {got!r}, want {want!r}"


def test_percentiles_nearest_rank():
    v = list(range(1, 101))          # 1..100
    eq(report.percentile(v, 50), 50, "p50 of 1..100")        # rank ceil(50) = 50
    eq(report.percentile(v, 99), 99, "p99 of 1..100")
    eq(report.percentile(v, 99.9), 100, "p99.9 of 1..100")   # rank ceil(99.9) = 100
    eq(report.percentile(v, 100), 100, "p100 = max")
    eq(report.percentile([7], 50), 7, "one sample")
    eq(report.percentile([], 50), None, "no sample")
    # 10 samples: p95 -> rank ceil(9.5) = 10; p50 -> rank 5; p0 -> rank 1
    w = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    s = report.latency_stats(w)
    eq(s["n"], 10, "n")
    eq(s["p50"], 3, "p50 of 1 1 2 3 3 4 5 5 6 9")
    eq(s["p95"], 9, "p95")
    eq(s["p99"], 9, "p99")
    eq(s["max"], 9, "max")
    eq(s["mean"], 3.9, "mean")
    eq(report.percentile(sorted(w), 0), 1, "p0 = min")


def test_latency_from_side_file():
    side = {"e1": 1000, "e2": 1010, "e3": 1020}
    timed = [(1005, {"event_id": "e1"}), (1012, {"event_id": "e1"}),   # two alerts, one event
             (1040, {"event_id": "e3"}), (1100, {"event_id": "zz"})]   # zz: not ours
    lat, unknown = report.alert_latencies(timed, side)
    eq(sorted(lat), [5, 12, 20], "latencies")
    eq(unknown, 1, "alerts of events not in the side file")
    with tempfile.TemporaryDirectory() as d:
        sp, ap = os.path.join(d, "side.tsv"), os.path.join(d, "alerts.tsv")
        with open(sp, "w") as f:
            f.write("e1\t1000\ne2\t1010\n")
        with open(ap, "w") as f:
            f.write('1007\t{"event_id":"e1","alert_id":"a"}\n1013\t{"event_id":"e2","alert_id":"b"}\n')
        eq(report.read_side(sp), {"e1": 1000, "e2": 1010}, "side file")
        lat, _ = report.alert_latencies(report.read_timed_alerts(ap), report.read_side(sp))
        eq(lat, [7, 3], "latencies from files")


TRUTH = [
    {"scenario": "robocall_burst", "rules": ["R101", "R102"], "subject": "A", "event_ids": ["e1", "e2"]},
    {"scenario": "robocall_burst", "rules": ["R101", "R102"], "subject": "B", "event_ids": ["e3"]},
    {"scenario": "overseas_call", "rules": ["R104"], "subject": "C", "event_ids": ["e4"]},
    {"scenario": "overseas_call", "rules": ["R104"], "subject": "D", "event_ids": ["e9"]},
    {"scenario": "overseas_call_link_transfer", "rules": ["R403"], "subject": "V",
     "event_ids": ["e5", "e6", "e7"]},
    {"scenario": "overseas_call_link_transfer", "rules": ["R104"], "subject": "X",
     "event_ids": ["e5"], "incidental": True},
]


def al(aid, rule, subj, eid="e0"):
    return {"alert_id": aid, "rule_id": rule, "subject": subj, "event_id": eid}


def test_recall_and_precision():
    alerts = [
        al("1", "R101", "A"), al("2", "R102", "A"),   # robocall A: both rules -> detected
        al("3", "R101", "B"),                         # robocall B: R102 missing -> missed
        al("4", "R104", "C"), al("4", "R104", "C"),   # duplicate alert_id: counted once
        al("5", "R403", "V"),                         # planted line detected
        al("6", "R104", "X"),                         # the incidental line detected
        al("7", "R105", "A"),                         # right subject, wrong rule: false positive
        al("8", "R104", "Q"),                         # unknown subject: false positive
    ]
    q = report.score(alerts, TRUTH)
    eq(q["alerts"], 9, "alerts read")
    eq(q["unique_alerts"], 8, "unique by alert_id")
    eq(q["duplicates"], 1, "duplicates")
    eq(q["false_positives"], 2, "false positives")
    eq(q["true_positives"], 6, "true positives")
    eq(q["precision"], 6 / 8, "precision")
    sc = q["scenarios"]
    eq(sc["robocall_burst"], {"lines": 2, "detected": 1, "recall": 0.5}, "robocall recall")
    eq(sc["overseas_call"], {"lines": 2, "detected": 1, "recall": 0.5}, "overseas recall")
    eq(sc["overseas_call_link_transfer"]["recall"], 1.0, "planted R403")
    eq(sc["overseas_call_link_transfer (incidental)"]["recall"], 1.0, "incidental R104")
    # planted lines only: 5, detected A, C, V = 3
    eq((q["planted_lines"], q["planted_detected"]), (5, 3), "planted totals")
    eq(q["recall"], 3 / 5, "overall recall")
    missed = {(m["subject"], tuple(m["rules"])) for m in q["missed"]}
    eq(missed, {("B", ("R102",)), ("D", ("R104",))}, "missed lines name the missing rules")
    eq({(x["rule_id"], x["subject"]) for x in q["false_positive_alerts"]},
       {("R105", "A"), ("R104", "Q")}, "false positive list")


def test_recall_of_a_prefix_run():
    # Only e1..e5 were sent: lines needing e6, e7 or e9 are left out.
    present = {"e1", "e2", "e3", "e4", "e5"}
    q = report.score([al("1", "R101", "A"), al("2", "R102", "A"), al("3", "R104", "X")],
                     TRUTH, present=present)
    sc = q["scenarios"]
    eq(sorted(sc), ["overseas_call", "overseas_call_link_transfer (incidental)", "robocall_burst"],
       "scenarios with all their events sent")
    eq(sc["overseas_call"]["lines"], 1, "D's line (e9) left out")
    eq((q["planted_lines"], q["planted_detected"]), (3, 1), "A of A, B, C")
    eq(q["precision"], 1.0, "precision")


def test_no_alerts():
    q = report.score([], TRUTH)
    eq(q["precision"], None, "precision of nothing")
    eq(q["recall"], 0.0, "recall of nothing")


def test_rate_series():
    pts = [(0.0, 0), (0.25, 100), (0.5, 300), (0.75, 300), (1.0, 1300), (1.2, 1400)]
    # windows of >= 0.5 s: [0, 0.5] 300 ev -> 600/s at 0.25; [0.5, 1.0] 1000 ev -> 2000/s at 0.75
    eq(report.rate_series(pts, 0.5), [(0.25, 600.0), (0.75, 2000.0)], "rate series")
    eq(report.rate_series([], 0.5), [], "empty trace")


def test_markdown_report():
    res = {
        "meta": {"date": "2026-11-29 00:00 UTC", "command": "bench/run --events 4",
                 "commit": "abc", "machine": "m", "events": 1_700_000, "seed": 1,
                 "fraud_rate": 1.0, "planted": 5, "partitions": 1, "threads": 2,
                 "loadavg": "0 0 0"},
        "runs": [{"rate": 10000, "events": 200000, "achieved": 9999.0, "cpu_s": 1.0,
                  "hwm_kib": 2048, "latency_ms": report.latency_stats([1, 2, 3, 4]),
                  "checkpoints": 3, "checkpoint_max_s": 0.05, "checkpoint_pause_max_s": 0.004},
                 {"rate": "max", "events": 1_700_000, "achieved": 900000.0, "cpu_s": 3.0,
                  "hwm_kib": 4096, "e2e_s": 8.5, "latency_ms": report.latency_stats([9]),
                  "checkpoints": 1, "checkpoint_max_s": 0.1}],
        "throughput": {"daemon_backlog": {"events_per_s": 700000.0, "cpu_s": 2.0, "hwm_kib": 1024},
                       "passthrough": {"msg_per_s": 1_000_000.0}},
        "quality": dict(report.score([al("1", "R104", "C")], TRUTH), source="max"),
        "method": ["1. method line"],
    }
    res["runs"][0].update(recall=1.0, precision=0.5)
    md = report.render_markdown(res)
    for want in ("| 10,000/s | 9,999/s | 200,000 | 4 | 2 | 4 | 4 | 4 | 4 | 100.0 % / 50.0 % |"
                 " 1.0 | 2 MiB | 3, 50 ms, 4 ms |",
                 "8.50 s = 200,000 ev/s", "target < 10 s for 1.7M: met",
                 "| daemon / pass-through | **0.70** | target ≥ 0.60: met |",
                 "| overseas_call | 2 | 1 | 50.0 % |", "Recall target 100 %: **NOT met**",
                 "1. method line"):
        assert want in md, f"report lacks {want!r}:\n{md}"


def main():
    return runner.run(globals())


if __name__ == "__main__":
    sys.exit(main())
