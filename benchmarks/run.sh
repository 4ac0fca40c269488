#!/usr/bin/env bash
# run.sh (make bench): every benchmark, each printing its figure beside its same-run baseline.
#   BUILD (default build): the build directory to measure.
#   BENCH_LARGE=1: the end-to-end export benchmark also runs 10,000 patients (~4M resources;
#   ~25 min more and ~25 GB of disk), e.g. `make bench BENCH_LARGE=1`.
#   BENCH_PATIENTS: its populations instead (comma-separated, e.g. 1000 or 100,1000,10000).
#   BENCH_ORGANIZE_PATIENTS: populations of the organizeOutputBy benchmark (default 1000,3000;
#   1000,10000 as issue 13 asks takes ~15 min more).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

echo "== micro-benchmarks (Google Benchmark)"
"${BUILD:-build}/bin/fhirbulk_bench" --benchmark_min_time=0.2
echo
echo "== loader vs raw COPY of the same NDJSON (Synthea sample)"
benchmarks/load_benchmark.sh
echo
echo "== end-to-end export vs raw COPY of the same stored JSON; four system exports at once vs one (issue 17)"
BUILD=${BUILD:-build} BENCH_CONCURRENT=${BENCH_CONCURRENT:-4} benchmarks/export_benchmark.sh "${BENCH_PATIENTS:-}" 3
echo
echo "== criteria-based cohort (POST /Group with member-filters) vs a hand-written SQL query"
BUILD=${BUILD:-build} benchmarks/cohort_benchmark.sh "${BENCH_COHORT_PATIENTS:-10000}" 5
echo "== point-in-time: a system export while the loader rewrites 10% of the resources"
BUILD=${BUILD:-build} benchmarks/point_in_time_benchmark.sh 1000 3
echo "== allowPartialManifests: first file downloadable vs the full export (1,000 patients)"
BUILD=${BUILD:-build} benchmarks/partial_manifest_benchmark.sh 1000 3
echo "== read replicas: a system export reading from a streaming standby vs from the primary"
BUILD=${BUILD:-build} benchmarks/replica_benchmark.sh 1000 3
echo "== organizeOutputBy=Patient system export vs the type-organized one (IG 3.0.0)"
BUILD=${BUILD:-build} benchmarks/organize_benchmark.sh "${BENCH_ORGANIZE_PATIENTS:-1000,3000}" "${BENCH_ORGANIZE_RUNS:-3}"
echo
echo "== HTTP: downloads, status polls and kick-offs, token endpoint vs plain nginx in the same server"
BUILD_ABS=$(cd "${BUILD:-build}" && pwd)
HTTP_BENCH_KEEP=1 HTTP_BENCH_DIR=$BUILD_ABS/http-bench BUILD=$BUILD_ABS benchmarks/http_benchmark.sh
echo "== HTTP, instructions per request under callgrind (load-independent): small file, polls"
benchmarks/http_callgrind.sh "$BUILD_ABS/http-bench" "$BUILD_ABS/nginx/ngx_http_fhir_bulk_module.so"
kill -QUIT "$(cat "$BUILD_ABS/http-bench/nginx/nginx.pid")"
scripts/pg-cluster.sh stop "$BUILD_ABS/http-bench/pg" >/dev/null
rm -rf "$BUILD_ABS/http-bench"
