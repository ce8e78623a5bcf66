#!/usr/bin/env python3
"""test_package.py — the Debian package installs, runs, and leaves nothing.

    test_package.py FRAUDWATCH_BUILD_DIR SOURCE_ROOT

Builds fraudwatch_<version>_amd64.deb with scripts/package.sh from the
meson build the test runs in, installs it on THIS machine with dpkg, and
checks what a site would see: the program, the conffiles, root:fraudwatch
0640 on the configuration, the fraudwatch system user, /var/lib/fraudwatch
owned by it, the rules links, the man pages, the units (and
`systemd-analyze verify` of the installed ones).  As the fraudwatch user,
`fraudwatch rules check`, `--check-config`, and — with the test broker of
scripts/test.sh (FW_KAFKA_PORT) — `fraudwatch run -c
/etc/fraudwatch/fraudwatch.conf --set kafka.bootstrap.servers=...` fed the
demo's events until its alerts arrive, then SIGTERM (exit 0, a checkpoint
in /var/lib/fraudwatch owned by the user).  Then `dpkg --remove` (the
conffiles stay), `dpkg --purge`, and nothing of it may be left: no file,
no directory, no user, no group.  The package is purged whatever happens.

Exit 77 (skip) when not root (dpkg must install into /), or when this
machine already has a fraudwatch package, user or /etc/fraudwatch that the
test did not make (it would not remove someone else's).
"""
import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
import fwtest  # noqa: E402

failures = []
LEFT_BEHIND = ["/usr/bin/fraudwatch", "/etc/fraudwatch", "/var/lib/fraudwatch",
               "/usr/share/fraudwatch", "/usr/share/doc/fraudwatch",
               "/lib/systemd/system/fraudwatch.service",
               "/lib/systemd/system/fraudwatch@.service",
               "/lib/systemd/system/fraudwatch-console.service",
               "/usr/share/man/man1/fraudwatch.1.gz", "/usr/share/man/man5/fraudwatch.conf.5.gz",
               "/usr/share/man/man5/fraudwatch-rules.5.gz",
               "/usr/share/lintian/overrides/fraudwatch"]


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def installed():
    p = sh(["dpkg-query", "-W", "-f=${Status}", "fraudwatch"])
    return p.returncode == 0 and "installed" in p.stdout and "not-installed" not in p.stdout


def exists(path):
    return os.path.lexists(path)


def skip(msg):
    print("SKIP: " + msg, file=sys.stderr)
    sys.exit(77)


def as_user(cmd, **kw):
    return sh(["runuser", "-u", "fraudwatch", "--"] + cmd, **kw)


def owner(path):
    st = os.lstat(path)
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, \
        stat.S_IMODE(st.st_mode)


def check_installed(version):
    p = sh(["/usr/bin/fraudwatch", "--version"])
    check(p.returncode == 0 and version in p.stdout,
          f"/usr/bin/fraudwatch --version: {p.stdout.strip()} {p.stderr.strip()}")
    conffiles = sh(["dpkg-query", "-W", "-f=${Conffiles}", "fraudwatch"]).stdout
    check("/etc/fraudwatch/fraudwatch.conf" in conffiles,
          f"/etc/fraudwatch/fraudwatch.conf is not a conffile: {conffiles!r}")
    try:
        u = pwd.getpwnam("fraudwatch")
        check(u.pw_uid < 1000, f"fraudwatch is not a system user (uid {u.pw_uid})")
        check(u.pw_shell in ("/usr/sbin/nologin", "/bin/false"),
              f"fraudwatch has a login shell: {u.pw_shell}")
    except KeyError:
        fail("no fraudwatch user after install")
        return
    check(owner("/etc/fraudwatch/fraudwatch.conf") == ("root", "fraudwatch", 0o640),
          f"/etc/fraudwatch/fraudwatch.conf: {owner('/etc/fraudwatch/fraudwatch.conf')}, "
          "want root fraudwatch 0640")
    check(owner("/var/lib/fraudwatch") == ("fraudwatch", "fraudwatch", 0o750),
          f"/var/lib/fraudwatch: {owner('/var/lib/fraudwatch')}, want fraudwatch fraudwatch 0750")
    conf = open("/etc/fraudwatch/fraudwatch.conf").read()
    check("state.dir = /var/lib/fraudwatch" in conf and
          "rules.source = dir:/etc/fraudwatch/rules" in conf,
          "/etc/fraudwatch/fraudwatch.conf: state.dir / rules.source not the installed paths")
    shipped = sorted(os.listdir("/usr/share/fraudwatch/rules"))
    check(shipped and any(n.endswith(".json") for n in shipped), "no shipped rules")
    for n in shipped:
        link = os.path.join("/etc/fraudwatch/rules", n)
        check(os.path.islink(link) and
              os.readlink(link) == os.path.join("/usr/share/fraudwatch/rules", n),
              f"{link}: not a link to the shipped file")
    for f in ("index.html", "app.js", "app.css"):
        check(os.path.isfile("/usr/share/fraudwatch/web/" + f), f"/usr/share/fraudwatch/web/{f} missing")
    check("console.web_dir = /usr/share/fraudwatch/web" in open("/etc/fraudwatch/console.conf").read(),
          "/etc/fraudwatch/console.conf: console.web_dir is not the installed page")
    for u in ("fraudwatch.service", "fraudwatch@.service", "fraudwatch-console.service"):
        check(os.path.isfile("/lib/systemd/system/" + u), f"/lib/systemd/system/{u} missing")
    for page in ("fraudwatch", "fraudwatch.conf", "fraudwatch-rules"):
        p = sh(["man", "-w", page])
        check(p.returncode == 0 and p.stdout.startswith("/usr/share/man/"),
              f"man -w {page}: {p.stdout.strip()} {p.stderr.strip()}")
    check(os.path.isfile("/usr/share/doc/fraudwatch/copyright"), "no copyright file")
    if shutil.which("systemd-analyze"):
        for u in ("fraudwatch.service", "fraudwatch@north.service", "fraudwatch-console.service"):
            p = sh(["systemd-analyze", "verify", u])
            said = [ln for ln in (p.stdout + p.stderr).splitlines()
                    if ln.strip() and "Failed to parse system call" not in ln
                    and not ln.startswith("/lib/systemd/system/")]
            # the console's command comes with the console; the rest must be clean
            check(p.returncode == 0 and not said,
                  f"systemd-analyze verify {u} (installed): exit {p.returncode}: {said}")


