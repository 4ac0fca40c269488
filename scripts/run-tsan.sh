#!/usr/bin/env bash
# run-tsan.sh: the unit tests that start threads, built with ThreadSanitizer ($TSAN_BUILD,
# default build-tsan; `make tsan-build` makes it), inside a PostgreSQL cluster (FHIRBULK_TEST_PG
# from PG_CONNINFO: run it under `scripts/pg-cluster.sh run`). A data race, a lock-order
# inversion or a signal-unsafe call fails the run.
#
# Which tests: those whose code under test runs threads or is called from several.
#   WorkerDbTest, CancelJobDbTest, UnitRunnerAbortTest  the export worker's thread pool
#                                 (RunUntilIdle, Run + Stop, two workers on one queue)
#   AuthDbTest                    the audit log's writer thread, the JWKS fetch gate, a local
#                                 HTTP server thread; AuthJwksFetchTest too (the fetcher)
#   StatusCacheTest, ServerTest, ServerDbTest   the status cache and the request path that
#                                 nginx's thread pool calls concurrently
#   LoaderDbTest, LoaderPipelineTest  the loader's database thread (DbWorker)
#   SynthGeneratorTest            the generator's worker threads (SynthPopulationTest makes
#                                 its population with them too, but takes ~45 s a test here)
#   MigrateDbTest                 concurrent migrations
#   ClientLimitsTest, ClientKickoffTest  the export client with its download threads
#   MutexTest                     util/mutex.h itself
#   MetricsDbTest                 the worker's heartbeat thread
set -euo pipefail
cd "$(dirname "$0")/.."
TSAN_BUILD=${TSAN_BUILD:-build-tsan}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
: "${PG_CONNINFO:?run-tsan.sh runs under scripts/pg-cluster.sh run}"

suites='WorkerDbTest|CancelJobDbTest|UnitRunnerAbortTest|AuthDbTest|AuthJwksFetchTest'
suites+='|StatusCacheTest|ServerTest|ServerDbTest|LoaderDbTest|LoaderPipelineTest|SynthGeneratorTest'
suites+='|MigrateDbTest|ClientLimitsTest|ClientKickoffTest|MutexTest|MetricsDbTest'
# halt_on_error: the first report fails the test; second_deadlock_stack: both sides of an
# inversion in the report.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
FHIRBULK_TEST_PG="$PG_CONNINFO" ctest --test-dir "$TSAN_BUILD" --output-on-failure -j "$JOBS" \
    -R "^($suites)\\."
