#!/usr/bin/env python3
"""`fraudwatch replay --compare` against hand-derived expectations.

usage: test_compare.py FRAUDWATCH_BINARY TESTS_COMPARE_DIR

The fixtures (before/, after/, events.jsonl, truth.tsv) and the derivation of
every figure are in README.md next to this file.  The expected counts and
precision/recall below are that derivation, written out; expected.txt and
expected.json are the full reports with each example alert line reduced to
its identity (alert_id rule subject event), so that what else an alert line
carries (fields, flags added by later versions) cannot break this test: the
comparison is by alert_id.

Ends with "N passed, N failed"; exit status 1 if any check failed.
Standard library only.
"""
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

FW = os.path.abspath(sys.argv[1])
HERE = os.path.abspath(sys.argv[2])
TIMEOUT = 120

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s%s" % (name, ("\n  " + detail.replace("\n", "\n  ")) if detail else ""))


def run(*args, stdin=None, cwd=HERE):
    return subprocess.run([FW, "replay"] + list(args), cwd=cwd, capture_output=True, text=True,
                          stdin=stdin, timeout=TIMEOUT)


def alert_id(rule, subject, event):
    """SPEC §3 / src/alert.c: first 128 bits of SHA-256 over the length-prefixed triple."""
    h = hashlib.sha256()
    for x in (rule, subject, event):
        b = x.encode()
        h.update(struct.pack(">Q", len(b)))
        h.update(b)
    return h.hexdigest()[:32]


def ident(a):
    return "%s %s %s %s" % (a["alert_id"], a["rule_id"], a["subject"], a["event_id"])


def norm_text(s):
    out = []
    for line in s.splitlines():
        if line.startswith("    {"):
            line = "    " + ident(json.loads(line[4:]))
        out.append(line)
    return "\n".join(out) + "\n"


def norm_json(doc):
    for r in doc["rules"]:
        for k, lines in r["examples"].items():
            r["examples"][k] = [ident(a) for a in lines]
    return doc


# ---- hand-derived figures (README.md) ------------------------------------------
# rule: (status, before, after, both, only_before, only_after)
COUNTS = {
    "L1": ("unchanged", 2, 4, 2, 0, 2),
    "N1": ("added", 0, 1, 0, 0, 1),
    "P1": ("changed", 1, 2, 1, 0, 1),
    "S1": ("changed", 1, 2, 0, 1, 2),
    "T1": ("unchanged", 2, 2, 2, 0, 0),
    "X1": ("removed", 1, 0, 0, 1, 0),
}
# (rule, subject, event) of the examples, in input order, all of them
EXAMPLES = {
    "L1": {"both": [("L1", "111", "e1"), ("L1", "111", "e3")], "only_before": [],
           "only_after": [("L1", "222", "e2"), ("L1", "222", "e6")]},
    "N1": {"both": [], "only_before": [], "only_after": [("N1", "444", "e5")]},
    "P1": {"both": [("P1", "111", "e1")], "only_before": [], "only_after": [("P1", "222", "e2")]},
    "S1": {"both": [], "only_before": [("S1", "222", "e6")],
           "only_after": [("S1", "222", "e2"), ("S1", "111", "e3")]},
    "T1": {"both": [("T1", "111", "e3"), ("T1", "222", "e6")], "only_before": [],
           "only_after": []},
    "X1": {"both": [], "only_before": [("X1", "333", "e4")], "only_after": []},
}
# rule: (fraud, (tp, fp, unlabelled, precision, recall) before, ... after)
TRUTH = {
    "L1": (1, (0, 1, 1, 0.0, 0.0), (1, 1, 2, 0.5, 1.0)),
    "N1": (0, (0, 0, 0, None, None), (0, 0, 1, None, None)),
    "P1": (2, (1, 0, 0, 1.0, 0.5), (2, 0, 0, 1.0, 1.0)),
    "S1": (0, (0, 0, 1, None, None), (0, 0, 2, None, None)),
    "T1": (1, (0, 0, 2, None, 0.0), (0, 0, 2, None, 0.0)),
    "X1": (0, (0, 1, 0, 0.0, None), (0, 0, 0, None, None)),
}
# rule: subjects (both, only_before, only_after): S1's 222 fired on e6 before,
# on e2 after (suppression then held e6): two alert ids, one subject.
SUBJECTS = {"L1": (1, 0, 1), "N1": (0, 0, 1), "P1": (1, 0, 1), "S1": (1, 0, 1), "T1": (2, 0, 0),
            "X1": (0, 1, 0)}

