#!/usr/bin/env bash
# run-fuzz.sh SECONDS [TARGET...]: runs the libFuzzer harnesses of the sanitizer build
# ($SAN_BUILD, default build-san; `make san` builds them) for SECONDS each, JOBS at a time.
# Each starts from its seed corpus fuzz/corpus/<target>/ (read only; every seed runs first, so
# the seeds are also regression tests) plus a working corpus in $SAN_BUILD/fuzz-corpus/<target>/
# that grows from run to run. Inputs up to 1 MiB. A crash, sanitizer report, leak, timeout or
# out-of-memory fails the run; the input is kept as $SAN_BUILD/fuzz-findings/<target>-*, and
# the target's log as $SAN_BUILD/fuzz-logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:?usage: run-fuzz.sh SECONDS [TARGET...]}
shift
SAN_BUILD=${SAN_BUILD:-build-san}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for src in fuzz/*_fuzzer.cc; do targets+=("$(basename "$src" .cc)"); done
fi
mkdir -p "$SAN_BUILD/fuzz-findings" "$SAN_BUILD/fuzz-logs"

run_one() {
    local t=$1 bin="$SAN_BUILD/fuzz/$1"
    [ -x "$bin" ] || { echo "fuzz: $bin is missing (make san)"; return 1; }
    mkdir -p "$SAN_BUILD/fuzz-corpus/$t" "fuzz/corpus/$t"
    if "$bin" -max_len=1048576 -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$SAN_BUILD/fuzz-findings/$t-" \
        "$SAN_BUILD/fuzz-corpus/$t" "fuzz/corpus/$t" >"$SAN_BUILD/fuzz-logs/$t.log" 2>&1; then
        echo "fuzz: $t ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
            "$SAN_BUILD/fuzz-logs/$t.log" | grep -o '[0-9]*$') runs in ${SECONDS_EACH}s)"
    else
        echo "fuzz: $t FAILED; log: $SAN_BUILD/fuzz-logs/$t.log"
        grep -m5 -E 'ERROR|SUMMARY|Test unit written' "$SAN_BUILD/fuzz-logs/$t.log" || true
        return 1
    fi
}
export -f run_one
export SAN_BUILD SECONDS_EACH
printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
