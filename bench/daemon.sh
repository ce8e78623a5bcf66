#!/usr/bin/env bash
# bench/daemon.sh — the daemon benchmark: `fraudwatch run` against a real
# local Kafka broker, next to a pass-through ceiling, plus event-to-alert
# latency at a fixed offered rate.
#
# What it does (the method is printed before the figures):
#   1. builds build-release/ if needed (the daemon and bench/{loadgen,
#      passthrough,latency,topic});
#   2. starts its own broker: scripts/kafka.sh start --port 29092
#      --dir /tmp/fw-bench-kafka (fresh store), and stops it at the end;
#   3. generates the 1.7M-event stream once (bench/gen, seed 20251201, cached
#      in bench/out/ — the same file bench/replay.sh uses);
#   4. throughput: preloads the 1.7M events into a 4-partition topic
#      (bench/loadgen, keyed by subscriber), then REPS rounds, interleaved,
#      alternating which goes first:
#        - fraudwatch run (fresh group, fresh state dir, rules/, 2 threads,
#          metrics on a free loopback port): events/s from its first finished
#          batch to 1.7M events processed, read from /metrics
#          (bench/watch_metrics.py, 20 ms polls); then SIGTERM;
#        - bench/passthrough over the same topic (own fresh group): the same
#          librdkafka settings, copies every message to a 4-partition topic,
#          commits after delivery every 5 s; msg/s from the first message
#          consumed to the last delivery;
#      and reports the medians and daemon / passthrough.  With BIGQ=1 (the
#      default) every round also runs both with the consumer's local queue
#      raised (queued.min.messages=1000000, queued.max.messages.kbytes=262144):
#      librdkafka 2.0 stops fetching when queued.min.messages are waiting and
#      re-checks about once a second, which throttles a fast consumer;
#   5. latency: a broker warm-up (LAT_WARM_S s of the same paced traffic
#      copied by bench/passthrough, not measured), then fresh topics, the
#      daemon started and joined (idle, caught
#      up), then bench/loadgen offers LAT_RATE events/s (default 50 000) for
#      LAT_SECONDS (default 20 s) — the first LAT_RATE*LAT_SECONDS events of
#      the same stream, each message's CreateTime = wall clock at send, and
#      "event_id<TAB>send_ts" written to a side file; the alert topic is
#      created with message.timestamp.type=LogAppendTime, so each alert
#      carries the broker's clock when it was appended; bench/latency
#      computes alert append time - send time of the alert's event_id.
#      The daemon's own fraudwatch_event_to_alert_seconds histogram (input
#      timestamp -> delivery report) is shown next to it, and
#      bench/latency_ckpt.py sets the slow alerts against the checkpoints in
#      the daemon's log (it runs at log.level=debug for that: one line per
#      checkpoint).
#      With LAT_FRAUD_RATE=R (default 10) a second latency run uses a stream
#      generated with --fraud-rate R: ten times the alerts, so p99 rests on
#      thousands of samples rather than a few hundred.
#
# Environment overrides: BUILD_DIR (build-release), EVENTS (1700000), SEED
# (20251201), REPS (3), RULES (rules), OUT_DIR (bench/out), PORT (29092),
# KAFKA_DIR (/tmp/fw-bench-kafka), STATE_ROOT (/tmp/fw-bench-state), THREADS
# (2), CHECKPOINT_MS (5000), LAT_RATE (50000), LAT_SECONDS (20), LAT_WARM_S
# (10: seconds of unmeasured paced traffic through the broker first, so its
# JIT is warm even with SKIP_TPUT=1),
# LAT_FRAUD_RATE (10; 0 = skip the second latency run), BIGQ (1; 0 = only
# the default settings), SKIP_TPUT=1,
# SKIP_LAT=1, KEEP_BROKER=1 (leave the broker running).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-release}
EVENTS=${EVENTS:-1700000}
SEED=${SEED:-20251201}
REPS=${REPS:-3}
RULES=${RULES:-$ROOT/rules}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
PORT=${PORT:-29092}
KAFKA_DIR=${KAFKA_DIR:-/tmp/fw-bench-kafka}
STATE_ROOT=${STATE_ROOT:-/tmp/fw-bench-state}
THREADS=${THREADS:-2}
CHECKPOINT_MS=${CHECKPOINT_MS:-5000}
LAT_RATE=${LAT_RATE:-50000}
LAT_SECONDS=${LAT_SECONDS:-20}
LAT_WARM_S=${LAT_WARM_S:-10}
LAT_FRAUD_RATE=${LAT_FRAUD_RATE:-10}
BIGQ=${BIGQ:-0}
SKIP_TPUT=${SKIP_TPUT:-0}
SKIP_LAT=${SKIP_LAT:-0}
KEEP_BROKER=${KEEP_BROKER:-0}
BROKER=127.0.0.1:$PORT
# The consumer settings of the "bigq" variant (see the method): librdkafka
# 2.0 stops fetching a partition set whose local queue holds
# queued.min.messages (100 000) and looks again only at its next ~1 s wake-up.
BIGQ_KEYS="queued.min.messages=1000000 queued.max.messages.kbytes=262144"

