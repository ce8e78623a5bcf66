#!/usr/bin/env python3
"""bench/console.py — the anti-fraud centre's console under load (issue 14).

Measures, on this machine, with the broker of scripts/kafka.sh and a
redis-server of its own (appendonly yes, appendfsync everysec, as
docs/console.md advises):

  ingest    a backlog of N alerts on the topic (3 partitions) drained into
            Redis by a fresh console: alerts/s from its start to the last one
            stored, and from the first stored to the last (the rate without
            the process start and the group join); routing, search terms,
            indexes, stats: everything.  Also the CPU seconds of redis-server
            and of the console over the drain (FW_BENCH_PERF=FILE records a
            perf profile of redis-server; FW_BENCH_NOAOF=1 turns the
            append-only file off, to see its share)
  memory    Redis used_memory per stored alert (INFO memory, after/before)
  queries   GET /api/alerts first page (everything; an officer's unit queue
            of new alerts) and a phone-number search (q=), with N alerts
            stored: p50 / p99 over R requests each, one client, keep-alive
  stream    topic-to-page latency: alerts produced one at a time (kcat -P,
            linger 0) while an SSE client of /api/stream notes when each
            arrives: p50 / p99 / max

usage: bench/console.py --fraudwatch build/fraudwatch --kafka-port PORT
                        [--alerts 1000000] [--requests 500] [--stream 300]
Timing here is a measurement, never a test.  Prints a Markdown table."""
import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import fwtest  # noqa: E402
import console_env as ce  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(round(p * len(xs) + 0.5)) - 1))]


def write_backlog(path, n, rng):
    with open(path, "wb") as f:
        for i in range(n):
            a = ce.make_alert(i, rng)
            a["detected_ts"] = ce.TS0 + i      # n alerts within the retention window
            f.write(a["subject"].encode() + b"|" + json.dumps(a).encode() + b"\n")


def timed_gets(port, cookie, paths, reps):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = {}
    for name, path in paths:
        lat = []
        for _ in range(reps):
            t0 = time.perf_counter()
            c.request("GET", path, headers={"Cookie": cookie})
            r = c.getresponse()
            body = r.read()
            lat.append((time.perf_counter() - t0) * 1000)
            assert r.status == 200, (path, r.status, body[:200])
        out[name] = (pct(lat, 0.5), pct(lat, 0.99), len(json.loads(body)["alerts"]))
    return out


