#!/usr/bin/env python3
"""test_docs_zh.py — the Chinese pages keep step with the English ones.

    test_docs_zh.py SOURCE_ROOT [FRAUDWATCH]

docs/zh-CN/headings.tsv pairs every ## and ### heading of an English page
with its Chinese counterpart, in order.  This fails when
  * an English page's headings differ from the list (a section added,
    removed, renamed or moved without its Chinese counterpart), or
  * a Chinese page's headings are not the ones the list pairs them with,
  * a pair changes level (## against ###).
With FRAUDWATCH: the rule examples of docs/zh-CN/quick-start.md (JSON
arrays in ```json blocks) pass `fraudwatch rules check`, so what the
Chinese page tells people to write is valid.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def headings(path):
    out, fence = [], False
    with open(path, encoding="utf-8") as f:
        for ln in f:
            if ln.startswith("```"):
                fence = not fence
                continue
            if not fence and re.match(r"^#{2,3} ", ln):
                out.append(ln.rstrip("\n"))
    return out


def level(h):
    return len(h) - len(h.lstrip("#"))


def main():
    src = sys.argv[1]
    prog = sys.argv[2] if len(sys.argv) > 2 else None
    tsv = os.path.join(src, "docs", "zh-CN", "headings.tsv")
    pages = {}   # (en, zh) -> [(en_heading, zh_heading)]
    with open(tsv, encoding="utf-8") as f:
        for n, ln in enumerate(f, 1):
            if not ln.strip() or ln.startswith("#"):
                continue
            cols = ln.rstrip("\n").split("\t")
            if len(cols) != 4:
                fail(f"headings.tsv:{n}: want 4 tab-separated columns, got {len(cols)}")
                continue
            en, eh, zh, zhh = cols
            if level(eh) != level(zhh):
                fail(f"headings.tsv:{n}: {eh!r} and {zhh!r} are not the same level")
            pages.setdefault((en, zh), []).append((eh, zhh))
    if not pages:
        fail("headings.tsv pairs no pages")
    for (en, zh), pairs in pages.items():
        for page, listed, side in ((en, [p[0] for p in pairs], "English"),
                                   (zh, [p[1] for p in pairs], "Chinese")):
            path = os.path.join(src, page)
            if not os.path.isfile(path):
                fail(f"{page}: listed in docs/zh-CN/headings.tsv, does not exist")
                continue
            got = headings(path)
            if got == listed:
                continue
            for h in got:
                if h not in listed:
                    fail(f"{page}: heading {h!r} is not in docs/zh-CN/headings.tsv: "
                         + ("translate it in " + zh + " and add the pair"
                            if side == "English" else "pair it with its English heading"))
            for h in listed:
                if h not in got:
                    fail(f"{page}: no heading {h!r} (docs/zh-CN/headings.tsv lists it): "
                         + ("rename or remove it in " + zh + " and the list too"
                            if side == "English" else "the Chinese page lost it"))
            if sorted(got) == sorted(listed):
                fail(f"{page}: the headings are in another order than "
                     "docs/zh-CN/headings.tsv lists them")
    print(f"{sum(len(p) for p in pages.values())} heading pairs over {len(pages)} pages")

    if prog:
        qs = open(os.path.join(src, "docs", "zh-CN", "quick-start.md"), encoding="utf-8").read()
        blocks = [b for b in re.findall(r"```json\n(.*?)```", qs, re.S)
                  if b.lstrip().startswith("[")]
        if not blocks:
            fail("docs/zh-CN/quick-start.md has no rule example")
        for i, b in enumerate(blocks):
            try:
                json.loads(b)
            except ValueError as e:
                fail(f"docs/zh-CN/quick-start.md: rule example {i + 1} is not JSON: {e}")
                continue
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "local.json"), "w", encoding="utf-8") as f:
                    f.write(b)
                p = subprocess.run([prog, "rules", "check", d], capture_output=True, text=True)
                if p.returncode != 0:
                    fail(f"docs/zh-CN/quick-start.md: rule example {i + 1} is refused:\n"
                         f"{p.stderr}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
