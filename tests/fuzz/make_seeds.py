#!/usr/bin/env python3
"""Regenerates the seed corpora tests/fuzz/corpus/* from the shipped rules
(rules/), the demo events (scripts/demo/events.jsonl), the golden cases
(tests/cases/) and a few hand-written hostile inputs.  Deterministic; run
from anywhere:  python3 tests/fuzz/make_seeds.py

Input formats (see README.md): fuzz_event takes one message; fuzz_rules and
fuzz_engine take parts separated by a line "%%", the first part the rules
file, later parts "NAME\\n" + content, and (fuzz_engine) the last part the
events.  Regression cases live in tests/fuzz/regressions/, never here."""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEP = b"\n%%\n"


def out(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(HERE, "corpus", target, name), "wb") as f:
        f.write(data)


def rules_dir_parts(d):
    """A rules directory as (first rules file, [named later parts])."""
    names = sorted(n for n in os.listdir(d) if n.endswith((".json", ".list")))
    jsons = [n for n in names if n.endswith(".json")]
    first = open(os.path.join(d, jsons[0]), "rb").read() if jsons else b"[]"
    rest = [n.encode() + b"\n" + open(os.path.join(d, n), "rb").read()
            for n in names if n != (jsons[0] if jsons else None)]
    return first, rest


