#!/usr/bin/env python3
"""test_man.py — the man pages render cleanly and say what the program does.

    test_man.py FRAUDWATCH MANDIR SOURCE_ROOT

Checks, for the pages meson built into MANDIR (man/meson.build):
  * `man --warnings -l PAGE` renders each one with nothing on stderr;
  * fraudwatch(1) against the binary, both ways: every command of
    `fraudwatch --help` has its section, every option of every command's
    --help is in the page, every exit status line is in EXIT STATUS, and
    every --option the page names (its hand-written examples included)
    exists in some --help text;
  * fraudwatch.conf(5) against `fraudwatch run --check-config` of an empty
    file: every setting the binary knows is in the page with its default;
  * fraudwatch-rules(5): every member of the rule language's reference
    table in docs/rules.md is in the page.
Exit 77 (skip) when man-db is not installed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def render(page):
    env = dict(os.environ, MANWIDTH="2000", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                       env=env)
    if p.returncode != 0:
        fail(f"man -l {page}: exit {p.returncode}: {p.stderr.strip()}")
    if p.stderr.strip():
        fail(f"man --warnings -l {page} warns:\n{p.stderr.strip()}")
    # Undo any hyphenation at line ends and the Unicode hyphen man prints.
    text = p.stdout.replace("\u2010", "-").replace("\u2212", "-")
    text = re.sub(r"(\w)[-\u2010]\n\s+", r"\1", text)
    return text


def helptext(prog, args):
    p = subprocess.run([prog] + args + ["--help"], capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"fraudwatch {' '.join(args)} --help exits {p.returncode}")
    return p.stdout


def options_in(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9])", text))


def squash(s):
    return " ".join(s.split())


def check_fraudwatch1(prog, page):
    text = render(page)
    flat = squash(text)
    main = helptext(prog, [])
    cmds = []
    in_cmds = False
    for ln in main.split("\n"):
        if ln.strip() == "commands:":
            in_cmds = True
            continue
        if in_cmds and not ln.strip():
            break
        if in_cmds and re.match(r"^  \S", ln):
            words = ln.split()
            sub = words[1] if len(words) > 1 and re.match(r"^[a-z][a-z-]*$", words[1]) else None
            cmds.append((words[0], sub))
    if not cmds:
        fail("fraudwatch --help lists no commands: the generator and this test read "
             "its \"commands:\" block")
    all_help = main
    for cmd, sub in cmds:
        args = [cmd] + ([sub] if sub else [])
        h = helptext(prog, args)
        all_help += h
        heading = "fraudwatch " + cmd
        if heading not in text:
            fail(f"fraudwatch(1) has no section for `{heading}`")
        for opt in options_in(h):
            if opt not in flat:
                fail(f"fraudwatch(1) lacks {opt} of `fraudwatch {' '.join(args)} --help`")
        for m in re.finditer(r"exit status: (.*(?:\n\S.*)*)", h):
            want = squash(m.group(1))
            if flat.count(want) < 2:   # the command's section and EXIT STATUS
                fail(f"fraudwatch(1): EXIT STATUS lacks `{want}`")
    known = options_in(all_help) | {"--help", "--version"}
    for opt in sorted(options_in(text)):
        if opt not in known:
            fail(f"fraudwatch(1) names {opt}, which no --help text has")
    for section in ("SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT",
                    "SIGNALS", "FILES", "EXAMPLES", "SEE ALSO"):
        if not re.search(r"^" + section + r"$", text, re.M):
            fail(f"fraudwatch(1) has no {section} section")


def check_conf5(prog, page):
    text = render(page)
    with tempfile.TemporaryDirectory() as d:
        empty = os.path.join(d, "empty.conf")
        open(empty, "w").close()
        p = subprocess.run([prog, "run", "-c", empty, "--check-config"], capture_output=True,
                           text=True)
    if p.returncode != 0:
        fail(f"fraudwatch run --check-config of an empty file: exit {p.returncode}: {p.stderr}")
        return
    lines = [ln for ln in text.split("\n")]
    keys = 0
    for ln in p.stdout.split("\n"):
        m = re.match(r"^([a-z][\w.]*) =\s?(.*)$", ln)
        if not m:
            continue
        key, default = m.group(1), m.group(2)
        if key == "instance.id":
            default = ""   # filled in at validation: HOSTNAME-PID
        keys += 1
        idx = [i for i, l in enumerate(lines) if l.strip() == key]
        if not idx:
            fail(f"fraudwatch.conf(5) has no entry for {key}")
            continue
        entry = " ".join(lines[idx[0]:idx[0] + 3])
        want = "default: " + (default if default else "(empty)")
        if want not in entry:
            fail(f"fraudwatch.conf(5): {key}: expected `{want}` after the key, got: {entry}")
    if keys < 10:
        fail(f"--check-config printed only {keys} settings")


def check_rules5(src, page):
    text = render(page)
    md = open(os.path.join(src, "docs", "rules.md"), encoding="utf-8").read()
    members = re.findall(r"^\| `([a-z_]+)`\s*\|", md, re.M)
    if len(members) < 10:
        fail(f"docs/rules.md: only {len(members)} members found in its tables")
    for mem in members:
        if not re.search(r"^\s*" + re.escape(mem) + r"\b", text, re.M):
            fail(f"fraudwatch-rules(5) has no entry for the member {mem}")


def main():
    prog, mandir, src = sys.argv[1:4]
    if not shutil.which("man"):
        print("SKIP: man (man-db) is not installed", file=sys.stderr)
        return 77
    pages = {n: os.path.join(mandir, n)
             for n in ("fraudwatch.1", "fraudwatch.conf.5", "fraudwatch-rules.5")}
    for n, p in pages.items():
        if not os.path.isfile(p):
            fail(f"{p}: not built")
    if failures:
        return 1
    check_fraudwatch1(prog, pages["fraudwatch.1"])
    check_conf5(prog, pages["fraudwatch.conf.5"])
    check_rules5(src, pages["fraudwatch-rules.5"])
    if failures:
        print(f"{len(failures)} problem(s)", file=sys.stderr)
        return 1
    print("ok: 3 man pages render without warnings and match the binary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
