#!/usr/bin/env bash
# The demo, end to end on this machine:
#   1. installs what is missing and builds fraudwatch;
#   2. starts a real Kafka broker on 127.0.0.1:9092 (scripts/kafka.sh) and
#      creates the topics of config/fraudwatch.conf;
#   3. starts a redis-server with AOF on 127.0.0.1:6390 (its files in a
#      temporary directory) and publishes the shipped rules to it
#      (fraudwatch rules push), so that the daemon and the console share
#      them, and snoozes set on the page reach the daemon;
#   4. starts the daemon (fraudwatch run -c config/fraudwatch.conf, rules
#      from that Redis) and the anti-fraud centre's console
#      (fraudwatch console -c config/console.conf, http://127.0.0.1:8080/)
#      with a demo admin, a dispatcher, an officer per police station and
#      routes from subject prefixes to stations;
#   5. replays the shipped sample traffic (scripts/demo/events.jsonl, calls,
#      SMS and transfers with planted fraud) into the input topic with kcat;
#   6. shows the alerts as they arrive on the alert topic, and the malformed
#      events on the dead-letter topic, then the console's URL and logins;
#   7. on a terminal, keeps everything running until Ctrl-C; without one
#      (or with DEMO_EXIT=1), stops at once: the console, the daemon
#      (SIGTERM: it checkpoints and commits), Redis and the broker.
# DEMO_KEEP=1 leaves everything running after the script ends.
# DEMO_KAFKA_PORT, DEMO_REDIS_PORT, DEMO_CONSOLE_LISTEN move it off the
# default ports (9092, 6390, 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${DEMO_KAFKA_PORT:-9092}
BROKER=127.0.0.1:$PORT
REDIS_PORT=${DEMO_REDIS_PORT:-6390}
REDIS=redis://127.0.0.1:$REDIS_PORT
LISTEN=${DEMO_CONSOLE_LISTEN:-127.0.0.1:8080}
conf=config/fraudwatch.conf
work=$(mktemp -d /tmp/fraudwatch-demo.XXXXXX)

scripts/deps.sh --kafka
[[ -f build/build.ninja ]] || meson setup build >/dev/null
ninja -C build >/dev/null
FW=build/fraudwatch

say() { printf '\n== %s\n' "$*"; }

pids=()
cleanup() {
    if [[ -z "${DEMO_KEEP:-}" ]]; then
        # The console and the daemon first (newest first), then Redis.
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
            kill -TERM "${pids[i]}" 2>/dev/null && wait "${pids[i]}" 2>/dev/null || true
        done
        scripts/kafka.sh stop --port "$PORT" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

say "Kafka broker on $BROKER (a fresh store for the demo)"
scripts/kafka.sh stop --port "$PORT" >/dev/null 2>&1 || true
scripts/kafka.sh start --port "$PORT" --fresh
for t in fraudwatch.events fraudwatch.alerts fraudwatch.alerts.shadow fraudwatch.deadletter; do
    scripts/kafka.sh topic "$t" --partitions 1 --port "$PORT" >/dev/null
done

say "redis-server with AOF on 127.0.0.1:$REDIS_PORT (files in $work); the shipped rules pushed to it"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --appendonly yes --save "" --dir "$work" \
    >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
$FW rules push rules --redis "$REDIS" -m "demo: the shipped rules" --author demo

say "console users and routes (docs/console.md)"
echo 'demo-admin-pass'   | $FW console user add admin --role admin --redis "$REDIS"
echo 'demo-disp-pass'    | $FW console user add dispatch --role dispatcher --redis "$REDIS"
echo 'demo-officer-pass' | $FW console user add zhang --role officer --unit pcs-chaoyang --redis "$REDIS"
echo 'demo-officer-pass' | $FW console user add li --role officer --unit pcs-haidian --redis "$REDIS"
printf '%s\n' '# subject prefixes to the police station responsible' \
    $'subject\tprefix:152\tpcs-chaoyang' $'subject\tprefix:156\tpcs-chaoyang' \
    $'subject\tregex:^1[78]\tpcs-haidian' $'subject\tprefix:0085\thk-liaison' \
    $'*\tprefix:\tcentre-desk' >"$work/routes.tsv"
$FW routes load "$work/routes.tsv" --redis "$REDIS"

say "daemon: $FW run -c $conf, rules from $REDIS (log: $work/daemon.log)"
$FW run -c "$conf" --set "state.dir=$work/state" --set "kafka.bootstrap.servers=$BROKER" \
    --set "rules.source=$REDIS" >"$work/daemon.log" 2>&1 &
pids+=($!)
say "console: $FW console -c config/console.conf on http://$LISTEN/ (log: $work/console.log)"
$FW console -c config/console.conf --set "console.redis=$REDIS" --set "console.listen=$LISTEN" \
    --set "kafka.bootstrap.servers=$BROKER" >"$work/console.log" 2>&1 &
pids+=($!)

say "replaying scripts/demo/events.jsonl ($(wc -l <scripts/demo/events.jsonl) events) into fraudwatch.events"
kcat -b "$BROKER" -P -t fraudwatch.events -z none -l scripts/demo/events.jsonl

want=$($FW replay --rules rules scripts/demo/events.jsonl 2>/dev/null | wc -l)
say "alerts arriving on fraudwatch.alerts (expecting $want)"
timeout 60 kcat -b "$BROKER" -C -t fraudwatch.alerts -o beginning -c "$want" -q -f '%s\n' |
    python3 -c '
import json, sys
for line in sys.stdin:
    a = json.loads(line)
    f = a.get("fields") or {}
    extra = " ".join("%s=%s" % (k, f[k]) for k in ("caller", "amount", "payee_account") if k in f)
    print("%-8s %-5s %-40s subject=%-15s %s" % (a["severity"], a["rule_id"],
          a["rule_name"][:40], a["subject"], extra), flush=True)
' || echo "(fewer alerts than expected within 60 s: see $work/daemon.log)"

say "dead letters (malformed events, reason in the headers)"
timeout 10 kcat -b "$BROKER" -C -t fraudwatch.deadletter -o -3 -e -q -f '%h\n' || true

say "daemon metrics (http://127.0.0.1:9464/metrics)"
curl -s http://127.0.0.1:9464/metrics 2>/dev/null | grep -E '^fraudwatch_(events|alerts|malformed)_total' | head -20 || true

for _ in $(seq 100); do    # the console stores them as they arrive (up to 10 s)
    stored=$(redis-cli -p "$REDIS_PORT" zcard fw:con:idx:all 2>/dev/null || echo 0)
    [[ "$stored" -ge "$want" ]] && break
    sleep 0.1
done
cat <<MSG

== the anti-fraud centre's console: http://$LISTEN/  ($stored alerts stored so far)
  admin    / demo-admin-pass     (everything)
  dispatch / demo-disp-pass      (every unit's queue)
  zhang    / demo-officer-pass   (officer, pcs-chaoyang)
  li       / demo-officer-pass   (officer, pcs-haidian)
Logs in $work.
MSG
if [[ -t 0 && -z "${DEMO_EXIT:-}" && -z "${DEMO_KEEP:-}" ]]; then
    echo "Everything keeps running; Ctrl-C stops the console, the daemon, Redis and the broker."
    wait "${pids[-1]}" || true
fi
