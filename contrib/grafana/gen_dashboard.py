#!/usr/bin/env python3
"""gen_dashboard.py — writes fraudwatch.json, the Grafana dashboard.

Edit the panels here and run it (python3 contrib/grafana/gen_dashboard.py);
tests/test_monitoring.py fails when fraudwatch.json differs from what this
prints, and when a panel names a metric the daemon does not export.  Every
panel filters on the $job and $instance variables; the data source is a
variable too, so the board imports into any Grafana with a Prometheus.
"""
import json
import os
import sys

SEL = 'job=~"$job", instance=~"$instance"'
panels = []
y = 0
pid = 0
def row(title):
    global y, pid
    pid += 1
    panels.append({"type": "row", "title": title, "id": pid, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
    y += 1
def ts(title, targets, unit="short", x=0, w=12, h=8, desc="", stack=False, kind="timeseries"):
    global pid
    pid += 1
    p = {"type": kind, "title": title, "id": pid, "description": desc,
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "gridPos": {"h": h, "w": w, "x": x, "y": y},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}},
         "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": l,
                      "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                     for i, (e, l) in enumerate(targets)]}
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1,
                                                  "fillOpacity": 10,
                                                  "stacking": {"mode": "normal" if stack else "none"}}
    if kind == "table":
        p["options"] = {"showHeader": True}
        for t in p["targets"]:
            t["instant"] = True
            t["format"] = "table"
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value",
                        "graphMode": "none", "textMode": "value_and_name"}
    panels.append(p)
def nextrow(h=8):
    global y
    y += h

row("Throughput and latency")
ts("Events consumed / s", [(f'sum by (instance) (rate(fraudwatch_events_total{{{SEL}}}[$__rate_interval]))', "{{instance}}")],
   "ops", 0, 8, desc="fraudwatch_events_total: events consumed and processed, malformed included.")
ts("Consumer lag (events waiting)", [(f'sum by (instance) (fraudwatch_consumer_lag{{{SEL}}})', "{{instance}}")],
   "short", 8, 8, desc="fraudwatch_consumer_lag summed over partitions. Alert: FraudwatchConsumerLagGrowing.")
ts("Event to alert latency", [
    (f'histogram_quantile(0.99, sum by (le, instance) (rate(fraudwatch_event_to_alert_seconds_bucket{{{SEL}}}[$__rate_interval])))', "p99 {{instance}}"),
    (f'histogram_quantile(0.5, sum by (le, instance) (rate(fraudwatch_event_to_alert_seconds_bucket{{{SEL}}}[$__rate_interval])))', "p50 {{instance}}")],
   "s", 16, 8, desc="From the input message timestamp to the alert's delivery (fraudwatch_event_to_alert_seconds).")
nextrow()
row("Alerts")
ts("Alerts / min by rule", [(f'sum by (rule) (rate(fraudwatch_alerts_total{{{SEL}}}[$__rate_interval])) * 60', "{{rule}}")],
   "short", 0, 12, stack=True, desc="fraudwatch_alerts_total by rule.")
ts("Alerts / min by severity", [(f'sum by (severity) (rate(fraudwatch_alerts_total{{{SEL}}}[$__rate_interval])) * 60', "{{severity}}")],
   "short", 12, 12, stack=True, desc="fraudwatch_alerts_total by severity.")
nextrow()
row("Bad input")
ts("Malformed events / min by reason", [(f'sum by (reason) (rate(fraudwatch_malformed_total{{{SEL}}}[$__rate_interval])) * 60', "{{reason}}")],
   "short", 0, 12, stack=True, desc="fraudwatch_malformed_total: each went to the dead-letter topic with the reason.")
ts("Dead letters (share of events)", [(f'sum by (instance) (rate(fraudwatch_dead_letters_total{{{SEL}}}[$__rate_interval])) / sum by (instance) (rate(fraudwatch_events_total{{{SEL}}}[$__rate_interval]))', "{{instance}}")],
   "percentunit", 12, 6, desc="Alert: FraudwatchDeadLetterRate (over 1%).")
ts("Regex searches stopped by limits / min", [(f'sum by (instance) (rate(fraudwatch_regex_faults_total{{{SEL}}}[$__rate_interval])) * 60', "{{instance}}")],
   "short", 18, 6, desc="fraudwatch_regex_faults_total: counted as no match. Alert: FraudwatchRegexLimitHits.")
nextrow()
row("Checkpoints")
ts("Checkpoint pause (stream held)", [(f'max by (instance) (fraudwatch_checkpoint_pause_seconds{{{SEL}}})', "{{instance}}")],
   "s", 0, 8, desc="fraudwatch_checkpoint_pause_seconds: how long the last checkpoint held the stream.")