def run_daemon(src, kafka):
    """The installed daemon as the fraudwatch user, fed the demo's events."""
    tag = f"pkgtest{os.getpid()}"
    events, alerts, dead = tag + ".events", tag + ".alerts", tag + ".deadletter"
    for t in (events, alerts, dead):
        kafka.topic(t)
    port = fwtest.free_port()
    cmd = ["/usr/bin/fraudwatch", "run", "-c", "/etc/fraudwatch/fraudwatch.conf",
           "--set", f"kafka.bootstrap.servers={kafka.addr}",
           "--set", f"metrics.listen=127.0.0.1:{port}",
           "--set", f"input.topics={events}", "--set", f"output.topic={alerts}",
           "--set", f"deadletter.topic={dead}", "--set", f"kafka.group.id={tag}",
           "--set", "state.checkpoint_interval_ms=500"]
    log = tempfile.TemporaryFile(mode="w+")
    # setpriv execs the daemon itself (runuser would stay in between and
    # answer SIGTERM on its own).
    d = subprocess.Popen(["setpriv", "--reuid=fraudwatch", "--regid=fraudwatch", "--init-groups",
                          "--"] + cmd, cwd="/var/lib/fraudwatch",
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        demo = os.path.join(src, "scripts", "demo", "events.jsonl")
        fwtest.run(["kcat", "-b", kafka.addr, "-P", "-t", events, "-z", "none", "-l", demo])
        want = sum(1 for _ in open(demo))
        deadline = time.time() + 60
        got = ""
        while time.time() < deadline and d.poll() is None:
            got = sh(["kcat", "-b", kafka.addr, "-C", "-t", alerts, "-o", "beginning", "-e",
                      "-q"]).stdout
            if got.strip():
                break
            time.sleep(1)
        check(got.strip(), f"no alert from the installed daemon within 60 s ({want} events in)")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                check(b"fraudwatch_" in r.read(), "/metrics has no fraudwatch_ series")
        except OSError as e:
            fail(f"/metrics of the installed daemon: {e}")
        time.sleep(1.5)     # a checkpoint or two at 500 ms
    finally:
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
        try:
            rc = d.wait(timeout=60)
        except subprocess.TimeoutExpired:
            d.kill()
            rc = d.wait()
        log.seek(0)
        text = log.read()
    if not check(rc == 0, f"installed daemon exit {rc} after SIGTERM; its log:\n{text[-3000:]}"):
        return
    made = [os.path.join(dp, f) for dp, _, fs in os.walk("/var/lib/fraudwatch") for f in fs]
    check(made, "no checkpoint written in /var/lib/fraudwatch")
    for f in made:
        check(owner(f)[0] == "fraudwatch", f"{f} owned by {owner(f)[0]}, not fraudwatch")
    print(f"ok: the installed daemon ran as fraudwatch, alerted, stopped with 0, "
          f"{len(made)} state file(s)")


def main():
    build, src = sys.argv[1:3]
    if os.geteuid() != 0:
        skip("not root: the package test installs a .deb into / with dpkg "
             "(scripts/test.sh runs it as root in CI)")
    if installed():
        skip("a fraudwatch package is already installed on this machine: not touching it")
    for what, there in (("user", lambda: pwd.getpwnam("fraudwatch")),
                        ("group", lambda: grp.getgrnam("fraudwatch"))):
        try:
            there()
            skip(f"a fraudwatch {what} already exists on this machine: not ours to remove")
        except KeyError:
            pass
    for path in ("/etc/fraudwatch", "/var/lib/fraudwatch", "/usr/share/fraudwatch"):
        if exists(path):
            skip(f"{path} exists and is not the test's: not touching it")
    for tool in ("dpkg-deb", "fakeroot", "dpkg-shlibdeps", "runuser", "setpriv"):
        if not shutil.which(tool):
            fail(f"{tool} not found (scripts/deps.sh installs it)")
            return 1

    out = tempfile.mkdtemp(prefix="fw-pkg-")
    try:
        p = sh([os.path.join(src, "scripts", "package.sh"), "--build-dir", build, "--out", out])
        if p.returncode != 0:
            fail(f"scripts/package.sh: exit {p.returncode}\n{p.stderr[-3000:]}")
            return 1
        deb = p.stdout.strip().splitlines()[-1]
        if shutil.which("lintian"):
            p = sh(["lintian", "--fail-on", "error,warning", deb])
            check(p.returncode == 0, f"lintian {deb}: exit {p.returncode}\n{p.stdout}")
        else:
            fail("lintian not found (scripts/deps.sh installs it)")
        version = os.path.basename(deb).split("_")[1]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            p = sh(["dpkg", "-i", deb], env=env)
            if not check(p.returncode == 0, f"dpkg -i: exit {p.returncode}\n{p.stdout}{p.stderr}"):
                return 1
            check_installed(version)
            p = as_user(["/usr/bin/fraudwatch", "rules", "check", "/etc/fraudwatch/rules"])
            check(p.returncode == 0, f"fraudwatch rules check /etc/fraudwatch/rules as the "
                                     f"fraudwatch user: exit {p.returncode}: {p.stderr[-500:]}")
            p = as_user(["/usr/bin/fraudwatch", "run", "-c", "/etc/fraudwatch/fraudwatch.conf",
                         "--check-config"], cwd="/var/lib/fraudwatch")
            check(p.returncode == 0 and "state.dir = /var/lib/fraudwatch" in p.stdout,
                  f"--check-config as the fraudwatch user: exit {p.returncode}: "
                  f"{p.stderr[-500:]}")
            p = as_user(["/usr/bin/fraudwatch", "console", "-c", "/etc/fraudwatch/console.conf",
                         "--check-config"], cwd="/var/lib/fraudwatch")
            check(p.returncode == 0 and "/usr/share/fraudwatch/web" in p.stdout,
                  f"console --check-config as the fraudwatch user: exit {p.returncode}: "
                  f"{p.stderr[-500:]}")
            p = as_user(["/usr/bin/fraudwatch", "run", "-c", "/etc/fraudwatch/missing.conf"])
            check(p.returncode == 1 and "/etc/fraudwatch/missing.conf" in p.stderr,
                  f"a missing config: exit {p.returncode}, stderr {p.stderr!r}: want 1 and "
                  "the file named")
            kafka = fwtest.Kafka.from_env()
            if kafka and shutil.which("kcat"):
                run_daemon(src, kafka)
            else:
                print("note: no FW_KAFKA_PORT (or no kcat): the installed daemon was checked "
                      "with --check-config only", file=sys.stderr)

            p = sh(["dpkg", "--remove", "fraudwatch"], env=env)
            check(p.returncode == 0, f"dpkg --remove: exit {p.returncode}\n{p.stderr}")
            check(not exists("/usr/bin/fraudwatch"), "/usr/bin/fraudwatch left after --remove")
            check(exists("/etc/fraudwatch/fraudwatch.conf"),
                  "the conffile went with --remove (it must stay until --purge)")
        finally:
            p = sh(["dpkg", "--purge", "fraudwatch"], env=env)
            check(p.returncode == 0, f"dpkg --purge: exit {p.returncode}\n{p.stderr}")
        for path in LEFT_BEHIND:
            check(not exists(path), f"{path} left behind after --purge")
        for what, there in (("user", lambda: pwd.getpwnam("fraudwatch")),
                            ("group", lambda: grp.getgrnam("fraudwatch"))):
            try:
                there()
                fail(f"the fraudwatch {what} left behind after --purge")
            except KeyError:
                pass
        check(not installed(), "dpkg still lists fraudwatch after --purge")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if failures:
        return 1
    print("ok: installed, checked, ran, removed and purged; nothing left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
