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
                       "consume_only": {"msg_per_s": 800000.0, "cpu_s": 1.5, "hwm_kib": 2048},
                       "passthrough": {"msg_per_s": 1_000_000.0}},
        "quality": dict(report.score([al("1", "R104", "C")], TRUTH), source="max"),
        "method": ["1. method line"],
    }
    res["runs"][0].update(recall=1.0, precision=0.5)
    md = report.render_markdown(res)
    for want in ("| 10,000/s | 9,999/s | 200,000 | 4 | 2 | 4 | 4 | 4 | 4 | 100.0 % / 50.0 % |"
                 " 1.0 | 2 MiB | 3, 50 ms, 4 ms |",
                 "8.50 s = 200,000 ev/s", "target < 10 s for 1.7M: met",
                 "| daemon / consume-only | **0.88** | target ≥ 0.80: met |",
                 "| daemon / pass-through (reference only) | 0.70 | |",
                 "more work than the daemon's output, not a ceiling",
                 "| overseas_call | 2 | 1 | 50.0 % |", "Recall target 100 %: **NOT met**",
                 "1. method line"):
        assert want in md, f"report lacks {want!r}:\n{md}"


def test_consume_only_summary():
    line = ("consume_only: 200000 messages, 0.800 s, 249999 msg/s (first -> last consumed), "
            "join 3.012 s, 41000000 bytes, 2 commits, 0 consumer errors, cpu 0.61 s, "
            "maxrss 123456 KiB")
    eq(report.parse_consume_only(line),
       {"messages": 200000, "span_s": 0.8, "msg_per_s": 249999.0, "cpu_s": 0.61,
        "hwm_kib": 123456}, "consume_only figures")
    for bad in ("passthrough: 1 messages, 1 s, 1 msg/s, cpu 1 s, maxrss 1 KiB",
                "consume_only: 5 messages, 1.0 s, cpu 1 s"):
        try:
            report.parse_consume_only(bad)
        except ValueError:
            continue
        raise AssertionError(f"parsed {bad!r}")


def test_ceiling_ratios():
    t = {"daemon_backlog": {"events_per_s": 600000.0},
         "consume_only": {"msg_per_s": 800000.0}, "passthrough": {"msg_per_s": 400000.0}}
    eq(report.ceiling_ratios(t), {"consume_only": 0.75, "consume_only_met": False,
                                  "passthrough": 1.5}, "0.75 misses the 0.8 target")
    t["consume_only"]["msg_per_s"] = 750000.0
    eq(report.ceiling_ratios(t)["consume_only_met"], True, "exactly 0.8 meets it")
    eq(report.ceiling_ratios({"consume_only": {"msg_per_s": 1.0}}),
       {"consume_only": None, "consume_only_met": None, "passthrough": None}, "no daemon figure")


def test_stage_split_detected_only():
    # Send times from the side file; alerts carry detected_ts; append = broker time.
    side = {f"e{i}": 1000 for i in range(1, 11)}
    timed = []
    for i in range(1, 10):                       # nine quick alerts: 4 ms + 1 ms
        timed.append((1005, {"event_id": f"e{i}", "detected_ts": 1004}))
    timed.append((1100, {"event_id": "e10", "detected_ts": 1030}))   # the tail: 30 + 70
    timed.append((1200, {"event_id": "nope", "detected_ts": 1100}))  # not ours: ignored
    st = report.stage_split(timed, side)
    eq(st["p99_ms"], 100, "p99 of nine 5s and a 100 (nearest rank: the 10th)")
    eq(st["tail"], 1, "one alert at or above p99")
    eq(st["stamps"], ["detected_ts"], "stamps present")
    eq(len(st["stages"]), 2, "two stages")
    up, after = st["stages"]
    eq(up["stage"], "up to detected_ts: input append; consume wait; batch wait; engine",
       "before detection: four stages in one")
    eq(after["stage"], "retire wait; to the producer; " + report.LAST_STAGE,
       "after detection: three stages in one")
    eq((up["share"], after["share"]), (0.3, 0.7), "shares of the tail")
    eq((up["tail_mean_ms"], after["tail_mean_ms"]), (30.0, 70.0), "tail means")
    eq((up["p50_ms"], up["p99_ms"], after["p50_ms"]), (4, 30, 1), "stage percentiles")
    eq(report.stage_split([], side), None, "no alerts")


