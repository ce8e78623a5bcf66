#!/usr/bin/env bash
# Fuzz smoke: every libFuzzer target in tests/fuzz/ for SECONDS each (default
# 30, or $FW_FUZZ_SECONDS), one after the other, on a scratch copy of its seed
# corpus and regression cases (the committed corpus never grows).  Exit status
# 0 only if no target crashed, leaked, timed out or ran out of memory; a
# failing input is saved in tests/fuzz/regressions/TARGET/ for the developer to
# fix and commit (it then replays in every build: meson suite 'fuzz-corpus').
#
#   scripts/fuzz-smoke.sh [SECONDS]      build build-fuzz (clang) and run all targets
#   scripts/fuzz-smoke.sh --run TARGET BINARY [SECONDS]
#                                        run one built target (what the meson
#                                        'fuzz' suite of a -Dfuzzing=true build calls)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmpdirs=()
trap 'rm -rf "${tmpdirs[@]}"' EXIT

run_one() {
    local target=$1 binary=$2 seconds=$3
    local corpus=$root/tests/fuzz/corpus/$target
    local regress=$root/tests/fuzz/regressions/$target
    local dict=$root/tests/fuzz/fuzz.dict
    [[ -x $binary ]] || { echo "fuzz-smoke: $binary is not built" >&2; return 2; }
    [[ -d $corpus ]] || { echo "fuzz-smoke: no corpus $corpus" >&2; return 2; }
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/fw-fuzz-$target.XXXXXX")
    tmpdirs+=("$tmp")
    mkdir -p "$tmp/corpus" "$tmp/artifacts"
    cp "$corpus"/* "$tmp/corpus/"
    find "$regress" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$tmp/corpus/" \; 2>/dev/null || true
    echo "== fuzz $target: ${seconds}s on $(ls "$tmp/corpus" | wc -l) inputs" >&2
    # 0 seconds: run the corpus once and stop (libFuzzer reads 0 as "no limit").
    local budget=(-max_total_time="$seconds")
    [[ $seconds -eq 0 ]] && budget=(-runs=0)
    local rc=0
    # Leaks are errors; the sanitizers abort so that libFuzzer keeps the input.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=1 \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1 \
    "$binary" "${budget[@]}" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -dict="$dict" \
        -artifact_prefix="$tmp/artifacts/" "$tmp/corpus" \
        > "$tmp/log" 2>&1 || rc=$?
    local found=()
    for f in "$tmp"/artifacts/*; do
        [[ -f $f ]] && found+=("$f")
    done
    if [[ $rc -ne 0 || ${#found[@]} -gt 0 ]]; then
        tail -n 80 "$tmp/log" >&2
        mkdir -p "$regress"
        for f in "${found[@]}"; do
            local known=""
            for g in "$regress"/*; do
                [[ -f $g ]] && cmp -s "$f" "$g" && known=$g
            done
            if [[ -n $known ]]; then
                echo "fuzz-smoke: $target: fails on the known regression case" \
                     "tests/fuzz/regressions/$target/$(basename "$known")" >&2
                continue
            fi
            cp "$f" "$regress/"
            echo "fuzz-smoke: $target: saved tests/fuzz/regressions/$target/$(basename "$f")" \
                 "(reproduce: $binary $regress/$(basename "$f"))" >&2
        done
        echo "fuzz-smoke: $target FAILED (exit $rc)" >&2
        return 1
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' "$tmp/log" >&2 || true
    echo "fuzz-smoke: $target ok" >&2
    return 0
}

if [[ ${1:-} == --run ]]; then
    [[ $# -ge 3 ]] || { echo "usage: $0 --run TARGET BINARY [SECONDS]" >&2; exit 2; }
    secs=${4:-${FW_FUZZ_SECONDS:-30}}
    [[ $secs =~ ^[0-9]+$ ]] || { echo "fuzz-smoke: SECONDS must be a number, not '$secs'" >&2; exit 2; }
    run_one "$2" "$3" "$secs"
    exit $?
fi

seconds=${1:-${FW_FUZZ_SECONDS:-30}}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] | --run TARGET BINARY [SECONDS]" >&2; exit 2; }
cd "$root"
build=${FW_FUZZ_BUILD:-build-fuzz}
if [[ -f $build/build.ninja ]]; then
    meson setup --reconfigure "$build" -Dfuzzing=true -Db_lundef=false >/dev/null
else
    CC=clang meson setup "$build" -Dfuzzing=true -Db_lundef=false >/dev/null
fi
ninja -C "$build" >/dev/null
status=0
for t in fuzz_event fuzz_rules fuzz_engine; do
    run_one "$t" "$build/tests/$t" "$seconds" || status=1
done
exit $status
