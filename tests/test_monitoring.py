#!/usr/bin/env python3
"""test_monitoring.py — the monitoring pack is valid and names real metrics.

    test_monitoring.py SOURCE_ROOT

  * `promtool check rules contrib/prometheus/alerts.yml` and `promtool test
    rules tests/monitoring/alerts_test.yml` pass, and every alert has a
    test case there;
  * every alert has its runbook: a "### AlertName" section in
    docs/operations.md, and a runbook_url to it;
  * contrib/grafana/fraudwatch.json is what gen_dashboard.py prints, and
    every panel has a query;
  * every metric the dashboard and the rules name is one the daemon
    registers (a "fraudwatch_*" / "process_*" name in src/*.c; histogram
    series by their family), or Prometheus's own `up`.
tests/integration/test_prometheus.py checks the same against a running
daemon's /metrics and a real Prometheus.
Exit 77 (skip) without promtool (Debian package prometheus).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

failures = []
METRIC = re.compile(r"\b((?:fraudwatch|process)_[a-z0-9_]+)\b")


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def source_metrics(src):
    names = set()
    for f in glob.glob(os.path.join(src, "src", "*.c")):
        text = open(f, encoding="utf-8").read()
        names |= set(re.findall(r'"((?:fraudwatch|process)_[a-z0-9_]+)"', text))
    return names


def family(name, known):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in known:
            return name[:-len(suffix)]
    return name


def exprs_of_dashboard(dash):
    out = []
    def walk(panels):
        for p in panels:
            if p.get("type") == "row":
                walk(p.get("panels", []))
                continue
            t = p.get("targets") or []
            if not t or not all(x.get("expr") for x in t):
                fail(f"dashboard panel {p.get('title')!r} has no query")
            out.extend((p.get("title"), x.get("expr", "")) for x in t)
    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            out.append(("variable " + v["name"], v.get("definition", "")))
    return out


def main():
    src = sys.argv[1]
    promtool = shutil.which("promtool")
    if not promtool:
        print("SKIP: promtool not found (apt-get install prometheus; scripts/deps.sh does)",
              file=sys.stderr)
        return 77
    rules = os.path.join(src, "contrib", "prometheus", "alerts.yml")
    tests = os.path.join(src, "tests", "monitoring", "alerts_test.yml")
    for cmd in (["check", "rules", rules], ["test", "rules", tests]):
        p = subprocess.run([promtool] + cmd, capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"promtool {' '.join(cmd)}: exit {p.returncode}\n{p.stdout}{p.stderr}")

    rules_text = open(rules, encoding="utf-8").read()
    alerts = re.findall(r"^\s*- alert: (\w+)", rules_text, re.M)
    if len(alerts) < 7:
        fail(f"alerts.yml: only {len(alerts)} alerts")
    ops = open(os.path.join(src, "docs", "operations.md"), encoding="utf-8").read()
    tests_text = open(tests, encoding="utf-8").read()
    for a in alerts:
        if not re.search(r"^### " + a + r"\s*$", ops, re.M):
            fail(f"docs/operations.md has no runbook section \"### {a}\"")
        if f'docs/operations.md#{a.lower()}' not in rules_text:
            fail(f"alerts.yml: {a} has no runbook_url docs/operations.md#{a.lower()}")
        if not re.search(r"alertname: " + a + r"\s*$", tests_text, re.M):
            fail(f"tests/monitoring/alerts_test.yml has no case for {a}")

    dash_path = os.path.join(src, "contrib", "grafana", "fraudwatch.json")
    with open(dash_path, encoding="utf-8") as f:
        dash_text = f.read()
    dash = json.loads(dash_text)
    gen = subprocess.run([sys.executable, os.path.join(src, "contrib", "grafana",
                                                       "gen_dashboard.py"), "--print"],
                         capture_output=True, text=True)
    if gen.returncode != 0 or gen.stdout != dash_text:
        fail("contrib/grafana/fraudwatch.json differs from what gen_dashboard.py prints: "
             "run python3 contrib/grafana/gen_dashboard.py")

    known = source_metrics(src)
    if len(known) < 15:
        fail(f"only {len(known)} metric names found in src/*.c")
    used = {}
    for title, e in exprs_of_dashboard(dash):
        for n in METRIC.findall(e):
            used.setdefault(family(n, known), set()).add("dashboard: " + str(title))
    for m in re.finditer(r"expr: (\|[\s\S]*?)(?=\n\s+(?:for|labels):)|expr: (.*)", rules_text):
        e = m.group(1) or m.group(2)
        for n in METRIC.findall(e):
            used.setdefault(family(n, known), set()).add("alerts.yml")
    for n, where in sorted(used.items()):
        if n not in known:
            fail(f"{n} (in {', '.join(sorted(where))}) is not a metric the daemon exports")
    for want in ("fraudwatch_events_total", "fraudwatch_consumer_lag",
                 "fraudwatch_event_to_alert_seconds", "fraudwatch_alerts_total",
                 "fraudwatch_malformed_total", "fraudwatch_dead_letters_total",
                 "fraudwatch_checkpoint_pause_seconds", "fraudwatch_checkpoints_total",
                 "fraudwatch_rule_reloads_total", "fraudwatch_ruleset_version",
                 "process_resident_memory_bytes"):
        if want not in used:
            fail(f"the dashboard does not show {want}")
    if failures:
        return 1
    print(f"ok: {len(alerts)} alerts checked and tested, {len(used)} metrics all exported, "
          f"dashboard up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