def test_stage_split_finer_stamps():
    # A daemon stamping every stage: each gap is its own stage.
    side = {"a": 0, "b": 0}
    full = {"input_append_ts": 3, "polled_ts": 10, "batched_ts": 15, "detected_ts": 20,
            "retired_ts": 21, "produced_ts": 22}
    timed = [(40, dict(full, event_id="a")), (30, dict(full, event_id="b")),
             (50, {"event_id": "b", "detected_ts": 20})]     # lacks stamps: left out
    st = report.stage_split(timed, side, p=50)
    eq(st["incomplete"], 1, "alert without every stamp")
    eq([x["stage"] for x in st["stages"]],
       [label for _, label in report.STAMPS] + [report.LAST_STAGE], "one stage per gap")
    eq(st["p50_ms"], 30, "p50 of 30 and 40")
    # tail = both (>= 30): gaps 3,7,5,5,1,1 and 18 / 8: total 70
    eq([x["share"] for x in st["stages"]],
       [6 / 70, 14 / 70, 10 / 70, 10 / 70, 2 / 70, 2 / 70, 26 / 70], "shares")


def test_stamps_from_headers():
    # kcat -f '%T\t%h\t%s\n': the daemon's fw.t.* headers become stamp fields;
    # other headers are ignored; a line without headers keeps its fields.
    with tempfile.TemporaryDirectory() as d:
        ap = os.path.join(d, "alerts.tsv")
        with open(ap, "w") as f:
            f.write('1050\tfw.instance=x,fw.t.input_append=1002,fw.t.polled=1010,'
                    'fw.t.batched=1012,fw.t.retired=1041\t{"event_id":"e1","detected_ts":1030}\n')
            f.write('1060\t\t{"event_id":"e2","detected_ts":1040}\n')
            f.write('1070\t{"event_id":"e3"}\n')
        got = report.read_timed_alerts(ap)
    eq([t for t, _ in got], [1050, 1060, 1070], "append times")
    eq(got[0][1], {"event_id": "e1", "detected_ts": 1030, "input_append_ts": 1002,
                   "polled_ts": 1010, "batched_ts": 1012, "retired_ts": 1041}, "stamps")
    eq(got[1][1], {"event_id": "e2", "detected_ts": 1040}, "no headers")
    st = report.stage_split(got[:1], {"e1": 1000})
    eq([x["tail_mean_ms"] for x in st["stages"]], [2.0, 8.0, 2.0, 18.0, 11.0, 9.0],
       "send→append→poll→batch→detect→retire→alert append")


def test_compare_alerts():
    fw = [al("1", "R101", "A", "e1"), al("2", "R105", "B", "e2"), al("3", "R999", "C", "e3")]
    peer = [{"rule_id": "R101", "subject": "A", "event_id": "e1"},
            {"rule_id": "R101", "subject": "A", "event_id": "e1"},    # a duplicate
            {"rule_id": "R105", "subject": "B", "event_id": "e9"}]
    c = report.compare_alerts(fw, peer, {"R101", "R105"})
    eq((c["same"], c["both"], c["only_fw"], c["only_peer"]), (False, 1, 1, 1), "counts")
    eq(c["examples_only_fw"], [["R105", "B", "e2"]], "only fraudwatch")
    eq(c["examples_only_peer"], [["R105", "B", "e9"]], "only the peer")
    eq(report.compare_alerts(fw[:1], peer[:2])["same"], True, "duplicates do not count")


