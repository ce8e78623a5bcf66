#!/usr/bin/env python3
"""latency_ckpt.py — which slow alerts waited for a daemon checkpoint.

    latency_ckpt.py ALERTS_CSV DAEMON_LOG [--slow-ms 50]

ALERTS_CSV is bench/latency --csv output (event_id,rule_id,send_ts,alert_ts,
latency_ms).  DAEMON_LOG is the daemon's stderr at log.level=debug, whose
`module=checkpoint msg="written" ... ms=N` records give each checkpoint's end
(the record's ts) and duration; while a checkpoint runs the daemon's main
loop does not consume.

Prints the checkpoints taken while the load ran, how many alerts were slower
than --slow-ms and how many of those were in flight (sent before the
checkpoint ended, appended after it started) during one, and the latency
percentiles of the alerts that did not overlap any checkpoint.

Standard library only.
"""
import argparse
import csv
import datetime
import math
import re
import sys


def pct(v, p):
    return v[max(1, math.ceil(p / 100 * len(v))) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("log")
    ap.add_argument("--slow-ms", type=int, default=50)
    a = ap.parse_args()

    alerts = []
    with open(a.csv) as f:
        for row in csv.DictReader(f):
            alerts.append((int(row["send_ts"]), int(row["alert_ts"]), int(row["latency_ms"])))
    if not alerts:
        print("latency_ckpt: no alerts")
        return 1
    first = min(s for s, _, _ in alerts)
    last = max(t for _, t, _ in alerts)

    ckpts = []
    rx = re.compile(r'^ts=(\S+) level=debug module=checkpoint msg="written" .*\bms=(\d+)')
    with open(a.log) as f:
        for line in f:
            m = rx.match(line)
            if not m:
                continue
            end = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            end_ms = int(end.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
            dur = int(m.group(2))
            if end_ms >= first and end_ms - dur <= last:
                ckpts.append((end_ms - dur, end_ms))
    durs = ", ".join(f"{e - s} ms at +{(s - first) / 1000:.1f} s" for s, e in ckpts)
    print(f"checkpoints during the load: {len(ckpts)} ({durs or 'none'})")

    def overlaps(send, appended):
        return any(send <= e and appended >= s for s, e in ckpts)

    slow = [x for x in alerts if x[2] > a.slow_ms]
    slow_ck = [x for x in slow if overlaps(x[0], x[1])]
    print(f"alerts over {a.slow_ms} ms: {len(slow)} of {len(alerts)}; "
          f"{len(slow_ck)} of them were in flight during a checkpoint")
    clean = sorted(x[2] for x in alerts if not overlaps(x[0], x[1]))
    if clean:
        print(f"alerts that overlapped no checkpoint: {len(clean)}, ms p50 {pct(clean, 50)} "
              f"p99 {pct(clean, 99)} max {clean[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
