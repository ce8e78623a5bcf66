#!/usr/bin/env python3
"""The demo traffic against its hand-derived expectations.

scripts/demo/expected-rules.txt lists, for the shipped rules over
scripts/demo/events.jsonl, every alert (rule, subject, event) derived by hand
from the planted cases; no other alert may appear, and the malformed lines
must be reported.  Runs replay with 1 and 4 threads.

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

passed = failed = 0
for threads in ("1", "4"):
    p = subprocess.run([fw, "replay", "--rules", os.path.join(root, "rules"), "--threads", threads,
                        os.path.join(root, "scripts/demo/events.jsonl")],
                       capture_output=True, text=True)
    got = {(a["rule_id"], a["subject"], a["event_id"]) for a in map(json.loads, p.stdout.splitlines())}
    problems = []
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
