#!/usr/bin/env python3
"""report.py — the arithmetic and the report of bench/run.

Owns everything bench/run computes from raw data and everything it writes:
latency percentiles, detection quality against the generator's ground
truth, throughput over time from a metrics trace, the markdown report and
the gnuplot plots.  It is a module of pure functions (bench/run imports
it; tests/bench/test_report.py checks them on hand-worked input) plus a
small command line, so a results folder can be re-rendered or any alert
file scored without running the bench again:

    report.py render RESULTS_DIR          report.md + plots from results.json
    report.py score --truth T ALERTS...   detection quality of alert files
    report.py latency --side S ALERTS     percentiles of "append_ts<TAB>alert"

Definitions (also printed in every report):
  percentile  nearest rank: the p-th percentile of n sorted samples is the
              sample at rank ceil(p/100 * n), 1-based (so p100 = max); the
              same rule as bench/latency.c.
  latency     per alert: the alert's broker timestamp (LogAppendTime of the
              alert topic) minus the send time of the input message whose
              event_id the alert names (bench/loadgen's side file).
  precision   an alert (deduplicated by alert_id) is a true positive when
              some truth line lists its rule_id and has its subject.
  recall      a truth line is detected when every rule it lists has an
              alert with its subject; recall of a scenario = detected lines
              / lines.  Lines marked "incidental" (side-effect alerts the
              generator knows about) are scored as their own scenarios,
              "<scenario> (incidental)".  With a `present` set of event ids
              (a run that sent only a prefix of the stream), lines whose
              events were not all sent are left out.

Standard library only; gnuplot is run as a program.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

PCTS = (50, 95, 99, 99.9)


# --- latency ------------------------------------------------------------------

def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list; None when empty."""
    n = len(sorted_vals)
    if n == 0:
        return None
    rank = math.ceil(p / 100.0 * n)
    return sorted_vals[min(max(rank, 1), n) - 1]


def latency_stats(samples):
    """samples: latencies in ms.  -> {n, p50, p95, p99, p99.9, max, mean}."""
    v = sorted(samples)
    out = {"n": len(v)}
    for p in PCTS:
        out[f"p{p:g}"] = percentile(v, p)
    out["max"] = v[-1] if v else None
    out["mean"] = (sum(v) / len(v)) if v else None
    return out


def read_side(path):
    """bench/loadgen's side file: event_id<TAB>send_ts_ms per line."""
    side = {}
    with open(path) as f:
        for line in f:
            eid, _, ts = line.rstrip("\n").partition("\t")
            if ts:
                side[eid] = int(ts)
    return side


# The daemon's latency stamps (output.latency_stamps = on): alert message
# headers, read into the alert dict as the STAMPS fields below.
HEADER_STAMPS = {"fw.t.input_append": "input_append_ts", "fw.t.polled": "polled_ts",
                 "fw.t.batched": "batched_ts", "fw.t.retired": "retired_ts",
                 "fw.t.produced": "produced_ts"}


