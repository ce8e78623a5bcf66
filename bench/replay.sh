#!/usr/bin/env bash
# bench/replay.sh — the replay throughput benchmark.
#
# What it does: builds a release tree if needed, generates a fixed 1.7M-event
# stream once (cached in bench/out/, byte-identical for a given seed), then
# runs, interleaved, REPS times each:
#     bench/parse_only FILE --parser fw-arena       (parse floor, 1 thread)
#     fraudwatch replay --rules rules --threads 1 FILE
#     fraudwatch replay --rules rules --threads 2 FILE
# and reports the median events/s of each and the ratio
# replay(2 threads) / parse_only(1 thread).
#
# Why it is shaped so: the figure that matters is how close the engine comes
# to the cost of merely parsing its input, so both are measured on the same
# file, on the same machine, in the same minute.  Interleaving the runs
# spreads background noise (turbo, page cache, neighbours) over all three
# instead of favouring whichever ran first; the median of an odd number of
# runs discards one outlier either way.  events/s is the figure each program
# prints itself (replay: its stderr summary; parse_only: stdout), so process
# start-up and rule loading are not counted; wall-clock time of each replay
# run is shown too.  The two replay runs must produce the same alert set
# (SPEC §5); the script checks it.
#
# Environment overrides: BUILD_DIR (default build-release), EVENTS (1700000),
# SEED (20251201), REPS (3), RULES (rules), OUT_DIR (bench/out),
# THREADS_B (2: the thread count of the second replay series).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-release}
EVENTS=${EVENTS:-1700000}
SEED=${SEED:-20251201}
REPS=${REPS:-3}
RULES=${RULES:-$ROOT/rules}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
THREADS_B=${THREADS_B:-2}

die() { echo "replay.sh: $*" >&2; exit 1; }

case $EVENTS$REPS$THREADS_B in *[!0-9]*) die "EVENTS, REPS and THREADS_B must be integers";; esac
[ "$REPS" -ge 1 ] || die "REPS must be at least 1"
command -v meson >/dev/null || die "meson not found (apt-get install meson ninja-build)"
[ -d "$RULES" ] || die "rules directory $RULES not found"

# --- build ------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    echo "== meson setup $BUILD_DIR --buildtype=release"
    meson setup "$BUILD_DIR" "$ROOT" --buildtype=release >/dev/null ||
        die "meson setup failed in $BUILD_DIR"
fi
buildtype=$(meson introspect --buildoptions "$BUILD_DIR" 2>/dev/null |
    grep -o '"name": *"buildtype", *"value": *"[a-z]*"' | grep -o '"[a-z]*"$' | tr -d '"' || true)
if [ -n "$buildtype" ] && [ "$buildtype" != release ]; then
    echo "replay.sh: warning: $BUILD_DIR is a '$buildtype' build, not release" >&2
fi
echo "== meson compile -C $BUILD_DIR"
meson compile -C "$BUILD_DIR" >/dev/null || die "build failed: run 'meson compile -C $BUILD_DIR' to see why"

FW=$BUILD_DIR/fraudwatch
GEN=$BUILD_DIR/bench/gen
PARSE=$BUILD_DIR/bench/parse_only
if [ ! -x "$GEN" ] || [ ! -x "$PARSE" ]; then
    die "$GEN or $PARSE missing: is subdir('bench') in meson.build?"
fi
[ -x "$FW" ] || die "$FW not found: the engine is not built yet, so there is nothing to replay"

# --- input ------------------------------------------------------------------
mkdir -p "$OUT_DIR"
if [ "$EVENTS" = 1700000 ]; then tag=1.7M; else tag=$EVENTS; fi
INPUT=$OUT_DIR/events-$tag-seed$SEED.jsonl
TRUTH=$OUT_DIR/truth-$tag-seed$SEED.jsonl
# Regenerate when missing or older than the generator or the watchlists it reads.
stale=0
[ -s "$INPUT" ] && [ -s "$TRUTH" ] || stale=1
for dep in "$GEN" "$RULES/fraud_numbers.list" "$RULES/mule_accounts.list"; do
    [ "$dep" -nt "$INPUT" ] && stale=1
done
if [ "$stale" = 1 ]; then
    echo "== generating $INPUT"
    "$GEN" --events "$EVENTS" --seed "$SEED" --lists "$RULES" --truth "$TRUTH" -o "$INPUT.tmp" ||
        die "generator failed"
    mv "$INPUT.tmp" "$INPUT"
