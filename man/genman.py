#!/usr/bin/env python3
"""genman.py — writes fraudwatch's man pages from what cannot drift.

Owns the two generators meson runs (man/meson.build):

  genman.py help FRAUDWATCH TEMPLATE OUT
      fraudwatch(1): the SYNOPSIS, the COMMANDS section and the EXIT STATUS
      list are the program's own `--help` texts (`fraudwatch --help`, then
      `fraudwatch COMMAND [SUBCOMMAND] --help` for every command that help
      lists), turned into man markup; TEMPLATE (man/fraudwatch.1.in) holds
      the prose around them (description, environment, signals, files,
      examples).  A new command or option shows up in the page by being
      in --help; tests/test_man.py checks the page both ways.

  genman.py md MARKDOWN OUT --name NAME --section N --title TEXT [--drop H]...
      a man page from a page of docs/: fraudwatch.conf(5) from
      docs/configuration.md (whose key table tests/test_config.c keeps equal
      to the config table in src/config.c) and fraudwatch-rules(5) from
      docs/rules.md.  Headings become .SH/.SS, fenced code .EX/.EE, lists
      .IP, and a table a .TP list (first column the tag, the others as
      "header: value" lines), which reads well at 80 columns where a tbl
      table of long prose would not.

Why generators and not hand-written pages: the help texts and the docs are
what the tests and the reviews keep true; a third copy by hand would be the
one that goes stale.  The page date is SOURCE_DATE_EPOCH's (reproducible
builds; scripts/package.sh sets it from the last commit), else today's.
"""
import datetime
import os
import re
import subprocess
import sys


# ---- roff text -----------------------------------------------------------

def esc(text):
    """Plain text to roff text (no leading-dot problem handled here)."""
    return text.replace("\\", "\\e")


def line_safe(line):
    """A text line that roff will not read as a request."""
    if line.startswith((".", "'")):
        return "\\&" + line
    return line


def inline_md(text):
    """Markdown inline markup to roff: `code` and **bold** bold, *it*
    italic, [text](target) the text (with the target when it is a URL)."""
    out = []
    pos = 0
    pat = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|(?<![\w*])\*(?!\s)(.+?)\*(?!\w)"
                     r"|\[([^\]]+)\]\(([^)]+)\)")
    for m in pat.finditer(text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + esc(m.group(1)) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + inline_md(m.group(2)) + "\\fR")
        elif m.group(3) is not None:
            out.append("\\fI" + inline_md(m.group(3)) + "\\fR")
        else:
            label, target = m.group(4), m.group(5)
            out.append(inline_md(label))
            if target.startswith(("http://", "https://")):
                # \: lets a long URL break after a slash.
                out.append(" <" + esc(target).replace("/", "/\\:") + ">")
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def page_date():
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    when = (datetime.datetime.fromtimestamp(int(sde), datetime.timezone.utc)
            if sde else datetime.datetime.now(datetime.timezone.utc))
    return when.strftime("%Y-%m-%d")


# ---- Markdown page -> man page -------------------------------------------

