#!/usr/bin/env bash
# point_in_time_benchmark.sh: a system export while the loader rewrites 10% of the resources
# at full speed (issue 18), beside the same export without concurrent writes, same run.
#
#   benchmarks/point_in_time_benchmark.sh [PATIENTS] [RUNS]
#
#   PATIENTS  population size (default 1000; fhir-bulk synth --seed 1 --load, VACUUM ANALYZE)
#   RUNS      rounds (default 3); medians are reported
#
# Environment: BUILD (build directory, default build/), BENCH_THREADS (worker threads, default
# 2), BENCH_MD=FILE (append the results as a Markdown table to FILE).
#
# Own PostgreSQL, nginx (module, authorization off) and worker under $BUILD/bench-pit-var.
# Before the rounds, RUNS rewrite files are made from the stored resources: every resource
# whose id hashes to 0 mod 10 (10%), with "language" set to a value of its round, so that each
# round's load really replaces every one of them (a new version). Each round, interleaved:
#   quiet       GET $export, kick-off to the 200 manifest, nothing else running;
#   concurrent  the snapshot (type/id and md5 of the body of every stored resource) taken,
#               then the same export kicked off and, as soon as the 202 is back, the round's
#               rewrite file loaded (`fhir-bulk load`, no pause) while the worker exports.
#               The load's own time and the versions replaced while the export ran are
#               reported. The export's files are then checked against the snapshot: every
#               resource stored at transactionTime exactly once, each line byte-equal (md5) to
#               its body then, nothing else. Any mismatch stops the benchmark.
# The worker runs with --history-retention-seconds 0 and a 1 s janitor, and each export is
# deleted once measured, so replaced versions are pruned between rounds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
N=${1:-1000}
RUNS=${2:-3}
THREADS=${BENCH_THREADS:-2}
BIN=$BUILD/bin/fhir-bulk
MODULE=$BUILD/nginx/ngx_http_fhir_bulk_module.so
NGINX=${NGINX:-/usr/sbin/nginx}
VAR=$BUILD/bench-pit-var
[ -x "$BIN" ] && [ -f "$MODULE" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }
# shellcheck source=benchmarks/lib.sh
. "$ROOT/benchmarks/lib.sh"

worker_pid=""
stop_worker() {
    if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
        kill -TERM "$worker_pid"
        wait "$worker_pid" 2>/dev/null || true
    fi
    worker_pid=""
}
cleanup() {
    stop_worker
    bench_stop_nginx
    "$ROOT/scripts/pg-cluster.sh" stop "$VAR/pg" >/dev/null 2>&1 || true
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$VAR"; fi
}
trap cleanup EXIT

rm -rf "$VAR"
mkdir -p "$VAR/nginx/conf" "$VAR/nginx/logs" "$VAR/nginx/temp" "$VAR/exports" "$VAR/log" "$VAR/work"
if [ "$(id -u)" = 0 ]; then  # nginx workers run as nobody and read the export files
    chgrp nogroup "$VAR/exports"
    chmod 2775 "$VAR/exports"
fi
"$ROOT/scripts/pg-cluster.sh" start "$VAR/pg" >/dev/null
# shellcheck disable=SC1091
. "$VAR/pg/env"
"$BIN" migrate --quiet --db "$PG_CONNINFO" >/dev/null