KAFKA_SH=$ROOT/scripts/kafka.sh

die() { echo "daemon.sh: $*" >&2; exit 1; }
say() { echo "$*" >&2; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
kv() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }   # key, "k=v k=v" line

case $EVENTS$REPS$THREADS$LAT_RATE$LAT_SECONDS$PORT in *[!0-9]*) die "numeric settings must be integers";; esac
[ "$REPS" -ge 1 ] || die "REPS must be at least 1"
command -v meson >/dev/null || die "meson not found"
command -v python3 >/dev/null || die "python3 not found (bench/watch_metrics.py)"
[ -d "$RULES" ] || die "rules directory $RULES not found"
case $PORT in 9092|19092) die "ports 9092 and 19092 belong to other brokers";; esac

# --- build ------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    say "== meson setup $BUILD_DIR --buildtype=release"
    meson setup "$BUILD_DIR" "$ROOT" --buildtype=release >/dev/null || die "meson setup failed"
fi
buildtype=$(meson introspect --buildoptions "$BUILD_DIR" 2>/dev/null |
    grep -o '"name": *"buildtype", *"value": *"[a-z]*"' | grep -o '"[a-z]*"$' | tr -d '"' || true)
[ -z "$buildtype" ] || [ "$buildtype" = release ] ||
    say "daemon.sh: warning: $BUILD_DIR is a '$buildtype' build, not release"
say "== meson compile -C $BUILD_DIR"
meson compile -C "$BUILD_DIR" >/dev/null || die "build failed: run 'meson compile -C $BUILD_DIR'"
FW=$BUILD_DIR/fraudwatch
B=$BUILD_DIR/bench
for t in gen loadgen passthrough latency topic; do
    [ -x "$B/$t" ] || die "$B/$t missing (librdkafka not found by meson?)"
done
"$FW" run --help >/dev/null 2>&1 || die "$FW has no 'run' command (built without the daemon)"
WATCH="python3 $ROOT/bench/watch_metrics.py"

