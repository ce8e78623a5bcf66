#!/usr/bin/env python3
"""Run the golden cases in tests/cases against a fraudwatch binary.

usage: run_cases.py FRAUDWATCH_BINARY CASES_DIR [CASE_NAME_SUBSTRING ...]

For each case folder (one that has rules/, events.jsonl and expected.jsonl) it
runs `fraudwatch replay --rules CASE/rules CASE/events.jsonl` once single-threaded
and once with `--threads 4`, and checks for each run that:
  * every stdout line is a JSON object (an alert);
  * the set of (rule_id, subject, event_id) equals expected.jsonl, with no duplicates;
  * every `evidence` member listed in expected.jsonl is present with that value
    (numbers compared with a small relative tolerance);
  * each alert has a non-empty alert_id, ids are distinct within a run and identical
    for the same triple in both runs; event_ts equals the event's ts;
  * the members description, action, tags, fields, fields_cut that expected.jsonl
    lists for an alert are equal to the alert's (deep), and the members it names in
    "absent" are not in the alert.
Prints a diff for each failing case and ends with the line `N passed, N failed`.
Exit status 1 if any case failed. Standard library only.
"""
import json
import math
import os
import subprocess
import sys

TIMEOUT_S = 120


def load_jsonl(path):
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    raise SystemExit("%s:%d: bad JSON: %s" % (path, n, e))
    return out


def event_ts_map(path):
    """event_id -> ts for the lines that are well-formed events (others ignored)."""
    m = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and isinstance(o.get("event_id"), str) and \
                    isinstance(o.get("ts"), int) and not isinstance(o.get("ts"), bool):
                m.setdefault(o["event_id"], o["ts"])
    return m


def same_value(want, got):
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(same_value(w, g) for w, g in zip(want, got))
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(same_value(want[k], got[k]) for k in want)
    return want == got


CONTENT = ("description", "action", "tags", "fields", "fields_cut")


def triple(a):
    return (a.get("rule_id"), a.get("subject"), a.get("event_id"))


def fmt(t):
    return "rule_id=%s subject=%s event_id=%s" % t