# ---- the full report, JSON ---------------------------------------------------------
p = run("--compare", "before", "after", "events.jsonl", "--truth", "truth.tsv", "--json")
check("json: exit 0", p.returncode == 0, p.stderr)
check("json: the malformed line is reported on stderr",
      "line 8: malformed event" in p.stderr, p.stderr)
try:
    doc = json.loads(p.stdout)
except ValueError as e:
    doc = None
    check("json: stdout is one JSON object", False, "%s\n%s" % (e, p.stdout[:2000]))
if doc:
    check("json: events, malformed", (doc["events"], doc["malformed"]) == (8, 1),
          str((doc["events"], doc["malformed"])))
    check("json: totals", (doc["before"]["alerts"], doc["after"]["alerts"], doc["both"],
                           doc["only_before"], doc["only_after"]) == (7, 11, 5, 2, 6))
    check("json: lists", doc["lists"] == {"added": [], "removed": [], "changed": ["fraud"]},
          str(doc["lists"]))
    check("json: truth totals", doc["truth"] == {"file": "truth.tsv", "fraud": 6, "not_fraud": 2,
                                                 "fraud_unmatched": 1, "fraud_other_rules": 1},
          str(doc["truth"]))
    check("json: rules sorted by id", [r["rule_id"] for r in doc["rules"]] == sorted(COUNTS),
          str([r["rule_id"] for r in doc["rules"]]))
    for r in doc["rules"]:
        rid = r["rule_id"]
        got = (r["status"], r["before"], r["after"], r["both"], r["only_before"], r["only_after"])
        check("json: %s counts" % rid, got == COUNTS.get(rid), "%s != %s" % (got, COUNTS.get(rid)))
        got = tuple(r["subjects"][k] for k in ("both", "only_before", "only_after"))
        check("json: %s subjects" % rid, got == SUBJECTS[rid], "%s != %s" % (got, SUBJECTS[rid]))
        for cat, want in EXAMPLES[rid].items():
            lines = r["examples"][cat]
            got = [(a["rule_id"], a["subject"], a["event_id"]) for a in lines]
            check("json: %s examples %s" % (rid, cat), got == want, "%s != %s" % (got, want))
            for a in lines:
                check("json: %s example alert_id is the triple's" % rid,
                      a["alert_id"] == alert_id(a["rule_id"], a["subject"], a["event_id"]))
        t = r["truth"]
        want = TRUTH[rid]
        got = (t["fraud"],
               tuple(t["before"][k] for k in ("tp", "fp", "unlabelled", "precision", "recall")),
               tuple(t["after"][k] for k in ("tp", "fp", "unlabelled", "precision", "recall")))
        check("json: %s precision/recall" % rid, got == want, "%s != %s" % (got, want))
    with open(os.path.join(HERE, "expected.json"), encoding="utf-8") as fh:
        want_doc = json.load(fh)
    got_doc = norm_json(doc)
    check("json: whole report = expected.json", got_doc == want_doc,
          json.dumps(got_doc, indent=1, ensure_ascii=False))

# ---- the full report, text -----------------------------------------------------------
p = run("--compare", "before", "after", "events.jsonl", "--truth", "truth.tsv",
        "--examples", "1")
check("text: exit 0", p.returncode == 0, p.stderr)
with open(os.path.join(HERE, "expected.txt"), encoding="utf-8") as fh:
    want_text = fh.read()
got_text = norm_text(p.stdout)
check("text: report = expected.txt", got_text == want_text, got_text)

# ---- options ---------------------------------------------------------------------------
p = run("--compare", "before", "after", "events.jsonl", "--json", "--examples", "0")
d = json.loads(p.stdout) if p.returncode == 0 else None
check("--examples 0: no examples, counts kept",
      d is not None and all(not v for r in d["rules"] for v in r["examples"].values())
      and [r["both"] for r in d["rules"]] == [2, 0, 1, 0, 2, 0], p.stdout + p.stderr)
check("no --truth: truth null, no per-rule truth",
      d is not None and d["truth"] is None and all("truth" not in r for r in d["rules"]))

