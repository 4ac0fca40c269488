#!/usr/bin/env bash
# load_benchmark.sh: `fhir-bulk load` of the Synthea sample against a plain COPY of the same
# resources as NDJSON into a one-column table, in the same database and the same run.
#
#   benchmarks/load_benchmark.sh [SYNTHEA_DIR] [RUNS]
#
# Defaults: ../shared/data/synthea-r4-100 beside the checkout, 3 runs of each. Uses
# $PG_CONNINFO when set (the schema is migrated, and its resource tables are EMPTIED), else a
# throw-away cluster (scripts/pg-cluster.sh run). FHIR_BULK overrides the binary
# (default build/bin/fhir-bulk). Goal (issue 17): loader >= 0.5 of the raw COPY rate. Each round
# also loads the Bundles with --writers 1 (one database connection; the default is two).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${1:-$ROOT/../shared/data/synthea-r4-100}
RUNS=${2:-3}
FHIR_BULK=${FHIR_BULK:-$ROOT/build/bin/fhir-bulk}
DATA=$(cd "$DATA" && pwd)
FHIR_BULK=$(cd "$(dirname "$FHIR_BULK")" && pwd)/$(basename "$FHIR_BULK")

if [ -z "${PG_CONNINFO:-}" ]; then
    exec "$ROOT/scripts/pg-cluster.sh" run "$0" "$DATA" "$RUNS"
fi
[ -x "$FHIR_BULK" ] || { echo "no $FHIR_BULK: build first (make)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fhir-bulk-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

"$FHIR_BULK" migrate --quiet >/dev/null
sql "TRUNCATE resource, group_member"

# The NDJSON bytes: every resource once, compact, references resolved (the loader's output).
"$FHIR_BULK" load --quiet "$DATA"
psql "$PG_CONNINFO" -X -Atc "SELECT body FROM resource ORDER BY res_type, res_id" >"$WORK/all.ndjson"
LINES=$(wc -l <"$WORK/all.ndjson")
BYTES=$(wc -c <"$WORK/all.ndjson")
echo "input: $DATA ($(du -sb "$DATA" | cut -f1) bytes of Bundles); NDJSON: $LINES resources, $BYTES bytes"

sql "SET client_min_messages = warning; DROP TABLE IF EXISTS raw_copy; CREATE TABLE raw_copy (line text)"
raw_times=() load_times=() ndjson_times=() one_times=()
for i in $(seq 1 "$RUNS"); do
    sql "TRUNCATE raw_copy"
    t0=$(now)
    # CSV with quote and delimiter bytes that JSON never contains: the line goes in verbatim
    # (text format would interpret the backslashes of JSON escapes).
    psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy raw_copy(line) FROM '$WORK/all.ndjson' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
    t1=$(now)
    raw_times+=("$(elapsed "$t0" "$t1")")

    sql "TRUNCATE resource, group_member"
    sql "CHECKPOINT"
    t0=$(now)
    "$FHIR_BULK" load --quiet "$DATA"
    t1=$(now)
    load_times+=("$(elapsed "$t0" "$t1")")

    # One writer (--writers 1), same input.
    sql "TRUNCATE resource, group_member"
    sql "CHECKPOINT"
    t0=$(now)
    "$FHIR_BULK" load --quiet --writers 1 "$DATA"
    t1=$(now)
    one_times+=("$(elapsed "$t0" "$t1")")

    # Also the NDJSON itself (the very bytes of the raw COPY), for reference.
    sql "TRUNCATE resource, group_member"
    sql "CHECKPOINT"
    t0=$(now)
    "$FHIR_BULK" load --quiet "$WORK/all.ndjson"
    t1=$(now)
    ndjson_times+=("$(elapsed "$t0" "$t1")")
    printf 'run %d: raw COPY %.3f s, fhir-bulk load %.3f s (Bundles), %.3f s (one writer), %.3f s (NDJSON)\n' \
        "$i" "${raw_times[-1]}" "${load_times[-1]}" "${one_times[-1]}" "${ndjson_times[-1]}"
done
[ "$(sql "SELECT count(*) FROM raw_copy")" = "$LINES" ] || { echo "raw COPY lost lines" >&2; exit 1; }
[ "$(sql "SELECT count(*) FROM resource")" = "$LINES" ] || { echo "load count differs" >&2; exit 1; }

raw=$(printf '%s\n' "${raw_times[@]}" | median)
load=$(printf '%s\n' "${load_times[@]}" | median)
ndjson=$(printf '%s\n' "${ndjson_times[@]}" | median)
one=$(printf '%s\n' "${one_times[@]}" | median)
awk -v n="$LINES" -v b="$BYTES" -v raw="$raw" -v load="$load" -v nd="$ndjson" -v one="$one" 'BEGIN {
    printf "raw COPY (NDJSON)        median %.3f s  %9.0f resources/s  %6.1f MB/s\n", raw, n / raw, b / raw / 1e6
    printf "fhir-bulk load Bundles   median %.3f s  %9.0f resources/s\n", load, n / load
    printf "fhir-bulk load Bundles, 1 writer   median %.3f s  %9.0f resources/s\n", one, n / one
    printf "fhir-bulk load NDJSON    median %.3f s  %9.0f resources/s\n", nd, n / nd
    printf "ratio (load of the Synthea Bundles / raw COPY): %.2f (goal >= 0.5); one writer: %.2f; NDJSON: %.2f\n", raw / load, raw / one, raw / nd
}'