def run_once(binary, case_dir, threads):
    cmd = [binary, "replay", "--rules", os.path.join(case_dir, "rules")]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if os.path.isfile(os.path.join(case_dir, "snoozes.tsv")):
        cmd += ["--snoozes", os.path.join(case_dir, "snoozes.tsv")]
    cmd.append(os.path.join(case_dir, "events.jsonl"))
    problems = []
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, ["timeout after %ds: %s" % (TIMEOUT_S, " ".join(cmd))]
    if p.returncode < 0:
        problems.append("killed by signal %d: %s" % (-p.returncode, " ".join(cmd)))
    elif p.returncode != 0:
        problems.append("exit status %d: %s" % (p.returncode, " ".join(cmd)))
    if problems:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        problems += ["  stderr: " + l for l in err[-15:]]
    alerts = []
    for n, line in enumerate(p.stdout.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            a = json.loads(line)
        except ValueError:
            problems.append("stdout line %d is not JSON: %r" % (n, line[:200]))
            continue
        if not isinstance(a, dict):
            problems.append("stdout line %d is not a JSON object: %r" % (n, line[:200]))
            continue
        alerts.append(a)
    return alerts, problems


def check_run(label, alerts, expected, ts_of):
    problems = []
    got = {}
    for a in alerts:
        t = triple(a)
        if t in got:
            problems.append("[%s] duplicate alert: %s" % (label, fmt(t)))
        got.setdefault(t, a)
    want = {triple(e): e for e in expected}
    for t in sorted(set(want) - set(got), key=str):
        ev = want[t].get("evidence")
        problems.append("[%s] - missing:    %s%s" % (label, fmt(t), (" evidence " + json.dumps(ev)) if ev else ""))
    for t in sorted(set(got) - set(want), key=str):
        problems.append("[%s] + unexpected: %s evidence %s" % (label, fmt(t), json.dumps(got[t].get("evidence"), ensure_ascii=False)))
    for t in sorted(set(got) & set(want), key=str):
        a, e = got[t], want[t]
        for k, v in (e.get("evidence") or {}).items():
            ev = a.get("evidence")
            if not isinstance(ev, dict) or k not in ev:
                problems.append("[%s] ~ %s: evidence lacks %r (evidence %s)" % (label, fmt(t), k, json.dumps(ev, ensure_ascii=False)))
            elif not same_value(v, ev[k]):
                problems.append("[%s] ~ %s: evidence %s = %r, expected %r" % (label, fmt(t), k, ev[k], v))
        for k in CONTENT:
            if k in e and not same_value(e[k], a.get(k)):
                problems.append("[%s] ~ %s: %s = %s, expected %s" % (
                    label, fmt(t), k, json.dumps(a.get(k), ensure_ascii=False),
                    json.dumps(e[k], ensure_ascii=False)))
        for k in e.get("absent") or []:
            if k in a:
                problems.append("[%s] ~ %s: has %s, expected none" % (label, fmt(t), k))
        for flag in ("shadow", "snoozed"):
            if (a.get(flag) is True) != (e.get(flag) is True):
                problems.append("[%s] ~ %s: \"%s\" is %r, expected %r" % (label, fmt(t), flag, a.get(flag), e.get(flag, False)))
        if t[2] in ts_of and a.get("event_ts") != ts_of[t[2]]:
            problems.append("[%s] ~ %s: event_ts %r, expected %r" % (label, fmt(t), a.get("event_ts"), ts_of[t[2]]))
    ids = {}
    for a in alerts:
        aid = a.get("alert_id")
        if not isinstance(aid, str) or not aid:
            problems.append("[%s] alert without a non-empty string alert_id: %s" % (label, fmt(triple(a))))
            continue
        if aid in ids and ids[aid] != triple(a):
            problems.append("[%s] alert_id %s shared by %s and %s" % (label, aid, fmt(ids[aid]), fmt(triple(a))))
        ids[aid] = triple(a)
    return problems


def run_case(binary, case_dir):
    expected = load_jsonl(os.path.join(case_dir, "expected.jsonl"))
    ts_of = event_ts_map(os.path.join(case_dir, "events.jsonl"))
    problems = []
    runs = {}
    for label, threads in (("1 thread", None), ("4 threads", 4)):
        alerts, probs = run_once(binary, case_dir, threads)
        problems += ["[%s] %s" % (label, p) for p in probs]
        if alerts is None:
            continue
        runs[label] = alerts
        problems += check_run(label, alerts, expected, ts_of)
    if len(runs) == 2:
        a1 = {triple(a): a.get("alert_id") for a in runs["1 thread"]}
        a3 = {triple(a): a.get("alert_id") for a in runs["4 threads"]}
        for t in sorted(set(a1) & set(a3), key=str):
            if a1[t] != a3[t]:
                problems.append("alert_id differs between runs for %s: %r vs %r" % (fmt(t), a1[t], a3[t]))
        for t in sorted(set(a1) ^ set(a3), key=str):
            problems.append("alert set differs between 1 and 4 threads: %s only in %s" %
                            (fmt(t), "1 thread" if t in a1 else "4 threads"))
    return problems


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    binary, cases_dir, filters = os.path.abspath(argv[1]), argv[2], argv[3:]
    if not os.access(binary, os.X_OK):
        sys.stderr.write("not an executable: %s\n" % binary)
        return 2
    names = sorted(n for n in os.listdir(cases_dir)
                   if os.path.isdir(os.path.join(cases_dir, n, "rules"))
                   and os.path.isfile(os.path.join(cases_dir, n, "expected.jsonl")))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    passed = failed = 0
    for name in names:
        problems = run_case(binary, os.path.join(cases_dir, name))
        if problems:
            failed += 1
            print("FAIL %s" % name)
            for p in problems:
                print("    " + p)
        else:
            passed += 1
            print("ok   %s" % name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
