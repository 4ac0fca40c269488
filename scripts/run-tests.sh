#!/usr/bin/env bash
# run-tests.sh: every test. Unit tests (ctest) run inside a throw-away PostgreSQL cluster
# (FHIRBULK_TEST_PG), twice: the release build, then the ASan + UBSan build ($SAN_BUILD, made by
# `make san`). Then every fuzz target for FUZZ_TEST_SECONDS (its seeds included), then the
# integration tests (prove), each of which starts its own nginx and PostgreSQL on free loopback
# ports.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
SAN_BUILD=${SAN_BUILD:-build-san}
FUZZ_TEST_SECONDS=${FUZZ_TEST_SECONDS:-10}

scripts/pg-cluster.sh run sh -c \
    "FHIRBULK_TEST_PG=\"\$PG_CONNINFO\" ctest --test-dir build --output-on-failure -j $JOBS && \
     FHIRBULK_TEST_PG=\"\$PG_CONNINFO\" ctest --test-dir $SAN_BUILD --output-on-failure -j $JOBS"
# A fuzz finding fails the run, but only after prove: both results are worth having.
fuzz=0
JOBS=$JOBS SAN_BUILD=$SAN_BUILD scripts/run-fuzz.sh "$FUZZ_TEST_SECONDS" || fuzz=$?
prove -r -j "$JOBS" t/
if [ "$fuzz" -ne 0 ]; then
    echo "run-tests: a fuzz target failed (see above; logs in $SAN_BUILD/fuzz-logs/)" >&2
    exit 1
fi
