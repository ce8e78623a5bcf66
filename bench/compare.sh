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
# the pass, the report, freeing the state), CPU time (user + system, all
# threads: steadier than wall time on a shared machine) and peak RSS, and
# the median ratios compare / replay.  Interleaving spreads background noise over both; the
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

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
TIME=/usr/bin/time
[ -x "$TIME" ] || die "$TIME (GNU time) is needed for CPU time and peak RSS: apt-get install time"
run() {   # name args... -> "wall cpu rss_mib" of one run
    local name=$1; shift
    "$TIME" -f '%e %U %S %M' -o "$OUT_DIR/cmp-$name.time" "$FW" replay "$@" \
        >"$OUT_DIR/cmp-$name.out" 2>"$OUT_DIR/cmp-$name.err" ||
        die "$name failed: $(tail -3 "$OUT_DIR/cmp-$name.err")"
    awk '{printf "%.2f %.2f %.0f\n", $1, $2 + $3, $4 / 1024}' "$OUT_DIR/cmp-$name.time"
}
rw=(); cw=(); rc=(); cc=(); wr=(); cr=()
for round in $(seq 1 "$REPS"); do
    read -r w1 c1 m1 < <(run replay --rules "$RULES" --threads "$THREADS" "$INPUT")
    read -r w2 c2 m2 < <(run compare --compare "$RULES" "$NEW" --threads "$THREADS" "$INPUT")
    rw+=("$w1"); cw+=("$w2"); rc+=("$c1"); cc+=("$c2")
    wr+=("$(awk "BEGIN {print $w2 / $w1}")"); cr+=("$(awk "BEGIN {print $c2 / $c1}")")
    printf 'round %d: replay wall %.2f s cpu %.2f s %d MiB | compare wall %.2f s cpu %.2f s %d MiB | ratio wall %.2f cpu %.2f\n' \
        "$round" "$w1" "$c1" "$m1" "$w2" "$c2" "$m2" "${wr[-1]}" "${cr[-1]}"
done
printf 'median of %d rounds (%s events, --threads %s): replay wall %.2f s cpu %.2f s; compare wall %.2f s cpu %.2f s; ratio wall %.2f, cpu %.2f\n' \
    "$REPS" "$EVENTS" "$THREADS" "$(median "${rw[@]}")" "$(median "${rc[@]}")" "$(median "${cw[@]}")" \
    "$(median "${cc[@]}")" "$(median "${wr[@]}")" "$(median "${cr[@]}")"
grep '^alerts:' "$OUT_DIR/cmp-compare.out"
