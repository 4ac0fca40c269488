#!/usr/bin/env bash
# run-tests.sh: every test and check. First the static checks, which fail fast: clang-format
# (`make format-check`) and clang-tidy (scripts/tidy.sh). Then the unit tests (ctest) inside a
# throw-away PostgreSQL cluster each (FHIRBULK_TEST_PG), three times: the release build ($BUILD),
# the ASan + UBSan build ($SAN_BUILD, made by `make san`) and, for the tests that run threads,
# the ThreadSanitizer build ($TSAN_BUILD, `make tsan-build`; scripts/run-tsan.sh). Then every
# fuzz target for FUZZ_TEST_SECONDS (its seeds included), then the integration tests (prove),
# each of which starts its own nginx and PostgreSQL on free loopback ports. Each step's time
# is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
BUILD=${BUILD:-build}
SAN_BUILD=${SAN_BUILD:-build-san}
TSAN_BUILD=${TSAN_BUILD:-build-tsan}
FUZZ_TEST_SECONDS=${FUZZ_TEST_SECONDS:-10}
export JOBS BUILD SAN_BUILD TSAN_BUILD

times=()
step() {  # step NAME CMD...: runs CMD, records how long it took
    local name=$1 start=$SECONDS rc=0
    shift
    echo "run-tests: $name" >&2
    "$@" || rc=$?
    times+=("$(printf '%-14s %4d s' "$name" $((SECONDS - start)))")
    return "$rc"
}
unit() {  # unit BUILD_DIR: its ctest suite in a throw-away cluster
    scripts/pg-cluster.sh run sh -c \
        "FHIRBULK_TEST_PG=\"\$PG_CONNINFO\" ctest --test-dir $1 --output-on-failure -j $JOBS"
}

trap '[ ${#times[@]} -eq 0 ] || printf "run-tests: %s\n" "${times[@]}" >&2' EXIT

step format-check make --no-print-directory format-check
step tidy scripts/tidy.sh
step unit unit "$BUILD"
step unit-asan unit "$SAN_BUILD"
step unit-tsan scripts/pg-cluster.sh run scripts/run-tsan.sh
# A fuzz finding fails the run, but only after prove: both results are worth having.
fuzz=0
step fuzz scripts/run-fuzz.sh "$FUZZ_TEST_SECONDS" || fuzz=$?
step prove prove -r -j "$JOBS" t/
if [ "$fuzz" -ne 0 ]; then
    echo "run-tests: a fuzz target failed (see above; logs in $SAN_BUILD/fuzz-logs/)" >&2
    exit 1
fi