def test_peer_summary():
    def rnd(parts, fw_eps, fw_cpu, peer_eps, peer_cpu, agree=True, warm=None):
        p = {"events_per_s": peer_eps, "cpu_s": peer_cpu, "hwm_kib": 400 * 1024}
        if warm:
            p.update(warm_events_per_s=warm[0], warm_cpu_s=warm[1])
        return {"partitions": parts, "events": 1000, "agree": agree, "peer": p,
                "fw": {"events_per_s": fw_eps, "cpu_s": fw_cpu, "hwm_kib": 100 * 1024}}
    rounds = [rnd(1, 1000.0, 1.0, 100.0, 10.0, warm=(200.0, 5.0)),
              rnd(1, 3000.0, 2.0, 300.0, 20.0, warm=(400.0, 4.0)),
              rnd(1, 2000.0, 0.5, 200.0, 40.0, warm=(300.0, 2.0)),
              rnd(4, 500.0, 1.0, 50.0, 5.0, agree=False)]
    s = report.peer_summary(rounds)
    eq(sorted(s), [1, 4], "grouped by partitions")
    one = s[1]
    eq(one["rounds"], 3, "rounds")
    eq(one["agree"], True, "agree")
    eq(one["fw"]["events_per_s"], 2000.0, "median of 1000, 3000, 2000")
    eq(one["fw"]["events_per_cpu_s"], 1000.0, "median of 1000/1, 1000/2, 1000/0.5")
    eq(one["peer"]["events_per_cpu_s"], 50.0, "median of 100, 50, 25")
    eq(one["peer"]["warm_events_per_cpu_s"], 250.0, "median of 200, 250, 500")
    eq(one["ratio"]["events_per_s"], 10.0, "2000 / 200")
    eq(one["ratio"]["events_per_cpu_s"], 20.0, "1000 / 50")
    eq(one["ratio"]["warm_events_per_s"], 2000.0 / 300.0, "against the warm median")
    eq(one["ratio"]["warm_events_per_cpu_s"], 4.0, "1000 / 250")
    eq(one["ratio"]["peak_rss_peer_over_fw"], 4.0, "400 MiB / 100 MiB")
    eq(s[4]["agree"], False, "a round that disagreed")
    eq(s[4]["ratio"]["warm_events_per_s"], None, "no warm pass")
    eq(report.median([4, 1, 3, 2]), 2.5, "even median")


def test_markdown_peer_and_stages():
    warm = report.compare_alerts([], [{"rule_id": "R101", "subject": "s", "event_id": "e"}])
    rounds = [{"partitions": 1, "round": 1, "order": ["fw", "peer"], "events": 1000,
               "agree": False, "compare": report.compare_alerts([], []), "compare_warm": warm,
               "fw": {"events_per_s": 1000.0, "cpu_s": 1.0, "hwm_kib": 1024, "alerts": 0},
               "peer": {"events_per_s": 100.0, "cpu_s": 10.0, "hwm_kib": 8192, "alerts": 0,
                        "warm_events_per_s": 200.0, "warm_cpu_s": 5.0}}]
    side = {"e1": 0}
    res = {
        "meta": {"date": "d", "command": "c", "commit": "x", "machine": "m", "events": 1000,
                 "seed": 1, "fraud_rate": 1.0, "planted": 1, "partitions": "1", "threads": 2,
                 "loadavg": "9 9 9"},
        "runs": [{"rate": 50000, "events": 1000, "achieved": 50000.0, "cpu_s": 1.0,
                  "hwm_kib": 1024, "latency_ms": report.latency_stats([10]),
                  "stages": report.stage_split([(10, {"event_id": "e1", "detected_ts": 4})], side)}],
        "peer": {"rules": ["R101"], "rounds": rounds, "java_opts": "",
                 "summary": {"1": report.peer_summary(rounds)[1]}},
        "method": [],
    }
    md = report.render_markdown(res)
    for want in ("## fraudwatch against a Kafka Streams peer",
                 "| 1 | 1 | 1,000 | 100 / 200 | **10.00×** / 5.00× | 1,000 | 100 / 200 | "
                 "**10.00×** / 5.00× | 1 MiB / 8 MiB (8.00×) | **no** |",
                 "| 0 / 0 / 0 (0 / 0 / 1) |",
                 "round 1, warm pass: only fraudwatch [], only the peer [['R101', 's', 'e']]",
                 "### Where the p99 goes",
                 "| 50,000/s | 10 | 1 | up to detected_ts", "| 40.0 % | 4.0 ms | 4 / 4 ms |",
                 f"| | | | retire wait; to the producer; {report.LAST_STAGE} | 60.0 % | 6.0 ms | "
                 "6 / 6 ms |"):
        assert want in md, f"report lacks {want!r}:\n{md}"


def main():
    return runner.run(globals())


if __name__ == "__main__":
    sys.exit(main())
