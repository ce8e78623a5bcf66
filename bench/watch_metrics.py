#!/usr/bin/env python3
"""watch_metrics.py — time `fraudwatch run` through its /metrics endpoint.

    watch_metrics.py --port P --pid PID --target N [--interval S] [--timeout S]
                     [--broker-pid BPID] [--histogram] [--trace FILE]

The loop is watch() (bench/daemon.sh runs this file; bench/run imports it
and draws its progress bar from the on_sample callback).

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


class WatchError(Exception):
    pass


def watch(port, pid, target, interval=0.02, timeout=600, broker_pid=0, trace=None,
          on_sample=None, alive=None):
    """Polls /metrics until fraudwatch_events_total reaches `target`; the
    figures of the module doc as a dict (plus t_end, t_first, monotonic,
    and `text`, the last scrape).  `trace`: an open file for the per-poll
    lines; `on_sample(events, seconds)`: called on every poll; `alive()`:
    False when the daemon is gone (default: /proc/PID exists).  Raises
    WatchError on a timeout or a daemon that exited."""
    s = Scraper(port)
    alive = alive or (lambda: os.path.exists(f"/proc/{pid}"))
    t_start = time.monotonic()
    t1 = e1 = cpu1 = bcpu1 = None
    last_e, last_change = 0.0, None
    stall = ckpt_max = pause_max = 0.0
    text = None
    while True:
        now = time.monotonic()
        if now - t_start > timeout:
            raise WatchError(f"timeout after {timeout:.0f} s at {last_e:.0f} of {target} events")
        if not alive():
            raise WatchError(f"the daemon ({pid}) exited at {last_e:.0f} events")
        got = s.get()
        t = time.monotonic()
        e = value(got, "fraudwatch_events_total") if got else None
        if e is not None:
            text = got
            ckpt_max = max(ckpt_max, value(text, "fraudwatch_checkpoint_seconds") or 0.0)
            pause_max = max(pause_max, value(text, "fraudwatch_checkpoint_pause_seconds") or 0.0)
            if trace:
                trace.write(f"{t - t_start:.3f} {e:.0f} {cpu_s(pid):.2f}\n")
            if e > 0 and t1 is None:
                t1, e1, last_change = t, e, t
                cpu1 = cpu_s(pid)
                bcpu1 = cpu_s(broker_pid) if broker_pid else float("nan")
            if t1 is not None:
                if e != last_e:
                    stall = max(stall, t - last_change)
                    last_change = t
                last_e = e
            if on_sample:
                on_sample(e, t - t_start)
            if e >= target:
                break
        time.sleep(max(0.0, interval - (time.monotonic() - now)))
    cpun = cpu_s(pid)
    span = t - t1
    return {
        "t_end": t, "t_first": t1, "t_start": t_start, "text": text,
        "rate": (target - e1) / span if span > 0 else float("nan"),
        "span_s": span, "e1": e1, "wait_s": t1 - t_start,
        "cpu_s": cpun - cpu1, "cores": (cpun - cpu1) / span if span > 0 else float("nan"),
        "broker_cpu_s": (cpu_s(broker_pid) - bcpu1) if broker_pid else float("nan"),
        "cpu_total_s": cpun, "hwm_kib": hwm_kib(pid), "stall_s": stall,
        "ckpts": int(value(text, "fraudwatch_checkpoints_total") or 0),
        "ckpt_max_s": ckpt_max, "pause_max_s": pause_max,
        "state_keys": value(text, "fraudwatch_state_keys"),
    }


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
    try:
        r = watch(a.port, a.pid, a.target, a.interval, a.timeout, a.broker_pid, trace)
    except WatchError as e:
        print(f"watch_metrics: {e}", file=sys.stderr)
        return 1
    finally:
        if trace:
            trace.close()
    print(f"rate={r['rate']:.0f} span_s={r['span_s']:.3f} e1={r['e1']:.0f} "
          f"wait_s={r['wait_s']:.3f} cpu_s={r['cpu_s']:.2f} cores={r['cores']:.2f} "
          f"broker_cpu_s={r['broker_cpu_s']:.2f} cpu_total_s={r['cpu_total_s']:.2f} "
          f"hwm_kib={r['hwm_kib']} stall_s={r['stall_s']:.3f} "
          f"ckpts={r['ckpts']} ckpt_max_s={r['ckpt_max_s']:.3f}")
    if a.histogram:
        # Read again: the last alerts' delivery reports may come a moment later.
        time.sleep(1.0)
        text = Scraper(a.port).get() or r["text"]
        for line in text.splitlines():
            if line.startswith("fraudwatch_event_to_alert_seconds"):
                print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
