#!/usr/bin/env python3
"""`fraudwatch snooze` against a real redis-server (issue 11, item 6).

Starts its own redis-server on a free port of 127.0.0.1, without persistence
(scripts/fwtest.py), and checks: a snooze for a rule the active set does not
have is refused (and before any push), a bad or past UNTIL and a missing
reason are refused, add / change / list / remove / log behave and every
change is recorded with who, when and why, a snooze change bumps the
snoozes' version and never the rules generation, and the stored snooze is
what `replay --snoozes` would read.

usage: test_snooze_cli.py FRAUDWATCH SOURCE_ROOT
Exit 77 (skipped) without redis-server.  Ends with "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import time

FW, ROOT = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from fwtest import FixtureError, Redis  # noqa: E402

RULES = [
    {"id": "P1", "event": "call", "subject": "caller", "suppress_s": 100,
     "where": [{"field": "d", "op": ">", "value": 10}]},
    {"id": "P2", "event": "call", "subject": "caller", "mode": "shadow",
     "where": [{"field": "d", "op": ">", "value": 10}]},
]


def fw(redis, *args, check=None):
    p = subprocess.run([FW, "snooze", *args, "--redis", redis.url], capture_output=True,
                       text=True, timeout=60)
    if check is not None:
        assert p.returncode == check, f"{args}: exit {p.returncode}\n{p.stdout}{p.stderr}"
    return p


def push(redis, tmp):
    d = os.path.join(tmp, "rules")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "r.json"), "w") as f:
        json.dump(RULES, f)
    p = subprocess.run([FW, "rules", "push", d, "--redis", redis.url], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_refusals(redis, tmp):
    p = fw(redis, "add", "P1", "95588", "--for", "1h", "--reason", "x", check=1)
    assert "holds no rule set yet" in p.stderr and "nothing was changed" in p.stderr, p.stderr
    push(redis, tmp)
    p = fw(redis, "add", "NOPE", "95588", "--for", "1h", "--reason", "x", check=1)
    assert 'no rule "NOPE" in the active rule set' in p.stderr, p.stderr
    p = fw(redis, "add", "P1", "95588", "--until", "2031-01-01T00:00:00", "--reason", "x",
           check=2)
    assert "no offset" in p.stderr, p.stderr
    p = fw(redis, "add", "P1", "95588", "--until", "2020-01-01T00:00:00Z", "--reason", "x",
           check=1)
    assert "in the past" in p.stderr, p.stderr
    p = fw(redis, "add", "P1", "95588", "--for", "1h", check=2)
    assert "--reason TEXT is required" in p.stderr, p.stderr
    p = fw(redis, "add", "P1", "95588", "--for", "1h", "--until", "1", "--reason", "x", check=2)
    assert "exactly one of --until" in p.stderr, p.stderr
    p = fw(redis, "add", "P1", "95588", "--for", "24", "--reason", "x", check=2)
    assert "not a duration" in p.stderr, p.stderr
    p = fw(redis, "add", "P 1", "95588", "--for", "1h", "--reason", "x", check=1)
    assert "rule id" in p.stderr, p.stderr
    p = fw(redis, "remove", "P1", "nobody", check=1)
    assert "there is no snooze of rule P1" in p.stderr, p.stderr
    # nothing of it reached Redis
    assert redis.cli("HLEN", "fraudwatch:snoozes") == "0"
    assert redis.cli("LLEN", "fraudwatch:snoozes:log") == "0"


def test_add_list_remove_log(redis, tmp):
    push(redis, tmp)
    gen = redis.cli("GET", "fraudwatch:generation")
    t0 = int(time.time() * 1000)
    p = fw(redis, "add", "P1", "95588", "--until", "2031-01-01T08:00:00+08:00",
           "--reason", "the bank's call centre", "--by", "alice", check=0)
    assert "snooze added: rule P1, subject 95588, until 2031-01-01T00:00:00Z" in p.stdout, p.stdout
    fw(redis, "add", "*", "10086", "--for", "24h", "--reason", "carrier", "--by", "bob", check=0)
    p = fw(redis, "add", "P1", "95588", "--until", "1924963200000", "--reason", "extended",
           "--by", "carol", check=0)
    assert "snooze changed" in p.stdout, p.stdout
    assert redis.cli("GET", "fraudwatch:snoozes:version") == "3"
    assert redis.cli("GET", "fraudwatch:generation") == gen, "a snooze bumped the generation"

    p = fw(redis, "list", check=0)
    lines = p.stdout.splitlines()
    assert lines[0] == "snoozes version 3: 2 snoozes", p.stdout
    row = [l for l in lines if l.startswith("P1 ")]
    assert row and "95588" in row[0] and "2030-12-31T16:00:00Z" in row[0] and "carol" in row[0] \
        and row[0].endswith("extended"), p.stdout
    star = [l for l in lines if l.startswith("* ")]
    assert star and "10086" in star[0] and "bob" in star[0] and "(in 23h)" in star[0], p.stdout

    # the stored form: one hash field per (rule, subject)
    stored = json.loads(redis.cli("HGET", "fraudwatch:snoozes", "P1\t95588"))
    assert stored["until"] == 1924963200000 and stored["by"] == "carol", stored
    assert stored["at"] >= t0 - 60000, stored

    fw(redis, "remove", "*", "10086", "--reason", "carrier fixed", "--by", "dave", check=0)
    p = fw(redis, "list", check=0)
    assert "10086" not in p.stdout and "95588" in p.stdout, p.stdout

    log = [json.loads(l) for l in fw(redis, "log", check=0).stdout.splitlines()]
    assert [(e["op"], e["rule"], e["subject"], e["by"]) for e in log] == [
        ("add", "P1", "95588", "alice"), ("add", "*", "10086", "bob"),
        ("replace", "P1", "95588", "carol"), ("remove", "*", "10086", "dave")], log
    assert log[0]["reason"] == "the bank's call centre" and log[3]["reason"] == "carrier fixed"
    assert log[0]["until"] == 1924992000000 and log[2]["until"] == 1924963200000, log
    assert all(e["at"] >= t0 - 60000 for e in log), log
    assert all(a["at"] <= b["at"] for a, b in zip(log, log[1:])), log
    last = fw(redis, "log", "--last", "1", check=0).stdout.splitlines()
    assert len(last) == 1 and json.loads(last[0])["op"] == "remove", last


def acl_lines():
    """The two ACL SETUSER commands docs/redis.md gives, password "pw"."""
    text = open(os.path.join(ROOT, "docs", "redis.md")).read().replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip().startswith("ACL SETUSER fw-")]
    assert len(lines) == 2, lines
    return [l.replace(">PASSWORD", ">pw").split() for l in lines]


def test_acl_users_of_the_docs(redis, tmp):
    """The operator user docs/redis.md gives can run every snooze command; the
    daemon user can read the snoozes (what a daemon reads) and cannot change them."""
    push(redis, tmp)
    for words in acl_lines():
        assert redis.cli(*words) == "OK", words
    host = redis.url.split("//")[1]

    def as_user(user, *args):
        p = subprocess.run([FW, "snooze", *args, "--redis", f"redis://{user}:pw@{host}"],
                           capture_output=True, text=True, timeout=60)
        return p

    for args in (["add", "P1", "95588", "--for", "1h", "--reason", "r"], ["list"],
                 ["log"], ["remove", "P1", "95588", "--reason", "r"]):
        p = as_user("fw-operator", *args)
        assert p.returncode == 0, f"operator {args}: {p.stderr}"
    p = as_user("fw-daemon", "list")
    assert p.returncode == 0 and "snoozes version 2: 0 snoozes" in p.stdout, p.stdout + p.stderr
    p = as_user("fw-daemon", "add", "P1", "95588", "--for", "1h", "--reason", "r")
    assert p.returncode == 1 and "NOPERM" in p.stderr, p.stderr


def test_help(redis, tmp):
    p = subprocess.run([FW, "snooze", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "snooze add RULE|* SUBJECT" in p.stdout, p.stdout
    p = subprocess.run([FW, "snooze", "frobnicate"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown subcommand" in p.stderr
    p = subprocess.run([FW, "--help"], capture_output=True, text=True)
    assert "snooze add|list|remove|log" in p.stdout, p.stdout


def main():
    try:
        Redis().stop()
    except FixtureError as e:
        print(f"skipped: {e}")
        return 77
    passed = failed = 0
    for name, fn in [(k, v) for k, v in globals().items() if k.startswith("test_")]:
        redis = Redis()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                fn(redis, tmp)
            print(f"ok   {name}")
            passed += 1
        except AssertionError as e:
            print(f"FAIL {name}: {e}")
            failed += 1
        finally:
            redis.stop()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
