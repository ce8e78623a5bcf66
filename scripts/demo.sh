#!/usr/bin/env bash
# The demo, end to end on this machine:
#   1. installs what is missing and builds fraudwatch;
#   2. starts a real Kafka broker on 127.0.0.1:9092 (scripts/kafka.sh) and
#      creates the topics of config/fraudwatch.conf;
#   3. starts the daemon (fraudwatch run -c config/fraudwatch.conf);
#   4. replays the shipped sample traffic (scripts/demo/events.jsonl, calls,
#      SMS and transfers with planted fraud) into the input topic with kcat;
#   5. shows the alerts as they arrive on the alert topic, and the malformed
#      events on the dead-letter topic;
#   6. stops the daemon (SIGTERM: it checkpoints and commits) and the broker.
# DEMO_KEEP=1 leaves the broker and the daemon running.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=9092
BROKER=127.0.0.1:$PORT
conf=config/fraudwatch.conf
work=$(mktemp -d /tmp/fraudwatch-demo.XXXXXX)

scripts/deps.sh --kafka
[[ -f build/build.ninja ]] || meson setup build >/dev/null
ninja -C build >/dev/null

say() { printf '\n== %s\n' "$*"; }

say "Kafka broker on $BROKER (a fresh store for the demo)"
scripts/kafka.sh stop --port $PORT >/dev/null 2>&1 || true
scripts/kafka.sh start --port $PORT --fresh
for t in fraudwatch.events fraudwatch.alerts fraudwatch.deadletter; do
    scripts/kafka.sh topic "$t" --partitions 1 --port $PORT >/dev/null
done

say "daemon: build/fraudwatch run -c $conf (log: $work/daemon.log)"
build/fraudwatch run -c "$conf" --set "state.dir=$work/state" \
    >"$work/daemon.log" 2>&1 &
daemon=$!
cleanup() {
    if [[ -z "${DEMO_KEEP:-}" ]]; then
        kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
        scripts/kafka.sh stop --port $PORT >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

say "replaying scripts/demo/events.jsonl ($(wc -l <scripts/demo/events.jsonl) events) into fraudwatch.events"
kcat -b $BROKER -P -t fraudwatch.events -z none -l scripts/demo/events.jsonl

want=$(build/fraudwatch replay --rules rules scripts/demo/events.jsonl 2>/dev/null | wc -l)
say "alerts arriving on fraudwatch.alerts (expecting $want)"
timeout 60 kcat -b $BROKER -C -t fraudwatch.alerts -o beginning -c "$want" -q -f '%s\n' |
    python3 -c '
import json, sys
for line in sys.stdin:
    a = json.loads(line)
    print("%-8s %-5s %-40s subject=%-20s event=%s" % (a["severity"], a["rule_id"],
          a["rule_name"][:40], a["subject"], a["event_id"]), flush=True)
' || echo "(fewer alerts than expected within 60 s: see $work/daemon.log)"

say "dead letters (malformed events, reason in the headers)"
timeout 10 kcat -b $BROKER -C -t fraudwatch.deadletter -o -3 -e -q -f '%h\n' || true

say "daemon metrics (http://127.0.0.1:9464/metrics)"
curl -s http://127.0.0.1:9464/metrics 2>/dev/null | grep -E '^fraudwatch_(events|alerts|malformed)_total' | head -20 || true

say "the anti-fraud centre's console with these alerts: scripts/demo_console.sh"
