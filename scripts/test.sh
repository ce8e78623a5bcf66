#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it
# needs, starts a real Kafka broker on 127.0.0.1 (scripts/kafka.sh, stopped
# again on exit), builds three times (warnings as errors; AddressSanitizer +
# UndefinedBehaviorSanitizer; then ThreadSanitizer) and runs the suites:
# unit, hostile input, fuzz corpora, golden cases, fault injection on
# librdkafka's mock cluster, the bench harness's tests, and end to end
# against the broker and redis-server: the daemon, several partitions, rule
# reloads, SIGTERM during a rebalance, a 20 000-event bench/run; then a
# one-minute libFuzzer run of each fuzz target.
# Ends with one line "N passed, N failed"; exit status 0 only if all passed.
#   scripts/test.sh [meson test args, e.g. --suite unit]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --kafka

# A broker of the tests' own, on its own port and store, fresh each run.
export FW_KAFKA_PORT=${FW_TEST_KAFKA_PORT:-19092}
export FW_KAFKA_RUN_DIR=${TMPDIR:-/tmp}/fraudwatch-test-kafka-$FW_KAFKA_PORT
kafka_dir=$FW_KAFKA_RUN_DIR
scripts/kafka.sh stop --port "$FW_KAFKA_PORT" --dir "$kafka_dir" >/dev/null 2>&1 || true
trap 'scripts/kafka.sh stop --port "$FW_KAFKA_PORT" --dir "$kafka_dir" >/dev/null 2>&1 || true' EXIT
scripts/kafka.sh start --port "$FW_KAFKA_PORT" --dir "$kafka_dir" --fresh >&2

builds=(build-ci build-ci-asan build-ci-tsan)
setup() {
    local dir=$1; shift
    if [[ -f $dir/build.ninja ]]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}
setup build-ci --werror
setup build-ci-asan --werror -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
CC=clang setup build-ci-tsan --werror -Db_sanitize=thread -Db_lundef=false

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

status=0
# A build that fails is reported (its errors on stderr) and counted as one
# failure in the closing line; the other builds still run.
build_failures=0
build() {   # dir
    local log="$1/ninja-build.log"
    echo "== $1: build" >&2
    if ! ninja -C "$1" >"$log" 2>&1; then
        grep -E "error|FAILED" "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
        echo "== $1: BUILD FAILED (full log: $log)" >&2
        build_failures=$((build_failures + 1))
        status=1
        return 1
    fi
}
tested=()
for b in "${builds[@]}"; do
    build "$b" || continue
    tested+=("$b")
    echo "== $b: test" >&2
    # ThreadSanitizer: the threaded engine (unit tests, golden cases with
    # several threads); the end-to-end suite already runs in the other two.
    suites=()
    [[ $b == build-ci-tsan ]] && suites=(--suite unit --suite cases)
    meson test -C "$b" --print-errorlogs --num-processes 2 "${suites[@]}" "$@" || status=1
done

# Fuzz smoke (tests/fuzz/README.md): each libFuzzer target for
# FW_FUZZ_SECONDS (default 60) on a scratch copy of its corpus; a crash
# fails the run and its input is saved in tests/fuzz/regressions/TARGET/.
CC=clang setup build-ci-fuzz --werror -Dfuzzing=true -Db_lundef=false
if build build-ci-fuzz; then
    tested+=(build-ci-fuzz)
    echo "== build-ci-fuzz: fuzz" >&2
    meson test -C build-ci-fuzz --print-errorlogs --suite fuzz || status=1
fi

# One closing line over every build, from meson's own records; a build that
# did not compile counts as one failure.
python3 - "$build_failures" "${tested[@]}" <<'PY'
import json, sys
passed = skipped = 0
failed = int(sys.argv[1])
for b in sys.argv[2:]:
    try:
        lines = open(f"{b}/meson-logs/testlog.json").read().splitlines()
    except OSError:
        continue
    for line in lines:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
