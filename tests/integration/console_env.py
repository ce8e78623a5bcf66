"""console_env — what the console's tests share: a redis-server with AOF on
(the console's store of record, restartable with its data), the console
process, users, routes, alerts produced to the broker, and an API client
with its cookie and CSRF token.  Standard library only."""
import http.cookiejar
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import fwtest  # noqa: E402

ROUTES = ("# test routes\n"
          "callee\tprefix:1380\tstation-a\n"
          "callee\tregex:^139[0-4]\tstation-b\n"
          "subject\tprefix:0085\tstation-hk\n")
SEVERITIES = ["low", "medium", "high", "critical"]


def unit_of(alert):
    """The unit an alert goes to by ROUTES, computed independently."""
    callee = str(alert.get("fields", {}).get("callee", ""))
    if callee.startswith("1380"):
        return "station-a"
    if callee[:3] == "139" and callee[3:4] in "01234" and len(callee) > 3:
        return "station-b"
    if alert["subject"].startswith("0085"):
        return "station-hk"
    return "default"


# Detected a day ago (and i seconds later): inside console.retention_days.
TS0 = int(time.time() * 1000) - 86_400_000


def make_alert(i, rng, ts0=None, **over):
    ts0 = TS0 if ts0 is None else ts0
    callee = rng.choice(["1380", "1391", "1397", "0085", "1501"]) + f"{rng.randrange(10**7):07d}"
    subj = callee if rng.random() < 0.7 else "0085" + f"{rng.randrange(10**8):08d}"
    a = {"alert_id": f"{i:032x}", "rule_id": rng.choice(["R101", "R201", "R301"]),
         "rule_name": "test rule", "severity": rng.choice(SEVERITIES), "subject": subj,
         "event_id": f"e{i}", "event_ts": ts0 + i, "detected_ts": ts0 + i * 1000,
         "ruleset_version": 1, "evidence": {"count": 1},
         "description": "desc", "action": "call the victim",
         "fields": {"callee": callee, "caller": "17000000000", "payee_account": f"6222{i:012d}"}}
    a.update(over)
    return a


class RedisAOF:
    """redis-server on a free port with appendonly yes (fsync always), its
    files in workdir; stop() then start() keeps the data."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = fwtest.free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.workdir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        raise fwtest.FixtureError("redis-server did not start")

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "-p", str(self.port)] + [str(a) for a in args],
                           capture_output=True, text=True)
        return p.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None


class Console:
    def __init__(self, fw, root, workdir, redis_url, brokers, topic, group="console-test",
                 extra=(), scheme="http", cafile=None):
        self.port = fwtest.free_port()
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.ssl = ssl.create_default_context(cafile=cafile) if cafile else None
        self.log_path = os.path.join(workdir, f"console-{self.port}.log")
        self.cmd = [fw, "console", "-c", os.path.join(root, "config", "console.conf"),
                    "--set", f"kafka.bootstrap.servers={brokers}",
                    "--set", f"kafka.group.id={group}",
                    "--set", f"console.alerts_topic={topic}",
                    "--set", f"console.redis={redis_url}",
                    "--set", f"console.listen=127.0.0.1:{self.port}",
                    "--set", f"console.web_dir={os.path.join(root, 'web')}",
                    "--set", "log.level=debug", *extra]
        self.proc = None
        self.start()

    def start(self):
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1, context=self.ssl)
                return
            except urllib.error.HTTPError:
                return      # up, Redis maybe not
            except OSError:
                if self.proc.poll() is not None:
                    raise fwtest.FixtureError("console exited: " + self.log())
                time.sleep(0.05)
        raise fwtest.FixtureError("console did not answer")

    def stop(self, sig=signal.SIGTERM):
        """Stops it; its exit status (None if it was not running)."""
        rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            rc = self.proc.wait(30)
        self.proc = None
        self.logf.close()
        return rc

    def log(self):
        with open(self.log_path) as f:
            return f.read()


def add_user(fw, redis_url, name, role, unit=None, password="password-123"):
    cmd = [fw, "console", "user", "add", name, "--role", role, "--redis", redis_url]
    if unit:
        cmd += ["--unit", unit]
    p = subprocess.run(cmd, input=password + "\n", capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return password


def push_rules(fw, redis_url, root):
    """The shipped rules as the active set: a snooze names a rule of it."""
    p = subprocess.run([fw, "rules", "push", os.path.join(root, "rules"), "--redis", redis_url,
                        "-m", "console test"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise fwtest.FixtureError("rules push: " + p.stderr)


def load_routes(fw, redis_url, workdir, text=ROUTES):
    path = os.path.join(workdir, "routes.tsv")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([fw, "routes", "load", path, "--redis", redis_url],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def produce(brokers, topic, messages):
    """messages: dicts (JSON) or bytes (sent as they are), keyed by subject."""
    lines = []
    for m in messages:
        if isinstance(m, bytes):
            lines.append(b"garbage|" + m)
        else:
            lines.append(m["subject"].encode() + b"|" + json.dumps(m, ensure_ascii=False).encode())
    subprocess.run(["kcat", "-P", "-b", brokers, "-t", topic, "-K", "|"],
                   input=b"\n".join(lines) + b"\n", check=True, timeout=120)


class Client:
    """The API as the page uses it: cookie jar, CSRF header on POST."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = None

    def req(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        if method == "POST" and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        h.update(headers or {})
        r = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with self.op.open(r, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            txt = e.read()
            try:
                return e.code, json.loads(txt)
            except ValueError:
                return e.code, {"raw": txt.decode(errors="replace")}

    def login(self, user, password):
        st, b = self.req("POST", "/api/login", {"user": user, "password": password})
        if st == 200:
            self.csrf = b["csrf"]
        return st, b

    def get(self, path):
        return self.req("GET", path)

    def post(self, path, body):
        return self.req("POST", path, body)

    def all(self, query=""):
        """Every alert of a filtered list, following the cursor."""
        out, cur = [], None
        while True:
            q = query + ("&" if query else "") + "limit=500" + (f"&cursor={cur}" if cur else "")
            st, b = self.get("/api/alerts?" + q)
            assert st == 200, (st, b)
            out += b["alerts"]
            cur = b["cursor"]
            if not cur:
                return out


def wait_for(cond, timeout=60, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def rng(seed=14):
    return random.Random(seed)
