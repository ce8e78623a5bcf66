#!/usr/bin/env bash
# bench/compare.sh — `replay --compare` against plain `replay`, same run.
#
# What it does: generates the bench stream once (bench/gen defaults of
# bench/run: 1.7M events, seed 20251201, cached in bench/out/), makes a
# modified copy of the shipped rules (R301's distinct limit 10 -> 5, R302's
# sum limit 500000 -> 300000), then runs, interleaved, REPS rounds of
#     fraudwatch replay --rules rules --threads T FILE
#     fraudwatch replay --compare rules MODIFIED --threads T FILE
# and prints each run's wall time (process start to exit: rule loading,
# the pass, the report, freeing the state) and the median ratio
# compare / replay.  Interleaving spreads background noise over both; the
# median of an odd number of rounds discards one outlier either way.
#
# Environment overrides: BUILD_DIR (default build), EVENTS (1700000),
# SEED (20251201), REPS (3), THREADS (1: per rule set for compare),
# OUT_DIR (bench/out).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
EVENTS=${EVENTS:-1700000}
SEED=${SEED:-20251201}
REPS=${REPS:-3}
THREADS=${THREADS:-1}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
RULES=$ROOT/rules

die() { echo "compare.sh: $*" >&2; exit 1; }
case $EVENTS$REPS$THREADS in *[!0-9]*) die "EVENTS, REPS and THREADS must be integers";; esac
FW=$BUILD_DIR/fraudwatch
GEN=$BUILD_DIR/bench/gen
[ -x "$FW" ] && [ -x "$GEN" ] || die "$FW or $GEN missing: meson compile -C $BUILD_DIR"

mkdir -p "$OUT_DIR"
INPUT=$OUT_DIR/events-$EVENTS-seed$SEED.jsonl
if [ ! -s "$INPUT" ]; then
    echo "== generating $INPUT" >&2
    "$GEN" --events "$EVENTS" --seed "$SEED" --lists "$RULES" -o "$INPUT.tmp" >/dev/null ||
        die "generator failed"
    mv "$INPUT.tmp" "$INPUT"
fi

NEW=$(mktemp -d)
trap 'rm -rf "$NEW"' EXIT
cp "$RULES"/* "$NEW"/
sed -i 's/"distinct": {"field": "payer_account", ">=": 10}/"distinct": {"field": "payer_account", ">=": 5}/;
        s/"sum": {"field": "amount", ">=": 500000}/"sum": {"field": "amount", ">=": 300000}/' "$NEW/transfers.json"
cmp -s "$RULES/transfers.json" "$NEW/transfers.json" && die "the modification did not apply (rules/transfers.json changed?)"

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
r_runs=(); c_runs=(); ratios=()
for round in $(seq 1 "$REPS"); do
    s=$(now); "$FW" replay --rules "$RULES" --threads "$THREADS" "$INPUT" >"$OUT_DIR/cmp-replay.out" 2>"$OUT_DIR/cmp-replay.err" ||
        die "replay failed: $(tail -3 "$OUT_DIR/cmp-replay.err")"
    r=$(awk "BEGIN {print $(now) - $s}")
    s=$(now); "$FW" replay --compare "$RULES" "$NEW" --threads "$THREADS" "$INPUT" >"$OUT_DIR/cmp-compare.out" 2>"$OUT_DIR/cmp-compare.err" ||
        die "compare failed: $(tail -3 "$OUT_DIR/cmp-compare.err")"
    c=$(awk "BEGIN {print $(now) - $s}")
    r_runs+=("$r"); c_runs+=("$c"); ratios+=("$(awk "BEGIN {print $c / $r}")")
    printf 'round %d: replay %.2f s, compare %.2f s, ratio %.2f\n' "$round" "$r" "$c" "$(awk "BEGIN {print $c / $r}")"
done
printf 'median: replay %.2f s, compare %.2f s, ratio (median of rounds) %.2f; %s events, --threads %s\n' \
    "$(median "${r_runs[@]}")" "$(median "${c_runs[@]}")" "$(median "${ratios[@]}")" "$EVENTS" "$THREADS"
grep '^alerts:' "$OUT_DIR/cmp-compare.out"
