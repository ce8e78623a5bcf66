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
#
#   scripts/test.sh                      all of the above (what .ci/run runs)
#   scripts/test.sh --quick [ARGS...]    the developer's loop: suites unit and
#                                        cases in one --werror build (build-ci);
#                                        no broker, no sanitizer, TSan or fuzz
#                                        stage (~10 s with a warm build dir)
#   scripts/test.sh [ARGS...]            the full run, narrowed by ARGS
#
# ARGS are `meson test` arguments (--suite unit, a test name such as rules,
# --repeat 3 ...), given to the `meson test` of every stage that runs:
#   * build-ci and build-ci-asan run what ARGS select, except that the ASan
#     build leaves out suite `once`: end-to-end tests whose code the ASan
#     build already runs in other tests (the long reload and state-kafka
#     scenarios, the package, Prometheus and browser tests, the bench
#     harness), so that the whole run stays under 30 minutes on 2 cores;
#   * the TSan build runs suites unit and cases (but not suite no-tsan: a
#     test that starts the daemon, whose librdkafka threads crash at start
#     under TSan here); given --suite, only those of the two that are asked
#     for, and no TSan stage when neither is;
#   * --quick runs suites unit and cases, or the suites given with --suite;
#   * the libFuzzer stage (FW_FUZZ_SECONDS a target, default 30: 1.5 minutes in all) runs
#     with no ARGS at all, or when --suite fuzz is asked for;
#   * the Kafka broker is started unless --quick, or --suite is given without
#     --suite integration (the only suite that uses it).
# A stage whose selection is empty says "No suitable tests defined."
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
args=()        # ARGS without --quick
asked=()       # the suites of --suite S / --suite=S
rest=()        # ARGS without the --suite options
while (($#)); do
    case $1 in
        --quick) quick=1 ;;
        --suite) (($# >= 2)) || { echo "test.sh: --suite needs a suite name" >&2; exit 2; }
                 args+=("$1" "$2"); asked+=("$2"); shift ;;
        --suite=*) args+=("$1"); asked+=("${1#--suite=}") ;;
        *) args+=("$1"); rest+=("$1") ;;
    esac
    shift
done
asked_for() {   # suite: was it asked for with --suite?
    local s
    for s in "${asked[@]}"; do [[ $s == "$1" ]] && return 0; done
    return 1
}
# The --suite options of a stage whose own suites are "$@": those of them
# asked for, or all of them when no --suite was given; empty: nothing to run.
stage_suites() {
    local s
    for s in "$@"; do
        if ((${#asked[@]} == 0)) || asked_for "$s"; then printf -- '--suite\n%s\n' "$s"; fi
    done
}

need_broker=1
if ((quick)) || { ((${#asked[@]})) && ! asked_for integration; }; then
    need_broker=0
fi

if ((need_broker)); then
    scripts/deps.sh --kafka
    # A broker of the tests' own, on its own port and store, fresh each run.
    export FW_KAFKA_PORT=${FW_TEST_KAFKA_PORT:-19092}
    export FW_KAFKA_RUN_DIR=${TMPDIR:-/tmp}/fraudwatch-test-kafka-$FW_KAFKA_PORT
    kafka_dir=$FW_KAFKA_RUN_DIR
    scripts/kafka.sh stop --port "$FW_KAFKA_PORT" --dir "$kafka_dir" >/dev/null 2>&1 || true
    trap 'scripts/kafka.sh stop --port "$FW_KAFKA_PORT" --dir "$kafka_dir" >/dev/null 2>&1 || true' EXIT
    scripts/kafka.sh start --port "$FW_KAFKA_PORT" --dir "$kafka_dir" --fresh >&2
else
    scripts/deps.sh
fi

setup() {
    local dir=$1; shift
    if [[ -f $dir/build.ninja ]]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

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
run_tests() {   # dir what [meson test args]: the closing line counts its records
    local b=$1 what=$2; shift 2
    tested+=("$b")
    echo "== $b: $what" >&2
    rm -f "$b/meson-logs/testlog.json"    # selecting nothing leaves no records
    meson test -C "$b" --print-errorlogs "$@" || status=1
}

if ((quick)); then
    setup build-ci --werror
    default=()
    ((${#asked[@]})) || default=(--suite unit --suite cases)
    build build-ci && run_tests build-ci test --num-processes 2 "${default[@]}" "${args[@]}"
else
    # ThreadSanitizer: the threaded engine (unit tests, golden cases with
    # several threads); the end-to-end suite already runs in the other two.
    mapfile -t tsan_suites < <(stage_suites unit cases)
    builds=(build-ci build-ci-asan)
    ((${#tsan_suites[@]})) && builds+=(build-ci-tsan)
    setup build-ci --werror
    setup build-ci-asan --werror -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
    ((${#tsan_suites[@]})) && CC=clang setup build-ci-tsan --werror -Db_sanitize=thread -Db_lundef=false

    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

    for b in "${builds[@]}"; do
        build "$b" || continue
        if [[ $b == build-ci-tsan ]]; then
            run_tests "$b" test --num-processes 2 --no-suite no-tsan "${tsan_suites[@]}" \
                "${rest[@]}"
        elif [[ $b == build-ci-asan ]]; then
            run_tests "$b" test --num-processes 2 --no-suite once "${args[@]}"
        else
            run_tests "$b" test --num-processes 2 "${args[@]}"
        fi
    done

    # Fuzz smoke (tests/fuzz/README.md): each libFuzzer target for
    # FW_FUZZ_SECONDS (default 30) on a scratch copy of its corpus; a crash
    # fails the run and its input is saved in tests/fuzz/regressions/TARGET/.
    if ((${#args[@]} == 0)) || asked_for fuzz; then
        CC=clang setup build-ci-fuzz --werror -Dfuzzing=true -Db_lundef=false
        if build build-ci-fuzz; then
            run_tests build-ci-fuzz fuzz --suite fuzz "${rest[@]}"
        fi
    fi
fi

# One closing line over every build, from meson's own records; a build that
# did not compile counts as one failure.  ARGS that select no test at all
# (a misspelt name) fail the run.
summary=0
python3 - "$build_failures" "${tested[@]}" <<'PY' || summary=$?
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
sys.exit(0 if passed + failed + skipped else 3)
PY
if ((summary == 3)); then
    echo "test.sh: no test matches: ${args[*]}" >&2
fi
((summary == 0)) || status=1
exit $status
