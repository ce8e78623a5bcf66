#!/usr/bin/env bash
# The console demo (issue 14): the anti-fraud centre's page with live alerts.
# DEMO_KAFKA_PORT, DEMO_REDIS_PORT, DEMO_CONSOLE_LISTEN move it off the
# default ports (9092, 6390, 127.0.0.1:8080).
#   1. installs what is missing and builds fraudwatch;
#   2. starts a Kafka broker on 127.0.0.1:9092 (scripts/kafka.sh), a
#      redis-server with AOF on 127.0.0.1:6390 (its files in a temporary
#      directory), the daemon and the console (http://127.0.0.1:8080/);
#   3. creates a demo admin, a dispatcher and an officer per unit, and
#      routes (subject prefixes to police stations, the rest to the desk);
#   4. replays the shipped sample traffic; its alerts appear in the queues;
#   5. prints the URL and the logins, and runs until Ctrl-C (then stops
#      the console, the daemon, Redis and the broker).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${DEMO_KAFKA_PORT:-9092}
BROKER=127.0.0.1:$PORT
REDIS_PORT=${DEMO_REDIS_PORT:-6390}
LISTEN=${DEMO_CONSOLE_LISTEN:-127.0.0.1:8080}
REDIS=redis://127.0.0.1:$REDIS_PORT
work=$(mktemp -d /tmp/fraudwatch-console-demo.XXXXXX)

scripts/deps.sh --kafka
[[ -f build/build.ninja ]] || meson setup build >/dev/null
ninja -C build >/dev/null
FW=build/fraudwatch

say() { printf '\n== %s\n' "$*"; }
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    scripts/kafka.sh stop --port $PORT >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "Kafka broker on $BROKER"
scripts/kafka.sh stop --port $PORT >/dev/null 2>&1 || true
scripts/kafka.sh start --port $PORT --fresh
for t in fraudwatch.events fraudwatch.alerts fraudwatch.deadletter; do
    scripts/kafka.sh topic "$t" --partitions 1 --port $PORT >/dev/null
done

say "redis-server with AOF on 127.0.0.1:$REDIS_PORT (files in $work)"
redis-server --port $REDIS_PORT --bind 127.0.0.1 --appendonly yes --save "" --dir "$work" \
    >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break; sleep 0.1; done

say "users and routes"
echo 'demo-admin-pass'  | $FW console user add admin --role admin --redis $REDIS
echo 'demo-disp-pass'   | $FW console user add dispatch --role dispatcher --redis $REDIS
echo 'demo-officer-pass' | $FW console user add zhang --role officer --unit pcs-chaoyang --redis $REDIS
echo 'demo-officer-pass' | $FW console user add li --role officer --unit pcs-haidian --redis $REDIS
printf '%s\n' '# subject prefixes to the police station responsible' \
    $'subject\tprefix:152\tpcs-chaoyang' $'subject\tprefix:156\tpcs-chaoyang' \
    $'subject\tregex:^1[78]\tpcs-haidian' $'subject\tprefix:0085\thk-liaison' \
    $'*\tprefix:\tcentre-desk' >"$work/routes.tsv"
$FW routes load "$work/routes.tsv" --redis $REDIS

say "daemon and console"
$FW run -c config/fraudwatch.conf --set "state.dir=$work/state" \
    --set "kafka.bootstrap.servers=$BROKER" --set metrics.listen=127.0.0.1:0 >"$work/daemon.log" 2>&1 &
pids+=($!)
$FW console -c config/console.conf --set "console.redis=$REDIS" --set "console.listen=$LISTEN" \
    --set "kafka.bootstrap.servers=$BROKER" >"$work/console.log" 2>&1 &
pids+=($!)
sleep 2

say "replaying scripts/demo/events.jsonl into fraudwatch.events"
kcat -b $BROKER -P -t fraudwatch.events -z none -l scripts/demo/events.jsonl

cat <<MSG

The console: http://$LISTEN/
  admin    / demo-admin-pass     (everything)
  dispatch / demo-disp-pass      (every unit's queue)
  zhang    / demo-officer-pass   (officer, pcs-chaoyang)
  li       / demo-officer-pass   (officer, pcs-haidian)
More alerts: kcat -b $BROKER -P -t fraudwatch.events -l scripts/demo/events.jsonl
(they are new events only if their event_id is new).  Logs in $work.
Ctrl-C stops everything.
MSG
wait "${pids[-1]}"