def split_row(row):
    cells = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def md_to_man(md, drop):
    """The body of a man page (no .TH) from a Markdown page."""
    lines = md.splitlines()
    out = []
    i = 0
    skipping = False
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.extend(line_safe(inline_md(p)) for p in para)
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m and not skipping_code(lines, i):
            flush()
            level, title = len(m.group(1)), m.group(2).strip()
            plain = re.sub(r"`([^`]*)`", r"\1", title)
            if level == 2:
                skipping = plain in drop
            if skipping or level == 1:
                i += 1
                continue
            if level == 2:
                out.append('.SH "' + esc(plain.upper()).replace('"', "'") + '"')
            else:
                out.append('.SS "' + inline_md(title).replace('"', "'") + '"')
            i += 1
            continue
        if skipping:
            i += 1
            continue
        if stripped.startswith("```"):
            flush()
            i += 1
            out.append(".PP")
            out.append(".RS 4")
            out.append(".EX")
            while i < len(lines) and not lines[i].strip().startswith("```"):
                out.append(line_safe(esc(lines[i])))
                i += 1
            out.append(".EE")
            out.append(".RE")
            i += 1
            continue
        if stripped.startswith("<!--"):
            flush()
            while i < len(lines) and "-->" not in lines[i]:
                i += 1
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and \
                re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
            flush()
            head = split_row(line)
            i += 2
            out.append(".PP")
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = split_row(lines[i])
                out.append(".TP")
                out.append(line_safe(inline_md(cells[0])))
                first = True
                for h, c in zip(head[1:], cells[1:]):
                    if not first:
                        out.append(".br")
                    first = False
                    if h.lower() in ("meaning", "what", "why", "holds when", "what happens"):
                        out.append(line_safe(inline_md(c)))
                    else:
                        out.append(line_safe(inline_md(h) + ": " + inline_md(c)))
                i += 1
            continue
        lm = re.match(r"^(\s*)([*+-]|\d+\.)\s+(.*)$", line)
        if lm and (len(lm.group(1)) < 4):
            flush()
            bullet = "\\(bu" if not lm.group(2)[0].isdigit() else lm.group(2)
            out.append('.IP "' + bullet + '" 4')
            out.append(line_safe(inline_md(lm.group(3))))
            i += 1
            while i < len(lines) and lines[i].strip() and \
                    not re.match(r"^\s*([*+-]|\d+\.)\s+", lines[i]) and \
                    not lines[i].strip().startswith("```") and \
                    lines[i].startswith(" "):
                out.append(line_safe(inline_md(lines[i].strip())))
                i += 1
            continue
        if stripped.startswith(">"):
            flush()
            out.append(".RS 4")
            while i < len(lines) and lines[i].strip().startswith(">"):
                out.append(line_safe(inline_md(lines[i].strip()[1:].strip())))
                i += 1
            out.append(".RE")
            continue
        if not stripped:
            flush()
            i += 1
            continue
        if line.startswith("    ") and not para:
            out.append(".PP")
            out.append(".RS 4")
            out.append(".EX")
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                if not lines[i].strip() and (i + 1 >= len(lines) or
                                             not lines[i + 1].startswith("    ")):
                    break
                out.append(line_safe(esc(lines[i][4:])))
                i += 1
            out.append(".EE")
            out.append(".RE")
            continue
        para.append(stripped)
        i += 1
    flush()
    # .PP right after .SH/.SS is redundant (and man --warnings may say so).
    tidy = []
    for ln in out:
        if ln == ".PP" and tidy and (tidy[-1].startswith((".SH", ".SS", ".PP", ".TP", ".IP"))):
            continue
        tidy.append(ln)
    return "\n".join(tidy) + "\n"


def skipping_code(lines, i):
    """Is line i inside a fenced code block?"""
    fences = sum(1 for ln in lines[:i] if ln.strip().startswith("```"))
    return fences % 2 == 1


