#!/usr/bin/env bash
# tidy.sh: clang-tidy (.clang-tidy: bugprone-*, performance-*, concurrency-*) over the sources
# of $BUILD's compile database (core/, tests/, benchmarks/; the headers they include), and
# over the fuzz harnesses from $SAN_BUILD's when that build exists (only it compiles them).
# Any finding fails the run: .clang-tidy makes every warning an error.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SAN_BUILD=${SAN_BUILD:-build-san}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
root=$(pwd -P)

[ -f "$BUILD/compile_commands.json" ] || {
    echo "tidy: $BUILD/compile_commands.json is missing (make core)" >&2
    exit 1
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# The source regex skips what the build generates (the embedded migrations).
run-clang-tidy -p "$BUILD" -j "$JOBS" -quiet "^$root/(core|tests|benchmarks)/" >"$log" 2>&1 ||
    status=1
if [ -f "$SAN_BUILD/compile_commands.json" ]; then
    run-clang-tidy -p "$SAN_BUILD" -j "$JOBS" -quiet "^$root/fuzz/" >>"$log" 2>&1 || status=1
fi
if [ "$status" -ne 0 ] || grep -qE '(warning|error):' "$log"; then
    grep -E -A3 '(warning|error):' "$log" | grep -v 'warnings generated' >&2 || cat "$log" >&2
    echo "tidy: findings above (.clang-tidy)" >&2
    exit 1
fi
echo "tidy: no findings"
