#!/usr/bin/env python3
"""Rule reload benchmark: how fast a push reaches the stream, and what
repeated reloads cost.

Method (printed again when it runs):
  * a Kafka broker (scripts/kafka.sh, its own port and store) and a
    redis-server (free port, no persistence) on 127.0.0.1;
  * two rule sets: A = the shipped rules plus X1 (an alert for every call
    shorter than 40 s, so that alerts flow under every version), B = A with
    X1's limit at 41 s (a changed limit: window state carries over);
  * latency: the daemon (rules.source = redis) consumes a stream offered at
    RATE events/s by kcat in 100 ms slices; 50 times, `fraudwatch rules
    push` alternates A and B, and the latency of a push is the Kafka
    timestamp of the first alert carrying the new ruleset_version minus the
    moment `rules push` returned; p50 / p99 / max over the 50;
  * throughput: the same EVENTS preloaded into two topics; a fresh daemon
    drains each, once with no push and once with a push every 200 ms; the
    figure is events / (time from the first to the last event processed,
    from the daemon's /metrics), and their ratio.

usage: bench/reload.py [--events N] [--rate EPS] [--pushes N] [--build DIR]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fwtest  # noqa: E402
from fwtest import free_port  # noqa: E402
from watch_metrics import value  # noqa: E402

KAFKA_PORT = 29192
BROKER = f"127.0.0.1:{KAFKA_PORT}"


def sh(*cmd, **kw):
    return fwtest.run(cmd, **kw)


def metric(port, name):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    return value(text, name)


def write_rules(tmp, name, limit):
    d = os.path.join(tmp, name)
    shutil.copytree(os.path.join(ROOT, "rules"), d)
    with open(os.path.join(d, "x1.json"), "w") as f:
        json.dump({"rules": [{"id": "X1", "event": "call", "subject": "caller",
                              "where": [{"field": "duration_s", "op": "<", "value": limit}]}]}, f)
    return d


class Daemon:
    def __init__(self, fw, tmp, topic, alerts, redis_url, group):
        self.port = free_port()
        conf = os.path.join(tmp, f"{group}.conf")
        with open(conf, "w") as f:
            f.write(f"""kafka.bootstrap.servers = {BROKER}