def redis_cpu(redis):
    """redis-server's CPU seconds so far (INFO cpu: user + sys)."""
    info = dict(l.split(":", 1) for l in redis.cli("INFO", "cpu").splitlines() if ":" in l)
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def proc_cpu(pid):
    """A process' CPU seconds so far (utime + stime of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def login(port, user, pw):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/api/login", body=json.dumps({"user": user, "password": pw}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    return r.getheader("Set-Cookie").split(";")[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fraudwatch", default=os.path.join(ROOT, "build", "fraudwatch"))
    ap.add_argument("--kafka-port", type=int, default=int(os.environ.get("FW_KAFKA_PORT", "0")))
    ap.add_argument("--alerts", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--stream", type=int, default=300)
    a = ap.parse_args()
    if not a.kafka_port:
        sys.exit("--kafka-port (a broker of scripts/kafka.sh) is required")
    fw = os.path.abspath(a.fraudwatch)
    tmp = tempfile.mkdtemp(prefix="fw-console-bench-")
    kafka = fwtest.Kafka(a.kafka_port)
    topic = f"console-bench-{os.getpid()}"
    kafka.topic(topic, partitions=3)
    rng = random.Random(14)
    backlog = os.path.join(tmp, "backlog.txt")
    write_backlog(backlog, a.alerts, rng)
    t0 = time.monotonic()
    with open(backlog, "rb") as f:
        subprocess.run(["kcat", "-P", "-b", kafka.addr, "-t", topic, "-K", "|",
                        "-X", "linger.ms=50", "-X", "batch.num.messages=10000"],
                       stdin=f, check=True)
    produce_s = time.monotonic() - t0
    redis = ce.RedisAOF(tmp)
    redis.cli("CONFIG", "SET", "appendfsync", "everysec")
    if os.environ.get("FW_BENCH_NOAOF"):
        redis.cli("CONFIG", "SET", "appendonly", "no")
    ce.load_routes(fw, redis.url, tmp)
    pw = ce.add_user(fw, redis.url, "admin", "admin")
    ce.add_user(fw, redis.url, "offa", "officer", "station-a")
    mem0 = int(redis.cli("INFO", "memory").split("used_memory:")[1].split()[0])
    rcpu0 = redis_cpu(redis)
    perf = None
    if os.environ.get("FW_BENCH_PERF"):     # a profile of redis-server during the ingest
        perf = subprocess.Popen(["perf", "record", "-g", "-o", os.environ["FW_BENCH_PERF"],
                                 "-p", str(redis.proc.pid)], stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    con = ce.Console(fw, ROOT, tmp, redis.url, kafka.addr, topic, extra=["--set", "log.level=info"])
    ce.wait_for(lambda: redis.cli("ZCARD", "fw:con:idx:all") != "0", timeout=600, step=0.02)
    t_first = time.monotonic()
    first = int(redis.cli("ZCARD", "fw:con:idx:all"))
    ce.wait_for(lambda: redis.cli("ZCARD", "fw:con:idx:all") == str(a.alerts), timeout=3600,
                step=0.05)
    ingest_s = time.monotonic() - t0
    steady_s = time.monotonic() - t_first
    if perf:
        perf.send_signal(2)
        perf.wait()
    rcpu = redis_cpu(redis) - rcpu0
    ccpu = proc_cpu(con.proc.pid)
    evalsha = [l for l in redis.cli("INFO", "commandstats").splitlines() if l.startswith("cmdstat_evalsha:")]
    mem1 = int(redis.cli("INFO", "memory").split("used_memory:")[1].split()[0])
    if os.environ.get("FW_BENCH_DEBUG"):
        print(redis.cli("INFO", "commandstats"), file=sys.stderr)
    rows = [("alerts stored", f"{a.alerts:,}"),
            ("produce to the topic (kcat)", f"{produce_s:.1f} s"),
            ("ingest: backlog into Redis", f"{ingest_s:.1f} s from the console's start "
                                           f"(process, consumer group join) = {a.alerts / ingest_s:,.0f} alerts/s"),
            ("ingest rate: first stored alert to last", f"{steady_s:.1f} s = "
                                                        f"**{(a.alerts - first) / steady_s:,.0f} alerts/s**"),
            ("Redis memory per alert", f"{(mem1 - mem0) / a.alerts:,.0f} bytes "
                                       f"({(mem1 - mem0) / 2**20:,.0f} MiB in all)"),
            ("CPU during the ingest", f"redis-server {rcpu:.1f} s ({rcpu * 1e6 / a.alerts:.0f} µs/alert), "
                                      f"console {ccpu:.1f} s ({ccpu * 1e6 / a.alerts:.0f} µs/alert)"),
            ("ingest script calls (Redis commandstats)", evalsha[0].split(":", 1)[1] if evalsha else "-")]
    admin = login(con.port, "admin", pw)
    officer = login(con.port, "offa", pw)
    phone = ce.make_alert(a.alerts // 2, random.Random(0))["subject"]
    # the phone number of an alert in the middle of the backlog
    with open(backlog, "rb") as f:
        for i, line in enumerate(f):
            if i == a.alerts // 2:
                phone = json.loads(line.split(b"|", 1)[1])["fields"]["callee"]
                break
    res = timed_gets(con.port, admin, [
        ("first page, all alerts (admin)", "/api/alerts?limit=50"),
        ("phone search q= (admin)", f"/api/alerts?q={phone}&limit=50"),
        ("severity=critical filter (admin)", "/api/alerts?severity=critical&limit=50")], a.requests)
    res.update(timed_gets(con.port, officer, [
        ("first page, unit queue state=new (officer)", "/api/alerts?state=new&limit=50")], a.requests))
    for k, (p50, p99, n) in res.items():
        rows.append((f"GET {k}", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({n} alerts)"))

    # topic -> /api/stream latency
    sent, seen = {}, {}
    conn = http.client.HTTPConnection("127.0.0.1", con.port, timeout=60)
    conn.request("GET", "/api/stream", headers={"Cookie": admin})
    resp = conn.getresponse()

    def reader():
        for line in resp:
            if line.startswith(b'data: {"alert_id'):
                aid = json.loads(line[6:])["alert_id"]
                seen.setdefault(aid, time.monotonic())
    threading.Thread(target=reader, daemon=True).start()
    time.sleep(1)
    p = subprocess.Popen(["kcat", "-P", "-b", kafka.addr, "-t", topic, "-K", "|", "-X", "linger.ms=0"],
                         stdin=subprocess.PIPE)
    for i in range(a.stream):
        al = ce.make_alert(10**9 + i, rng)
        sent[al["alert_id"]] = time.monotonic()
        p.stdin.write(al["subject"].encode() + b"|" + json.dumps(al).encode() + b"\n")
        p.stdin.flush()
        time.sleep(0.02)
    p.stdin.close()
    p.wait()
    ce.wait_for(lambda: len(seen) >= a.stream, 60)
    lat = [(seen[k] - v) * 1000 for k, v in sent.items() if k in seen]
    rows.append(("topic → /api/stream latency", f"p50 {pct(lat, .5):.0f} ms, p99 {pct(lat, .99):.0f} ms, "
                 f"max {max(lat):.0f} ms ({len(lat)}/{a.stream} seen; includes kcat's produce)"))
    con.stop()
    redis.stop()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    print("| measure | figure |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
