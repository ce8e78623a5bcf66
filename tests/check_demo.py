#!/usr/bin/env python3
"""The demo traffic against its hand-derived expectations.

scripts/demo/expected-rules.txt lists, for the shipped rules over
scripts/demo/events.jsonl, every alert (rule, subject, event) derived by hand
from the planted cases; no other alert may appear, and the malformed lines
must be reported.  Runs replay with 1 and 4 threads.  Every alert of the
shipped rules also carries what an officer reads (SPEC §3): description,
action, tags, and fields equal to its event's values (each sequence step's
fields to its own event's).

usage: check_demo.py FRAUDWATCH SOURCE_ROOT
"""
import json
import os
import subprocess
import sys

fw, root = sys.argv[1], sys.argv[2]
want = set()
for line in open(os.path.join(root, "scripts/demo/expected-rules.txt"), encoding="utf-8"):
    line = line.split("#", 1)[0].split()
    if len(line) == 3:
        want.add(tuple(line))

events = {}
for line in open(os.path.join(root, "scripts/demo/events.jsonl"), encoding="utf-8"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if isinstance(e, dict) and isinstance(e.get("event_id"), str):
        events.setdefault(e["event_id"], e)


def content_problems(a):
    """What the officer reads: present, and the fields are the event's."""
    out = []
    t = (a["rule_id"], a["subject"], a["event_id"])
    for k in ("description", "action"):
        if not isinstance(a.get(k), str) or not a[k]:
            out.append(f"{t}: no {k}")
    if not isinstance(a.get("tags"), list) or not a["tags"]:
        out.append(f"{t}: no tags")

    def same(fields, eid, where):
        ev = events.get(eid, {})
        if not isinstance(fields, dict) or not fields:
            out.append(f"{t}: {where} has no fields")
            return
        for k, v in fields.items():
            if ev.get(k) != v:
                out.append(f"{t}: {where} fields.{k} = {v!r}, the event has {ev.get(k)!r}")

    same(a.get("fields"), a["event_id"], "the alert")
    for s in (a.get("evidence") or {}).get("steps") or []:
        same(s.get("fields"), s.get("event_id"), f"step {s.get('step')}")
    return out


passed = failed = 0
for threads in ("1", "4"):
    p = subprocess.run([fw, "replay", "--rules", os.path.join(root, "rules"), "--threads", threads,
                        os.path.join(root, "scripts/demo/events.jsonl")],
                       capture_output=True, text=True)
    alerts = [json.loads(l) for l in p.stdout.splitlines()]
    got = {(a["rule_id"], a["subject"], a["event_id"]) for a in alerts}
    problems = []
    for a in alerts:
        problems += content_problems(a)
    if p.returncode != 0:
        problems.append(f"exit status {p.returncode}: {p.stderr}")
    for t in sorted(want - got):
        problems.append(f"missing {t}")
    for t in sorted(got - want):
        problems.append(f"unexpected {t}")
    if p.stderr.count("malformed event") != 3:
        problems.append("the 3 malformed lines are not all reported:\n" + p.stderr)
    if problems:
        failed += 1
        print(f"FAIL demo, {threads} thread(s):\n  " + "\n  ".join(problems))
    else:
        passed += 1
        print(f"ok   demo, {threads} thread(s): {len(got)} alerts as derived by hand")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
