#!/usr/bin/env python3
"""Restore rate of `state.store = kafka` (docs/scaling.md): how fast a daemon
on another machine gets the windows back from the state topic.

A generated stream with many subscribers goes through one daemon
(state.store = kafka) until it is consumed; SIGTERM writes the final
checkpoint to the state topic.  A second daemon with an empty state.dir then
restores it; its log gives the checkpoint's size, the time to read and check
it from the topic (read_ms) and the time to load it into the engine (from
that line to "state loaded").  Prints keys, MiB, and keys/s and MiB/s of
the whole restore.

usage: bench/state_restore.py --broker HOST:PORT [--events N] [--subscribers N]
       [--build-dir build]
A figure, not a test: record it in bench/README.md with the machine's load.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--events", type=int, default=3000000)
    ap.add_argument("--subscribers", type=int, default=3000000)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    fw = os.path.join(a.build_dir, "fraudwatch")
    gen = os.path.join(a.build_dir, "bench", "gen")
    port = a.broker.rsplit(":", 1)[1]
    tmp = tempfile.mkdtemp(prefix="fw-restore-")
    rid = uuid.uuid4().hex[:6]
    topic, alerts, dlq, group = f"rs-{rid}-in", f"rs-{rid}-al", f"rs-{rid}-dl", f"rs-{rid}"
    try:
        for t in (topic, alerts, dlq):
            sh([os.path.join(ROOT, "scripts", "kafka.sh"), "topic", t, "--port", port],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        events = os.path.join(tmp, "events.jsonl")
        sh([gen, "--events", str(a.events), "--subscribers", str(a.subscribers), "--seed", "5",
            "--lists", os.path.join(ROOT, "rules"), "-q", "-o", events])
        with open(events, "rb") as f:
            sh(["kcat", "-b", a.broker, "-P", "-t", topic, "-z", "lz4"], stdin=f)

        def daemon(name, store, extra=""):
            conf = os.path.join(tmp, f"{name}.conf")
            with open(conf, "w") as f:
                f.write(f"kafka.bootstrap.servers = {a.broker}\ninput.topics = {topic}\n"
                        f"kafka.group.id = {group}\noutput.topic = {alerts}\n"
                        f"deadletter.topic = {dlq}\nrules.source = dir:{ROOT}/rules\n"
                        f"state.dir = {tmp}/state-{name}\nstate.store = {store}\n"
                        f"state.checkpoint_interval_ms = 60000\nlog.level = debug\n"
                        f"{extra or 'metrics.listen = off'}\n")
            logp = os.path.join(tmp, f"{name}.log")
            p = subprocess.Popen([fw, "run", "-c", conf], stdout=subprocess.DEVNULL,
                                 stderr=open(logp, "w"))
            return p, logp

        # 1. consume everything, then SIGTERM: the final checkpoint
        p, logp = daemon("a", "kafka", "metrics.listen = 127.0.0.1:0\n")
        import urllib.request
        while True:
            time.sleep(2)
            mm = re.search(r"serving /metrics.*port=(\d+)", open(logp).read())
            if not mm:
                continue
            body = urllib.request.urlopen(f"http://127.0.0.1:{mm.group(1)}/metrics").read()
            ev = re.search(rb"^fraudwatch_events_total (\S+)", body, re.M)
            if ev and float(ev.group(1)) >= a.events:
                break
        p.terminate()
        p.wait(120)
        text = open(logp).read()
        m = re.findall(r'msg="written" mode=sync keys=(\d+) .*?bytes=(\d+)', text)
        keys, nbytes = (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)
        print(f"final checkpoint: {keys} keys, {nbytes / 2**20:.1f} MiB")

        # 2. restore on another machine
        t1 = time.time()
        p, logp = daemon("b", "kafka")
        while "state loaded" not in open(logp).read():
            time.sleep(0.2)
            if p.poll() is not None:
                sys.exit("the second daemon exited:\n" + open(logp).read()[-2000:])
        text = open(logp).read()
        p.terminate()
        p.wait(120)
        r = re.search(r'ts=(\S+) .*msg="restoring from the state topic".*bytes=(\d+) .*'
                      r'topic_bytes_read=(\d+) read_ms=([\d.]+)', text)
        l = re.search(r'ts=(\S+) .*msg="state loaded".*keys=(\d+)', text)
        from datetime import datetime
        def ts(s):
            return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        read_s = float(r.group(4)) / 1000
        load_s = ts(l.group(1)) - ts(r.group(1))
        b = int(r.group(2))
        k = int(l.group(2))
        tot = read_s + load_s
        print(f"restore from the state topic: {k} keys, {b / 2**20:.1f} MiB "
              f"(topic bytes read {int(r.group(3)) / 2**20:.1f} MiB): read+check {read_s:.2f} s, "
              f"load {load_s:.2f} s, total {tot:.2f} s = {k / tot:,.0f} keys/s, "
              f"{b / 2**20 / tot:.1f} MiB/s (process start to loaded: {time.time() - t1:.1f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