kickoff() {  # prints the status URL
    curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' -H 'Prefer: respond-async' \
        "$FHIR_BASE/\$export" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ocation: //p'
}
wait_done() {  # wait_done URL: waits for the 200 manifest (one session watches the job)
    local job=${1##*/} code
    psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
        WHILE (SELECT state FROM export_job WHERE job_id = '$job') NOT IN
              ('completed', 'failed', 'cancelled') LOOP
            PERFORM pg_sleep(0.02);
        END LOOP; END \$\$" >/dev/null
    code=$(curl -sS -o "$VAR/manifest.json" -w '%{http_code}' "$1")
    if [ "$code" != 200 ]; then
        echo "export: status $code: $(head -c 500 "$VAR/manifest.json")" >&2
        exit 1
    fi
}
forget() {  # forget URL: deletes the export and its files
    local job=${1##*/}
    curl -fsS -X DELETE -o /dev/null "$1"
    rm -rf "${VAR:?}/exports/$job"
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Every line of the job's files as "Type/id md5", sorted, against the snapshot's.
check_export() {  # check_export JOB SNAPSHOT: prints "resources" or fails
    perl -MDigest::MD5=md5_hex -ne '
        chomp;
        /^\{"resourceType":"([A-Za-z]+)","id":"([^"\\]+)"/ or die "unexpected line start\n";
        print "$1/$2 ", md5_hex($_), "\n";' "$VAR/exports/$1"/*.ndjson | LC_ALL=C sort >"$VAR/work/got"
    if ! cmp -s "$VAR/work/got" "$2"; then
        echo "the export differs from the data at its transactionTime:" >&2
        diff "$2" "$VAR/work/got" | head -20 >&2
        exit 1
    fi
    wc -l <"$VAR/work/got"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); worker threads: $THREADS; medians of $RUNS rounds"
t0=$(bench_now)
"$BIN" synth --patients "$N" --seed 1 --load --quiet --db "$PG_CONNINFO"
bench_sql "VACUUM ANALYZE"
resources=$(bench_sql "SELECT count(*) FROM resource WHERE NOT deleted")
echo "$N patients: $resources resources, generated and loaded in $(secs "$t0" "$(bench_now)") s"
for i in $(seq "$RUNS"); do
    # (psql's unaligned output: the JSON as it is; COPY's text format would escape it)
    bench_sql "SELECT jsonb_set(body::jsonb, '{language}', to_jsonb('x-round-$i'::text))::text
         FROM resource WHERE NOT deleted AND res_type <> 'Group' AND abs(hashtext(res_id)) % 10 = 0" \
        >"$VAR/work/rewrite-$i.ndjson"
done
rewrites=$(wc -l <"$VAR/work/rewrite-1.ndjson")
echo "each round rewrites $rewrites resources ($(awk -v a="$rewrites" -v b="$resources" 'BEGIN { printf "%.1f", a / b * 100 }')%)"
bench_sql "CHECKPOINT"

bench_start_nginx
"$BIN" worker --db "$PG_CONNINFO" --export-dir "$VAR/exports" --threads "$THREADS" \
    --history-retention-seconds 0 --janitor-interval-seconds 1 >>"$VAR/log/worker.log" 2>&1 &
worker_pid=$!

declare -A T=()
for i in $(seq "$RUNS"); do
    # quiet
    bench_sql "CHECKPOINT" >/dev/null
    a=$(bench_now)
    url=$(kickoff)
    wait_done "$url"
    T[quiet,$i]=$(secs "$a" "$(bench_now)")
    n=$(bench_sql "SELECT resources_written FROM export_job WHERE job_id = '${url##*/}'")
    [ "$n" = "$resources" ] || { echo "quiet export wrote $n resources, expected $resources" >&2; exit 1; }
    forget "$url"

    # concurrent: the snapshot at transactionTime is the data now (nothing else writes)
    bench_sql "COPY (SELECT res_type || '/' || res_id || ' ' || md5(body) FROM resource WHERE NOT deleted) TO STDOUT" |
        LC_ALL=C sort >"$VAR/work/snapshot"
    before=$(bench_sql "SELECT count(*) FROM resource WHERE NOT deleted")
    bench_sql "CHECKPOINT" >/dev/null
    a=$(bench_now)
    url=$(kickoff)
    ( l0=$(bench_now); "$BIN" load --quiet --db "$PG_CONNINFO" "$VAR/work/rewrite-$i.ndjson"
      secs "$l0" "$(bench_now)" >"$VAR/work/load-time" ) &
    loader=$!
    wait_done "$url"
    T[concurrent,$i]=$(secs "$a" "$(bench_now)")
    replaced=$(bench_sql "SELECT count(*) FROM resource_history WHERE valid_to > (SELECT transaction_time FROM export_job WHERE job_id = '${url##*/}')")
    wait "$loader"
    checked=$(check_export "${url##*/}" "$VAR/work/snapshot")
    [ "$checked" = "$before" ] || { echo "checked $checked lines, expected $before" >&2; exit 1; }
    forget "$url"
    echo "round $i: quiet ${T[quiet,$i]} s; concurrent ${T[concurrent,$i]} s (loader $(cat "$VAR/work/load-time") s, $replaced versions replaced by the end of the export; $checked resources as of transactionTime, each exactly once: OK)"
done
stop_worker
bench_stop_nginx

series() { for i in $(seq "$RUNS"); do echo "${T[$1,$i]}"; done; }
q=$(series quiet | bench_median)
c=$(series concurrent | bench_median)
ratio=$(awk -v a="$c" -v b="$q" 'BEGIN { printf "%.2f", a / b }')
echo
echo "== summary (goal: concurrent <= 1.2 x quiet)"
echo "system export of $resources resources: quiet $q s, while rewriting $rewrites resources $c s: $ratio x"
if [ -n "${BENCH_MD:-}" ]; then
    {
        echo "| patients | resources | rewritten per round | quiet s | concurrent s | ratio |"
        echo "|---:|---:|---:|---:|---:|---:|"
        echo "| $N | $resources | $rewrites | $q | $c | $ratio |"
    } >>"$BENCH_MD"
fi