with open(os.path.join(HERE, "events.jsonl"), encoding="utf-8") as fh:
    p = run("--compare", "before", "after", "--json", "--threads", "3", stdin=fh)
d3 = json.loads(p.stdout) if p.returncode == 0 else None
check("stdin input and --threads 3 give the same counts",
      d3 is not None and d is not None and
      [(r["rule_id"], r["both"], r["only_before"], r["only_after"]) for r in d3["rules"]] ==
      [(r["rule_id"], r["both"], r["only_before"], r["only_after"]) for r in d["rules"]]
      and d3["input"] == "-", p.stdout + p.stderr)

# ---- the same directory twice: everything in both ----------------------------------------
p = run("--compare", "before", "before", "events.jsonl", "--json")
d = json.loads(p.stdout) if p.returncode == 0 else None
ok = d is not None and d["only_before"] == 0 and d["only_after"] == 0 and d["both"] == 7
for r in (d or {}).get("rules", []):
    ok = ok and r["status"] == "unchanged" and r["before"] == r["after"] == r["both"] and \
        r["only_before"] == r["only_after"] == 0
check("same dir twice: all alerts in both, every rule unchanged", ok, p.stdout + p.stderr)
check("same dir twice: lists unchanged",
      d is not None and d["lists"] == {"added": [], "removed": [], "changed": []})
p = run("--compare", "before", "before", "events.jsonl")
check("same dir twice, text", p.returncode == 0 and
      "alerts: before 7, after 7; in both 7, only before 0, only after 0" in p.stdout, p.stdout)

# ---- the shipped rules against themselves on the demo traffic (every rule kind):
# each side's alerts are plain replay's, all in both -------------------------------
ROOT = os.path.dirname(os.path.dirname(HERE))
rules = os.path.join(ROOT, "rules")
demo = os.path.join(ROOT, "scripts", "demo", "events.jsonl")
p = run("--rules", rules, demo)
plain = sorted(json.loads(line)["alert_id"] for line in p.stdout.splitlines())
p = run("--compare", rules, rules, demo, "--json", "--examples", "1000", "--threads", "2")
d = json.loads(p.stdout) if p.returncode == 0 else None
shown = sorted(a["alert_id"] for r in (d or {}).get("rules", []) for a in r["examples"]["both"])
check("shipped rules twice on the demo: all of replay's alerts in both, nothing else",
      d is not None and plain and shown == plain and d["both"] == len(plain) and
      d["only_before"] == d["only_after"] == 0, p.stderr)

# ---- bad truth files: refused with FILE:LINE, nothing on stdout --------------------------
BAD = [
    ("abc\tfraud\n", ":1: alert_id 'abc' is not 32 hex digits"),
    ("# c\nP1\t111\te1\tmaybe\n", ":2: label 'maybe' is neither fraud nor not_fraud"),
    ("P1\t111\tfraud\n", ":1: 3 TAB-separated fields"),
    ("P1 111 e1 fraud\n", ":1: 1 TAB-separated field;"),
    ("P1\t111\te1\tfraud\n\n31edf28d413e5cb1fa8f2cfba9714e22\tnot_fraud\n",
     ":3: alert 31edf28d413e5cb1fa8f2cfba9714e22 is labelled not_fraud here but fraud at line 1"),
    ("bad id!\t1\te1\tfraud\n", ":1: rule id 'bad id!' is not"),
    ("P1\t\te1\tfraud\n", ":1: the subject (field 2) is empty"),
    ("P1\t111\te1\tFraud\n", "label 'Fraud' is neither"),
    ("x\tfraud\n" * 12, "... and 2 more bad lines"),
]
with tempfile.TemporaryDirectory() as tmp:
    for i, (text, want) in enumerate(BAD):
        path = os.path.join(tmp, "bad%d.tsv" % i)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        p = run("--compare", "before", "after", "events.jsonl", "--truth", path)
        where = (path + want) if want.startswith(":") else want
        check("bad truth %d: exit 1, nothing on stdout, '%s'" % (i, want),
              p.returncode == 1 and p.stdout == "" and where in p.stderr,
              "rc=%d\nstdout=%s\nstderr=%s" % (p.returncode, p.stdout, p.stderr))
    p = run("--compare", "before", "after", "events.jsonl", "--truth", os.path.join(tmp, "none"))
    check("missing truth file: exit 1, named", p.returncode == 1 and p.stdout == "" and
          "none: No such file" in p.stderr, p.stderr)
    p = run("--compare", "before", "after", "events.jsonl", "--truth", tmp)
    check("truth file is a directory: exit 1", p.returncode == 1 and p.stdout == "", p.stderr)

