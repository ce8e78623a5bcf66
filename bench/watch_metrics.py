#!/usr/bin/env python3
"""watch_metrics.py — time `fraudwatch run` through its /metrics endpoint.

    watch_metrics.py --port P --pid PID --target N [--interval S] [--timeout S]
                     [--broker-pid BPID] [--histogram] [--trace FILE]

Polls http://127.0.0.1:P/metrics (one keep-alive connection, every
--interval seconds, default 0.02) until fraudwatch_events_total reaches N,
and prints one line of key=value figures on stdout:

  rate        (N - e1) / (tN - t1): t1 is the first sample with events > 0
              (e1 events by then), tN the first sample with events >= N.  The
              daemon counts events when a batch's output is handed to the
              producer, so this is the steady processing rate from its first
              finished batch to its last, start-up and group join excluded.
  wait_s      from the watcher's start to t1 (daemon start-up, group join,
              first batch).
  cpu_s       daemon CPU seconds (user+sys, /proc/PID/stat) between t1 and tN;
              cores = cpu_s / (tN - t1).  broker_cpu_s the same for the broker.
  cpu_total_s daemon CPU seconds since it started, at tN.
  hwm_kib     the daemon's peak RSS so far (VmHWM).
  stall_s     the longest time events_total stood still between t1 and tN
              (a checkpoint shows up here).
  ckpts       checkpoints written by tN (fraudwatch_checkpoints_total), and
  ckpt_max_s  the longest fraudwatch_checkpoint_seconds seen (the gauge holds
              the last checkpoint's duration; each poll reads it).
With --histogram it also prints fraudwatch_event_to_alert_seconds, the
daemon's own latency histogram (input message timestamp -> alert delivery
report), as cumulative bucket counts.

--trace FILE writes every poll as "seconds_since_start events_total
daemon_cpu_s" (to see stalls and how busy the daemon was between them).

Standard library only.
"""
import argparse
import http.client
import os
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TCK  # utime, stime
    except (OSError, IndexError, ValueError):
        return float("nan")


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Scraper:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self.conn.request("GET", "/metrics")
                return self.conn.getresponse().read().decode()
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
        return None


def value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--broker-pid", type=int, default=0)
    ap.add_argument("--histogram", action="store_true")
    ap.add_argument("--trace")
    a = ap.parse_args()

    trace = open(a.trace, "w") if a.trace else None
    s = Scraper(a.port)
    t_start = time.monotonic()
    t1 = e1 = cpu1 = bcpu1 = None
    last_e, last_change = 0, None
    stall = 0.0
    ckpt_max = 0.0
    text = None
    while True:
        now = time.monotonic()
        if now - t_start > a.timeout:
            print(f"watch_metrics: timeout after {a.timeout:.0f} s at {last_e:.0f} events",
                  file=sys.stderr)
            return 1
        if not os.path.exists(f"/proc/{a.pid}"):
            print(f"watch_metrics: daemon {a.pid} exited at {last_e:.0f} events", file=sys.stderr)
            return 1
        text = s.get()
        t = time.monotonic()
        e = value(text, "fraudwatch_events_total") if text else None
        if text:
            ckpt_max = max(ckpt_max, value(text, "fraudwatch_checkpoint_seconds") or 0.0)
        if e is not None and trace:
            trace.write(f"{t - t_start:.3f} {e:.0f} {cpu_s(a.pid):.2f}\n")
        if e is not None:
            if e > 0 and t1 is None:
                t1, e1 = t, e
                cpu1 = cpu_s(a.pid)
                bcpu1 = cpu_s(a.broker_pid) if a.broker_pid else float("nan")
                last_change = t
            if t1 is not None:
                if e != last_e:
                    stall = max(stall, t - last_change)
                    last_change = t
                last_e = e
            if e >= a.target:
                break
        time.sleep(max(0.0, a.interval - (time.monotonic() - now)))
    tn = t
    cpun = cpu_s(a.pid)
    bcpun = cpu_s(a.broker_pid) if a.broker_pid else float("nan")
    span = tn - t1
    rate = (a.target - e1) / span if span > 0 else float("nan")
    cores = (cpun - cpu1) / span if span > 0 else float("nan")
    print(f"rate={rate:.0f} span_s={span:.3f} e1={e1:.0f} wait_s={t1 - t_start:.3f} "
          f"cpu_s={cpun - cpu1:.2f} cores={cores:.2f} "
          f"broker_cpu_s={bcpun - bcpu1:.2f} cpu_total_s={cpun:.2f} "
          f"hwm_kib={hwm_kib(a.pid)} stall_s={stall:.3f} "
          f"ckpts={value(text, 'fraudwatch_checkpoints_total') or 0:.0f} ckpt_max_s={ckpt_max:.3f}")
    if a.histogram:
        # Read again: the last alerts' delivery reports may come a moment later.
        time.sleep(1.0)
        text = s.get() or text
        for line in text.splitlines():
            if line.startswith("fraudwatch_event_to_alert_seconds"):
                print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