def cmd_md(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="genman.py md")
    ap.add_argument("markdown")
    ap.add_argument("out")
    ap.add_argument("--name", required=True)
    ap.add_argument("--section", required=True)
    ap.add_argument("--title", required=True, help="the NAME line's description")
    ap.add_argument("--version", default="")
    ap.add_argument("--drop", action="append", default=[],
                    help="a level-2 heading whose section is left out")
    ap.add_argument("--see-also", default="")
    a = ap.parse_args(argv)
    with open(a.markdown, encoding="utf-8") as f:
        md = f.read()
    src = os.path.relpath(a.markdown, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    body = md_to_man(md, set(a.drop))
    if not body.startswith(".SH"):
        body = ".SH DESCRIPTION\n" + body.removeprefix(".PP\n")
    head = ('.\\" Generated by man/genman.py from {src}: edit that page, not this one.\n'
            '.TH "{NAME}" "{sec}" "{date}" "fraudwatch {ver}" "fraudwatch"\n'
            '.SH NAME\n{name} \\- {title}\n'
            # Left-adjusted: long paths and URLs in prose cannot be spread
            # into a justified line without troff's "cannot adjust" warning.
            '.ad l\n').format(
                src=src, NAME=a.name.upper(), sec=a.section, date=page_date(),
                ver=a.version, name=esc(a.name), title=esc(a.title))
    tail = ""
    if a.see_also:
        tail = ".SH \"SEE ALSO\"\n" + a.see_also.replace("-", "\\-") + "\n"
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(head + body + tail)
    return 0


# ---- --help texts -> fraudwatch(1) ---------------------------------------

def run_help(prog, args):
    p = subprocess.run([prog] + args + ["--help"], capture_output=True, text=True)
    text = p.stdout if p.stdout.strip() else p.stderr
    return p.returncode, text


def parse_blocks(text):
    blocks, cur = [], []
    for line in text.rstrip("\n").split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def indent(line):
    return len(line) - len(line.lstrip(" "))


ITEM = re.compile(r"^(\s*)(\S.*?)(?:\s{2,}(\S.*))?$")


def is_deflist(block):
    if indent(block[0]) >= 2:
        return True
    if len(block) > 1 and any(indent(ln) >= 4 for ln in block[1:]):
        return all(indent(ln) >= 4 or re.match(r"^\S+\s{2,}\S", ln) for ln in block)
    return False


def term_roff(term):
    """A term ("-r, --rules DIR", "rules push DIR --redis URL") in roff:
    options and command words bold, placeholders italic."""
    def tok(m):
        w = m.group(0)
        if w.startswith("-"):
            return "\\fB" + esc(w).replace("-", "\\-") + "\\fR"
        if re.match(r"^[A-Z][A-Z0-9_=.]*(\.\.\.)?$", w) and w not in ("KEY=VALUE",):
            return "\\fI" + esc(w) + "\\fR"
        if w == "KEY=VALUE":
            return "\\fIKEY\\fR=\\fIVALUE\\fR"
        return "\\fB" + esc(w) + "\\fR"
    return re.sub(r"[^\s\[\]|,]+", tok, term)


def prose_roff(line):
    """A line of help prose: `x` bold, option words with real minus signs."""
    line = esc(line)
    line = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", line)
    line = re.sub(r"(?<![\w-])(--?[A-Za-z][\w-]*)", lambda m: m.group(1).replace("-", "\\-"),
                  line)
    return line_safe(line)


def deflist_roff(block, out):
    items = []   # [terms], [desc lines]
    desc_col = None
    for ln in block:
        ind = indent(ln)
        if items and (ind >= 8 or (desc_col is not None and ind >= desc_col)) and \
                items[-1][1] is not None:
            items[-1][1].append(ln.strip())
            continue
        if items and ind >= 8:
            items[-1][1] = [ln.strip()]
            continue
        m = ITEM.match(ln)
        term, desc = m.group(2), m.group(3)
        if desc is not None:
            desc_col = ln.index(desc, len(m.group(1)) + len(term))
        if items and not items[-1][1]:
            items[-1][0].append(term)
            items[-1][1] = [desc] if desc else []
        else:
            items.append([[term], [desc] if desc else []])
        if not items[-1][1]:
            items[-1][1] = []
    widest = max(len(t) for terms, _ in items for t in terms)
    tp = ".TP %d" % (widest + 2) if widest <= 12 else ".TP"
    for terms, desc in items:
        out.append(tp)
        out.append(term_roff(terms[0]))
        for t in terms[1:]:
            out.append(".TQ")
            out.append(term_roff(t))
        out.extend(prose_roff(d) for d in desc)


def help_to_roff(text, out, exits, title):
    blocks = parse_blocks(text)
    for block in blocks:
        if block[0].startswith("usage:"):
            out.append(".PP")
            out.append(".nf")
            for ln in block:
                ln = re.sub(r"^usage:\s*", "", ln).strip()
                out.append(term_roff(ln))
            out.append(".fi")
            continue
        head = None
        if re.match(r"^[a-z][a-z ]*:$", block[0]):
            head, block = block[0][:-1], block[1:]
            out.append(".PP")
            out.append("\\fB" + esc(head.capitalize()) + ":\\fR")
            if not block:
                continue
        if block[0].startswith("exit status:"):
            exits.append((title, " ".join(ln.strip() for ln in block)[len("exit status:"):]
                          .strip()))
        if is_deflist(block):
            if head is None:
                out.append(".PP")
            out.append(".RS 0")
            deflist_roff(block, out)
            out.append(".RE")
        else:
            out.append(".PP")
            out.extend(prose_roff(ln.strip()) for ln in block)


def commands_of(main_help):
    """The (command, subcommand or None, usage term) of every item of the
    main help's "commands:" block, in order."""
    found = []
    in_cmds = False
    for ln in main_help.split("\n"):
        if re.match(r"^[a-z][a-z ]*:$", ln):
            in_cmds = ln.strip() == "commands:"
            continue
        if not in_cmds:
            continue
        if not ln.strip():
            in_cmds = False
            continue
        if indent(ln) != 2:
            continue
        m = ITEM.match(ln)
        words = m.group(2).split()
        sub = words[1] if len(words) > 1 and re.match(r"^[a-z][a-z-]*$", words[1]) else None
        found.append((words[0], sub, m.group(2)))
    return found


def title_of(help_text, cmd, sub):
    usages = [re.sub(r"^usage:\s*", "", ln).split() for ln in help_text.split("\n")[:8]
              if ln.strip().startswith(("usage:", "fraudwatch "))]
    if len(usages) > 1:
        common = []
        for words in zip(*usages):
            if len(set(words)) != 1:
                break
            common.append(words[0])
        if len(common) >= 2:
            return " ".join(common)
    return "fraudwatch " + cmd + (" " + sub if sub else "")


def cmd_help(argv):
    prog, template, outpath = argv
    rc, main_help = run_help(prog, [])
    if rc != 0 or "commands:" not in main_help:
        print(f"genman.py: {prog} --help failed (exit {rc})", file=sys.stderr)
        return 1
    ver = subprocess.run([prog, "--version"], capture_output=True, text=True).stdout.strip()
    ver = ver.split()[-1] if ver else ""

    synopsis = []
    for cmd, sub, term in commands_of(main_help):
        synopsis.append(".br")
        synopsis.append("\\fBfraudwatch\\fR " + term_roff(term))
    synopsis.append(".br")
    synopsis.append("\\fBfraudwatch\\fR \\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR")
    synopsis = synopsis[1:]

    # The prose of the main help: the paragraph after the usage line, and
    # the ones after the options.
    intro = []
    blocks = parse_blocks(main_help)
    for b in blocks[1:]:
        if re.match(r"^[a-z][a-z ]*:$", b[0]):
            continue
        intro.append(".PP")
        intro.extend(prose_roff(ln.strip()) for ln in b)
    main_opts = []
    for b in blocks:
        if b[0] == "options:":
            deflist_roff(b[1:], main_opts)

    commands, exits, seen = [], [], set()
    for cmd, sub, term in commands_of(main_help):
        args = [cmd] + ([sub] if sub else [])
        rc, text = run_help(prog, args)
        if rc != 0:
            print(f"genman.py: warning: fraudwatch {' '.join(args)} --help exits {rc}",
                  file=sys.stderr)
        if text in seen:
            continue
        seen.add(text)
        title = title_of(text, cmd, sub)
        commands.append('.SS "' + esc(title) + '"')
        body = []
        help_to_roff(text, body, exits, title)
        if body and body[0] == ".PP":
            body = body[1:]
        commands.extend(body)

    exit_lines = []
    for title, what in exits:
        exit_lines.append(".TP")
        exit_lines.append("\\fB" + esc(title) + "\\fR")
        exit_lines.append(prose_roff(what))

    with open(template, encoding="utf-8") as f:
        page = f.read()
    subst = {
        "@DATE@": page_date(),
        "@VERSION@": ver,
        "@SYNOPSIS@": "\n".join(synopsis),
        "@INTRO@": "\n".join(intro),
        "@MAIN_OPTIONS@": "\n".join(main_opts),
        "@COMMANDS@": "\n".join(commands),
        "@EXIT_STATUS@": "\n".join(exit_lines),
    }
    for k, v in subst.items():
        page = page.replace(k, v)
    with open(outpath, "w", encoding="utf-8") as f:
        f.write(page)
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("help", "md"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "help":
        if len(sys.argv) != 5:
            print("usage: genman.py help FRAUDWATCH TEMPLATE OUT", file=sys.stderr)
            return 2
        return cmd_help(sys.argv[2:])
    return cmd_md(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
