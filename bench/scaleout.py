#!/usr/bin/env python3
"""bench/scaleout.py — ha.mode = scaleout: how fast 1, 2, 3 daemons splitting
the work by key drain one backlog, against one daemon of the plain mode.

Method: one input topic of --partitions partitions holds --events generated
events (bench/gen, the shipped rules' lists), keyed by subscriber and
timestamped in file order (bench/loadgen --seq-ts).  For each configuration,
in a fresh consumer group (so each drains the whole topic): start the
daemons together, take t0 when the first forwarder has read a message, and
t1 when the forwarders have read every event AND the units have applied
every record forwarded (the daemons' own counters on /metrics); the drain
rate is events / (t1 - t0).  CPU seconds are the daemons' utime + stime at
t1 (/proc), peak RSS their VmHWM summed.  The alert set is checked against
`fraudwatch replay` each time.  Repeated --rounds times, configurations
alternating.  The broker runs on the same machine (its CPU is not counted).

usage: bench/scaleout.py --broker 127.0.0.1:PORT [--build-dir build-release]
                         [--events 500000] [--partitions 8] [--daemons 1,2,3]
                         [--rounds 2] [--scale-partitions 8]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fwtest  # noqa: E402


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def metric(port, name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def port_of(log):
    for _ in range(300):
        try:
            m = re.search(r"serving /metrics.*port=(\d+)", open(log).read())
        except OSError:
            m = None
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    raise SystemExit(f"no metrics port in {log}")


def proc_cpu_rss(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tck
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


def conf(tmp, a, topic, group, alerts, mode, scale_parts):
    path = os.path.join(tmp, "fraudwatch.conf")
    extra = ""
    if mode == "scaleout":
        extra = (f"ha.mode = scaleout\nstate.store = kafka\nscale.partitions = {scale_parts}\n"
                 f"instance.id = {os.path.basename(tmp)}\n")
    with open(path, "w") as f:
        f.write(f"""kafka.bootstrap.servers = {a.broker}
input.topics = {topic}
kafka.group.id = {group}
output.topic = {alerts}
deadletter.topic = {alerts}-dlq
engine.threads = 2
rules.source = dir:{os.path.join(ROOT, 'rules')}
state.dir = {tmp}/state
metrics.listen = 127.0.0.1:0
log.level = info
{extra}""")
    return path


def run_config(a, fw, topic, n, want, mode, ndaemons):
    group = f"bs-{uuid.uuid4().hex[:8]}"
    alerts = f"{group}-alerts"
    k = fwtest.Kafka(a.broker.rsplit(":", 1)[1])
    k.topic(alerts, 1)
    k.topic(alerts + "-dlq", 1)
    tmp = tempfile.mkdtemp(prefix="fw-scale-bench-")
    procs = []
    try:
        if mode == "scaleout":
            # the topics first, so that no daemon waits for their metadata
            d = os.path.join(tmp, "init")
            os.makedirs(d)
            sh([fw, "state", "init", "-c", conf(d, a, topic, group, alerts, mode,
                                               a.scale_partitions)])
        for i in range(ndaemons):
            d = os.path.join(tmp, f"d{i}")
            os.makedirs(d)
            c = conf(d, a, topic, group, alerts, mode, a.scale_partitions)
            log = os.path.join(d, "log")
            p = subprocess.Popen([fw, "run", "-c", c], stdout=open(log, "wb"),
                                 stderr=subprocess.STDOUT)
            procs.append((p, log))
        ports = [port_of(log) for _, log in procs]
        read_name = "fraudwatch_scale_read_total" if mode == "scaleout" else "fraudwatch_events_total"
        t0 = None
        t_end = time.time() + a.timeout
        while time.time() < t_end:
            read = sum(metric(p, read_name) for p in ports)
            if t0 is None and read > 0:
                t0 = time.time()
            if mode == "scaleout":
                fwd = sum(metric(p, "fraudwatch_scale_repartition_records_total") for p in ports)
                applied = sum(metric(p, "fraudwatch_events_total") for p in ports)
                dups = sum(metric(p, "fraudwatch_scale_copies_dropped_total") for p in ports)
                done = read >= n and applied + dups >= fwd and fwd > 0
            else:
                done = read >= n
            if done:
                break
            time.sleep(0.05)
        t1 = time.time()
        cpu = rss = 0
        for p, _ in procs:
            c, r = proc_cpu_rss(p.pid)
            cpu += c
            rss += r
        # the alert set, once everything is produced
        time.sleep(2)
        out = sh(["kcat", "-b", a.broker, "-C", "-t", alerts, "-o", "beginning", "-e", "-q"]).stdout
        got = {json.loads(l)["alert_id"] for l in out.decode().splitlines() if l.strip()}
        return {"mode": mode, "daemons": ndaemons, "seconds": t1 - (t0 or t1),
                "rate": n / max(t1 - (t0 or t1), 1e-9), "cpu": cpu, "rss": rss,
                "agree": got == want, "alerts": len(got), "want": len(want)}
    finally:
        for p, _ in procs:
            p.terminate()
        for p, _ in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--broker", required=True)
    ap.add_argument("--build-dir", default="build-release")
    ap.add_argument("--events", type=int, default=500000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--scale-partitions", type=int, default=8)
    ap.add_argument("--daemons", default="1,2,3")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fraud-rate", default="25")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    bd = os.path.join(ROOT, a.build_dir)
    fw, gen, loadgen = (os.path.join(bd, x) for x in ("fraudwatch", "bench/gen", "bench/loadgen"))
    tmp = tempfile.mkdtemp(prefix="fw-scale-bench-")
    path = os.path.join(tmp, "events.jsonl")
    sh([gen, "--events", str(a.events), "--seed", "91", "--lists", os.path.join(ROOT, "rules"),
        "--fraud-rate", a.fraud_rate, "-q", "-o", path])
    want_lines = sh([fw, "replay", "--rules", os.path.join(ROOT, "rules"), "--threads", "2",
                     path]).stdout.decode().splitlines()
    want = {json.loads(l)["alert_id"] for l in want_lines if l.strip()}
    topic = f"bs-in-{uuid.uuid4().hex[:8]}"
    fwtest.Kafka(a.broker.rsplit(":", 1)[1]).topic(topic, a.partitions)
    sh([loadgen, "-b", a.broker, "-t", topic, "--seq-ts", str(int(time.time() * 1000) - a.events),
        "-q", path])
    print(f"method: {a.events} generated events (seed 91, fraud rate {a.fraud_rate}) in topic "
          f"{topic}, {a.partitions} partitions keyed by subscriber; each configuration drains it "
          f"in a fresh group; rate = events / (last applied - first read); CPU = the daemons' "
          f"utime+stime; RSS = their peak (VmHWM) summed; broker on the same machine, not "
          f"counted; {fw}")
    configs = [("off", 1)] + [("scaleout", int(k)) for k in a.daemons.split(",")]
    rows = []
    for r in range(a.rounds):
        for mode, k in configs:
            res = run_config(a, fw, topic, a.events, want, mode, k)
            res["round"] = r + 1
            rows.append(res)
            print(f"round {r + 1}  {mode:8s} x{k}  {res['rate']:>10,.0f} ev/s  "
                  f"{res['seconds']:6.2f} s  CPU {res['cpu']:6.1f} s  "
                  f"({a.events / max(res['cpu'], 1e-9):>9,.0f} ev per CPU-s)  "
                  f"RSS {res['rss'] / 2**20:6.0f} MiB  alerts {res['alerts']}/{res['want']} "
                  f"{'agree' if res['agree'] else 'DIFFER'}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
