#!/usr/bin/env python3
"""A 20 000-event smoke run of bench/run against the real broker of the test
suite (scripts/test.sh exports FW_KAFKA_PORT) and a redis-server bench/run
starts itself: two offered rates (10k/s for one second, then max), the
backlog drain, the consume-only ceiling and the pass-through.  It asserts
what the run must deliver, not how fast: every phase ran and the daemon
exited 0, every event sent was processed, latencies exist and are sane (and
the p99 tail is split into stages), the alerts equal
`fraudwatch replay`'s and detect every planted scenario with no alert
outside the truth, and the results folder holds report.md, results.json and
both PNG plots.

usage: test_bench_run.py BUILD_ROOT SOURCE_ROOT
Exit 77 (skipped) without FW_KAFKA_PORT.  Ends with "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import fwtest  # noqa: E402


def main():
    build, root = (os.path.abspath(a) for a in sys.argv[1:3])
    kafka = fwtest.Kafka.from_env()
    if not kafka:
        print("FW_KAFKA_PORT not set (scripts/test.sh starts the broker): skipped")
        return 77
    checks = []

    def check(ok, what):
        checks.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)

    with tempfile.TemporaryDirectory(prefix="fwtest-bench-") as tmp:
        out = os.path.join(tmp, "results")
        cmd = [os.path.join(root, "bench", "run"), "--events", "20000",
               "--rates", "10000,max", "--rate-seconds", "1", "--backlog-rounds", "2",
               "--broker", kafka.addr, "--build-dir", build, "--no-build", "--no-deps",
               "--cache", os.path.join(tmp, "cache"), "--out", out]
        print("$ " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        print(p.stdout[-6000:])
        check(p.returncode == 0, f"bench/run exit status {p.returncode}")
        if p.returncode != 0:
            print(f"{sum(checks)} passed, {len(checks) - sum(checks)} failed")
            return 1
        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        w = res.get("warmup") or {}
        check(w.get("events") == 20000 and w.get("read_back") == 20000,
              f"the broker warmed up before the sweep with the whole stream, read back ({w})")
        runs = {r["rate"]: r for r in res["runs"]}
        check(sorted(runs, key=str) == [10000, "max"], f"runs {list(runs)}")
        r10, mx = runs[10000], runs["max"]
        check(r10["events"] == 10000 and mx["events"] == 20000,
              "10k/s for 1 s sends 10 000 events; max sends all 20 000")
        for r in (r10, mx):
            check(r["exit"] == 0, f"{r['rate']}: daemon exit 0 after SIGTERM")
            l = r["latency_ms"]
            check(l["n"] > 0 and l["n"] == r["alerts_produced"] and r["unmatched_alerts"] == 0,
                  f"{r['rate']}: a latency for each of the {r['alerts_produced']} alerts ({l['n']})")
            check(0 <= l["p50"] <= l["p99"] <= l["max"] < 60_000,
                  f"{r['rate']}: 0 <= p50 {l['p50']} <= p99 {l['p99']} <= max {l['max']} < 60 s")
            check(r["recall"] == 1.0 and r["precision"] == 1.0,
                  f"{r['rate']}: recall {r['recall']} precision {r['precision']} on the events sent")
            check(r["cpu_s"] > 0 and r["hwm_kib"] > 0, f"{r['rate']}: CPU and peak RSS measured")
        q = res["quality"]
        check(q["recall"] == 1.0 and q["false_positives"] == 0 and q["planted_lines"] > 5,
              f"max: {q['planted_detected']}/{q['planted_lines']} planted detected, "
              f"{q['false_positives']} false positives")
        check(q.get("replay_same_alerts") is True, "max: the daemon's alert ids = replay's")
        check(res["replay"]["alerts"] == q["unique_alerts"], "replay and daemon: same alert count")
        t = res["throughput"]
        check(t["daemon_backlog"]["events_per_s"] > 0 and t["passthrough"]["msg_per_s"] > 0,
              "backlog drain and pass-through measured")
        c = t.get("consume_only") or {}
        check(c.get("messages") == 20000 and c.get("msg_per_s", 0) > 0,
              f"consume-only ceiling read all 20 000 messages ({c.get('messages')})")
        rounds = t.get("backlog_rounds") or []
        check([r.get("first") for r in rounds] == ["daemon", "consume_only"]
              and all(r["daemon"]["events_per_s"] > 0 and r["consume_only"]["messages"] == 20000
                      for r in rounds),
              "two backlog rounds, the daemon first then consume-only first, each complete")
        rates = sorted(r["daemon"]["events_per_s"] for r in rounds)
        check(t["daemon_backlog"]["events_per_s"] == (rates[0] + rates[1]) / 2,
              "the backlog figure is the median of the rounds")
        stages = r10.get("stages") or {}
        want = ["input_append_ts", "polled_ts", "batched_ts", "detected_ts", "retired_ts"]
        check(stages.get("stamps") == want and len(stages.get("stages", [])) == 6
              and stages["tail"] >= 1 and stages.get("incomplete") == 0,
              "10k/s: the p99 tail split into six stages by the daemon's stamps "
              f"(got {stages.get('stamps')}, incomplete {stages.get('incomplete')})")
        mem = res["memory"]
        check(mem["full"]["keys"] > mem["small"]["keys"] > 0,
              f"live keys grow with the stream ({mem['small']['keys']} -> {mem['full']['keys']})")
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        for section in ("## Throughput", "## Event-to-alert latency by offered rate",
                        "| daemon / consume-only |", "| the rounds (medians above) |",
                        "### Where the p99 goes",
                        "## Detection quality against the ground truth", "## Resources",
                        "## Method", "![latency percentiles against offered rate](latency.png)"):
            check(section in md, f"report.md has {section!r}")
        for png in ("latency.png", "throughput.png"):
            path = os.path.join(out, png)
            with open(path, "rb") as f:
                magic = f.read(8) if os.path.exists(path) else b""
            check(magic == b"\x89PNG\r\n\x1a\n", f"{png} is a PNG")
    failed = len(checks) - sum(checks)
    print(f"{sum(checks)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
