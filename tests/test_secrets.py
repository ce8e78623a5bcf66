#!/usr/bin/env python3
"""No secret reaches any output (issue 10, item 6): a canary over every path.

Every secret in this test contains the string CANARY: the password of the
redis-server the test starts (--requirepass), the passwords of its ACL users,
the wrong passwords tried against it, the value of every kind of secret
setting, and the userinfo of every malformed URL.  Every command and error
path that can see one is run through the fraudwatch binary:

  * `run --check-config` with rules.source and kafka.* secrets (the config
    file, --set, @file: values, rules.redis_password_file), and `run` itself
    against the Redis store;
  * --set with URLs that are wrong in each way (rediss://, Redis://, no host,
    a password without a user, bad port, bad database, no "@host", ...) and
    with misspelt secret keys; config-file lines that hold secrets and are
    wrong (no "=", a colon for "=", a JAAS line librdkafka refuses);
  * `rules push/pull/status` and `lists add/remove/load` with every bad URL,
    through --redis and FRAUDWATCH_REDIS, a wrong password, a wrong ACL
    password, an ACL user without permissions, a password to a server that
    has none, a closed port — and the same commands succeeding with the
    canary as the real password.

stdout and stderr must never contain "CANARY", and each message must still
say what is wrong.  Also checked: the password file and
FRAUDWATCH_REDIS_PASSWORD authenticate (default user and ACL user), their
precedence over a password in the URL, files readable by every user are
refused, and a password given with --redis is warned about and is no longer
in /proc/PID/cmdline once the warning is out.

The redis-server processes listen on free ports of 127.0.0.1, without
persistence, and are stopped at the end.

usage: test_secrets.py FRAUDWATCH SOURCE_ROOT
Exit 77 (skipped) without redis-server.  Ends with "N passed, N failed".
"""
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

FW, ROOT = (os.path.abspath(a) for a in sys.argv[1:3])
RULES = os.path.join(ROOT, "rules")

CANARY = "CANARY"                       # what must never be printed
PW = "CANARY-pw-7f3a"                   # requirepass of the auth server
ACL_PW = "CANARY-acl-7f3a"              # fwuser: every permission fraudwatch needs
LIM_PW = "CANARY-lim-7f3a"              # limited: may connect, nothing else
WRONG = "CANARY-wrong-7f3a"             # a wrong password