def read_timed_alerts(path):
    """kcat -f '%T\\t%s\\n' or '%T\\t%h\\t%s\\n' output (headers as
    k=v,k=v): [(append_ts_ms, alert dict)], the fw.t.* headers as fields."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) < 2 or not parts[-1]:
                continue
            a = json.loads(parts[-1])
            if len(parts) == 3:
                for kv in parts[1].split(","):
                    k, _, v = kv.partition("=")
                    if k in HEADER_STAMPS and v.lstrip("-").isdigit():
                        a.setdefault(HEADER_STAMPS[k], int(v))
            out.append((int(parts[0]), a))
    return out


def alert_latencies(timed_alerts, side):
    """Latency (ms) of each alert whose event_id is in the side file, and
    the number of alerts whose event was not (sent by someone else)."""
    lat, unknown = [], 0
    for ts, a in timed_alerts:
        sent = side.get(a.get("event_id"))
        if sent is None:
            unknown += 1
        else:
            lat.append(ts - sent)
    return lat, unknown


# --- where the latency goes (issue 16, item 1) --------------------------------------
#
# Each alert's latency runs from the send time of its event (loadgen's side
# file) to the alert's broker append time (LogAppendTime).  In between, the
# alert may carry wall-clock stamps of the daemon's own (same machine, same
# clock); the stages are the gaps between consecutive stamps present.  Today
# the daemon stamps only `detected_ts` (when the engine rendered the alert),
# so the split is in two: everything up to detection (loadgen's linger, the
# input append, consume wait, batch wait, engine) and everything after it
# (queueing to the producer, linger, the alert's append).  The stamps a finer
# split needs are listed in STAMPS (bench/README.md, "Where the p99 goes",
# says where the daemon would take each); a daemon that adds them, as alert
# fields or as message headers merged into the alert dict, is split finer
# with no change here.

# (alert field, the stage that ends at it); in path order.
STAMPS = (
    ("input_append_ts", "input append: loadgen linger, the event's broker append"),
    ("polled_ts", "consume wait: fetch, consumer queue, until the daemon polls it"),
    ("batched_ts", "batch wait: in the driver until its batch is cut"),
    ("detected_ts", "engine: queue to a worker, matching"),
    ("retired_ts", "retire wait: until its batch and every earlier one are done"),
    ("produced_ts", "to the producer: handed to rd_kafka_produce"),
)
LAST_STAGE = "produce and broker append of the alert"


def stage_names(stamps):
    """The stage ending at each stamp of `stamps` (a subset of STAMPS, in
    order), then the last one; a stage whose start stamp is missing takes
    in the stages before it."""
    names, pending = [], []
    for field, label in STAMPS:
        pending.append(label)
        if field in stamps:
            names.append(pending[0] if len(pending) == 1 else
                         "up to " + field + ": " + "; ".join(x.split(":")[0] for x in pending))
            pending = []
    names.append(LAST_STAGE if not pending else
                 "; ".join(x.split(":")[0] for x in pending) + "; " + LAST_STAGE)
    return names


def stage_split(timed_alerts, side, p=99):
    """Split of the latency tail into stages.  `timed_alerts`: [(append_ms,
    alert dict)]; `side`: event_id -> send ms.  The tail is the alerts whose
    latency is at or above the p-th percentile (nearest rank); a stage's
    share is its summed time over the tail / the tail's summed latency.
    Alerts lacking a stamp that others have are left out (counted in
    `incomplete`).  -> {"p": p, "pN_ms", "tail", "incomplete", "stamps",
    "stages": [{"stage", "share", "tail_mean_ms", "p50_ms", "p99_ms"}]}, or
    None without alerts."""
    rows = []
    for ts, a in timed_alerts:
        sent = side.get(a.get("event_id"))
        if sent is not None:
            rows.append((ts, sent, a))
    if not rows:
        return None
    stamps = [f for f, _ in STAMPS if any(isinstance(a.get(f), int) for _, _, a in rows)]
    paths, incomplete = [], 0
    for ts, sent, a in rows:
        if not all(isinstance(a.get(f), int) for f in stamps):
            incomplete += 1
            continue
        points = [sent] + [a[f] for f in stamps] + [ts]
        paths.append((ts - sent, [b - x for x, b in zip(points, points[1:])]))
    if not paths:
        return None
    lat = sorted(t for t, _ in paths)
    cut = percentile(lat, p)
    tail = [parts for t, parts in paths if t >= cut]
    total = sum(sum(parts) for parts in tail)
    names = stage_names(stamps)
    stages = []
    for i, name in enumerate(names):
        col = sorted(parts[i] for _, parts in paths)
        tsum = sum(parts[i] for parts in tail)
        stages.append({"stage": name, "share": tsum / total if total else None,
                       "tail_mean_ms": tsum / len(tail),
                       "p50_ms": percentile(col, 50), "p99_ms": percentile(col, 99)})
    return {"p": p, f"p{p:g}_ms": cut, "tail": len(tail), "incomplete": incomplete,
            "stamps": stamps, "stages": stages}


# --- ceilings and the peer (issue 16, items 3 and 4) ------------------------------

CEILING_TARGET = 0.8   # daemon backlog drain / consume-only


def parse_kv_summary(line, prog):
    """The figures of a summary line of bench/consume_only or the peer:
    'PROG: N messages, S s, R msg/s (...), ..., cpu U s, maxrss K KiB'."""
    if not line.startswith(prog + ":"):
        raise ValueError(f"not a {prog} summary: {line!r}")
    body = line.split(":", 1)[1]
    out = {}
    for part in body.split(","):
        w = part.split()
        if len(w) >= 2 and w[1] == "messages":
            out["messages"] = int(w[0])
        elif len(w) >= 2 and w[1] == "s" and "span_s" not in out:
            out["span_s"] = float(w[0])
        elif len(w) >= 2 and w[1] == "msg/s":
            out["msg_per_s"] = float(w[0])
        elif len(w) >= 3 and w[0] == "cpu":
            out["cpu_s"] = float(w[1])
        elif len(w) >= 3 and w[0] == "maxrss":
            out["hwm_kib"] = int(w[1])
    for k in ("messages", "msg_per_s", "cpu_s", "hwm_kib"):
        if k not in out:
            raise ValueError(f"{prog} summary without {k}: {line!r}")
    return out


def parse_consume_only(line):
    return parse_kv_summary(line, "consume_only")


def median_of(throughput):
    """", median of N rounds" when the backlog phase ran more than one."""
    n = len(throughput.get("backlog_rounds") or [])
    return f", median of {n} rounds" if n > 1 else ""


def ceiling_ratios(throughput):
    """daemon backlog drain / each reference measured in the same run.
    -> {"consume_only": r or None, "consume_only_met": bool or None,
        "passthrough": r or None}"""
    d = throughput.get("daemon_backlog")
    c, p = throughput.get("consume_only"), throughput.get("passthrough")
    out = {"consume_only": None, "consume_only_met": None, "passthrough": None}
    if not d or not d.get("events_per_s"):
        return out
    if c and c.get("msg_per_s"):
        out["consume_only"] = d["events_per_s"] / c["msg_per_s"]
        out["consume_only_met"] = out["consume_only"] >= CEILING_TARGET
    if p and p.get("msg_per_s"):
        out["passthrough"] = d["events_per_s"] / p["msg_per_s"]
    return out


def alert_keys(alerts, rules=None):
    """{(rule_id, subject, event_id)} of alert dicts, only `rules` if given
    (fraudwatch's alert_id is a hash over exactly these three)."""
    return {(a["rule_id"], a["subject"], a["event_id"]) for a in alerts
            if rules is None or a["rule_id"] in rules}


def compare_alerts(fw, peer, rules=None):
    """Agreement of two alert lists by (rule_id, subject, event_id).
    -> {"same", "both", "only_fw", "only_peer", "examples_only_fw",
        "examples_only_peer"}"""
    a, b = alert_keys(fw, rules), alert_keys(peer, rules)
    return {"same": a == b, "both": len(a & b), "only_fw": len(a - b),
            "only_peer": len(b - a),
            "examples_only_fw": [list(x) for x in sorted(a - b)[:5]],
            "examples_only_peer": [list(x) for x in sorted(b - a)[:5]]}


def median(vals):
    v = sorted(x for x in vals if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def per_cpu(events, cpu_s):
    return events / cpu_s if cpu_s else None


def peer_summary(rounds):
    """Side-by-side rounds of fraudwatch and the peer, grouped by input
    partitions.  Each round: {"partitions", "events", "fw": {events_per_s,
    cpu_s, hwm_kib}, "peer": {events_per_s, cpu_s, hwm_kib, and optionally
    warm_events_per_s, warm_cpu_s}, "agree": bool}.  Per partition count
    the medians over its rounds of each side's events/s, CPU s, events per
    CPU second and peak RSS, and the ratios fraudwatch / peer of the
    medians (peak RSS: peer / fraudwatch, how many times more memory the
    peer takes); `agree` is true when every round's alert sets agreed."""
    groups = {}
    for r in rounds:
        groups.setdefault(r["partitions"], []).append(r)
    out = {}
    for parts, rs in sorted(groups.items()):
        g = {"rounds": len(rs), "agree": all(r.get("agree") for r in rs)}
        for side in ("fw", "peer"):
            g[side] = {
                "events_per_s": median(r[side]["events_per_s"] for r in rs),
                "cpu_s": median(r[side]["cpu_s"] for r in rs),
                "events_per_cpu_s": median(per_cpu(r["events"], r[side]["cpu_s"]) for r in rs),
                "hwm_kib": median(r[side]["hwm_kib"] for r in rs),
            }
        warm = [r for r in rs if r["peer"].get("warm_events_per_s")]
        if warm:
            g["peer"]["warm_events_per_s"] = median(r["peer"]["warm_events_per_s"] for r in warm)
            g["peer"]["warm_events_per_cpu_s"] = median(
                per_cpu(r["events"], r["peer"].get("warm_cpu_s")) for r in warm)
        f, p = g["fw"], g["peer"]

        def ratio(x, y):
            return x / y if x and y else None
        g["ratio"] = {
            "events_per_s": ratio(f["events_per_s"], p["events_per_s"]),
            "events_per_cpu_s": ratio(f["events_per_cpu_s"], p["events_per_cpu_s"]),
            "peak_rss_peer_over_fw": ratio(p["hwm_kib"], f["hwm_kib"]),
            "warm_events_per_s": ratio(f["events_per_s"], p.get("warm_events_per_s")),
            "warm_events_per_cpu_s": ratio(f["events_per_cpu_s"],
                                           p.get("warm_events_per_cpu_s")),
        }
        out[parts] = g
    return out


# --- detection quality ----------------------------------------------------------

def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def scenario_name(line):
    return line["scenario"] + (" (incidental)" if line.get("incidental") else "")


def score(alerts, truth, present=None):
    """Detection quality of `alerts` (dicts with alert_id, rule_id, subject)
    against `truth` (the generator's lines).  -> dict, see the module doc."""
    uniq = {}
    for a in alerts:
        uniq.setdefault(a["alert_id"], a)
    fired = {(a["rule_id"], a["subject"]) for a in uniq.values()}
    known = set()
    for t in truth:
        for r in t["rules"]:
            known.add((r, t["subject"]))

    scen = {}
    missed = []
    for t in truth:
        if present is not None and not all(e in present for e in t["event_ids"]):
            continue
        name = scenario_name(t)
        s = scen.setdefault(name, {"lines": 0, "detected": 0})
        s["lines"] += 1
        if all((r, t["subject"]) in fired for r in t["rules"]):
            s["detected"] += 1
        else:
            missed.append({"scenario": name, "subject": t["subject"],
                           "rules": [r for r in t["rules"] if (r, t["subject"]) not in fired]})
    for s in scen.values():
        s["recall"] = s["detected"] / s["lines"] if s["lines"] else None

    fp = [a for a in uniq.values() if (a["rule_id"], a["subject"]) not in known]
    n = len(uniq)
    planted = [s for k, s in scen.items() if not k.endswith("(incidental)")]
    lines = sum(s["lines"] for s in planted)
    detected = sum(s["detected"] for s in planted)
    return {
        "alerts": len(alerts),
        "unique_alerts": n,
        "duplicates": len(alerts) - n,
        "true_positives": n - len(fp),
        "false_positives": len(fp),
        "precision": (n - len(fp)) / n if n else None,
        "planted_lines": lines,
        "planted_detected": detected,
        "recall": detected / lines if lines else None,
        "scenarios": dict(sorted(scen.items())),
        "missed": missed,
        "false_positive_alerts": [
            {"alert_id": a["alert_id"], "rule_id": a["rule_id"], "subject": a["subject"],
             "event_id": a.get("event_id")} for a in fp],
    }


# --- throughput over time ---------------------------------------------------------

def read_trace(path):
    """watch trace: 'seconds events_total [cpu_s]' per line."""
    pts = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                pts.append((float(p[0]), float(p[1])))
    return pts


def rate_series(points, step=0.5):
    """(t, events_total) samples -> [(t_mid, events/s)] over consecutive
    windows of at least `step` seconds, from the first sample."""
    out = []
    if not points:
        return out
    t0, e0 = points[0]
    for t, e in points[1:]:
        if t - t0 >= step:
            out.append(((t0 + t) / 2, (e - e0) / (t - t0)))
            t0, e0 = t, e
    return out


# --- the report ---------------------------------------------------------------------

def fmt_int(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_pct(v):
    return "–" if v is None else f"{100 * v:.1f} %"


def fmt_mib(kib):
    return "–" if kib is None else f"{kib / 1024:,.0f} MiB"


def rate_label(r):
    return "max" if r == "max" else f"{int(r) // 1000}k"


def met(ok):
    return "met" if ok else "**NOT met**"


def fmt_x(v):
    return "–" if v is None else f"{v:.2f}×"


def render_peer(pe, w):
    """The --peer section: per partition count, medians of each side and
    their ratios; then every round."""
    w("## fraudwatch against a Kafka Streams peer")
    w("")
    w(f"Both drain the same topic holding the whole stream, with the rules "
      f"{', '.join(pe['rules'])} read from the same files (bench/peer/README.md lists the "
      f"semantic differences that remain).  Medians over the rounds; ratios are fraudwatch "
      f"over the peer, except memory (peer over fraudwatch).  Peer JVM options: "
      f"`{pe.get('java_opts') or '(JVM defaults)'}`.")
    w("")
    w("| partitions | rounds | fraudwatch ev/s | peer ev/s cold / warm | ev/s ratio cold / warm "
      "| fraudwatch ev per CPU s | peer ev per CPU s cold / warm | ev per CPU s ratio cold / warm "
      "| peak RSS fraudwatch / peer (×) | alert sets agree |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for parts, g in pe["summary"].items():
        f, p, r = g["fw"], g["peer"], g["ratio"]
        w(f"| {parts} | {g['rounds']} | {fmt_int(f['events_per_s'])} | "
          f"{fmt_int(p['events_per_s'])} / {fmt_int(p.get('warm_events_per_s'))} | "
          f"**{fmt_x(r['events_per_s'])}** / {fmt_x(r['warm_events_per_s'])} | "
          f"{fmt_int(f['events_per_cpu_s'])} | {fmt_int(p['events_per_cpu_s'])} / "
          f"{fmt_int(p.get('warm_events_per_cpu_s'))} | **{fmt_x(r['events_per_cpu_s'])}** / "
          f"{fmt_x(r['warm_events_per_cpu_s'])} | {fmt_mib(f['hwm_kib'])} / "
          f"{fmt_mib(p['hwm_kib'])} ({fmt_x(r['peak_rss_peer_over_fw'])}) | "
          f"{'yes' if g['agree'] else '**no**'} |")
    w("")
    w("Targets (issue 16): fraudwatch ≥ 10× the peer in events per CPU second against a cold "
      "JVM, ≥ 5× against a warm one.")
    w("")
    w("| partitions | round | first | fraudwatch ev/s, CPU s, alerts | peer ev/s cold (warm), "
      "CPU s, alerts | alerts in both / only fraudwatch / only peer: cold pass (warm pass) |")
    w("|---:|---:|---|---|---|---|")

    def counts(c):
        return f"{c['both']} / {c['only_fw']} / {c['only_peer']}"
    for x in pe["rounds"]:
        f, p, c, cw = x["fw"], x["peer"], x["compare"], x.get("compare_warm")
        warm = p.get("warm_events_per_s")
        w(f"| {x['partitions']} | {x['round']} | {x['order'][0]} | {fmt_int(f['events_per_s'])}, "
          f"{f['cpu_s']:.1f}, {f['alerts']} | {fmt_int(p['events_per_s'])}"
          + (f" ({fmt_int(warm)})" if warm else "") +
          f", {p['cpu_s']:.1f}, {p['alerts']} | {counts(c)}"
          + (f" ({counts(cw)})" if cw else "") + " |")
    w("")
    diff = [(x, name, c) for x in pe["rounds"]
            for name, c in (("cold", x["compare"]), ("warm", x.get("compare_warm")))
            if c and not c["same"]]
    for x, name, c in diff[:6]:
        w(f"- {x['partitions']} partition(s), round {x['round']}, {name} pass: only fraudwatch "
          f"{c['examples_only_fw']}, only the peer {c['examples_only_peer']}")
    if diff:
        w("")


def render_markdown(res):
    m = res["meta"]
    L = []
    w = L.append
    w(f"# fraudwatch bench report — {m['date']}")
    w("")
    w(f"- command: `{m['command']}`")
    w(f"- commit: {m['commit']}")
    w(f"- machine: {m['machine']}")
    w(f"- input: {m['events']:,} events from `bench/gen --seed {m['seed']} --fraud-rate "
      f"{m['fraud_rate']:g}` ({m['planted']} planted scenarios), topic of "
      f"{m['partitions']} partition(s), daemon with {m['threads']} engine threads, "
      f"rules from Redis (`fraudwatch rules push rules/`)")
    w(f"- broker, Redis, daemon and load generator share the machine; "
      f"load average at the start: {m['loadavg']}")
    w("")

    mx = next((r for r in res.get("runs", []) if r["rate"] == "max"), None)
    t = res.get("throughput", {})
    if res.get("peer"):
        render_peer(res["peer"], w)
    if mx or t or res.get("replay"):
        w("## Throughput")
        w("")
        w("| measure | figure | |")
        w("|---|---:|---|")
    if mx:
        e2e = mx.get("e2e_s")
        w(f"| end to end: {mx['events']:,} events produced as fast as possible "
          f"and processed by the daemon | {e2e:.2f} s = {fmt_int(mx['events'] / e2e)} ev/s "
          f"| target < 10 s for 1.7M: {met(e2e < 10) if mx['events'] >= 1_700_000 else 'n/a (not 1.7M)'} |")
    d, p, c = t.get("daemon_backlog"), t.get("passthrough"), t.get("consume_only")
    cr = ceiling_ratios(t)
    if d:
        w(f"| daemon draining the topic (backlog, no producer running{median_of(t)}) | "
          f"{fmt_int(d['events_per_s'])} ev/s | {d['cpu_s']:.1f} CPU s, peak RSS {fmt_mib(d['hwm_kib'])} |")
    if c:
        w(f"| consume-only ceiling over the same topic (the daemon's consumer settings, "
          f"no parsing, no output, commit every 5 s{median_of(t)}) | {fmt_int(c['msg_per_s'])} msg/s | "
          f"{c['cpu_s']:.1f} CPU s, peak RSS {fmt_mib(c['hwm_kib'])} |")
    if cr["consume_only"] is not None:
        w(f"| daemon / consume-only | **{cr['consume_only']:.2f}** | target ≥ "
          f"{CEILING_TARGET:.2f}: {met(cr['consume_only_met'])} |")
    rounds = t.get("backlog_rounds") or []
    if len(rounds) > 1 and all(r.get("consume_only") for r in rounds):
        each = ", ".join(
            f"{r['daemon']['events_per_s'] / r['consume_only']['msg_per_s']:.2f} "
            f"({'daemon' if r['first'] == 'daemon' else 'consume-only'} first: "
            f"{fmt_int(r['daemon']['events_per_s'])} / {fmt_int(r['consume_only']['msg_per_s'])})"
            for r in rounds)
        w(f"| the rounds (medians above) | {each} | |")
    if p:
        w(f"| pass-through over the same topic (consume + produce a copy of every message, "
          f"no matching: more work than the daemon's output, not a ceiling) | "
          f"{fmt_int(p['msg_per_s'])} msg/s | |")
    if cr["passthrough"] is not None:
        w(f"| daemon / pass-through (reference only) | {cr['passthrough']:.2f} | |")
    rp = res.get("replay")
    if rp:
        w(f"| `fraudwatch replay --threads {rp['threads']}` over the same file (no Kafka) | "
          f"{fmt_int(rp['events_per_s'])} ev/s | {rp['alerts']} alerts, peak RSS {fmt_mib(rp['hwm_kib'])} |")
    w("")
    if os.path.exists(os.path.join(res.get("dir", "."), "throughput.png")):
        w("![events processed per second over time](throughput.png)")
        w("")

    runs = res.get("runs", [])
    if runs:
        w("## Event-to-alert latency by offered rate")
        w("")
        w("Alert broker append time minus the send time of the event it names, per alert (ms).")
        w("")
        w("| offered | achieved | events | alerts | p50 | p95 | p99 | p99.9 | max | recall / precision | daemon CPU s | peak RSS | checkpoints: n, longest, longest stop |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in runs:
            l = r["latency_ms"]
            off = "max" if r["rate"] == "max" else f"{r['rate']:,}/s"
            w(f"| {off} | {fmt_int(r.get('achieved'))}/s | {r['events']:,} | {l['n']:,} | "
              f"{fmt_ms(l['p50'])} | {fmt_ms(l['p95'])} | {fmt_ms(l['p99'])} | {fmt_ms(l['p99.9'])} | "
              f"{fmt_ms(l['max'])} | {fmt_pct(r.get('recall'))} / {fmt_pct(r.get('precision'))} | "
              f"{r['cpu_s']:.1f} | {fmt_mib(r['hwm_kib'])} | "
              f"{r.get('checkpoints', 0)}, {r.get('checkpoint_max_s', 0) * 1000:.0f} ms, "
              f"{r.get('checkpoint_pause_max_s', 0) * 1000:.0f} ms |")
        w("")
        w("A checkpoint runs mostly beside the stream; its *stop* is the time the daemon's "
          "main loop is held (`fraudwatch_checkpoint_pause_seconds`), its length the whole "
          "checkpoint up to the offset commit (`fraudwatch_checkpoint_seconds`).")
        w("")
        w("Recall and precision per row count the planted scenarios whose events were all "
          "sent in that run (a paced run sends the first rate × seconds events).")
        w("")
        w("At `max` the load generator and the daemon run at the same time; its latency "
          "includes the time events wait in the topic while the daemon catches up.")
        w("")
        if os.path.exists(os.path.join(res.get("dir", "."), "latency.png")):
            w("![latency percentiles against offered rate](latency.png)")
            w("")
        split = [r for r in runs if r.get("stages")]
        if split:
            w("### Where the p99 goes")
            w("")
            w("Per offered rate, the alerts at or above the p99 latency (the tail) and the "
              "share of their summed latency spent in each stage, from the daemon's own "
              "wall-clock stamps on the alert (same machine, same clock as the load "
              "generator and the broker).  Stamps found on the alerts: "
              + ", ".join(f"`{x}`" for x in split[0]["stages"]["stamps"]) + " (`detected_ts` "
              "in the alert; the others from the fw.t.* headers of `output.latency_stamps = "
              "on`, and `input_append_ts` is the input topic's LogAppendTime); stages "
              "between two stamps are shown as one.  From the load generator's send to "
              "the alert's broker append: input append (loadgen's batching, the broker), "
              "consume wait (fetch and the consumer queue, until the daemon polls it), "
              "batch wait (until its batch goes to the workers), engine (the queue to a "
              "worker and matching, up to `detected_ts`), retire wait (until its batch "
              "and every earlier one are done and the alert is handed to the producer), "
              "then the producer's batching and the alert's broker append.")
            w("")
            w("| offered | p99 | tail alerts | stage | share of the tail | tail mean | "
              "stage p50 / p99 (all alerts) |")
            w("|---:|---:|---:|---|---:|---:|---:|")
            for r in split:
                st = r["stages"]
                off = "max" if r["rate"] == "max" else f"{r['rate']:,}/s"
                for i, x in enumerate(st["stages"]):
                    lead = (f"| {off} | {fmt_ms(st.get('p99_ms'))} | {st['tail']} " if i == 0
                            else "| | | ")
                    w(f"{lead}| {x['stage']} | {fmt_pct(x['share'])} | "
                      f"{x['tail_mean_ms']:.1f} ms | {fmt_ms(x['p50_ms'])} / "
                      f"{fmt_ms(x['p99_ms'])} ms |")
            w("")

    q = res.get("quality")
    if q:
        w("## Detection quality against the ground truth")
        w("")
        w(f"Alerts of the `{q['source']}` run ({q['alerts']:,} alerts, {q['duplicates']} "
          f"duplicates by alert_id) against the generator's truth file.")
        w("")
        w("| scenario | planted | detected | recall |")
        w("|---|---:|---:|---:|")
        for name, s in q["scenarios"].items():
            w(f"| {name} | {s['lines']} | {s['detected']} | {fmt_pct(s['recall'])} |")
        w(f"| **all planted** | **{q['planted_lines']}** | **{q['planted_detected']}** | "
          f"**{fmt_pct(q['recall'])}** |")
        w("")
        w(f"Precision: {q['true_positives']:,} of {q['unique_alerts']:,} alerts name a planted "
          f"scenario's rule and subject = **{fmt_pct(q['precision'])}** "
          f"({q['false_positives']} false positives).  Recall target 100 %: "
          f"{met(q['recall'] == 1.0)}.")
        if q["missed"]:
            w("")
            w("Missed: " + "; ".join(f"{x['scenario']} {x['subject']} ({', '.join(x['rules'])})"
                                     for x in q["missed"][:10]))
        if q["false_positive_alerts"]:
            w("")
            w("False positives: " + "; ".join(f"{x['rule_id']} {x['subject']} ({x['event_id']})"
                                              for x in q["false_positive_alerts"][:10]))
        if "replay_same_alerts" in q:
            w("")
            w(f"The daemon's alert_id set equals `fraudwatch replay`'s over the same file: "
              f"{'yes' if q['replay_same_alerts'] else '**no**'}"
              + ("" if q["replay_same_alerts"] else
                 f" (only daemon: {q['only_daemon']}, only replay: {q['only_replay']})") + ".")
        w("")

    mem = res.get("memory")
    if mem:
        w("## Resources")
        w("")
        if mx:
            w(f"- daemon over the `max` run: {mx['cpu_s']:.1f} CPU s, peak RSS {fmt_mib(mx['hwm_kib'])} "
              f"(its consumer queues fetched events up to "
              f"`kafka.consumer.queued.max.messages.kbytes`, 16 MiB by default).")
        w(f"- memory per 1 000 live keys: **{mem['kib_per_1000_keys']:.0f} KiB** "
          f"(≈ {mem['kib_per_1000_keys'] * 1.024:.0f} bytes a key) — the slope of "
          f"`fraudwatch replay`'s peak RSS between {mem['small']['events']:,} events "
          f"({mem['small']['keys']:,} keys, {fmt_mib(mem['small']['hwm_kib'])}) and "
          f"{mem['full']['events']:,} events ({mem['full']['keys']:,} keys, "
          f"{fmt_mib(mem['full']['hwm_kib'])}), so buffers that do not grow with the keys "
          f"are left out.")
        w("")

    w("## Method")
    w("")
    for line in res.get("method", []):
        w(line)
    w("")
    w("Definitions: percentiles are nearest-rank (rank ⌈p·n/100⌉); an alert is a true "
      "positive when a truth line lists its rule and subject; a truth line is detected when "
      "each of its rules alerted on its subject (bench/report.py).")
    return "\n".join(L) + "\n"


GNUPLOT_LATENCY = """\
set terminal pngcairo size 900,520 font ",10"
set output '{out}'
set title 'fraudwatch: event-to-alert latency by offered rate'
set xlabel 'offered rate (events/s)'
set ylabel 'latency (ms)'
set logscale y
set grid ytics
set key top left
set style data linespoints
set arrow from graph 0, first 50 to graph 1, first 50 nohead dashtype 2 lc rgb 'gray40'
set label 'p99 target: 50 ms' at graph 0.01, first 58 tc rgb 'gray40'
plot '{dat}' using 0:2:xtic(1) title 'p50' pt 7, \\
     '' using 0:3 title 'p95' pt 7, \\
     '' using 0:4 title 'p99' pt 7, \\
     '' using 0:5 title 'p99.9' pt 7, \\
     '' using 0:6 title 'max' pt 7
"""

GNUPLOT_THROUGHPUT = """\
set terminal pngcairo size 900,520 font ",10"
set output '{out}'
set title 'fraudwatch: events processed per second'
set xlabel 'seconds since the phase started (just before the first send)'
set ylabel 'events/s (0.5 s windows; shorter on short runs)'
set format y '%.1s%c'
set grid
set key top right
plot {plots}
"""


def gnuplot(exe, script):
    p = subprocess.run([exe], input=script, text=True, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError(f"gnuplot failed: {p.stderr.strip()}\nscript:\n{script}")


def write_plots(res, outdir):
    """latency.png and throughput.png with gnuplot; returns the files made."""
    gp = shutil.which("gnuplot")
    if not gp:
        return []
    made = []
    runs = [r for r in res.get("runs", []) if r["latency_ms"]["n"] > 0]
    if runs:
        dat = os.path.join(outdir, "latency.dat")
        with open(dat, "w") as f:
            f.write("# offered p50 p95 p99 p99.9 max (ms)\n")
            for r in runs:
                l = r["latency_ms"]
                # log scale: a 0 ms sample is drawn at 0.5 ms
                vals = [max(l[k], 0.5) for k in ("p50", "p95", "p99", "p99.9", "max")]
                f.write(rate_label(r["rate"]) + " " + " ".join(f"{v:g}" for v in vals) + "\n")
        out = os.path.join(outdir, "latency.png")
        gnuplot(gp, GNUPLOT_LATENCY.format(out=out, dat=dat))
        made.append(out)
    plots = []
    for name, title in (("max", "produced and processed at once (max)"),
                        ("backlog", "draining the topic (backlog)")):
        tr = os.path.join(outdir, f"trace-{name}.txt")
        if not os.path.exists(tr):
            continue
        pts = read_trace(tr)
        span = pts[-1][0] - pts[0][0] if pts else 0
        series = rate_series(pts, step=min(0.5, span / 20))  # >= 20 points on short runs
        if len(series) < 2:
            continue
        dat = os.path.join(outdir, f"rate-{name}.dat")
        with open(dat, "w") as f:
            for t, r in series:
                f.write(f"{t:.3f} {r:.0f}\n")
        plots.append(f"'{dat}' using 1:2 with lines lw 2 title '{title}'")
    if plots:
        out = os.path.join(outdir, "throughput.png")
        gnuplot(gp, GNUPLOT_THROUGHPUT.format(out=out, plots=", ".join(plots)))
        made.append(out)
    return made


def render(outdir):
    with open(os.path.join(outdir, "results.json")) as f:
        res = json.load(f)
    res["dir"] = outdir
    write_plots(res, outdir)
    md = render_markdown(res)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(md)
    return md


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="report.md and plots from RESULTS_DIR/results.json")
    r.add_argument("dir")
    s = sub.add_parser("score", help="detection quality of alert files (JSONL)")
    s.add_argument("--truth", required=True)
    s.add_argument("alerts", nargs="+")
    l = sub.add_parser("latency", help="percentiles of 'append_ts<TAB>alert' lines")
    l.add_argument("--side", required=True)
    l.add_argument("alerts")
    a = ap.parse_args(argv)
    if a.cmd == "render":
        sys.stdout.write(render(a.dir))
    elif a.cmd == "score":
        alerts = [x for p in a.alerts for x in read_jsonl(p)]
        json.dump(score(alerts, read_jsonl(a.truth)), sys.stdout, indent=1, ensure_ascii=False)
        print()
    else:
        lat, unknown = alert_latencies(read_timed_alerts(a.alerts), read_side(a.side))
        st = latency_stats(lat)
        st["unmatched_alerts"] = unknown
        print(json.dumps(st))
    return 0


if __name__ == "__main__":
    sys.exit(main())