input.topics = {topic}
output.topic = {alerts}
deadletter.topic = {alerts}-dlq
kafka.group.id = {group}
rules.source = {redis_url}
engine.threads = 2
state.dir = {tmp}/state-{group}
metrics.listen = 127.0.0.1:{self.port}
log.level = warn
""")
        self.log = open(os.path.join(tmp, f"{group}.log"), "wb")
        self.proc = subprocess.Popen([fw, "run", "-c", conf], stdout=self.log, stderr=self.log)
        for _ in range(100):
            if metric(self.port, "fraudwatch_events_total") is not None:
                return
            time.sleep(0.1)
        raise SystemExit("daemon did not come up; see " + self.log.name)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def drain_rate(d, total):
    """events/s from the first to the last event processed."""
    t_first = t_last = None
    while True:
        n = metric(d.port, "fraudwatch_events_total") or 0
        now = time.monotonic()
        if n > 0 and t_first is None:
            t_first = now
        if n >= total:
            t_last = now
            break
        time.sleep(0.02)
    return total / max(t_last - t_first, 1e-9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--rate", type=int, default=50000)
    ap.add_argument("--pushes", type=int, default=50)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    a = ap.parse_args()
    fw = os.path.join(a.build, "fraudwatch")
    gen = os.path.join(a.build, "bench", "gen")
    if not os.path.exists(fw):
        raise SystemExit(f"{fw} missing: meson setup build-release --buildtype=release && ninja -C build-release")
    print(__doc__.split("usage:")[0].strip())
    print(f"\n  events {a.events}, offered rate {a.rate}/s, pushes {a.pushes}, build {a.build}\n")

    tmp = tempfile.mkdtemp(prefix="fw-reload-bench-")
    kafka = fwtest.Kafka(KAFKA_PORT, os.path.join(tmp, "kafka")).start()
    redis = None
    try:
        redis = fwtest.Redis(tmp)
        url = redis.url
        ra, rb = write_rules(tmp, "A", 40), write_rules(tmp, "B", 41)
        events = os.path.join(tmp, "events.jsonl")
        sh(gen, "--events", str(a.events), "--seed", "7", "--lists", os.path.join(ROOT, "rules"), "-q",
           "-o", events)
        for t in ("lat", "lat-alerts", "lat-alerts-dlq", "t0", "t0-alerts", "t0-alerts-dlq",
                  "t1", "t1-alerts", "t1-alerts-dlq"):
            kafka.topic(t)
        push = lambda d: sh(fw, "rules", "push", d, "--redis", url)
        version = lambda: int(redis.cli("GET", "fraudwatch:rules:version"))
        push(ra)

        # ---- throughput with and without reloads ----
        sh("kcat", "-b", BROKER, "-P", "-t", "t0", "-z", "none", "-l", events)
        sh("kcat", "-b", BROKER, "-P", "-t", "t1", "-z", "none", "-l", events)
        d = Daemon(fw, tmp, "t0", "t0-alerts", url, "g0")
        steady = drain_rate(d, a.events)
        d.stop()
        d = Daemon(fw, tmp, "t1", "t1-alerts", url, "g1")
        stop = threading.Event()

        def pusher():
            k = 0
            while not stop.is_set():
                push(rb if k % 2 == 0 else ra)
                k += 1
                time.sleep(0.2)
        th = threading.Thread(target=pusher)
        th.start()
        reloading = drain_rate(d, a.events)
        stop.set()
        th.join()
        reloads = metric(d.port, "fraudwatch_rule_reloads_total")
        d.stop()

        # ---- reload latency under a steady stream ----
        with open(events, "rb") as f:
            lines = f.readlines()
        d = Daemon(fw, tmp, "lat", "lat-alerts", url, "g2")
        alerts_file = os.path.join(tmp, "alerts.txt")
        cons = subprocess.Popen(["kcat", "-b", BROKER, "-C", "-t", "lat-alerts", "-o", "beginning", "-q",
                                 "-u", "-f", "%T %s\n"], stdout=open(alerts_file, "wb"))
        stop.clear()

        def offer():
            per = max(1, a.rate // 10)
            i = 0
            while not stop.is_set():
                t0 = time.monotonic()
                chunk = b"".join(lines[i:i + per])
                i = (i + per) % max(1, len(lines) - per)
                subprocess.run(["kcat", "-b", BROKER, "-P", "-t", "lat", "-z", "none"], input=chunk,
                               check=True)
                time.sleep(max(0, 0.1 - (time.monotonic() - t0)))
        th = threading.Thread(target=offer)
        th.start()
        time.sleep(3)
        marks = []
        for k in range(a.pushes):
            push(rb if k % 2 == 0 else ra)
            marks.append((version(), time.time() * 1000))
            time.sleep(0.6)
        time.sleep(3)
        stop.set()
        th.join()
        d.stop()
        cons.terminate()
        cons.wait()
        first = {}
        for line in open(alerts_file, "rb"):
            try:
                ts, js = line.decode().split(" ", 1)
                v = json.loads(js)["ruleset_version"]
            except ValueError:
                continue
            first.setdefault(v, int(ts))
        lat = sorted(first[v] - t for v, t in marks if v in first)
        missing = [v for v, _ in marks if v not in first]
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

        print("Results")
        print(f"  throughput without reloads   {steady:12.0f} events/s")
        print(f"  throughput, push every 200ms {reloading:12.0f} events/s   "
              f"({reloads:.0f} reloads)   ratio {reloading / steady:.2f}")
        print(f"  reload latency over {len(lat)} pushes at {a.rate}/s offered: p50 {q(0.5):.0f} ms, "
              f"p99 {q(0.99):.0f} ms, max {lat[-1] if lat else float('nan'):.0f} ms"
              + (f"   (no alert seen for versions {missing})" if missing else ""))
    finally:
        if redis:
            redis.stop()
        kafka.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
