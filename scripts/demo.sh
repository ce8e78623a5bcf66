#!/usr/bin/env bash
# The demo: builds fraudwatch and runs the shipped rules over the shipped
# sample traffic (scripts/demo/events.jsonl), alerts on screen.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[[ -f build/build.ninja ]] || meson setup build >/dev/null
ninja -C build >/dev/null

echo "== rules (fraudwatch rules check rules)"
build/fraudwatch rules check rules
echo
echo "== alerts (fraudwatch replay --rules rules --threads 2 scripts/demo/events.jsonl)"
build/fraudwatch replay --rules rules --threads 2 scripts/demo/events.jsonl |
    python3 -c '
import json, sys
for line in sys.stdin:
    a = json.loads(line)
    print("%-8s %-5s %-40s subject=%-20s event=%s" % (a["severity"], a["rule_id"],
          a["rule_name"][:40], a["subject"], a["event_id"]), flush=True)
'
