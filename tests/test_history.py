#!/usr/bin/env python3
"""The rule history (issue 11.4) through the fraudwatch binary, against a
real redis-server started on a free port (scripts/fwtest.py).

push records (version, time, author, message, SHA-256 per file), refused
pushes recorded with their reason and nothing else applied, history / show /
diff (two versions, a version and a directory), rollback (a new version
equal to the old one, recorded as a rollback, earlier records untouched),
trimming beyond --keep N (a trimmed version refused, its blobs gone), big
watchlists kept by hash only, concurrent pushes.

usage: test_history.py FRAUDWATCH SOURCE_ROOT [TEST-NAME ...]
Exit 77 (skipped) without redis-server.  Ends with "N passed, N failed".
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback

FW, ROOT = (os.path.abspath(a) for a in sys.argv[1:3])
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from fwtest import FixtureError, Redis  # noqa: E402

RULES = os.path.join(ROOT, "rules")


def fw(redis, *args, check=True):
    p = subprocess.run([FW, *args, "--redis", redis.url], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def history(redis, limit=0):
    out = fw(redis, "rules", "history", "--json", "--limit", str(limit)).stdout
    return [json.loads(line) for line in out.splitlines()]


def raw_history(redis):
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "--raw", "LRANGE",
                          "fraudwatch:rules:history", "0", "-1"],
                         capture_output=True, text=True).stdout
    return out.splitlines()


def files_in_redis(redis):
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "--raw", "HGETALL",
                          "fraudwatch:rules:files"], capture_output=True, text=True).stdout
    return out


def members(redis, name):
    out = redis.cli("SMEMBERS", f"fraudwatch:list:{name}")
    return sorted(x for x in out.splitlines() if x)


def canonical(path):
    vals = set()
    with open(path) as f:
        for line in f:
            v = line.strip()
            if v and not v.startswith("#"):
                vals.add(v)
    text = "".join(v + "\n" for v in sorted(vals, key=lambda s: s.encode()))
    return text, len(vals)


def sha(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def copy_rules(tmp, name, edit=None):
    d = os.path.join(tmp, name)
    shutil.copytree(RULES, d)
    if edit:
        edit(d)
    return d


def edit_b(d):
    """R101's threshold and name changed, R102 removed, X1 added, two list
    entries added."""
    p = os.path.join(d, "calls.json")
    doc = json.load(open(p))
    doc["rules"][0]["threshold"]["count"][">="] = 30
    doc["rules"][0]["name"] = "Robocall burst (tighter)"
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "R102"]
    doc["rules"].append({"id": "X1", "event": "call", "subject": "caller",
                         "where": [{"field": "duration_s", "op": "<", "value": 40}]})
    json.dump(doc, open(p, "w"), indent=1)
    with open(os.path.join(d, "fraud_numbers.list"), "a") as f:
        f.write("17000000001\n17000000002\n")


# ---------------------------------------------------------------- tests ----

def test_push_records(r, tmp):
    """A push records version, time, author, message and the SHA-256 of every
    file (rule files byte for byte, lists sorted once each)."""
    p = fw(r, "rules", "push", RULES, "-m", "first set", "--author", "alice")
    assert "recorded in the rule history as #1" in p.stdout, p.stdout
    h = history(r)
    assert len(h) == 1
    rec = h[0]
    assert rec["seq"] == 1 and rec["version"] == 1 and rec["base"] == 0
    assert rec["action"] == "push" and rec["author"] == "alice"
    assert rec["message"] == "first set" and rec["kept"] is True
    assert rec["ts"] > 1.7e12
    names = sorted(f for f in os.listdir(RULES) if f.endswith(".json"))
    assert [f["name"] for f in rec["files"]] == names
    for f in rec["files"]:
        assert f["sha256"] == sha(open(os.path.join(RULES, f["name"]), "rb").read()), f
    for lst in rec["lists"]:
        text, n = canonical(os.path.join(RULES, lst["name"] + ".list"))
        assert lst["sha256"] == sha(text) and lst["entries"] == n and lst["kept"], lst
    # without -m / --author: the login name and a message naming the directory
    fw(r, "rules", "push", RULES)
    rec = history(r, 1)[0]
    assert rec["version"] == 2 and rec["author"], rec
    assert RULES in rec["message"] and "no message" in rec["message"], rec["message"]


def test_refused_push_recorded(r, tmp):
    """A refused push is recorded as refused with its reason; nothing else of
    it is applied (rules, version, kept contents unchanged)."""
    fw(r, "rules", "push", RULES, "-m", "good")
    before_files = files_in_redis(r)
    before_blobs = sorted(r.cli("KEYS", "fraudwatch:rules:blob:*").split())
    bad = copy_rules(tmp, "bad")
    with open(os.path.join(bad, "zz.json"), "w") as f:
        f.write('{"rules": [{"id": "Z1", "event": "call", "bogus": 1}]}')
    p = fw(r, "rules", "push", bad, "-m", "try this", "--author", "bob", check=False)
    assert p.returncode == 1 and "bogus" in p.stderr, p.stderr
    assert "recorded in the rule history as refused, #2" in p.stderr, p.stderr
    assert r.cli("GET", "fraudwatch:rules:version") == "1"
    assert files_in_redis(r) == before_files
    assert sorted(r.cli("KEYS", "fraudwatch:rules:blob:*").split()) == before_blobs
    rec = history(r, 1)[0]
    assert rec["action"] == "refused" and rec["version"] is None and rec["base"] == 1, rec
    assert rec["author"] == "bob" and rec["message"] == "try this"
    assert "zz.json" in rec["reason"] and "bogus" in rec["reason"], rec["reason"]
    assert "zz.json" in [f["name"] for f in rec["files"]]
    # an unreadable directory is refused and recorded too
    p = fw(r, "rules", "push", os.path.join(tmp, "missing"), check=False)
    assert p.returncode == 1
    rec = history(r, 1)[0]
    assert rec["action"] == "refused" and rec["seq"] == 3 and rec["reason"], rec
    text = fw(r, "rules", "history").stdout
    assert "refused" in text and "try this" in text and "bogus" in text, text


def test_show(r, tmp):
    """show VERSION prints the record and the files; --file prints one file's
    contents (a rule file byte for byte, a list sorted)."""
    b = copy_rules(tmp, "B", edit_b)
    fw(r, "rules", "push", RULES, "-m", "base")
    fw(r, "rules", "push", b, "-m", "tighten R101", "--author", "carol")
    out = fw(r, "rules", "show", "2").stdout
    assert "version 2 (history record #2)" in out and "carol" in out, out
    assert "tighten R101" in out and "based on: version 1" in out and "kept whole" in out
    want = sha(open(os.path.join(b, "calls.json"), "rb").read())
    assert f"calls.json" in out and want in out, out
    got = subprocess.run([FW, "rules", "show", "2", "--file", "calls.json", "--redis", r.url],
                         capture_output=True).stdout
    assert got == open(os.path.join(b, "calls.json"), "rb").read()
    got = fw(r, "rules", "show", "1", "--file", "fraud_numbers.list").stdout
    assert got == canonical(os.path.join(RULES, "fraud_numbers.list"))[0]
    assert fw(r, "rules", "show", "active").stdout.startswith("version 2 ")
    p = fw(r, "rules", "show", "7", check=False)
    assert p.returncode == 1 and "no version 7" in p.stderr, p.stderr
    p = fw(r, "rules", "show", "1", "--file", "nope.json", check=False)
    assert p.returncode == 1 and "no file nope.json" in p.stderr


def test_diff(r, tmp):
    """diff A B rule by rule; diff VERSION DIR says what a push would change
    and whether it would be refused."""
    b = copy_rules(tmp, "B", edit_b)
    fw(r, "rules", "push", RULES)
    fw(r, "rules", "push", b)
    out = fw(r, "rules", "diff", "1", "2").stdout.splitlines()
    assert "rule R101 (calls.json): changed: name, threshold" in out, out
    assert "rule R102 (calls.json): removed" in out, out
    assert "rule X1 (calls.json): added" in out, out
    assert "list fraud_numbers: 2 entries added, 0 removed (30 -> 32)" in out or \
        any(x.startswith("list fraud_numbers: 2 entries added, 0 removed") for x in out), out
    assert not any("mule_accounts" in x for x in out), out
    assert out[-1] == ("rules: 1 added, 1 removed, 1 changed; watchlists: 0 added, "
                       "0 removed, 1 changed"), out
    out = fw(r, "rules", "diff", "2", "1").stdout
    assert "rule X1 (calls.json): removed" in out and "rule R102 (calls.json): added" in out
    assert fw(r, "rules", "diff", "1", "1").stdout.splitlines()[-1] == "no differences"
    # VERSION DIR: a moved rule, a new list, a removed list
    c = copy_rules(tmp, "C")
    calls = json.load(open(os.path.join(c, "calls.json")))
    moved = calls["rules"].pop(0)
    json.dump(calls, open(os.path.join(c, "calls.json"), "w"))
    json.dump({"rules": [moved]}, open(os.path.join(c, "more.json"), "w"))
    with open(os.path.join(c, "extra.list"), "w") as f:
        f.write("# comment\n1\n2\n2\n")
    out = fw(r, "rules", "diff", "1", c).stdout.splitlines()
    assert "rule R101 (more.json): changed: moved from calls.json" in out, out
    assert "list extra: added (2 entries)" in out, out
    assert not any(x.startswith("rule R1") and "R101" not in x for x in out), out
    fw(r, "rules", "push", c)
    out = fw(r, "rules", "diff", "active", RULES).stdout.splitlines()
    assert "list extra: removed (2 entries)" in out, out
    assert "rule R101 (calls.json): changed: moved from more.json" in out, out
    # a directory that a push would refuse
    bad = copy_rules(tmp, "bad")
    with open(os.path.join(bad, "zz.json"), "w") as f:
        f.write('{"rules": [{"id": "Z1", "event": "call", "bogus": 1}]}')
    p = fw(r, "rules", "diff", "active", bad, check=False)
    assert p.returncode == 1 and "would be refused" in p.stdout and "bogus" in p.stdout
    assert "rule Z1 (zz.json): added" in p.stdout
    assert r.cli("LLEN", "fraudwatch:rules:history") == "3", "a diff records nothing"


def test_rollback(r, tmp):
    """rollback publishes a NEW version equal to the old one, recorded as a
    rollback; earlier records are never rewritten."""
    b = copy_rules(tmp, "B", edit_b)
    fw(r, "rules", "push", RULES, "-m", "good")
    files1 = files_in_redis(r)
    lists1 = {n: members(r, n) for n in ("fraud_numbers", "mule_accounts")}
    fw(r, "rules", "push", b, "-m", "bad idea")
    assert files_in_redis(r) != files1
    before = raw_history(r)
    p = fw(r, "rules", "rollback", "1", "-m", "R101 too noisy", "--author", "dave")
    assert "as version 3" in p.stdout and "rollback of version 1" in p.stdout, p.stdout
    assert r.cli("GET", "fraudwatch:rules:version") == "3"
    assert files_in_redis(r) == files1
    assert {n: members(r, n) for n in lists1} == lists1
    after = raw_history(r)
    assert after[:len(before)] == before and len(after) == len(before) + 1, "append-only"
    rec = history(r, 1)[0]
    assert rec["action"] == "rollback" and rec["rollback_of"] == 1 and rec["version"] == 3
    assert rec["author"] == "dave" and rec["message"] == "R101 too noisy" and rec["base"] == 2
    one = [x for x in history(r) if x["version"] == 1][0]
    assert [f["sha256"] for f in rec["files"]] == [f["sha256"] for f in one["files"]]
    assert [f["sha256"] for f in rec["lists"]] == [f["sha256"] for f in one["lists"]]
    assert fw(r, "rules", "diff", "1", "3").stdout.splitlines()[-1] == "no differences"
    # default message
    fw(r, "rules", "rollback", "2")
    assert history(r, 1)[0]["message"] == "rollback to version 2"
    text = fw(r, "rules", "history").stdout
    assert "rollback of 1" in text and "rollback of 2" in text, text


def test_trim_and_refusals(r, tmp):
    """Beyond --keep N the oldest versions keep only their record (their
    blobs go when no kept version holds them); a rollback to a trimmed or
    never-recorded version is refused and changes nothing."""
    b = copy_rules(tmp, "B", edit_b)
    fw(r, "rules", "push", RULES)                     # 1 (A)
    fw(r, "rules", "push", b)                         # 2 (B)
    fw(r, "rules", "push", RULES, "--keep", "2")      # 3 (A): 1 trimmed
    assert r.cli("GET", "fraudwatch:rules:history:keep") == "2"
    assert sorted(r.cli("HKEYS", "fraudwatch:rules:history:kept").split()) == ["2", "3"]
    fw(r, "rules", "push", RULES)                     # 4 (A): 2 trimmed, B's blobs gone
    assert sorted(r.cli("HKEYS", "fraudwatch:rules:history:kept").split()) == ["3", "4"]
    a_files = history(r, 1)[0]
    want = {f["sha256"] for f in a_files["files"] + a_files["lists"]}
    blobs = {k.split(":")[-1] for k in r.cli("KEYS", "fraudwatch:rules:blob:*").split()}
    assert blobs == want, (blobs, want)
    kept = {x["version"]: x["kept"] for x in history(r) if x["version"]}
    assert kept == {1: False, 2: False, 3: True, 4: True}, kept
    state = (r.cli("GET", "fraudwatch:rules:version"), r.cli("LLEN", "fraudwatch:rules:history"),
             files_in_redis(r))
    p = fw(r, "rules", "rollback", "2", check=False)
    assert p.returncode == 1 and "version 2 was not kept" in p.stderr, p.stderr
    assert "last 2 versions" in p.stderr and "nothing was changed" in p.stderr
    p = fw(r, "rules", "rollback", "9", check=False)
    assert p.returncode == 1 and "no version 9" in p.stderr, p.stderr
    p = fw(r, "rules", "show", "9", check=False)
    assert p.returncode == 1 and "no version 9" in p.stderr, p.stderr
    for cmd in (["show"], ["rollback", "3", "4"]):
        p = fw(r, "rules", *cmd, check=False)
        assert p.returncode == 2 and "expected one VERSION" in p.stderr, (cmd, p.stderr)
    p = fw(r, "rules", "diff", "2", "4", check=False)
    assert p.returncode == 1 and "not kept" in p.stderr
    out = fw(r, "rules", "show", "2").stdout
    assert "trimmed" in out and "calls.json" in out, "the record remains"
    assert (r.cli("GET", "fraudwatch:rules:version"), r.cli("LLEN", "fraudwatch:rules:history"),
            files_in_redis(r)) == state
    # a version pushed before history was recorded: never kept
    for k in ("fraudwatch:rules:history", "fraudwatch:rules:history:index",
              "fraudwatch:rules:history:kept"):
        r.cli("DEL", k)
    p = fw(r, "rules", "rollback", "3", check=False)
    assert p.returncode == 1 and "never kept" in p.stderr, p.stderr
    assert r.cli("GET", "fraudwatch:rules:version") == state[0]
    p = fw(r, "rules", "push", RULES, "--keep", "0", check=False)
    assert p.returncode == 2 and "--keep must be 1..100000" in p.stderr


def test_big_list_by_hash(r, tmp):
    """A list of more than 100000 entries is kept by hash only: rollback uses
    the live list when it is still the same, and is refused (nothing
    changed) once it differs."""
    big = copy_rules(tmp, "big")
    with open(os.path.join(big, "fraud_numbers.list"), "a") as f:
        f.writelines(f"1{i:010d}\n" for i in range(100001))
    fw(r, "rules", "push", big, "-m", "big")            # 1
    rec = history(r, 1)[0]
    fl = [x for x in rec["lists"] if x["name"] == "fraud_numbers"][0]
    assert fl["kept"] is False and fl["entries"] == 100031, fl
    assert r.cli("EXISTS", "fraudwatch:rules:blob:" + fl["sha256"]) == "0"
    out = fw(r, "rules", "show", "1").stdout
    assert "kept by hash only" in out
    fw(r, "rules", "push", copy_rules(tmp, "small"))    # 2 (drops the big entries)
    p = fw(r, "rules", "rollback", "1", check=False)
    assert p.returncode == 1 and "kept by hash only" in p.stderr, p.stderr
    assert "lists load fraud_numbers" in p.stderr and r.cli("GET", "fraudwatch:rules:version") == "2"
    fw(r, "lists", "load", "fraud_numbers", os.path.join(big, "fraud_numbers.list"))
    p = fw(r, "rules", "rollback", "1")
    assert "as version 3" in p.stdout, p.stdout
    assert r.cli("SCARD", "fraudwatch:list:fraud_numbers") == "100031"
    assert history(r, 1)[0]["lists"][0]["sha256"] == fl["sha256"]


def test_concurrent_pushes(r, tmp):
    """Pushes at once: every version has exactly one record, in order."""
    b = copy_rules(tmp, "B", edit_b)
    threads = [threading.Thread(target=fw, args=(r, "rules", "push", RULES if i % 2 else b,
                                                  "-m", f"p{i}")) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h = list(reversed(history(r)))
    assert [x["version"] for x in h] == [1, 2, 3, 4, 5, 6], h
    assert sorted(x["message"] for x in h) == [f"p{i}" for i in range(6)]
    for x in h:
        assert r.cli("HGET", "fraudwatch:rules:history:index", str(x["version"])) == \
            str(x["seq"] - 1)
    assert all(x["base"] == x["version"] - 1 for x in h)


def test_help(r, tmp):
    """Every subcommand answers --help truthfully; bad use is exit 2."""
    for sub, words in (("push", ["--author", "--keep", "-m, --message", "refused"]),
                       ("history", ["--limit", "--json"]),
                       ("show", ["--file", "active"]),
                       ("diff", ["VERSION DIR", "added", "removed"]),
                       ("rollback", ["NEW version", "trimmed", "-m, --message"])):
        p = subprocess.run([FW, "rules", sub, "--help"], capture_output=True, text=True)
        assert p.returncode == 0, (sub, p.stderr)
        for w in words:
            assert w in p.stdout, (sub, w)
    p = subprocess.run([FW, "rules", "--help"], capture_output=True, text=True)
    for sub in ("history", "show", "diff", "rollback"):
        assert f"fraudwatch rules {sub}" in p.stdout, sub
    assert fw(r, "rules", "history", "--keep", "3", check=False).returncode == 2
    assert fw(r, "rules", "diff", "1", check=False).returncode == 2
    p = fw(r, "rules", "rollback", "x", check=False)
    assert p.returncode == 1 and "not a version" in p.stderr


def operator_acl():
    """The `ACL SETUSER fw-operator ...` command of docs/redis.md, as words."""
    text = open(os.path.join(ROOT, "docs", "redis.md")).read()
    start = text.index("ACL SETUSER fw-operator")
    cmd, line_end = "", start
    while True:
        line_end = text.index("\n", start)
        line = text[start:line_end]
        cmd += line.rstrip("\\") + " "
        if not line.endswith("\\"):
            break
        start = line_end + 1
    return cmd.replace(">PASSWORD", ">pw").split()


def test_operator_acl(r, tmp):
    """Every history command works as the operator user of docs/redis.md
    (least privilege), a refused push is recorded too."""
    words = operator_acl()
    assert "+llen" in words and "+set" in words, words
    assert r.cli(*words[:]) == "OK", r.cli(*words)
    op = type("Op", (), {"url": f"redis://fw-operator@127.0.0.1:{r.port}"})()
    env = dict(os.environ, FRAUDWATCH_REDIS_PASSWORD="pw")

    def run(*args, ok=True):
        p = subprocess.run([FW, *args, "--redis", op.url], capture_output=True, text=True,
                           env=env, timeout=60)
        assert (p.returncode == 0) == ok, f"{args}: {p.returncode}\n{p.stdout}\n{p.stderr}"
        assert "NOPERM" not in p.stderr, p.stderr
        return p
    b = copy_rules(tmp, "B", edit_b)
    run("rules", "push", RULES, "-m", "a")
    run("rules", "push", b, "-m", "b", "--keep", "1")     # trims version 1: HDEL, UNLINK
    bad = copy_rules(tmp, "bad")
    with open(os.path.join(bad, "zz.json"), "w") as f:
        f.write("{")
    run("rules", "push", bad, ok=False)
    run("rules", "push", RULES, "--keep", "5")
    run("rules", "history")
    run("rules", "show", "2")
    run("rules", "show", "2", "--file", "calls.json")
    run("rules", "diff", "2", "3")
    run("rules", "diff", "2", RULES)
    run("rules", "rollback", "2")
    p = run("rules", "rollback", "1", ok=False)
    assert "was not kept" in p.stderr, p.stderr
    assert [x["action"] for x in history(r)] == ["rollback", "push", "refused", "push", "push"]


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]


def main():
    if not shutil.which("redis-server"):
        print("redis-server not installed: skipped")
        return 77
    want = sys.argv[3:]
    passed = failed = 0
    for t in TESTS:
        if want and t.__name__ not in want:
            continue
        tmp = tempfile.mkdtemp(prefix="fw-history-")
        try:
            r = Redis()
        except FixtureError as e:
            print(f"fixture: {e}")
            return 77
        try:
            t(r, tmp)
            print(f"PASS {t.__name__}")
            passed += 1
        except Exception:
            print(f"FAIL {t.__name__}\n{traceback.format_exc()}")
            failed += 1
        finally:
            r.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
