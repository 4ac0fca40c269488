#!/usr/bin/env bash
# run.sh (make bench): every benchmark, each printing its figure beside its same-run baseline.
#   BENCH_PATIENTS (default 1000): population of the end-to-end export benchmark.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

echo "== micro-benchmarks (Google Benchmark)"
build/bin/fhirbulk_bench --benchmark_min_time=0.2
echo
echo "== loader vs raw COPY of the same NDJSON (Synthea sample)"
benchmarks/load_benchmark.sh
echo
echo "== end-to-end export vs raw COPY of the same stored JSON"
benchmarks/export_benchmark.sh "${BENCH_PATIENTS:-1000}" 3