passed = failed = 0
TMP = tempfile.mkdtemp(prefix="fw-test-secrets-")
# A clean environment: no URL or password of the caller's.
BASE_ENV = {k: v for k, v in os.environ.items()
            if k not in ("FRAUDWATCH_REDIS", "FRAUDWATCH_REDIS_PASSWORD")}


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- redis ----

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def resp(port, *cmds):
    """Sends commands (lists of words) on one connection; the replies, raw."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        out = b""
        for c in cmds:
            out += b"*%d\r\n" % len(c)
            for w in c:
                w = w.encode()
                out += b"$%d\r\n%s\r\n" % (len(w), w)
        s.sendall(out)
        data = b""
        s.settimeout(5)
        while data.count(b"\r\n") < len(cmds):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")


class Redis:
    def __init__(self, *extra):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", TMP, "--loglevel", "warning"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                r = resp(self.port, ["PING"])
                if r.startswith("+PONG") or r.startswith("-NOAUTH"):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited at start")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer")

    def url(self, userinfo="", db=""):
        return f"redis://{userinfo}127.0.0.1:{self.port}{db}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


# --------------------------------------------------------------- checks ----

def secret_file(name, content, mode=0o600):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(content)
    os.chmod(path, mode)
    return path


def conf_file(name, lines):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def check(name, argv, rc=None, want=(), env=None, stdin=None, want_out=(), want_err=(),
          absent=()):
    """Runs fraudwatch ARGV; the canary must appear in neither stream, the exit
    status must be rc, and every string of want must appear in stdout or
    stderr (want_out: stdout, want_err: stderr)."""
    global passed, failed
    e = dict(BASE_ENV)
    e.update(env or {})
    p = subprocess.run([FW] + argv, capture_output=True, text=True, env=e, input=stdin,
                       timeout=120, errors="replace")
    both = p.stdout + p.stderr
    problems = []
    for stream, text in (("stdout", p.stdout), ("stderr", p.stderr)):
        if CANARY in text:
            problems.append(f"{stream} shows a secret")
    if rc is not None and p.returncode != rc:
        problems.append(f"exit status {p.returncode}, want {rc}")
    problems += [f"no {w!r} in the output" for w in want if w not in both]
    problems += [f"no {w!r} on stdout" for w in want_out if w not in p.stdout]
    problems += [f"no {w!r} on stderr" for w in want_err if w not in p.stderr]
    problems += [f"{a!r} in the output" for a in absent if a in both]
    if problems:
        failed += 1
        log(f"FAIL {name}: " + "; ".join(problems))
        log(f"     argv: {argv}")
        for stream, text in (("stdout", p.stdout), ("stderr", p.stderr)):
            for line in text.splitlines()[:12]:
                log(f"     {stream}: {line}")
    else:
        passed += 1
        log(f"ok   {name}")
    return p


def first_line(p):
    """The first line p writes on stderr; "" if none comes within a minute
    (a hang guard, not a timing check: the line is written before the
    process waits for anything)."""
    if not select.select([p.stderr], [], [], 60)[0]:
        return ""
    return p.stderr.readline().decode(errors="replace")


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def expect(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        log(f"ok   {name}")
    else:
        failed += 1
        log(f"FAIL {name}: {detail}")


# --------------------------------------------------------------- config ----

def config_cases(auth):
    base = ["metrics.listen = off", f"state.dir = {TMP}/state",
            "kafka.bootstrap.servers = 127.0.0.1:1"]
    pwfile = secret_file("redis-password", PW + "\n")

    # Every kind of secret in the file: --check-config prints none of them.
    conf = conf_file("secrets.conf", base + [
        f"rules.source = redis://fwuser:{ACL_PW}@127.0.0.1:6379/2",
        f"kafka.consumer.sasl.password = {PW}",
        f"kafka.producer.sasl.password = {PW}",
        f"kafka.consumer.sasl.oauthbearer.config = principal=admin extension_x={PW}",
        f"kafka.producer.ssl.key.pem = {PW}",
        f"kafka.consumer.ssl.key.password = {PW}",
        f"kafka.consumer.ssl.keystore.password = {PW}",
        "kafka.consumer.sasl.username = fraudwatch",
    ])
    check("check-config: secrets in the file", ["run", "-c", conf, "--check-config"], rc=0,
          want_out=["rules.source = redis://fwuser:****@127.0.0.1:6379/2\n",
                    "kafka.consumer.sasl.oauthbearer.config = ********\n",
                    "kafka.producer.ssl.key.pem = ********\n",
                    "kafka.consumer.sasl.username = fraudwatch\n"])

    # The same secrets with --set: accepted, warned about, never echoed.
    plain = conf_file("plain.conf", base)
    sets = [f"rules.source=redis://fwuser:{ACL_PW}@127.0.0.1:6379/2",
            f"kafka.consumer.sasl.password={PW}",
            f"kafka.producer.sasl.oauthbearer.config=principal=admin extension_x={PW}",
            f"kafka.consumer.ssl.key.password={PW}"]
    argv = ["run", "-c", plain, "--check-config"]
    for s in sets:
        argv += ["--set", s]
    check("check-config: secrets with --set", argv, rc=0,
          want_out=["rules.source = redis://fwuser:****@127.0.0.1:6379/2\n",
                    "kafka.producer.sasl.oauthbearer.config = ********\n"],
          want_err=["process list", "warning: --set kafka.consumer.sasl.password: a secret",
                    "warning: --set rules.source: a secret", "rules.redis_password_file"])

    # rules.source URLs that are wrong in each way, with --set and in the file.
    bad_sources = [
        (f"rediss://u:{PW}@127.0.0.1:6380", "TLS"),
        (f"Redis://u:{PW}@127.0.0.1:6379", "lower case"),
        (f"REDIS://:{PW}@127.0.0.1", "lower case"),
        (f"redis://u:{PW}@", "no host"),
        (f"redis://{PW}@127.0.0.1:6379", "no password"),
        (f"redis://u:{PW}@127.0.0.1:99999", "port"),
        (f"redis://u:{PW}@127.0.0.1:6x79", "port"),
        (f"redis://u:{PW}@127.0.0.1:6379/x", "database"),
        (f"redis://u:{PW}@127.0.0.1:6379/1{PW}", "database"),
        (f"redis://u:{PW}", "port"),
        (f"redis://u:{PW}/0", "port"),
        (f"redis://u:{PW}@127.0.0.1:6379?db=1", "unexpected"),
        (f"redis://u:{PW}@[::1:6379", "]"),
        (f"redis://u:{PW}%zz@127.0.0.1", "%-encoded"),
        (f"redis://:@127.0.0.1", "password is empty"),
        (f"http://u:{PW}@127.0.0.1", "not a rule source"),
        (f"u:{PW}@127.0.0.1:6379", "not a rule source"),
        (f"redis//u:{PW}@127.0.0.1:6379", "not a rule source"),
    ]
    for i, (url, what) in enumerate(bad_sources):
        check(f"--set rules.source={url.replace(PW, 'PW')}",
              ["run", "-c", plain, "--check-config", "--set", f"rules.source={url}"],
              rc=1, want=["rules.source", what])
        conf = conf_file(f"bad-source-{i}.conf", base + [f"rules.source = {url}"])
        check(f"file rules.source = {url.replace(PW, 'PW')}",
              ["run", "-c", conf, "--check-config"], rc=1,
              want=[f"bad-source-{i}.conf:4", "rules.source", what])

    # Misspelt keys: the value might be a secret, so it is not shown.
    for kv, what in [(f"rules.sorce=redis://u:{PW}@127.0.0.1", "did you mean \"rules.source\""),
                     (f"kafka.consumer.sasl.pasword={PW}", "No such configuration property"),
                     (f"kafka.consumr.sasl.password={PW}", "did you mean"),
                     (f"kafka.producer.sasl.jaas.config=password=\"{PW}\";", "JAAS"),
                     (f"kafka.producer.sasl.oauthbearer.extensions=traceId={PW}",
                      "sasl.oauthbearer.extensions")]:
        check(f"--set {kv.replace(PW, 'PW')}", ["run", "-c", plain, "--check-config",
                                                "--set", kv], rc=1, want=[what])
    check("--set without =", ["run", "-c", plain, "--check-config", "--set",
                              f"kafka.consumer.sasl.password:{PW}"], rc=2, want=["KEY=VALUE"])

    # Config-file lines that hold a secret and are wrong.
    for i, (line, what) in enumerate([
            (f"kafka.consumer.sasl.password {PW}", "no \"=\""),
            (PW, "no \"=\""),
            (f"rules.source: redis://u:{PW}@127.0.0.1?db=1", "not a key"),
            (f"redis://u:{PW}@127.0.0.1 = x", "not a key"),
            (f"kafka.consumer.sasl.jaas.config = org.apache.kafka.common.security.plain."
             f"PlainLoginModule required username=\"u\" password=\"{PW}\";", "JAAS"),
            (f"kafka.consumer.sasl.pasword = {PW}", "No such configuration property")]):
        conf = conf_file(f"bad-line-{i}.conf", base + [line])
        check(f"file line {line.replace(PW, 'PW')[:60]}", ["run", "-c", conf, "--check-config"],
              rc=1, want=[f"bad-line-{i}.conf:4", what])

    # Secrets from files: rules.redis_password_file, @file: values.
    kafka_pw = secret_file("kafka-password", PW + "\n")
    conf = conf_file("files.conf", base + [
        f"rules.source = redis://fwuser@127.0.0.1:{auth.port}/2",
        f"rules.redis_password_file = {pwfile}",
        f"kafka.consumer.sasl.password = @file:{kafka_pw}",
        f"kafka.producer.sasl.oauthbearer.config = @file:{kafka_pw}"])
    check("check-config: secrets from files", ["run", "-c", conf, "--check-config"], rc=0,
          want_out=[f"rules.redis_password_file = {pwfile}\n",
                    f"rules.source = redis://fwuser@127.0.0.1:{auth.port}/2\n",
                    f"kafka.consumer.sasl.password = @file:{kafka_pw}\n",
                    f"kafka.producer.sasl.oauthbearer.config = @file:{kafka_pw}\n"])
    check("--set a secret @file: no warning",
          ["run", "-c", plain, "--check-config", "--set",
           f"kafka.consumer.sasl.password=@file:{kafka_pw}"], rc=0,
          absent=["process list"])
    world = secret_file("world-readable", PW + "\n", 0o644)
    twolines = secret_file("two-lines", f"user\n{PW}\n")
    empty = secret_file("empty", "\n")
    for path, what in [(world, "readable by every user"), (twolines, "more than one line"),
                       (empty, "empty"), (os.path.join(TMP, "missing"), "No such file"),
                       (TMP, "not a regular file")]:
        check(f"rules.redis_password_file {os.path.basename(path)}",
              ["run", "-c", plain, "--check-config", "--set",
               f"rules.source=redis://127.0.0.1:{auth.port}",
               "--set", f"rules.redis_password_file={path}"], rc=1,
              want=["rules.redis_password_file", path, what])
        check(f"@file: {os.path.basename(path)}",
              ["run", "-c", plain, "--check-config", "--set",
               f"kafka.consumer.sasl.password=@file:{path}"], rc=1,
              want=["kafka.consumer.sasl.password", path, what])
    check("@file: on a setting that is not a secret",
          ["run", "-c", plain, "--check-config", "--set",
           f"kafka.consumer.client.rack=@file:{kafka_pw}"], rc=1, want=["not a secret"])
    check("rules.redis_password_file with a dir: source",
          ["run", "-c", plain, "--check-config", "--set", f"rules.redis_password_file={pwfile}"],
          rc=1, want=["rules.redis_password_file", "redis://"])


# ---------------------------------------------------------------- redis ----

def redis_cases(auth, open_srv):
    closed = free_port()
    listfile = secret_file("numbers.list", "13800000001\n13800000002\n", 0o644)
    pwfile = secret_file("redis-password-2", PW + "\n")
    aclfile = secret_file("acl-password", ACL_PW + "\n")
    wrongfile = secret_file("wrong-password", WRONG + "\n")
    world = secret_file("world-readable-2", PW + "\n", 0o644)
    npull = [0]

    def commands():
        npull[0] += 1
        return [("rules push", ["rules", "push", RULES]),
                ("rules pull", ["rules", "pull", os.path.join(TMP, f"pull-{npull[0]}")]),
                ("rules status", ["rules", "status"]),
                ("lists add", ["lists", "add", "extra_list", "13900000001"]),
                ("lists remove", ["lists", "remove", "extra_list", "13900000001"]),
                ("lists load", ["lists", "load", "extra_list", listfile]),
                ("lists add --until", ["lists", "add", "extra_list", "13900000002",
                                       "--ttl", "7d", "--reason", "r", "--by", "op"]),
                ("lists show", ["lists", "show", "extra_list", "13900000002"]),
                ("lists expire", ["lists", "expire", "extra_list"]),
                ("snooze add", ["snooze", "add", "*", "13900000001", "--for", "1h",
                                "--reason", "canary test"]),
                ("snooze list", ["snooze", "list"]),
                ("snooze log", ["snooze", "log"]),
                ("snooze remove", ["snooze", "remove", "*", "13900000001"])]

    bad = [
        (f"rediss://u:{PW}@127.0.0.1:{open_srv.port}", "TLS"),
        (f"Redis://u:{PW}@127.0.0.1:{open_srv.port}", "lower case"),
        (f"redis://u:{PW}@", "no host"),
        (f"redis://{PW}@127.0.0.1:{auth.port}", "no password"),
        (f"redis://u:{PW}@127.0.0.1:99999", "port"),
        (f"redis://u:{PW}@127.0.0.1:{open_srv.port}/x", "database"),
        (f"redis://u:{PW}", "port"),
        (f"redis://u:{PW}@127.0.0.1:{open_srv.port}?db=1", "unexpected"),
        (f"redis://u:{PW}@[::1:{open_srv.port}", "]"),
        (f"redis://u:{PW}%zz@127.0.0.1:{open_srv.port}", "%-encoded"),
        (f"http://u:{PW}@127.0.0.1:{open_srv.port}", "redis://"),
        (f"redis://:{PW}@127.0.0.1:{closed}", "cannot connect"),
        (f"redis://:{WRONG}@127.0.0.1:{auth.port}", "authentication failed"),
        (f"redis://fwuser:{WRONG}@127.0.0.1:{auth.port}", "authentication failed"),
        (f"redis://limited:{LIM_PW}@127.0.0.1:{auth.port}", "NOPERM"),
        (f"redis://:{PW}@127.0.0.1:{open_srv.port}", "without any password configured"),
    ]
    for url, what in bad:
        shown = url.replace(PW, "PW").replace(WRONG, "WRONG").replace(LIM_PW, "LIM")
        for cname, argv in commands():
            check(f"{cname} --redis {shown}", argv + ["--redis", url], rc=1, want=[what])
        check(f"rules status FRAUDWATCH_REDIS={shown}", ["rules", "status"], rc=1, want=[what],
              env={"FRAUDWATCH_REDIS": url})

    # The canary is the real password: every command works, and says nothing of it.
    for cname, argv in commands():
        check(f"{cname} --redis with the password", argv + ["--redis", auth.url(f":{PW}@")],
              rc=0, want_err=["process list", "--redis-password-file",
                              "FRAUDWATCH_REDIS_PASSWORD"])
    for cname, argv in commands():
        check(f"{cname} FRAUDWATCH_REDIS with the password", argv, rc=0,
              env={"FRAUDWATCH_REDIS": auth.url(f":{PW}@")}, absent=["process list"])
    for cname, argv in commands():
        check(f"{cname} --redis-password-file", argv + ["--redis", auth.url(),
                                                       "--redis-password-file", pwfile],
              rc=0, absent=["process list"])
    for cname, argv in commands():
        check(f"{cname} FRAUDWATCH_REDIS_PASSWORD", argv + ["--redis", auth.url()], rc=0,
              env={"FRAUDWATCH_REDIS_PASSWORD": PW})
    for cname, argv in commands():
        check(f"{cname} ACL user, password file",
              argv + ["--redis", auth.url("fwuser@"), "--redis-password-file", aclfile], rc=0)
    check("rules status ACL user, FRAUDWATCH_REDIS_PASSWORD", ["rules", "status", "--redis",
                                                              auth.url("fwuser@", "/0")],
          rc=0, env={"FRAUDWATCH_REDIS_PASSWORD": ACL_PW}, want_out=["store: redis://fwuser@"])

    # Precedence: --redis-password-file, then FRAUDWATCH_REDIS_PASSWORD, then the URL.
    check("file over env over URL", ["rules", "status", "--redis", auth.url(f":{WRONG}@"),
                                     "--redis-password-file", pwfile], rc=0,
          env={"FRAUDWATCH_REDIS_PASSWORD": WRONG})
    check("env over URL", ["rules", "status", "--redis", auth.url(f":{WRONG}@")], rc=0,
          env={"FRAUDWATCH_REDIS_PASSWORD": PW})
    check("a wrong password file is named", ["rules", "status", "--redis", auth.url(),
                                             "--redis-password-file", wrongfile], rc=1,
          want=["authentication failed", wrongfile])
    check("a wrong FRAUDWATCH_REDIS_PASSWORD is named", ["rules", "status", "--redis",
                                                         auth.url("fwuser@")], rc=1,
          env={"FRAUDWATCH_REDIS_PASSWORD": WRONG},
          want=["authentication failed", "FRAUDWATCH_REDIS_PASSWORD"])
    check("a password file readable by every user is refused",
          ["rules", "status", "--redis", auth.url(), "--redis-password-file", world], rc=1,
          want=[world, "readable by every user", "chmod"])
    check("no password: NOAUTH says how to give one", ["rules", "status", "--redis", auth.url()],
          rc=1, want=["--redis-password-file", "FRAUDWATCH_REDIS_PASSWORD"])
    check("user without a password and no password source",
          ["rules", "status", "--redis", auth.url("fwuser@")], rc=1,
          want=["no password", "--redis-password-file"])
    for cmd in (["rules", "push", "--help"], ["lists", "--help"], ["--help"]):
        check(" ".join(cmd), cmd, rc=0, want_out=["--redis-password-file",
                                                   "FRAUDWATCH_REDIS_PASSWORD"])

    # --redis with a password: once the warning is out, /proc/PID/cmdline no
    # longer holds it (lists load - waits on stdin until we close it).
    e = dict(BASE_ENV)
    p = subprocess.Popen([FW, "lists", "load", "extra_list", "-", "--redis",
                          auth.url(f":{PW}@")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    warning = first_line(p)
    args = cmdline(p.pid)
    try:
        out, err = p.communicate(b"13800000009\n", timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    expect("--redis URL scrubbed from the process list",
           "process list" in warning and CANARY not in args and "redis://:" in args
           and p.returncode == 0 and CANARY.encode() not in out + err,
           f"warning {warning!r}, cmdline {args!r}, exit {p.returncode}")

    # The daemon: the password file authenticates (an empty store is the
    # next, expected refusal), a wrong one is named, a URL password is masked.
    base = ["metrics.listen = off", f"state.dir = {TMP}/state",
            "kafka.bootstrap.servers = 127.0.0.1:1", "shutdown.timeout_s = 1"]
    conf = conf_file("daemon-ok.conf", base + [f"rules.source = {auth.url('', '/5')}",
                                                f"rules.redis_password_file = {pwfile}"])
    check("run: rules.redis_password_file authenticates", ["run", "-c", conf], rc=1,
          want=["holds no rule set yet"])
    conf = conf_file("daemon-acl.conf", base + [f"rules.source = {auth.url('fwuser@', '/5')}",
                                                 f"rules.redis_password_file = {aclfile}"])
    check("run: ACL user with rules.redis_password_file", ["run", "-c", conf], rc=1,
          want=["holds no rule set yet"])
    conf = conf_file("daemon-wrong.conf", base + [f"rules.source = {auth.url('', '/5')}",
                                                   f"rules.redis_password_file = {wrongfile}"])
    check("run: a wrong password file is named", ["run", "-c", conf], rc=1,
          want=["authentication failed", wrongfile])
    conf = conf_file("daemon-url.conf", base + [f"rules.source = {auth.url(f':{WRONG}@', '/5')}"])
    check("run: a wrong password in rules.source", ["run", "-c", conf], rc=1,
          want=["authentication failed", f"redis://:****@127.0.0.1:{auth.port}/5"])
    conf = conf_file("daemon-limited.conf",
                     base + [f"rules.source = {auth.url(f'limited:{LIM_PW}@', '/5')}"])
    check("run: an ACL user without permissions", ["run", "-c", conf], rc=1, want=["NOPERM"])

    # --set of a secret on the daemon's command line: warned and scrubbed too.
    rules_dir = os.path.join(TMP, "daemon-rules")
    shutil.copytree(RULES, rules_dir)
    conf = conf_file("daemon-dir.conf", base + [f"rules.source = dir:{rules_dir}"])
    p = subprocess.Popen([FW, "run", "-c", conf, "--set", f"kafka.consumer.sasl.password={PW}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    warning = first_line(p)
    args = cmdline(p.pid)
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    expect("run --set of a secret scrubbed from the process list",
           "process list" in warning and CANARY not in args
           and "kafka.consumer.sasl.password" in args
           and CANARY.encode() not in out + err,
           f"warning {warning!r}, cmdline {args!r}")


def main():
    if not shutil.which("redis-server"):
        print("redis-server not installed: skipped")
        return 77
    open_srv = Redis()
    auth = Redis("--requirepass", PW)
    try:
        r = resp(auth.port, ["AUTH", PW],
                 ["ACL", "SETUSER", "fwuser", "on", ">" + ACL_PW, "~fraudwatch:*",
                  "&fraudwatch:notify", "-@all", "+@read", "+@write", "+@keyspace",
                  "+@transaction", "+@pubsub", "+@connection", "-@dangerous",
                  "+time"],   # snooze: the server's time of a change
                 ["ACL", "SETUSER", "limited", "on", ">" + LIM_PW, "-@all", "+@connection"])
        assert r.count("+OK") == 3, r
        config_cases(auth)
        redis_cases(auth, open_srv)
    finally:
        open_srv.stop()
        auth.stop()
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
