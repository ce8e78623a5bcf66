#!/usr/bin/env python3
"""End-to-end tests of `fraudwatch console` (issue 14, SPEC §6) against the
real broker of scripts/test.sh (FW_KAFKA_PORT) and a redis-server of the
test's own with AOF on.

What is checked, each against the test's own bookkeeping: alerts produced
to the topic land in the queues of the units the routes name; garbage and
shadow alerts are skipped; a second console (another group, re-reading the
topic) adds and resets nothing; a console killed with SIGKILL and restarted,
and a Redis stopped (alerts produced meanwhile) and restarted, lose nothing;
the state machine, outcomes, amounts and role rules (officers see only their
unit: 403); CSRF; bad input answers 4xx and changes nothing; audit entries;
stats totals equal a count made here; the SSE stream.

usage: test_console.py FRAUDWATCH SOURCE_ROOT
Exit 77 (skipped) without a broker.  Ends with "N passed, N failed"."""
import collections
import hashlib
import hmac
import http.client
import http.server
import json
import subprocess
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console_env as ce  # noqa: E402
import fwtest  # noqa: E402

N = int(os.environ.get("FW_CONSOLE_TEST_ALERTS", "3000"))


class Env:
    pass


def setup(fw, root):
    e = Env()
    e.fw, e.root = fw, root
    e.tmp = tempfile.mkdtemp(prefix="fw-console-")
    kafka = fwtest.Kafka.from_env()
    e.brokers = kafka.addr
    e.topic = f"console-test-{os.getpid()}"
    kafka.topic(e.topic, partitions=3)
    e.redis = ce.RedisAOF(e.tmp)
    ce.load_routes(fw, e.redis.url, e.tmp)
    ce.push_rules(fw, e.redis.url, root)
    e.pw = {}
    for name, role, unit in [("admin", "admin", None), ("disp", "dispatcher", None),
                             ("offa", "officer", "station-a"), ("offa2", "officer", "station-a"),
                             ("offb", "officer", "station-b")]:
        e.pw[name] = ce.add_user(fw, e.redis.url, name, role, unit)
    r = ce.rng()
    e.alerts = [ce.make_alert(i, r) for i in range(N)]
    # one of each hostile kind: garbage, a shadow alert, a snoozed one, an HTML payload
    e.alerts[7]["fields"]["caller"] = '"><img src=x onerror=alert(1)>'
    e.alerts[7]["description"] = "<script>alert(1)</script>"
    extra = [b"not json at all", b'{"alert_id": 5}',
             json.dumps(ce.make_alert(N + 1, r, shadow=True)).encode(),
             json.dumps(ce.make_alert(N + 2, r, snoozed=True)).encode()]
    ce.produce(e.brokers, e.topic, e.alerts[: N // 2] + extra + e.alerts[N // 2:])
    e.console = ce.Console(fw, root, e.tmp, e.redis.url, e.brokers, e.topic, extra=[
        "--set", "console.webhook_attempts=3", "--set", "console.webhook_backoff_ms=100",
        "--set", "console.webhook_timeout_ms=2000"])
    ok = ce.wait_for(lambda: e.redis.cli("ZCARD", "fw:con:idx:all") == str(N), timeout=180)
    assert ok, f"stored {e.redis.cli('ZCARD', 'fw:con:idx:all')} of {N}\n{e.console.log()[-3000:]}"
    return e


def client(e, user):
    c = ce.Client(e.console.base)
    st, b = c.login(user, e.pw[user])
    assert st == 200, (st, b)
    return c


def test_routing_and_queues(e):
    want = collections.Counter(ce.unit_of(a) for a in e.alerts)
    assert len(want) == 4, want
    admin = client(e, "admin")
    for unit, n in want.items():
        got = admin.all(f"unit={unit}")
        assert len(got) == n, (unit, len(got), n)
        assert all(a["unit"] == unit and a["state"] == "new" for a in got)
    everything = admin.all()
    assert len(everything) == len(e.alerts) and len({a["alert_id"] for a in everything}) == N
    # newest first
    ts = [a["detected_ts"] for a in everything]
    assert ts == sorted(ts, reverse=True)
    log = e.console.log()
    assert "not an alert; skipped" in log and 'reason="not JSON"' in log, log[-2000:]


def test_search(e):
    admin = client(e, "admin")
    a = e.alerts[123]
    for q in (a["fields"]["payee_account"], a["alert_id"]):
        got = admin.all("q=" + q)
        assert [x["alert_id"] for x in got] == [a["alert_id"]], (q, got)
    subj = a["subject"]
    want = sorted(x["alert_id"] for x in e.alerts
                  if subj in (x["subject"], x["fields"]["callee"], x["fields"]["payee_account"]))
    assert sorted(x["alert_id"] for x in admin.all("q=" + subj)) == want
    # filters combine
    got = admin.all("severity=critical&rule=R301&unit=station-a")
    want = [x for x in e.alerts if x["severity"] == "critical" and x["rule_id"] == "R301"
            and ce.unit_of(x) == "station-a"]
    assert len(got) == len(want)
    since, until = e.alerts[100]["detected_ts"], e.alerts[199]["detected_ts"]
    assert len(admin.all(f"since={since}&until={until}")) == 100
    # a term nearly every alert has: all of them, newest first, page after
    # page (the cursor), and the time bounds kept inclusive
    shared = "17000000000"
    newest = sorted(e.alerts, key=lambda x: -x["detected_ts"])
    want = [x["alert_id"] for x in newest if x["fields"]["caller"] == shared]
    assert len(want) > N // 2
    assert [x["alert_id"] for x in admin.all("q=" + shared)] == want
    want = [x["alert_id"] for x in newest
            if x["fields"]["caller"] == shared and since <= x["detected_ts"] <= until]
    assert [x["alert_id"] for x in admin.all(f"q={shared}&since={since}&until={until}")] == want
    st, b = admin.get(f"/api/alerts?q={shared}&limit=7")
    assert st == 200 and [x["alert_id"] for x in b["alerts"]] == [
        x["alert_id"] for x in newest if x["fields"]["caller"] == shared][:7], b
    # a term no alert has, and the prefix of a term (terms match whole)
    assert admin.all("q=17000000001") == []
    assert admin.all("q=1700000000") == []


def test_roles(e):
    a_id = next(x["alert_id"] for x in e.alerts if ce.unit_of(x) == "station-a")
    b_id = next(x["alert_id"] for x in e.alerts if ce.unit_of(x) == "station-b")
    offa, offb = client(e, "offa"), client(e, "offb")
    assert offa.get("/api/alerts/" + a_id)[0] == 200
    assert offa.get("/api/alerts/" + b_id)[0] == 403
    assert offb.get("/api/alerts/" + a_id)[0] == 403
    assert offa.get("/api/alerts?unit=station-b")[0] == 403
    assert offa.get("/api/stats?unit=station-b")[0] == 403
    mine = offa.all()
    assert mine and all(x["unit"] == "station-a" for x in mine)
    assert offb.post(f"/api/alerts/{a_id}/transition", {"to": "assigned"})[0] == 403
    # an officer assigns only themself; not to an officer of another unit
    assert offa.post(f"/api/alerts/{a_id}/transition", {"to": "assigned", "assignee": "offa2"})[0] == 403
    disp = client(e, "disp")
    st, b = disp.post(f"/api/alerts/{a_id}/transition", {"to": "assigned", "assignee": "offb"})
    assert st == 400 and "another unit" in b["error"], b
    st, b = disp.post(f"/api/alerts/{a_id}/transition", {"to": "assigned", "assignee": "offa2"})
    assert st == 200 and b["assignee"] == "offa2" and b["state"] == "assigned", b
    # not logged in, wrong password, CSRF
    anon = ce.Client(e.console.base)
    assert anon.get("/api/alerts")[0] == 401
    assert anon.login("offa", "wrong-password")[0] == 401
    c = client(e, "offa")
    c.csrf = "0" * 64
    assert c.post(f"/api/alerts/{a_id}/transition", {"attempt": "call", "result": "busy"})[0] == 403
    c.csrf = None
    assert c.post(f"/api/alerts/{a_id}/transition", {"attempt": "call", "result": "busy"})[0] == 403


def hist_len(e, aid):
    return int(e.redis.cli("LLEN", f"fw:con:hist:{aid}"))


def test_transitions_and_bad_input(e):
    a = [x for x in e.alerts if ce.unit_of(x) == "station-a"][5]
    aid = a["alert_id"]
    off = client(e, "offa")
    before = hist_len(e, aid)
    bad = [
        ({"to": "closed"}, 400),                                    # no outcome
        ({"to": "contacted"}, 409),                                 # new -> contacted
        ({"to": "closed", "outcome": "dissuaded"}, 400),            # no amount
        ({"to": "closed", "outcome": "dissuaded", "amount": -1}, 400),
        ({"to": "closed", "outcome": "dissuaded", "amount": "5"}, 400),
        ({"to": "closed", "outcome": "false_alarm", "amount": 5}, 400),
        ({"to": "closed", "outcome": "maybe"}, 400),
        ({"to": "new"}, 400),
        ({"to": "assigned", "color": "red"}, 400),
        ({"attempt": "call", "result": "no_answer"}, 409),          # not assigned yet
        ({"attempt": "fax", "result": "no_answer"}, 400),
        ({"to": "assigned", "assignee": "nobody"}, 400),
        ({"to": "assigned", "note": "x" * 3000}, 400),
    ]
    for body, code in bad:
        st, b = off.post(f"/api/alerts/{aid}/transition", body)
        assert st == code, (body, st, b)
        assert "error" in b
    for raw in (b"{", b"[]", b'{"to": "assigned"} trailing', b"\xff\xfe"):
        assert off.req("POST", f"/api/alerts/{aid}/transition", raw=raw)[0] == 400, raw
    assert off.req("POST", f"/api/alerts/{aid}/transition", raw=b"{}", headers={
        "Content-Type": "text/plain"})[0] == 415
    big = json.dumps({"to": "assigned", "note": "x" * 70000}).encode()
    assert off.req("POST", f"/api/alerts/{aid}/transition", raw=big)[0] == 413
    assert off.post("/api/alerts/nope/transition", {"to": "assigned"})[0] == 404
    assert off.get("/api/alerts/nope")[0] == 404
    assert off.get("/api/alerts?state=bogus")[0] == 400
    assert off.get("/api/alerts?limit=100000")[0] == 400
    assert hist_len(e, aid) == before, "a refused request changed the history"
    _, item = off.get(f"/api/alerts/{aid}")
    assert item["state"] == "new"

    steps = [({"to": "assigned"}, "assigned"),
             ({"attempt": "call", "result": "no_answer", "note": '<script>alert("n")</script>'}, "assigned"),
             ({"attempt": "sms", "result": "sent"}, "assigned"),
             ({"to": "contacted", "note": "reached by phone"}, "contacted"),
             ({"to": "closed", "outcome": "dissuaded", "amount": 48000.5, "note": "stopped"}, "closed")]
    for body, state in steps:
        st, b = off.post(f"/api/alerts/{aid}/transition", body)
        assert st == 200 and b["state"] == state, (body, st, b)
    h = b["history"]
    assert [x["to"] for x in h] == ["new", "assigned", "assigned", "assigned", "contacted", "closed"]
    assert all(x["user"] == "offa" for x in h[1:]) and all("ts" in x for x in h)
    assert h[2]["attempt"] == "call" and h[2]["note"] == '<script>alert("n")</script>'
    assert h[-1]["outcome"] == "dissuaded" and h[-1]["amount"] == 48000.5
    assert b["attempts"] == 2 and b["amount"] == 48000.5
    # closed: only an admin reopens
    assert off.post(f"/api/alerts/{aid}/transition", {"to": "assigned"})[0] == 403
    admin = client(e, "admin")
    st, b = admin.post(f"/api/alerts/{aid}/transition", {"to": "assigned", "assignee": "offa"})
    assert st == 200 and b["state"] == "assigned" and "outcome" not in b
    st, b = off.post(f"/api/alerts/{aid}/transition", {"to": "closed", "outcome": "lost", "amount": 1000})
    assert st == 200 and b["outcome"] == "lost"
    e.closed = {aid: ("lost", 1000.0)}

    # escalation moves the alert to another unit's queue
    a2 = [x for x in e.alerts if ce.unit_of(x) == "station-a"][6]["alert_id"]
    assert off.post(f"/api/alerts/{a2}/transition", {"to": "assigned"})[0] == 200
    st, b = off.post(f"/api/alerts/{a2}/transition", {"to": "escalated", "unit": "station-b",
                                                      "note": "visit in person"})
    assert st == 200 and b["unit"] == "station-b" and b["state"] == "escalated", b
    assert off.get(f"/api/alerts/{a2}")[0] == 403
    offb = client(e, "offb")
    assert a2 in [x["alert_id"] for x in offb.all("state=escalated")]
    st, b = offb.post(f"/api/alerts/{a2}/transition", {"to": "contacted"})
    assert st == 200
    st, b = offb.post(f"/api/alerts/{a2}/transition", {"to": "closed", "outcome": "false_alarm"})
    assert st == 200
    e.closed[a2] = ("false_alarm", 0.0)
    e.escalations = 1


def test_snooze_and_audit(e):
    a = [x for x in e.alerts if ce.unit_of(x) == "station-a"][8]
    off = client(e, "offa")
    until = int(time.time() * 1000) + 3600_000
    st, b = off.post("/api/snoozes", {"rule": a["rule_id"], "subject": a["subject"], "until": until,
                                      "reason": "family member, known", "alert_id": a["alert_id"]})
    assert st == 200, b
    # Stored where the daemons read snoozes (rstore_snooze.c), by the same code.
    v = json.loads(e.redis.cli("HGET", "fraudwatch:snoozes", f"{a['rule_id']}\t{a['subject']}"))
    assert (v["until"], v["reason"], v["by"]) == (until, "family member, known", "offa"), v
    log = e.redis.cli("LRANGE", "fraudwatch:snoozes:log", 0, -1).splitlines()
    assert len(log) == 1 and json.loads(log[0])["by"] == "offa", log
    # A rule the active set does not have: refused, nothing stored.
    st, b = off.post("/api/snoozes", {"rule": "R999", "subject": "x", "until": until,
                                      "reason": "r"})
    assert st == 400 and "R999" in b.get("error", str(b)), (st, b)
    assert off.post("/api/snoozes", {"rule": "R1", "subject": "x", "until": 5})[0] == 400
    assert off.post("/api/snoozes", {"rule": "R1", "subject": "a\tb", "until": until})[0] == 400
    b_id = next(x["alert_id"] for x in e.alerts if ce.unit_of(x) == "station-b")
    assert off.post("/api/snoozes", {"rule": "*", "subject": "x", "until": until,
                                     "alert_id": b_id})[0] == 403
    _, item = off.get(f"/api/alerts/{a['alert_id']}")
    assert item["history"][-1]["snooze"]["until"] == until
    audit = [json.loads(x) for x in e.redis.cli("LRANGE", "fw:con:audit", 0, -1).splitlines()]
    actions = collections.Counter(x["action"] for x in audit)
    assert actions["login"] >= 5 and actions["login_failed"] >= 1, actions
    assert actions["transition"] >= 10 and actions["snooze"] == 1, actions
    assert all("ts" in x and "user" in x for x in audit)


def test_login_rate_limit(e):
    c = ce.Client(e.console.base)
    codes = [c.login("offb", "nope-nope")[0] for _ in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429], codes
    # the right password is refused too while locked out
    assert c.login("offb", e.pw["offb"])[0] == 429
    e.redis.cli("DEL", "fw:con:rl:u:offb", "fw:con:rl:a:127.0.0.1")


def test_disabled_user(e):
    c = client(e, "offa2")
    assert c.get("/api/alerts?limit=1")[0] == 200
    p = __import__("subprocess").run([e.fw, "console", "user", "disable", "offa2", "--redis",
                                      e.redis.url], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert c.get("/api/alerts?limit=1")[0] == 401
    assert ce.Client(e.console.base).login("offa2", e.pw["offa2"])[0] == 401


def test_rereading_adds_nothing(e):
    """A second console in another group reads the whole topic again and
    adds nothing.  It runs with the cooperative-sticky assignor (the
    daemon's; allowed for the console too), and stops with status 0."""
    states = e.redis.cli("HGET", f"fw:con:alert:{next(iter(e.closed))}", "state")
    second = ce.Console(e.fw, e.root, e.tmp, e.redis.url, e.brokers, e.topic, group="console-other",
                        extra=["--set",
                               "kafka.consumer.partition.assignment.strategy=cooperative-sticky"])
    stopped = False
    try:
        ce.wait_for(lambda: "routes loaded" in second.log(), timeout=30)
        # It reads the whole topic again: every alert is found already stored.
        again = "fraudwatch_console_alerts_already_stored_total"
        assert ce.wait_for(lambda: metric_or_0(second.base, again) >= len(e.alerts), 120, 0.5), \
            (metric_or_0(second.base, again), second.log()[-2000:])
        assert metrics_at(second.base).get("fraudwatch_console_alerts_stored_total", 0) == 0
        assert e.redis.cli("ZCARD", "fw:con:idx:all") == str(len(e.alerts))
        assert e.redis.cli("HGET", f"fw:con:alert:{next(iter(e.closed))}", "state") == states
        assert e.redis.cli("HGET", "fw:con:stats:all", "total") == str(len(e.alerts))
        stopped = True
        assert second.stop() == 0, second.log()[-2000:]
    finally:
        if not stopped:
            second.stop()


def test_console_and_redis_restart(e):
    n0 = len(e.alerts)
    r = ce.rng(99)
    e.console.stop(signal.SIGKILL)
    more = [ce.make_alert(N + 100 + i, r) for i in range(200)]
    ce.produce(e.brokers, e.topic, more[:100])
    e.console.start()
    assert ce.wait_for(lambda: e.redis.cli("ZCARD", "fw:con:idx:all") == str(n0 + 100), 120), \
        e.redis.cli("ZCARD", "fw:con:idx:all")
    # Redis down: the API says 503, nothing is lost, the console catches up
    e.redis.stop()
    c = ce.Client(e.console.base)
    assert c.login("admin", e.pw["admin"])[0] == 503
    ce.produce(e.brokers, e.topic, more[100:])
    time.sleep(3)
    e.redis.start()
    assert ce.wait_for(lambda: e.redis.cli("ZCARD", "fw:con:idx:all") == str(n0 + 200), 120), \
        e.redis.cli("ZCARD", "fw:con:idx:all") + e.console.log()[-3000:]
    for aid, (oc, _) in e.closed.items():
        assert e.redis.cli("HGET", f"fw:con:alert:{aid}", "outcome") == oc
    e.alerts += more
    admin = client(e, "admin")
    assert len(admin.all()) == len(e.alerts)


def test_stats_equal_own_count(e):
    admin = client(e, "admin")
    st, s = admin.get("/api/stats")
    assert st == 200
    assert s["total"] == len(e.alerts)
    by_day = collections.Counter()
    for a in e.alerts:
        by_day[(time.strftime("%Y-%m-%d", time.gmtime(a["detected_ts"] // 1000)), a["severity"])] += 1
    for d in s["by_day"]:
        for sev in ce.SEVERITIES:
            assert d[sev] == by_day[(d["day"], sev)], (d, sev)
    assert sum(d[sev] for d in s["by_day"] for sev in ce.SEVERITIES) == len(e.alerts)
    by_unit = collections.Counter(ce.unit_of(a) for a in e.alerts)
    assert s["by_unit"] == dict(by_unit), (s["by_unit"], by_unit)
    oc = collections.Counter(v[0] for v in e.closed.values())
    for k in ("dissuaded", "unreachable", "lost", "false_alarm", "duplicate"):
        assert s["by_outcome"][k] == oc[k], (k, s["by_outcome"])
    assert s["amount_lost"] == sum(v[1] for v in e.closed.values() if v[0] == "lost")
    assert s["amount_protected"] == 0     # the dissuaded one was reopened and closed as lost
    assert s["escalations"] == e.escalations
    rules = collections.Counter(a["rule_id"] for a in e.alerts)
    for r, n in rules.items():
        assert s["by_rule"][r]["alerts"] == n
    fa_rule = next(a["rule_id"] for a in e.alerts if a["alert_id"] in e.closed
                   and e.closed[a["alert_id"]][0] == "false_alarm")
    closed_r = [a for a in e.alerts if a["alert_id"] in e.closed and a["rule_id"] == fa_rule]
    fa = [a for a in closed_r if e.closed[a["alert_id"]][0] == "false_alarm"]
    assert abs(s["by_rule"][fa_rule]["false_alarm_rate"] - len(fa) / len(closed_r)) < 1e-9
    assert s["time_to_first_contact_ms"]["count"] == 2
    off = client(e, "offa")
    st, s2 = off.get("/api/stats")
    assert st == 200 and s2["unit"] == "station-a" and s2["total"] == by_unit["station-a"]


def test_stream(e):
    off = client(e, "offa")
    cookie = "; ".join(f"{c.name}={c.value}" for c in off.jar)
    got = []
    req = urllib.request.Request(e.console.base + "/api/stream", headers={"Cookie": cookie})
    resp = urllib.request.urlopen(req, timeout=30)

    def reader():
        try:
            for line in resp:
                if line.startswith(b"data: {\"alert_id"):
                    got.append(json.loads(line[6:]))
        except Exception:
            pass
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(1.5)
    r = ce.rng(7)
    mine = ce.make_alert(10**6, r, subject="13800001111", fields={"callee": "13800001111"})
    other = ce.make_alert(10**6 + 1, r, subject="13900002222", fields={"callee": "13900002222"})
    ce.produce(e.brokers, e.topic, [other, mine])
    assert ce.wait_for(lambda: any(x["alert_id"] == mine["alert_id"] for x in got), 30), got
    time.sleep(1)
    assert all(x["unit"] == "station-a" for x in got), got
    resp.close()
    e.alerts += [mine, other]


def test_oversized_headers(e):
    s = socket.create_connection(("127.0.0.1", e.console.port), timeout=10)
    s.sendall(b"GET /api/alerts HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    assert data.startswith(b"HTTP/1.1 431") or data.startswith(b"HTTP/1.1 413") or data == b"", data[:100]


def test_check_config(e):
    import subprocess
    p = subprocess.run([e.fw, "console", "--set", "console.listen=0.0.0.0:80", "--check-config"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "console.listen" in p.stderr, p.stderr
    p = subprocess.run([e.fw, "console", "--set", "console.retention_dayz=3", "--check-config"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and 'did you mean "console.retention_days"' in p.stderr, p.stderr
    p = subprocess.run([e.fw, "console", "--set", "kafka.consumer.enable.auto.commit=true",
                        "--check-config"], capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    p = subprocess.run([e.fw, "console", "--set", "console.redis=redis://u:s3cretpw@h:1",
                        "--check-config"], capture_output=True, text=True)
    assert p.returncode == 0 and "s3cretpw" not in p.stdout, p.stdout


def test_tls(e):
    """console.tls_cert_file / tls_key_file: the page and the API over HTTPS
    (the session cookie Secure), plain HTTP refused on that port; off the
    loopback only with TLS; one file without the other refused."""
    import ssl
    cert, key = os.path.join(e.tmp, "cert.pem"), os.path.join(e.tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(key, 0o600)

    def check(*sets):
        args = [e.fw, "console", "-c", os.path.join(e.root, "config", "console.conf"),
                "--check-config"]
        for kv in sets:
            args += ["--set", kv]
        return subprocess.run(args, capture_output=True, text=True)
    p = check("console.listen=0.0.0.0:8443")
    assert p.returncode == 1 and "no TLS" in p.stderr and "console.tls_cert_file" in p.stderr, \
        p.stderr
    p = check("console.listen=0.0.0.0:8443", f"console.tls_cert_file={cert}",
              f"console.tls_key_file={key}")
    assert p.returncode == 0, p.stderr
    p = check(f"console.tls_cert_file={cert}")
    assert p.returncode == 1 and "go together" in p.stderr, p.stderr
    os.chmod(key, 0o644)
    p = check(f"console.tls_cert_file={cert}", f"console.tls_key_file={key}")
    assert p.returncode == 1 and "console.tls_key_file" in p.stderr, p.stderr
    os.chmod(key, 0o600)

    con = ce.Console(e.fw, e.root, e.tmp, e.redis.url, e.brokers, e.topic, group="console-tls",
                     extra=["--set", f"console.tls_cert_file={cert}",
                            "--set", f"console.tls_key_file={key}"], scheme="https", cafile=cert)
    try:
        ctx = ssl.create_default_context(cafile=cert)
        c = http.client.HTTPSConnection("127.0.0.1", con.port, context=ctx, timeout=10)
        c.request("POST", "/api/login", body=json.dumps({"user": "admin",
                                                          "password": e.pw["admin"]}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        cookie = r.getheader("Set-Cookie")
        assert r.status == 200 and "; Secure" in cookie and "HttpOnly" in cookie, cookie
        c.request("GET", "/api/alerts?limit=3", headers={"Cookie": cookie.split(";")[0]})
        r = c.getresponse()
        assert r.status == 200 and len(json.loads(r.read())["alerts"]) == 3
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200 and b"<html" in r.read().lower()
        # plain HTTP on the TLS port: no page, no API
        plain = http.client.HTTPConnection("127.0.0.1", con.port, timeout=10)
        try:
            plain.request("GET", "/api/alerts")
            status = plain.getresponse().status
        except (OSError, http.client.HTTPException):
            status = None
        assert status in (None, 400), status
        # the plain console's cookie is not Secure
        st, _ = ce.Client(e.console.base).login("admin", e.pw["admin"])
        assert st == 200
    finally:
        con.stop()


SECRET = "s3cret-signing-key-for-tests"


def test_webhooks(e):
    got, lock = [], threading.Lock()
    fails = {"n": 2}    # the first two requests fail: retries

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts = self.headers["X-Fraudwatch-Timestamp"]
            want = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(want, self.headers["X-Fraudwatch-Signature"] or "")
            with lock:
                if fails["n"] > 0:
                    fails["n"] -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                got.append((ok, self.headers["X-Fraudwatch-Unit"], json.loads(body), int(ts)))
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    dead = fwtest.free_port()
    for unit, url in (("station-hk", f"http://127.0.0.1:{srv.server_port}/hook"),
                      ("default", f"http://127.0.0.1:{dead}/hook")):
        p = subprocess.run([e.fw, "console", "webhook", "set", unit, url, "--redis", e.redis.url],
                           input=SECRET + "\n", capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    p = subprocess.run([e.fw, "console", "webhook", "list", "--redis", e.redis.url],
                       capture_output=True, text=True)
    assert "station-hk\thttp://127.0.0.1:" in p.stdout and SECRET not in p.stdout, p.stdout
    r = ce.rng(11)
    hk = [ce.make_alert(2 * 10**6 + i, r, subject=f"0085{i:08d}", fields={"callee": "1501"})
          for i in range(3)]
    dflt = [ce.make_alert(3 * 10**6 + i, r, subject=f"1501{i:07d}", fields={"callee": "1501"})
            for i in range(2)]
    ce.produce(e.brokers, e.topic, hk + dflt)
    e.alerts += hk + dflt
    try:
        assert ce.wait_for(lambda: len(got) >= 3, 60), got
        time.sleep(1)
        assert sorted(g[2]["alert_id"] for g in got) == sorted(a["alert_id"] for a in hk), got
        assert all(g[0] and g[1] == "station-hk" for g in got), got
        assert all(abs(g[3] - time.time() * 1000) < 120000 for g in got)

        def hist_webhook(aid):
            return [json.loads(x).get("webhook") for x in
                    e.redis.cli("LRANGE", f"fw:con:hist:{aid}", 0, -1).splitlines()
                    if "webhook" in x]
        for a in hk:
            w = ce.wait_for(lambda: hist_webhook(a["alert_id"]), 30)
            assert w and w[0]["result"] == "delivered" and w[0]["http"] == 200, w
        # two 500s came first: some alert needed retries
        assert max(hist_webhook(a["alert_id"])[0]["attempts"] for a in hk) >= 2
        for a in dflt:
            w = ce.wait_for(lambda: hist_webhook(a["alert_id"]), 60)
            assert w and w[0]["result"] == "failed" and w[0]["attempts"] == 3, w
            assert "onnect" in w[0]["error"], w
        admin = client(e, "admin")
        _, item = admin.get("/api/alerts/" + dflt[0]["alert_id"])
        assert item["history"][-1]["webhook"]["result"] == "failed"
        assert e.redis.cli("ZCARD", "fw:con:hookq") == "0"
    finally:
        srv.shutdown()


def metrics(e):
    return metrics_at(e.console.base)


def metric_or_0(base, name):
    """One metric of a console, 0 while it is absent or not served yet."""
    try:
        return metrics_at(base).get(name, 0)
    except OSError:
        return 0


def metrics_at(base):
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    return vals


def test_metrics(e):
    # everything produced is stored: the lag gauge (refreshed every 2 s) gets to 0
    ce.wait_for(lambda: metrics(e)["fraudwatch_console_lag_messages"] == 0, 60, 0.5)
    vals = metrics(e)
    # this process's lifetime: stored since the last restart, never more than all
    assert 0 < vals["fraudwatch_console_alerts_stored_total"] <= len(e.alerts), vals
    assert vals['fraudwatch_console_messages_skipped_total{reason="not_an_alert"}'] >= 0
    assert vals["fraudwatch_console_lag_messages"] == 0, vals
    assert vals['fraudwatch_console_http_requests_total{route="/api/login",status="200"}'] >= 1
    assert "fraudwatch_console_sse_clients" in vals
    assert vals['fraudwatch_console_webhook_deliveries_total{result="delivered"}'] == 3, vals
    assert vals['fraudwatch_console_webhook_deliveries_total{result="failed"}'] == 2, vals


TESTS = [test_check_config, test_routing_and_queues, test_search, test_roles,
         test_transitions_and_bad_input, test_snooze_and_audit, test_login_rate_limit,
         test_disabled_user, test_rereading_adds_nothing, test_stream,
         test_console_and_redis_restart, test_webhooks, test_stats_equal_own_count,
         test_oversized_headers, test_metrics, test_tls]


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    if not os.environ.get("FW_KAFKA_PORT"):
        print("FW_KAFKA_PORT not set: no broker, console tests skipped")
        return 77
    fw, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    only = sys.argv[3:]
    t0 = time.monotonic()
    e = setup(fw, root)
    print(f"setup: {N} alerts stored in {time.monotonic() - t0:.1f} s", flush=True)
    passed = failed = 0
    try:
        for t in TESTS:
            if only and t.__name__ not in only:
                continue
            try:
                t(e)
                passed += 1
                print(f"ok   {t.__name__}", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {t.__name__}\n{traceback.format_exc()}", flush=True)
    finally:
        e.console.stop()
        e.redis.stop()
        # a sanitizer build reports into the consoles' logs
        for name in os.listdir(e.tmp):
            if name.startswith("console-") and name.endswith(".log"):
                with open(os.path.join(e.tmp, name)) as f:
                    text = f.read()
                if "Sanitizer" in text or "runtime error:" in text:
                    failed += 1
                    print(f"FAIL sanitizer report in {name}:\n{text[-6000:]}")
        if failed:
            print("console log tail:\n" + e.console.log()[-4000:])
        else:
            import shutil
            shutil.rmtree(e.tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
