#!/usr/bin/env python3
"""test_metrics_tls.py — /metrics over HTTPS with basic authentication.

    test_metrics_tls.py FRAUDWATCH

The daemon (`fraudwatch run`, its broker a closed port: the endpoint is
served all the same) with metrics.tls_cert_file/tls_key_file and
metrics.auth_user/auth_password_file, on 127.0.0.1 (tests bind loopback
only; that any address is accepted with both is checked with
--check-config, which binds nothing):
  * no credentials, wrong ones: 401 with WWW-Authenticate, counted in
    fraudwatch_http_auth_failures_total; the right ones: 200 over TLS,
    the certificate verified, process_resident_memory_bytes in /metrics;
  * authentication without TLS on the loopback works over plain HTTP;
  * bad input: a missing or world-readable password file, a missing or
    world-readable key, a key that is not PEM, one file of a pair, an
    address off the loopback without TLS and a password: exit 1 and a
    message naming the file or the settings.
Exit 77 without openssl (it makes the test certificate).
"""
import base64
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import fwtest  # noqa: E402

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def base(tmp):
    return ["run", "-c", "/dev/null", "--set", "kafka.bootstrap.servers=127.0.0.1:1",
            "--set", f"state.dir={tmp}/state",
            "--set", "rules.source=dir:" + os.path.join(ROOT, "rules")]


def sets(**kv):
    out = []
    for k, v in kv.items():
        out += ["--set", f"metrics.{k}={v}"]
    return out


def get(url, auth=None, ctx=None):
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def serve(prog, args, url, probe_auth, ctx=None):
    """Starts the daemon, waits until url answers (any status); the process."""
    log = tempfile.TemporaryFile(mode="w+")    # a pipe could fill and block it
    d = subprocess.Popen([prog] + args, stdout=subprocess.DEVNULL, stderr=log, text=True)
    d.log = log
    deadline = time.time() + 20
    while time.time() < deadline:
        if d.poll() is not None:
            log.seek(0)
            fail(f"daemon exited {d.returncode}: {log.read()[-2000:]}")
            return None
        try:
            get(url, probe_auth, ctx)
            return d
        except OSError:
            time.sleep(0.2)
    fail(f"{url}: no answer within 20 s")
    d.kill()
    return None


def stop(d):
    """SIGTERM; the daemon must exit 0 (a sanitizer's report would not)."""
    d.terminate()
    try:
        rc = d.wait(timeout=60)
    except subprocess.TimeoutExpired:
        d.kill()
        rc = d.wait()
    d.log.seek(0)
    check(rc == 0, f"daemon exit {rc} after SIGTERM: {d.log.read()[-3000:]}")


def refused(prog, args, *want):
    p = subprocess.run([prog] + args, capture_output=True, text=True, timeout=60)
    ok = p.returncode == 1 and all(w in p.stderr for w in want)
    check(ok, f"{' '.join(args[-6:])}: exit {p.returncode}, stderr {p.stderr.strip()!r}; "
              f"want exit 1 and {want}")