fi
lines=$(wc -l <"$INPUT")

# --- method -----------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
cat <<EOF

Method
  input      $INPUT
             $lines events ($(du -h "$INPUT" | cut -f1)), bench/gen --events $EVENTS --seed $SEED
             (deterministic; planted fraud scenarios, ~1% late events)
  rules      $RULES
  floor      bench/parse_only --parser fw-arena: the file read into memory first,
             then one thread parses every line with the engine's parser
             (src/event_json.c) into an arena reset per line, as a worker does
  engine     fraudwatch replay --rules RULES --threads 1, and --threads $THREADS_B,
             alerts to a file; events/s as the engine reports it on stderr
  runs       $REPS rounds, each round runs the three in turn (interleaved);
             the figure is the median of the rounds
  machine    ${cpu:-unknown CPU}, $(nproc) CPUs, $(uname -sr)
  build      $BUILD_DIR (buildtype ${buildtype:-unknown})

EOF

# --- runs -------------------------------------------------------------------
eps_of() {   # the last "<number> events/s" in a file, digits only
    grep -o '[0-9][0-9.,]*[[:space:]]*events/s' "$1" | tail -n 1 | grep -o '^[0-9.,]*' | tr -d ','
}
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }   # arithmetic without bc
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

p_runs=(); r1_runs=(); r2_runs=()
run_replay() {   # threads round -> prints events/s
    local t=$1 round=$2 err=$OUT_DIR/replay-t$1.stderr out=$OUT_DIR/alerts-t$1.jsonl s e rc=0
    s=$(now)
    "$FW" replay --rules "$RULES" --threads "$t" "$INPUT" >"$out" 2>"$err" || rc=$?
    e=$(now)
    if [ "$rc" != 0 ]; then
        tail -n 20 "$err" >&2
        die "fraudwatch replay --threads $t exited with status $rc (stderr above, full text in $err)"
    fi
    local eps
    eps=$(eps_of "$err")
    [ -n "$eps" ] || { tail -n 20 "$err" >&2; die "no 'events/s' figure in the replay summary ($err)"; }
    printf '  round %d  replay --threads %-2d %12.0f events/s   (wall %.2f s, %d alerts)\n' \
        "$round" "$t" "$eps" "$(calc "$e - $s")" "$(wc -l <"$out")" >&2
    echo "$eps"
}

for round in $(seq 1 "$REPS"); do
    pout=$("$PARSE" "$INPUT" --parser fw-arena) || die "parse_only failed"
    p=$(echo "$pout" | grep -o '[0-9][0-9.,]*[[:space:]]*events/s' | tail -n 1 | grep -o '^[0-9.,]*' | tr -d ',')
    [ -n "$p" ] || die "no events/s figure from parse_only: $pout"
    printf '  round %d  parse_only          %12.0f events/s\n' "$round" "$p" >&2
    p_runs+=("$p")
    r1_runs+=("$(run_replay 1 "$round")")
    r2_runs+=("$(run_replay "$THREADS_B" "$round")")
done

# The alert set must not depend on the thread count (SPEC §5).
ids() { grep -o '"alert_id":"[^"]*"' "$1" | sort | md5sum | cut -d' ' -f1; }
if [ "$(ids "$OUT_DIR/alerts-t1.jsonl")" != "$(ids "$OUT_DIR/alerts-t$THREADS_B.jsonl")" ]; then
    echo "replay.sh: WARNING: --threads 1 and --threads $THREADS_B produced different alert sets" >&2
    same="NO (see $OUT_DIR/alerts-t1.jsonl vs alerts-t$THREADS_B.jsonl)"
else
    same="yes ($(wc -l <"$OUT_DIR/alerts-t1.jsonl") alerts)"
fi

P=$(median "${p_runs[@]}")
R1=$(median "${r1_runs[@]}")
R2=$(median "${r2_runs[@]}")
echo
echo "Results (median of $REPS)"
printf '  parse_only (1 thread)          %12.0f events/s\n' "$P"
printf '  replay --threads 1             %12.0f events/s   %.2f x parse_only\n' "$R1" "$(calc "$R1 / $P")"
printf '  replay --threads %-2d            %12.0f events/s   %.2f x parse_only\n' "$THREADS_B" "$R2" "$(calc "$R2 / $P")"
printf '  ratio replay(%d threads) / parse_only(1 thread) = %.2f\n' "$THREADS_B" "$(calc "$R2 / $P")"
echo "  same alert set for 1 and $THREADS_B threads: $same"
