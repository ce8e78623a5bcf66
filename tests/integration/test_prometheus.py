#!/usr/bin/env python3
"""test_prometheus.py — a real Prometheus scrapes a running daemon.

    test_prometheus.py FRAUDWATCH SOURCE_ROOT

Against the test broker of scripts/test.sh (FW_KAFKA_PORT): a daemon fed
the demo's events, scraped by a real Prometheus (the Debian package's
/usr/bin/prometheus, on loopback, a scrape a second, the daemon behind
HTTPS and basic authentication as docs/operations.md configures it, and
contrib/prometheus/alerts.yml loaded).  Then:
  * every metric the dashboard and the alert rules name is in the daemon's
    /metrics (histograms by their family; `up` is Prometheus's own);
  * Prometheus reports the target up and the rule group healthy;
  * every query of the dashboard runs (its variables filled in), and the
    events rate, alerts by rule and RSS panels return data.
Exit 77 (skip) without FW_KAFKA_PORT, prometheus, kcat or openssl.
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
import fwtest  # noqa: E402

failures = []
METRIC = re.compile(r"\b((?:fraudwatch|process)_[a-z0-9_]+)\b")


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def query(prom, expr):
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def api(prom, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{prom}{path}", timeout=10) as r:
        return json.load(r)


def main():
    prog, src = sys.argv[1:3]
    kafka = fwtest.Kafka.from_env()
    for what, ok in (("FW_KAFKA_PORT (scripts/test.sh starts the broker)", kafka),
                     ("prometheus", shutil.which("prometheus")), ("kcat", shutil.which("kcat")),
                     ("openssl", shutil.which("openssl"))):
        if not ok:
            print(f"SKIP: no {what}", file=sys.stderr)
            return 77
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, pw = (os.path.join(tmp, n) for n in ("cert.pem", "key.pem", "pw"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True)
        os.chmod(key, 0o600)
        with open(pw, "w") as f:
            f.write("scrape-pw\n")
        os.chmod(pw, 0o600)

        tag = f"promtest{os.getpid()}"
        events = tag + ".events"
        for t in (events, tag + ".alerts", tag + ".dead"):
            kafka.topic(t)
        mport, pport = fwtest.free_port(), fwtest.free_port()
        daemon = subprocess.Popen(
            [prog, "run", "-c", os.path.join(src, "config", "fraudwatch.conf"),
             "--set", f"kafka.bootstrap.servers={kafka.addr}",
             "--set", f"input.topics={events}", "--set", f"output.topic={tag}.alerts",
             "--set", f"deadletter.topic={tag}.dead", "--set", f"kafka.group.id={tag}",
             "--set", f"state.dir={tmp}/state", "--set", f"rules.source=dir:{src}/rules",
             "--set", f"metrics.listen=127.0.0.1:{mport}",
             "--set", f"metrics.tls_cert_file={cert}", "--set", f"metrics.tls_key_file={key}",
             "--set", "metrics.auth_user=prometheus",
             "--set", f"metrics.auth_password_file={pw}",
             "--set", "state.checkpoint_interval_ms=1000"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "daemon.log"), "w"))
        # The scrape configuration docs/operations.md shows, pointed here.
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {os.path.join(src, "contrib", "prometheus", "alerts.yml")}
scrape_configs:
  - job_name: fraudwatch
    scheme: https
    tls_config:
      ca_file: {cert}
    basic_auth:
      username: prometheus
      password_file: {pw}
    static_configs:
      - targets: ["127.0.0.1:{mport}"]
""")
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={tmp}/prometheus.yml",
             f"--storage.tsdb.path={tmp}/tsdb", f"--web.listen-address=127.0.0.1:{pport}",
             "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "prometheus.log"), "w"))
        try:
            demo = os.path.join(src, "scripts", "demo", "events.jsonl")
            fwtest.run(["kcat", "-b", kafka.addr, "-P", "-t", events, "-z", "none", "-l", demo])
            # Wait for Prometheus to have scraped the demo's events.
            deadline = time.time() + 90
            got = 0.0
            while time.time() < deadline:
                try:
                    r = query(pport, 'sum(fraudwatch_events_total{job="fraudwatch"})')
                    res = r.get("data", {}).get("result", [])
                    got = float(res[0]["value"][1]) if res else 0.0
                    if got >= 3000:
                        break
                except OSError:
                    pass
                time.sleep(1)
            if got < 3000:
                fail(f"Prometheus saw {got} events of the demo's 3004 within 90 s; "
                     f"prometheus.log: {open(os.path.join(tmp, 'prometheus.log')).read()[-1500:]}")
                return 1
            time.sleep(4)   # a few more scrapes, for rate() over them

            # The daemon's own /metrics, as the scraper sees it.
            import ssl
            ctx = ssl.create_default_context(cafile=cert)
            req = urllib.request.Request(f"https://127.0.0.1:{mport}/metrics")
            req.add_header("Authorization",
                           "Basic " + base64.b64encode(b"prometheus:scrape-pw").decode())
            with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                exposed = set(re.findall(r"^# TYPE (\S+) ", r.read().decode(), re.M))

            dash = json.load(open(os.path.join(src, "contrib", "grafana", "fraudwatch.json")))
            exprs = []
            def walk(panels):
                for p in panels:
                    walk(p.get("panels", []))
                    exprs.extend((p["title"], t["expr"]) for t in p.get("targets", []))
            walk(dash["panels"])
            rules_text = open(os.path.join(src, "contrib", "prometheus", "alerts.yml")).read()
            names = set()
            for _, e in exprs:
                names |= set(METRIC.findall(e))
            names |= set(METRIC.findall("\n".join(
                ln for ln in rules_text.splitlines() if not ln.strip().startswith(("#", "summary", "description")))))
            for n in sorted(names):
                fam = re.sub(r"_(bucket|sum|count)$", "", n) if n not in exposed else n
                if fam not in exposed:
                    fail(f"{n}: in the dashboard or the rules, not in the daemon's /metrics")

            t = api(pport, "/api/v1/targets")["data"]["activeTargets"]
            if not t or t[0]["health"] != "up":
                fail(f"the scrape target is not up: {t}")
            groups = api(pport, "/api/v1/rules")["data"]["groups"]
            if not groups or any(r.get("health") != "ok" for g in groups for r in g["rules"]):
                fail(f"the alert rules are not all healthy: {json.dumps(groups)[:1500]}")

            fill = {"$job": "fraudwatch", "$instance": ".*", "$__rate_interval": "5s"}
            must_have_data = {"Events consumed / s", "Alerts / min by rule",
                              "Resident memory (RSS)", "Rule set version per daemon"}
            for title, e in exprs:
                for k, v in fill.items():
                    e = e.replace(k, v)
                r = query(pport, e)
                if r.get("status") != "success":
                    fail(f"dashboard panel {title!r}: query refused: {r.get('error')}: {e}")
                elif title in must_have_data and not r["data"]["result"]:
                    fail(f"dashboard panel {title!r}: no data: {e}")
            print(f"ok: Prometheus scraped the daemon over HTTPS with a password; "
                  f"{len(exprs)} dashboard queries run, {len(names)} metric names exported")
        finally:
            prom.terminate()
            daemon.send_signal(signal.SIGTERM)
            for p in (prom, daemon):
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