ts("Checkpoint duration (cut to commit)", [(f'max by (instance) (fraudwatch_checkpoint_seconds{{{SEL}}})', "{{instance}}")],
   "s", 8, 8, desc="fraudwatch_checkpoint_seconds of the last checkpoint.")
ts("Checkpoints and failures / min", [
    (f'sum by (instance) (rate(fraudwatch_checkpoints_total{{{SEL}}}[$__rate_interval])) * 60', "written {{instance}}"),
    (f'sum by (instance) (rate(fraudwatch_checkpoint_failures_total{{{SEL}}}[$__rate_interval])) * 60', "failed {{instance}}")],
   "short", 16, 8, desc="A daemon with events and no checkpoint for 5 minutes: FraudwatchNoCheckpoint.")
nextrow()
ts("Checkpoint age (time since the counter last moved)", [(f'time() - max by (instance) (max_over_time(timestamp(changes(fraudwatch_checkpoints_total{{{SEL}}}[1m]) > 0)[1h:30s]))', "{{instance}}")],
   "s", 0, 12, desc="How long ago fraudwatch_checkpoints_total last grew (to within a minute; empty: not in the last hour). A few times state.checkpoint_interval_ms is normal.")
ts("Key state", [(f'sum by (instance) (fraudwatch_state_keys{{{SEL}}})', "keys {{instance}}"),
                 (f'sum by (instance) (rate(fraudwatch_state_evictions_total{{{SEL}}}[$__rate_interval]))', "evictions/s {{instance}}")],
   "short", 12, 12, desc="fraudwatch_state_keys and evictions (engine.max_keys full: FraudwatchStateEvictions).")
nextrow()
row("Rules and daemons")
ts("Rule set version per daemon", [(f'max by (instance) (fraudwatch_ruleset_version{{{SEL}}})', "{{instance}}")],
   "none", 0, 8, desc="fraudwatch_ruleset_version: every daemon of a job should show the same. Alert: FraudwatchRulesVersionSkew.", kind="stat")
ts("Rule reloads and refusals", [
    (f'sum by (instance) (increase(fraudwatch_rule_reloads_total{{{SEL}}}[$__rate_interval]))', "loaded {{instance}}"),
    (f'sum by (instance) (increase(fraudwatch_rule_reload_failures_total{{{SEL}}}[$__rate_interval]))', "refused {{instance}}")],
   "short", 8, 8, desc="Alert: FraudwatchRuleReloadFailing.")
ts("Resident memory (RSS)", [(f'max by (instance) (process_resident_memory_bytes{{{SEL}}})', "{{instance}}")],
   "bytes", 16, 8, desc="process_resident_memory_bytes of each daemon.")
nextrow()
ts("Kafka: produce errors, consumer errors, rebalances / min", [
    (f'sum by (instance) (rate(fraudwatch_produce_errors_total{{{SEL}}}[$__rate_interval])) * 60', "produce errors {{instance}}"),
    (f'sum by (instance) (rate(fraudwatch_consumer_errors_total{{{SEL}}}[$__rate_interval])) * 60', "consumer errors {{instance}}"),
    (f'sum by (instance) (rate(fraudwatch_rebalances_total{{{SEL}}}[$__rate_interval])) * 60', "rebalances {{instance}}")],
   "short", 0, 12)
ts("Daemons up", [('up{job=~"$job", instance=~"$instance"}', "{{instance}}")], "none", 12, 12,
   desc="Prometheus's own up series. Alert: FraudwatchDaemonDown.")
nextrow()

dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                  "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "title": "fraudwatch", "uid": "fraudwatch", "editable": True, "schemaVersion": 38,
    "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
    "tags": ["fraudwatch"], "timezone": "browser", "graphTooltip": 1,
    "description": "fraudwatch daemons: throughput, lag, latency, alerts, bad input, checkpoints, rules, memory. Alert rules: contrib/prometheus/alerts.yml; runbook: docs/operations.md.",
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
         "current": {}, "hide": 0},
        {"name": "job", "type": "query", "label": "Job",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(fraudwatch_events_total, job)", "refId": "job"},
         "definition": "label_values(fraudwatch_events_total, job)",
         "refresh": 2, "includeAll": True, "multi": True, "current": {}, "allValue": ".*"},
        {"name": "instance", "type": "query", "label": "Daemon",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(fraudwatch_events_total{job=~\"$job\"}, instance)", "refId": "instance"},
         "definition": "label_values(fraudwatch_events_total{job=~\"$job\"}, instance)",
         "refresh": 2, "includeAll": True, "multi": True, "current": {}, "allValue": ".*"},
    ]},
    "annotations": {"list": []},
    "panels": panels,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fraudwatch.json")
text = json.dumps(dash, indent=2, ensure_ascii=False) + "\n"
if sys.argv[1:] == ["--print"]:
    sys.stdout.write(text)
else:
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{out}: {len(panels)} panels")