# --- input ------------------------------------------------------------------
mkdir -p "$OUT_DIR" "$STATE_ROOT"
gen_stream() {   # events fraud_rate -> path (cached; regenerated when stale)
    local n=$1 fr=$2 tag path
    if [ "$n" = 1700000 ]; then tag=1.7M; else tag=$n; fi
    if [ "$fr" = 1 ]; then path=$OUT_DIR/events-$tag-seed$SEED.jsonl
    else path=$OUT_DIR/events-$tag-seed$SEED-fraud$fr.jsonl; fi
    local truth=${path/events-/truth-} stale=0
    [ -s "$path" ] || stale=1
    for dep in "$B/gen" "$RULES/fraud_numbers.list" "$RULES/mule_accounts.list"; do
        [ "$dep" -nt "$path" ] && stale=1
    done
    if [ "$stale" = 1 ]; then
        say "== generating $path"
        "$B/gen" --events "$n" --seed "$SEED" --fraud-rate "$fr" --lists "$RULES" \
            --truth "$truth" -o "$path.tmp" -q || die "generator failed"
        mv "$path.tmp" "$path"
    fi
    echo "$path"
}
INPUT=$(gen_stream "$EVENTS" 1)
LAT_EVENTS=$((LAT_RATE * LAT_SECONDS))
LAT_INPUT2=
if [ "$SKIP_LAT" != 1 ] && [ "$LAT_FRAUD_RATE" != 0 ]; then
    LAT_INPUT2=$(gen_stream "$LAT_EVENTS" "$LAT_FRAUD_RATE")
fi
lines=$(wc -l <"$INPUT")
[ "$lines" -ge "$LAT_EVENTS" ] || die "$INPUT has $lines events, fewer than LAT_RATE*LAT_SECONDS"