def main():
    for t in ("fuzz_event", "fuzz_rules", "fuzz_engine"):
        d = os.path.join(HERE, "corpus", t)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)

    # ---- fuzz_event: single messages ----
    demo = open(os.path.join(ROOT, "scripts/demo/events.jsonl"), "rb").read().splitlines()
    seen_types = {}
    for line in demo:
        try:
            t = json.loads(line)["type"]
        except (ValueError, KeyError, TypeError):
            t = "malformed"
        if seen_types.get(t, 0) < 3:
            seen_types[t] = seen_types.get(t, 0) + 1
            out("fuzz_event", f"demo-{t}-{seen_types[t]}", line)
    for case in ("50-malformed-mixed", "51-malformed-sequence", "11-dotted-paths",
                 "03-regex-chinese", "27-group-by-number"):
        lines = open(os.path.join(ROOT, "tests/cases", case, "events.jsonl"), "rb").read().splitlines()
        for i, line in enumerate(lines[:6]):
            out("fuzz_event", f"case{case[:2]}-{i}", line)
    hostile = {
        "nested-deep": b'{"event_id":"n","type":"t","ts":1,"x":' + b"[" * 200 + b"]" * 200 + b"}",
        "nested-over-limit": b"[" * 1001 + b"]" * 1001,
        "numbers": b'{"event_id":"n","type":"t","ts":1,"a":1e999,"b":-1e999,"c":5e-324,'
                   b'"d":9007199254740993,"e":-0,"f":1e21,"g":1e-7,"h":0.1,"i":123456789012345680000}',
        "ts-max": b'{"event_id":"x","type":"t","ts":253402300799999}',
        "ts-over": b'{"event_id":"x","type":"t","ts":253402300800000}',
        "ts-neg": b'{"event_id":"x","type":"t","ts":-1}',
        "ts-float": b'{"event_id":"x","type":"t","ts":1.5}',
        "ts-exp": b'{"event_id":"x","type":"t","ts":1.7e12}',
        "dup-keys": b'{"event_id":"a","event_id":"b","type":"t","ts":1,"ts":2}',
        "escapes": b'{"event_id":"\\u0041\\ud83d\\ude00","type":"\\u5b89","ts":1,"s":"a\\u0000b\\n\\"\\\\"}',
        "lone-surrogate": b'{"event_id":"\\ud800","type":"t","ts":1}',
        "invalid-utf8": b'{"event_id":"x","type":"t","ts":1,"s":"\xff\xfe"}',
        "overlong": b'{"event_id":"\xc0\x80","type":"t","ts":1}',
        "surrogate-raw": b'{"event_id":"\xed\xa0\x80","type":"t","ts":1}',
        "nul-byte": b'{"event_id":"x","type":"t","ts":1,"s":"a\x00b"}\x00',
        "trailing": b'{"event_id":"x","type":"t","ts":1} x',
        "bom": b'\xef\xbb\xbf{"event_id":"x","type":"t","ts":1}',
        "not-object": b'[1,2,3]',
        "empty": b"",
        "chinese": '{"event_id":"短信","type":"sms","ts":1,"text":"请把钱转到安全账户"}'.encode(),
    }
    for k, v in hostile.items():
        out("fuzz_event", k, v)

    # ---- fuzz_rules: rule sets ----
    shipped = sorted(os.listdir(os.path.join(ROOT, "rules")))
    lists = [n.encode() + b"\n" + open(os.path.join(ROOT, "rules", n), "rb").read()
             for n in shipped if n.endswith(".list")]
    for n in shipped:
        if n.endswith(".json"):
            data = open(os.path.join(ROOT, "rules", n), "rb").read()
            out("fuzz_rules", f"shipped-{n[:-5]}", SEP.join([data] + lists))
    cases = sorted(os.listdir(os.path.join(ROOT, "tests/cases")))
    for c in cases:
        d = os.path.join(ROOT, "tests/cases", c, "rules")
        if not os.path.isdir(d):
            continue
        first, rest = rules_dir_parts(d)
        if c[:2] in ("01", "05", "09", "10", "11", "13", "14", "20", "23", "25", "26",
                     "32", "35", "40", "41", "46", "48"):
            out("fuzz_rules", f"case{c[:2]}", SEP.join([first] + rest))
    bad = {
        "bad-json": b'[{"id":"A",',
        "bad-unknown-member": b'[{"id":"A","event":"x","treshold":{}}]',
        "bad-regex": b'[{"id":"A","event":"x","where":[{"field":"f","regex":"(a"}]}]',
        "bad-list-missing": b'[{"id":"A","event":"x","where":[{"field":"f","in_list":"nope"}]}]',
        "bad-dup-id": b'[{"id":"A","event":"x"},{"id":"A","event":"y"}]' + SEP + b'more.json\n[{"id":"A","event":"z"}]',
        "bad-any-deep": b'[{"id":"A","event":"x","where":[' + b'{"any":[' * 17 +
                        b'{"field":"f","op":"==","value":1}' + b"]}" * 17 + b"]}]",
        "any-16": b'[{"id":"A","event":"x","where":[' + b'{"any":[' * 16 +
                  b'{"field":"f","op":"==","value":1}' + b"]}" * 16 + b"]}]",
        "bad-window": b'[{"id":"A","event":"x","threshold":{"group_by":"a","window_s":604801,"count":{">=":1}}}]',
        "bad-sum-limit": b'[{"id":"A","event":"x","threshold":{"group_by":"a","window_s":1,"sum":{"field":"n",">=":1e13}}}]',
        "bad-seq-one-step": b'[{"id":"A","sequence":[{"event":"x","key":"k"}],"within_s":1}]',
        "bad-many-errors": b"[" + b",".join(b'{"id":"R%d"}' % i for i in range(60)) + b"]",
        "bad-list-name": b'[{"id":"A","event":"x"}]' + SEP + b"bad name.list\nx\n",
        "list-dup-values": b'[{"id":"A","event":"x","where":[{"field":"f","in_list":"l"}]}]' + SEP +
                           b"l.list\n# c\n a \na\n\n\tb\t\na\n",
        "object-form": b'{"rules":[{"id":"A","event":"*","severity":"critical","enabled":false}]}',
        "group-by-8": b'[{"id":"A","event":"x","threshold":{"group_by":["a","b","c","d","e","f","g","h"],"window_s":1,"count":{"==":1}}}]',
        "group-by-9": b'[{"id":"A","event":"x","threshold":{"group_by":["a","b","c","d","e","f","g","h","i"],"window_s":1,"count":{"==":1}}}]',
        "utf8-name": '[{"id":"A","name":"电话诈骗","event":"x"}]'.encode(),
        "nul-in-file": b'[{"id":"A","event":"x"}]\x00',
        "no-rules-file": b"[]" + SEP + b"x.txt\nhello",
    }
    for k, v in bad.items():
        out("fuzz_rules", k, v)

    # ---- fuzz_engine: rules + events ----
    for c in cases:
        d = os.path.join(ROOT, "tests/cases", c)
        if not os.path.isdir(os.path.join(d, "rules")):
            continue
        first, rest = rules_dir_parts(os.path.join(d, "rules"))
        events = b"\n".join(open(os.path.join(d, "events.jsonl"), "rb").read().splitlines()[:64])
        out("fuzz_engine", f"case{c[:2]}", SEP.join([first] + rest + [events]))
    # the shipped rules over the first demo events
    allrules = [json.loads(open(os.path.join(ROOT, "rules", n)).read()) for n in shipped if n.endswith(".json")]
    merged = []
    for r in allrules:
        merged += r["rules"] if isinstance(r, dict) else r
    out("fuzz_engine", "shipped-demo",
        SEP.join([json.dumps(merged, ensure_ascii=False).encode()] + lists + [b"\n".join(demo[:40])]))
    # events only: the built-in default rule set
    out("fuzz_engine", "default-rules",
        SEP.join([b"[]", b"\n".join([
            b'{"event_id":"c1","type":"call","ts":1000,"from":"170","to":"138"}',
            b'{"event_id":"c2","type":"call","ts":2000,"from":"170","to":"139"}',
            b'{"event_id":"s1","type":"sms","ts":3000,"from":"1","to":"138","text":"\xe5\xae\x89\xe5\x85\xa8\xe8\xb4\xa6\xe6\x88\xb7"}',
            b'{"event_id":"t1","type":"transfer","ts":4000,"from":"138","to":"x","n":100.25}',
            b'{"event_id":"t2","type":"transfer","ts":4001,"from":"138","to":"x","n":0.26}',
            b'{"event_id":"p","type":"e","ts":5000,"n":11,"a":{"b":2,"c":"x1"}}',
            b'{"event_id":"late","type":"call","ts":500,"from":"170","to":"140"}',
            b"not json",
        ])]))
    out("fuzz_engine", "hostile-regex",
        SEP.join([b'[{"id":"H","event":"sms","where":[{"field":"text","regex":"^(a+)+$"}]}]',
                  b'{"event_id":"h","type":"sms","ts":1,"text":"' + b"a" * 3000 + b'b"}\n'
                  b'{"event_id":"g","type":"sms","ts":2,"text":"aaa"}']))
    out("fuzz_engine", "numbers-as-keys",
        SEP.join([b'[{"id":"D","event":"*","threshold":{"group_by":"k","window_s":60,'
                  b'"distinct":{"field":"v",">=":2}}}]',
                  b'{"event_id":"1","type":"t","ts":1,"k":100.0,"v":"100"}\n'
                  b'{"event_id":"2","type":"t","ts":2,"k":"100","v":100}\n'
                  b'{"event_id":"3","type":"t","ts":3,"k":1e2,"v":1e-7}']))

    total = sum(os.path.getsize(os.path.join(dp, f))
                for dp, _, fs in os.walk(os.path.join(HERE, "corpus")) for f in fs)
    print(f"corpus: {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
