#!/usr/bin/env python3
"""bench/queue_curve.py — how deep the daemon's consumer queue must be.

librdkafka keeps fetched messages in a local queue until the daemon polls
them; its depth is capped by `queued.max.messages.kbytes`, and that cap is
most of the daemon's memory while it drains a backlog.  This bench fills a
topic once with a generated stream, then lets a fresh daemon (fresh group,
fresh state dir, rules from the shipped directory, no Redis) drain it with
each cap of --sizes in turn, alternating, --rounds times, and reports per
cap the drain rate (events/s from the first event counted to the last, from
the daemon's own fraudwatch_events_total polled every 20 ms), its CPU
seconds and its peak RSS (VmHWM).

usage: bench/queue_curve.py --kafka-port PORT [--fraudwatch build-release/fraudwatch]
          [--events FILE] [--sizes 8192,16384,...] [--rounds 2] [--partitions 1]
Timing here is a measurement, never a test.  Prints a Markdown table."""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fwtest  # noqa: E402


def events_total(port):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return None
    for line in text.decode().splitlines():
        if line.startswith("fraudwatch_events_total "):
            return int(float(line.split()[1]))
    return None


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def drain(fw, brokers, topic, n, kbytes, tmp, tag):
    port = fwtest.free_port()
    conf = os.path.join(tmp, f"{tag}.conf")
    with open(conf, "w") as f:
        f.write(f"""kafka.bootstrap.servers = {brokers}
input.topics = {topic}
kafka.group.id = qc-{tag}
output.topic = {topic}.alerts-{tag}
deadletter.topic = {topic}.dlq
engine.threads = 2
rules.source = dir:{os.path.join(ROOT, 'rules')}
state.dir = {tmp}/state-{tag}
metrics.listen = 127.0.0.1:{port}
log.level = warn
""" + (f"kafka.consumer.queued.max.messages.kbytes = {kbytes}\n" if kbytes else ""))
    log = open(os.path.join(tmp, f"{tag}.log"), "wb")
    p = subprocess.Popen([fw, "run", "-c", conf], stdout=log, stderr=log)
    try:
        t_first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            v = events_total(port)
            now = time.monotonic()
            if v and t_first is None:
                t_first, first = now, v
            if v is not None and v >= n:
                break
            if p.poll() is not None:
                raise RuntimeError(f"daemon exited {p.returncode}; log {log.name}")
            time.sleep(0.02)
        else:
            raise RuntimeError("no drain within 600 s")
        secs = now - t_first
        rss, cpu = proc_status(p.pid, "VmHWM"), proc_cpu(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        log.close()
    return (n - first) / secs, cpu, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fraudwatch", default=os.path.join(ROOT, "build-release", "fraudwatch"))
    ap.add_argument("--kafka-port", type=int, required=True)
    ap.add_argument("--events", default=os.path.join(ROOT, "bench", "out",
                                                     "events-1.7M-seed20251201.jsonl"))
    ap.add_argument("--sizes", default="8192,16384,32768,65536,131072,262144",
                    help="queued.max.messages.kbytes values; 0 = the daemon's default")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=1)
    a = ap.parse_args()
    kafka = fwtest.Kafka(a.kafka_port)
    topic = f"qc-{os.getpid()}"
    kafka.topic(topic, partitions=a.partitions)
    with open(a.events, "rb") as f:
        subprocess.run(["kcat", "-P", "-b", kafka.addr, "-t", topic,
                        "-X", "linger.ms=50", "-X", "batch.num.messages=10000"],
                       stdin=f, check=True)
    n = sum(1 for _ in open(a.events, "rb"))
    sizes = [int(x) for x in a.sizes.split(",")]
    tmp = tempfile.mkdtemp(prefix="fw-queue-curve-")
    res = {s: [] for s in sizes}
    try:
        for r in range(a.rounds):
            for s in sizes:
                rate, cpu, rss = drain(os.path.abspath(a.fraudwatch), kafka.addr, topic, n, s,
                                       tmp, f"r{r}-{s}")
                res[s].append((rate, cpu, rss))
                print(f"round {r + 1} kbytes={s or 'default'}: {rate:,.0f} ev/s, "
                      f"{cpu:.1f} CPU s, peak RSS {rss / 2**20:,.0f} MiB", file=sys.stderr,
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{n:,} events, {a.partitions} partition(s), {a.rounds} rounds, medians\n")
    print("| queued.max.messages.kbytes | drain ev/s | CPU s | peak RSS |\n|---:|---:|---:|---:|")
    for s in sizes:
        rates = [x[0] for x in res[s]]
        print(f"| {s or 'default'} | {statistics.median(rates):,.0f} "
              f"({', '.join(f'{x / 1000:,.0f}k' for x in rates)}) | "
              f"{statistics.median(x[1] for x in res[s]):.1f} | "
              f"{statistics.median(x[2] for x in res[s]) / 2**20:,.0f} MiB |")


if __name__ == "__main__":
    main()
