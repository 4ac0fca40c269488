#!/usr/bin/env bash
# run-tests.sh: every test. Unit tests (ctest) run inside a throw-away PostgreSQL cluster
# (FHIRBULK_TEST_PG), then the integration tests (prove), each of which starts its own nginx
# and PostgreSQL on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

scripts/pg-cluster.sh run sh -c \
    "FHIRBULK_TEST_PG=\"\$PG_CONNINFO\" ctest --test-dir build --output-on-failure -j $JOBS"
prove -r -j "$JOBS" t/