# ---- bad directories and usage --------------------------------------------------------------
p = run("--compare", "no-such-dir", "after", "events.jsonl")
check("missing OLD_DIR: exit 1, named as before", p.returncode == 1 and p.stdout == "" and
      "before (OLD_DIR) rules no-such-dir refused" in p.stderr, p.stderr)
p = run("--compare", "before", "bad_rules", "events.jsonl")
check("refused NEW_DIR: exit 1, named as after, loader's reason", p.returncode == 1 and
      p.stdout == "" and "after (NEW_DIR) rules bad_rules refused" in p.stderr and
      "nosuchlist" in p.stderr, p.stderr)
p = run("--compare", "before", "after", "no-such-events.jsonl")
check("missing input: exit 1", p.returncode == 1 and p.stdout == "", p.stderr)
for args, want in [(["--compare", "before"], "needs OLD_DIR NEW_DIR"),
                   (["--compare", "before", "after", "events.jsonl", "x"], "needs OLD_DIR NEW_DIR"),
                   (["--compare", "--rules", "before", "after", "events.jsonl"], "not --rules"),
                   (["--compare", "before", "after", "--examples", "5000"], "--examples must be"),
                   (["--compare", "before", "after", "--threads", "0"], "--threads must be"),
                   (["--compare", "before", "after", "--bogus"], "usage:")]:
    p = run(*args)
    check("usage %s: exit 2" % " ".join(args), p.returncode == 2 and want in p.stderr,
          "rc=%d %s" % (p.returncode, p.stderr))
# The engine options mean the same in both commands (cli_engine_opts.c): the same
# refusal after the command's name, and the same values accepted.
for opt, bad in [("--threads", "0"), ("--max-event-bytes", "1"), ("--lateness", "x"),
                 ("--max-keys", "1"), ("--max-reported", "-1"), ("--max-regex-per-event", "0")]:
    plain = run("--rules", "before", opt, bad, "events.jsonl")
    comp = run("--compare", "before", "after", opt, bad, "events.jsonl")
    why = lambda q, me: q.stderr.split(me + ": ", 1)[-1].splitlines()[0] if q.stderr else ""
    check("%s %s: refused alike by replay and replay --compare" % (opt, bad),
          plain.returncode == 2 and comp.returncode == 2 and opt + " must be" in plain.stderr and
          why(plain, "fraudwatch replay") == why(comp, "fraudwatch replay --compare"),
          "%r / %r" % (plain.stderr, comp.stderr))
good = ["--threads", "2", "--max-event-bytes", "65536", "--lateness", "600", "--max-keys",
        "100000", "--max-reported", "5", "--max-regex-per-event", "1000"]
plain = run("--rules", "before", *good, "events.jsonl")
comp = run("--compare", "before", "after", *good, "events.jsonl")
check("the same engine options accepted by both", plain.returncode == 0 and
      comp.returncode == 0, plain.stderr + comp.stderr)

p = run("--help")
check("replay --help documents --compare, --json, --truth, --examples",
      p.returncode == 0 and all(s in p.stdout for s in
                                ("--compare OLD_DIR NEW_DIR", "--json", "--truth FILE",
                                 "--examples N")), p.stdout)
p = run("--compare", "--help")
check("replay --compare --help: the same help", p.returncode == 0 and "--truth FILE" in p.stdout)

# ---- plain replay is unchanged -------------------------------------------------------------
p = run("--rules", "before", "events.jsonl")
got = sorted((a["rule_id"], a["subject"], a["event_id"]) for a in map(json.loads,
                                                                     p.stdout.splitlines()))
want = sorted(t for r in ("L1", "P1", "S1", "T1", "X1") for cat in ("both", "only_before")
              for t in EXAMPLES[r][cat])
check("plain replay: the before set's alerts", p.returncode == 0 and got == want,
      "%s != %s" % (got, want))
p = run("--json", "--rules", "before", "events.jsonl")
check("plain replay refuses compare-only options", p.returncode == 2, p.stderr)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