def main():
    global ROOT
    prog = os.path.abspath(sys.argv[1])
    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not shutil.which("openssl"):
        print("SKIP: openssl not found (it makes the test certificate)", file=sys.stderr)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, pw = (os.path.join(tmp, n) for n in ("cert.pem", "key.pem", "pw"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        os.chmod(key, 0o600)
        with open(pw, "w") as f:
            f.write("s3cret-pw\n")
        os.chmod(pw, 0o600)
        ctx = ssl.create_default_context(cafile=cert)

        # HTTPS + basic authentication.
        port = fwtest.free_port()
        args = base(tmp) + sets(listen=f"127.0.0.1:{port}", tls_cert_file=cert,
                                tls_key_file=key, auth_user="prom", auth_password_file=pw)
        url = f"https://127.0.0.1:{port}"
        d = serve(prog, args, url + "/healthz", "prom:s3cret-pw", ctx)
        if d:
            try:
                st, body, hdr = get(url + "/metrics", None, ctx)
                check(st == 401 and 'Basic realm="fraudwatch"' in hdr.get("WWW-Authenticate", ""),
                      f"no credentials: {st} {hdr}")
                check("fraudwatch_" not in body, "a 401 body shows metrics")
                st, _, _ = get(url + "/metrics", "prom:wrong", ctx)
                check(st == 401, f"wrong password: {st}")
                st, _, _ = get(url + "/healthz", "other:s3cret-pw", ctx)
                check(st == 401, f"wrong user: {st}")
                st, body, _ = get(url + "/metrics", "prom:s3cret-pw", ctx)
                check(st == 200 and "fraudwatch_events_total" in body,
                      f"right credentials: {st} {body[:200]}")
                m = re.search(r"^process_resident_memory_bytes (\d+)", body, re.M)
                check(m and int(m.group(1)) > 1 << 20, "process_resident_memory_bytes missing "
                                                        "or under 1 MiB")
                m = re.search(r"^fraudwatch_http_auth_failures_total (\d+)", body, re.M)
                check(m and int(m.group(1)) >= 3, "fraudwatch_http_auth_failures_total did not "
                                                   f"count the 3 refusals: {m and m.group(0)}")
                try:
                    get(f"http://127.0.0.1:{port}/metrics", "prom:s3cret-pw")
                    fail("plain HTTP answered on the HTTPS port")
                except OSError:
                    pass
            finally:
                stop(d)

        # Authentication without TLS, loopback.
        port = fwtest.free_port()
        args = base(tmp) + sets(listen=f"127.0.0.1:{port}", auth_user="prom",
                                auth_password_file=pw)
        url = f"http://127.0.0.1:{port}"
        d = serve(prog, args, url + "/healthz", "prom:s3cret-pw")
        if d:
            try:
                check(get(url + "/metrics")[0] == 401, "auth without TLS: no credentials not 401")
                check(get(url + "/metrics", "prom:s3cret-pw")[0] == 200,
                      "auth without TLS: the right credentials not 200")
            finally:
                stop(d)

        # Configuration: what is accepted, what is refused and why.
        cc = ["--check-config"]
        p = subprocess.run([prog] + base(tmp) + sets(listen="0.0.0.0:9464", tls_cert_file=cert,
                                                     tls_key_file=key, auth_user="prom",
                                                     auth_password_file=pw) + cc,
                           capture_output=True, text=True)
        check(p.returncode == 0 and "metrics.listen = 0.0.0.0:9464" in p.stdout,
              f"0.0.0.0 with TLS and a password: exit {p.returncode} {p.stderr.strip()}")
        check("s3cret" not in p.stdout + p.stderr, "--check-config printed the password")
        refused(prog, base(tmp) + sets(listen="0.0.0.0:9464") + cc,
                "not a loopback address", "neither TLS nor a password")
        refused(prog, base(tmp) + sets(listen="0.0.0.0:9464", tls_cert_file=cert,
                                       tls_key_file=key) + cc, "has no password")
        refused(prog, base(tmp) + sets(listen="0.0.0.0:9464", auth_user="prom",
                                       auth_password_file=pw) + cc, "has no TLS")
        missing = os.path.join(tmp, "nope", "pw")
        refused(prog, base(tmp) + sets(auth_user="prom", auth_password_file=missing) + cc,
                missing)
        open_pw = os.path.join(tmp, "open-pw")
        with open(open_pw, "w") as f:
            f.write("x\n")
        os.chmod(open_pw, 0o644)
        refused(prog, base(tmp) + sets(auth_user="prom", auth_password_file=open_pw) + cc,
                open_pw)
        refused(prog, base(tmp) + sets(tls_cert_file=cert, tls_key_file=missing) + cc,
                "metrics.tls_key_file", missing)
        open_key = os.path.join(tmp, "open-key.pem")
        shutil.copy(key, open_key)
        os.chmod(open_key, 0o644)
        refused(prog, base(tmp) + sets(tls_cert_file=cert, tls_key_file=open_key) + cc,
                open_key, "other users may read it")
        refused(prog, base(tmp) + sets(tls_cert_file=cert) + cc, "go together")
        refused(prog, base(tmp) + sets(auth_user="prom") + cc, "go together")
        refused(prog, base(tmp) + sets(auth_user="a:b", auth_password_file=pw) + cc, "':'")
        # A key that passes the checks but is not PEM: the run fails at
        # start, naming the file.
        junk = os.path.join(tmp, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a key\n")
        os.chmod(junk, 0o600)
        refused(prog, base(tmp) + sets(listen=f"127.0.0.1:{fwtest.free_port()}",
                                       tls_cert_file=cert, tls_key_file=junk),
                "metrics.tls_key_file", junk)
    if failures:
        return 1
    print("ok: HTTPS + basic authentication served, refused and configured as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