# --- broker -----------------------------------------------------------------
DPID=
RUN=
STARTED_BROKER=0
cleanup() {
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
        kill -TERM "$DPID" 2>/dev/null || true
        wait "$DPID" 2>/dev/null || true
    fi
    [ -z "${RUN:-}" ] || rm -rf "$STATE_ROOT/$RUN"-*   # checkpoints: 50-100 MB each
    if [ "$STARTED_BROKER" = 1 ] && [ "$KEEP_BROKER" != 1 ]; then
        "$KAFKA_SH" stop --port "$PORT" --dir "$KAFKA_DIR" >/dev/null 2>&1 || true
        say "== broker on $BROKER stopped"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if "$KAFKA_SH" status --port "$PORT" --dir "$KAFKA_DIR" >/dev/null 2>&1; then
    say "== reusing the broker already running on $BROKER ($KAFKA_DIR)"
else
    fresh=
    [ -f "$KAFKA_DIR/server.properties" ] && fresh=--fresh
    say "== starting the benchmark broker on $BROKER ($KAFKA_DIR${fresh:+, fresh store})"
    "$KAFKA_SH" start --port "$PORT" --dir "$KAFKA_DIR" $fresh >/dev/null 2>"$OUT_DIR/kafka-start.log" ||
        { cat "$OUT_DIR/kafka-start.log" >&2; die "could not start the broker (scripts/kafka.sh logs --port $PORT --dir $KAFKA_DIR)"; }
    STARTED_BROKER=1
fi
BROKER_PID=$(cat "$KAFKA_DIR/kafka.pid" 2>/dev/null || echo 0)
RUN=fwb$(date +%s)
DLQ=$RUN.dlq
"$B/topic" -b "$BROKER" create "$DLQ" 1 || die "cannot create topics on $BROKER"

# --- method -----------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
cat <<EOF

Method
  input        $INPUT
               $lines events ($(du -h "$INPUT" | cut -f1)), bench/gen --events $EVENTS --seed $SEED
  broker       Kafka (scripts/kafka.sh) on $BROKER, same machine, run $RUN
  topics       events: 4 partitions, keyed by subscriber (bench/loadgen);
               alerts: 1 partition (a few hundred alerts; one partition keeps
               the latency run's LogAppendTime in one append order);
               pass-through copy: 4 partitions (it writes every event back)
  daemon       $FW run, engine.threads=$THREADS, rules $RULES,
               checkpoint every $CHECKPOINT_MS ms, fresh group + state dir per run;
               events/s = ($lines - e1) / (t($lines) - t1), fraudwatch_events_total
               from /metrics polled every 20 ms, t1 = first poll with events > 0
               (start-up and group join excluded); then SIGTERM
  ceiling      bench/passthrough: consumer (cooperative-sticky, no auto commit,
               no auto offset store, earliest) + idempotent producer (linger.ms=2,
               message.timeout.ms=0), copies each message unchanged, waits for
               delivery and commits every $CHECKPOINT_MS ms; msg/s from the first
               message consumed to the last delivery report
  rounds       $REPS, daemon and pass-through interleaved, order alternating;
               figures are medians
  variants     default: both clients as the daemon configures them;
               bigq: both consumers also get $BIGQ_KEYS
               (librdkafka 2.0 stops fetching once queued.min.messages are queued
               locally and re-checks only about once a second; a consumer that
               drains 100 000 messages faster than that sits idle until then)
  latency      broker warm-up first ($LAT_WARM_S s of the same paced load, copied by
               bench/passthrough, on other topics, not measured); then the daemon
               joined and idle, then bench/loadgen offers $LAT_RATE events/s
               (1 ms slices) for $LAT_SECONDS s ($LAT_EVENTS events); latency =
               alert's LogAppendTime - input message's CreateTime (send time)
               for the alert's event_id, per alert (bench/latency); the daemon runs
               at log.level=debug (one line per checkpoint, nothing per event) so
               slow alerts can be set against its checkpoints${LAT_INPUT2:+
               second run: $(basename "$LAT_INPUT2") (--fraud-rate $LAT_FRAUD_RATE)}
  machine      ${cpu:-unknown CPU}, $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)
               (broker, daemon and load generator share these cores)
               load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (anything well above 0 is
               someone else's work competing for the same cores)
  build        $BUILD_DIR (buildtype ${buildtype:-unknown})

EOF

# --- helpers ----------------------------------------------------------------
write_conf() {   # path group input alerts state log_level variant
    {
        cat <<EOF
kafka.bootstrap.servers = $BROKER
kafka.group.id = $2
input.topics = $3
output.topic = $4
deadletter.topic = $DLQ
rules.source = dir:$RULES
engine.threads = $THREADS
state.dir = $5
state.checkpoint_interval_ms = $CHECKPOINT_MS
metrics.listen = 127.0.0.1:0
log.level = $6
instance.id = fwbench-$2
EOF
        if [ "$7" = bigq ]; then
            for kv in $BIGQ_KEYS; do echo "kafka.consumer.${kv%%=*} = ${kv#*=}"; done
        fi
    } >"$1"
}

DPORT=
start_daemon() {   # conf log
    rm -f "$2"
    "$FW" run -c "$1" 2>"$2" &
    DPID=$!
    DPORT=
    for _ in $(seq 400); do
        DPORT=$(grep -o 'msg="serving /metrics.* port=[0-9]*' "$2" 2>/dev/null | grep -o '[0-9]*$' || true)
        [ -n "$DPORT" ] && return 0
        kill -0 "$DPID" 2>/dev/null || { cat "$2" >&2; die "the daemon exited at start-up"; }
        sleep 0.05
    done
    die "no metrics port in $2 after 20 s"
}

DRC=
stop_daemon() {   # SIGTERM, wait; exit status in DRC
    DRC=0
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" || DRC=$?
    DPID=
}

problems() {   # log -> "N warn/error lines"
    local n
    n=$(grep -cE 'level=(warn|error)' "$1" || true)
    echo "${n:-0}"
}

broker_cpu() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$BROKER_PID/stat" 2>/dev/null || echo 0; }

# --- throughput -------------------------------------------------------------
# The daemon's own consumer settings now include the deep queue that the
# 'bigq' variant used to add (src/kafka_in.c), and passthrough uses the same:
# one variant.
VARIANTS=default
declare -A RUNS=()   # "daemon default" -> "eps eps ..."
if [ "$SKIP_TPUT" != 1 ]; then
    IN=$RUN.in
    "$B/topic" -b "$BROKER" create "$IN" 4 || die "cannot create $IN"
    say "== preloading $lines events into $IN (4 partitions)"
    pre=$("$B/loadgen" -b "$BROKER" -t "$IN" --linger 5 -q "$INPUT") || die "loadgen failed: $pre"
    say "   $pre"
    have=$("$B/topic" -b "$BROKER" count "$IN")
    [ "$have" = "$lines" ] || die "$IN holds $have messages, expected $lines"

    run_daemon() {   # round variant
        local r=$1 v=$2 tag=$2-r$1
        local conf=$STATE_ROOT/$RUN-d-$tag.conf log=$OUT_DIR/daemon-tput-$tag.log
        local alerts=$RUN.alerts.d-$tag w rc na
        "$B/topic" -b "$BROKER" create "$alerts" 1
        rm -rf "$STATE_ROOT/$RUN-d-$tag"
        write_conf "$conf" "$RUN-d-$tag" "$IN" "$alerts" "$STATE_ROOT/$RUN-d-$tag" info "$v"
        start_daemon "$conf" "$log"
        w=$($WATCH --port "$DPORT" --pid "$DPID" --target "$lines" --broker-pid "$BROKER_PID" \
                --trace "$OUT_DIR/daemon-tput-$tag.trace") ||
            { tail -n 20 "$log" >&2; die "daemon run $tag failed (log: $log)"; }
        stop_daemon; rc=$DRC
        na=$("$B/topic" -b "$BROKER" count "$alerts")
        printf '  round %d %-7s daemon       %8.0f events/s  %.2f s; %s CPU s = %s cores (broker %s); peak RSS %d MiB; %s checkpoint(s), longest %s s; longest stall %s s; %s alerts; exit %s; %s warn/error log lines\n' \
            "$r" "$v" "$(kv rate "$w")" "$(kv span_s "$w")" "$(kv cpu_s "$w")" "$(kv cores "$w")" \
            "$(kv broker_cpu_s "$w")" "$(( $(kv hwm_kib "$w") / 1024 ))" "$(kv ckpts "$w")" \
            "$(kv ckpt_max_s "$w")" "$(kv stall_s "$w")" "$na" "$rc" "$(problems "$log")" >&2
        echo "$w" >"$OUT_DIR/daemon-tput-$tag.watch"
        RUNS["daemon $v"]+="$(kv rate "$w") "
        "$B/topic" -b "$BROKER" delete "$alerts" || true
    }
    run_pass() {   # round variant
        local r=$1 v=$2 tag=$2-r$1 out=$RUN.copy.$2-r$1 res b0 b1 eps
        local x=()
        if [ "$v" = bigq ]; then
            for kv in $BIGQ_KEYS; do x+=(-X "consumer.$kv"); done
        fi
        "$B/topic" -b "$BROKER" create "$out" 4
        b0=$(broker_cpu)
        res=$("$B/passthrough" -b "$BROKER" -g "$RUN-p-$tag" -i "$IN" -o "$out" \
                --count "$lines" --commit-ms "$CHECKPOINT_MS" "${x[@]}" \
                2>"$OUT_DIR/passthrough-$tag.stderr") ||
            { cat "$OUT_DIR/passthrough-$tag.stderr" >&2; die "passthrough failed: $res"; }
        b1=$(broker_cpu)
        echo "$res" >"$OUT_DIR/passthrough-$tag.out"
        eps=$(echo "$res" | grep -o '[0-9]* msg/s (first' | grep -o '^[0-9]*')
        printf '  round %d %-7s pass-through %8.0f msg/s     %s s; %s CPU s (broker %.2f, join included); peak RSS %d MiB; %s commit(s)\n' \
            "$r" "$v" "$eps" "$(echo "$res" | grep -o 'messages, [0-9.]* s' | grep -o '[0-9.]* s$' | cut -d' ' -f1)" \
            "$(echo "$res" | grep -o 'cpu [0-9.]*' | cut -d' ' -f2)" "$(calc "$b1 - $b0")" \
            "$(( $(echo "$res" | grep -o 'maxrss [0-9]*' | cut -d' ' -f2) / 1024 ))" \
            "$(echo "$res" | grep -o '[0-9]* commits' | cut -d' ' -f1)" >&2
        RUNS["pass $v"]+="$eps "
        "$B/topic" -b "$BROKER" delete "$out" || true
    }
    say "== throughput: $REPS rounds of: $(for v in $VARIANTS; do printf 'daemon/%s pass-through/%s ' "$v" "$v"; done)"
    for r in $(seq 1 "$REPS"); do
        for v in $VARIANTS; do
            if [ $((r % 2)) = 1 ]; then run_daemon "$r" "$v"; run_pass "$r" "$v"
            else run_pass "$r" "$v"; run_daemon "$r" "$v"; fi
        done
    done
    "$B/topic" -b "$BROKER" delete "$IN" || true
fi

# --- latency ----------------------------------------------------------------
lat_run() {   # name input
    local name=$1 input=$2 in=$RUN.$1.in alerts=$RUN.$1.alerts
    local conf=$STATE_ROOT/$RUN-$1.conf log=$OUT_DIR/daemon-$1.log side=$OUT_DIR/$1-side.tsv
    "$B/topic" -b "$BROKER" create "$in" 4
    "$B/topic" -b "$BROKER" create "$alerts" 1 message.timestamp.type=LogAppendTime
    rm -rf "$STATE_ROOT/$RUN-$1"
    write_conf "$conf" "$RUN-$1" "$in" "$alerts" "$STATE_ROOT/$RUN-$1" debug default
    start_daemon "$conf" "$log"
    for _ in $(seq 400); do   # joined: all 4 partitions assigned
        [ "$(grep -c 'msg="partition assigned"' "$log" || true)" -ge 4 ] && break
        sleep 0.05
    done
    [ "$(grep -c 'msg="partition assigned"' "$log" || true)" -ge 4 ] || die "daemon did not get 4 partitions (log: $log)"
    sleep 1
    say "== latency ($name): $(basename "$input"), $LAT_EVENTS events at $LAT_RATE events/s"
    $WATCH --port "$DPORT" --pid "$DPID" --target "$LAT_EVENTS" --broker-pid "$BROKER_PID" \
        --histogram >"$OUT_DIR/$name.watch" &
    local wpid=$! lg
    lg=$("$B/loadgen" -b "$BROKER" -t "$in" --rate "$LAT_RATE" --count "$LAT_EVENTS" \
            --side "$side" -q "$input") || die "loadgen failed: $lg"
    wait "$wpid" || { cat "$log" >&2; die "latency run $name: the daemon did not process $LAT_EVENTS events"; }
    local w rc res
    w=$(head -n 1 "$OUT_DIR/$name.watch")
    sleep 1
    stop_daemon; rc=$DRC
    res=$("$B/latency" -b "$BROKER" -t "$alerts" --side "$side" --csv "$OUT_DIR/$name-alerts.csv") ||
        die "latency computation failed: $res"
    say "   $lg"
    say "   daemon: $(kv cpu_s "$w") CPU s over $(kv span_s "$w") s = $(kv cores "$w") cores; broker $(kv broker_cpu_s "$w") CPU s; peak RSS $(( $(kv hwm_kib "$w") / 1024 )) MiB; $(kv ckpts "$w") checkpoints, longest $(kv ckpt_max_s "$w") s; longest stall $(kv stall_s "$w") s; exit $rc; $(problems "$log") warn/error log lines"
    say "   $(echo "$res" | sed -n 1p)"
    say "   $(echo "$res" | sed -n 2p)"
    say "   the daemon's own histogram (input timestamp -> delivery report), cumulative:"
    say "   $(sed -n 's/^  fraudwatch_event_to_alert_seconds_bucket{le="\([^"]*\)"} \([0-9]*\)/\1:\2/p' "$OUT_DIR/$name.watch" | tr '\n' ' ')"
    say "   where the slow alerts were (daemon checkpoints from its debug log):"
    python3 "$ROOT/bench/latency_ckpt.py" "$OUT_DIR/$name-alerts.csv" "$log" | sed 's/^/     /' >&2 || true
    echo "$res" | sed -n 2p >"$OUT_DIR/$name.result"
    "$B/topic" -b "$BROKER" delete "$in" "$alerts" || true
}
lat_warmup() {   # LAT_WARM_S seconds of paced traffic through the broker, copied by passthrough
    local w=$RUN.warm n=$((LAT_RATE * LAT_WARM_S)) ppid
    [ "$n" -le "$lines" ] || n=$lines
    [ "$n" -gt 0 ] || return 0
    say "== broker warm-up: $n events at $LAT_RATE events/s, copied by bench/passthrough (not measured)"
    "$B/topic" -b "$BROKER" create "$w" 4
    "$B/topic" -b "$BROKER" create "$w.copy" 4
    "$B/passthrough" -b "$BROKER" -g "$RUN-warm" -i "$w" -o "$w.copy" --count "$n" \
        >/dev/null 2>"$OUT_DIR/warmup.stderr" &
    ppid=$!
    "$B/loadgen" -b "$BROKER" -t "$w" --rate "$LAT_RATE" --count "$n" -q "$INPUT" >/dev/null ||
        die "warm-up loadgen failed"
    wait "$ppid" || die "warm-up passthrough failed (see $OUT_DIR/warmup.stderr)"
    "$B/topic" -b "$BROKER" delete "$w" "$w.copy" || true
}
if [ "$SKIP_LAT" != 1 ]; then
    lat_warmup
    lat_run lat "$INPUT"
    [ -z "$LAT_INPUT2" ] || lat_run latfraud "$LAT_INPUT2"
fi
"$B/topic" -b "$BROKER" delete "$DLQ" || true

# --- report -----------------------------------------------------------------
echo
echo "Results"
if [ "$SKIP_TPUT" != 1 ]; then
    for v in $VARIANTS; do
        read -r -a dr <<<"${RUNS["daemon $v"]}"
        read -r -a pr <<<"${RUNS["pass $v"]}"
        D=$(median "${dr[@]}"); P=$(median "${pr[@]}")
        ratio=$(calc "$D / $P")
        [ "$v" = default ] && label="the daemon's librdkafka defaults" ||
            label="both consumers with $BIGQ_KEYS"
        echo "  throughput, $v ($label):"
        printf '    daemon (fraudwatch run)   %9.0f events/s   median of %d: %s\n' "$D" "$REPS" "${dr[*]}"
        printf '    pass-through              %9.0f msg/s      median of %d: %s\n' "$P" "$REPS" "${pr[*]}"
        printf '    daemon / pass-through     %9.2f            target >= 0.60: %s\n' "$ratio" \
            "$(awk "BEGIN { print ($ratio >= 0.60) ? \"met\" : \"NOT met\" }")"
    done
fi
if [ "$SKIP_LAT" != 1 ]; then
    for name in lat latfraud; do
        [ -f "$OUT_DIR/$name.result" ] || continue
        l=$(cat "$OUT_DIR/$name.result")
        p50=$(echo "$l" | grep -o 'p50 [0-9]*' | cut -d' ' -f2)
        p99=$(echo "$l" | grep -o 'p99 [0-9]*' | cut -d' ' -f2)
        n=$(echo "$l" | grep -o 'n=[0-9]*' | cut -d= -f2)
        printf '  latency @ %d events/s (%s): p50 %s ms, p99 %s ms (%s alerts)   target p99 < 50 ms: %s\n' \
            "$LAT_RATE" "$name" "$p50" "$p99" "$n" "$([ "$p99" -lt 50 ] && echo met || echo 'NOT met')"
        rm -f "$OUT_DIR/$name.result"
    done
fi
