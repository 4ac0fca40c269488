#!/usr/bin/env bash
# organize_benchmark.sh: organizeOutputBy=Patient (IG 3.0.0) system export vs the
# type-organized system export of the same data, in the same run (issue 13: <= 2 x), and the
# worker's peak RSS for the organized export at each size (flat).
#
#   benchmarks/organize_benchmark.sh [SIZES] [RUNS]
#
#   SIZES  comma-separated patient counts (default 1000,10000; 10,000 patients take ~10 min
#          to generate and load and ~25 GB of disk)
#   RUNS   interleaved runs of each export (default 3); medians are reported
#
# Environment: BUILD (default build/), BENCH_THREADS (worker threads, default 2),
# BENCH_MD=FILE (append a Markdown table). Each size has its own PostgreSQL cluster under
# $BUILD/bench-organize-data/pg-<N> with a population (synth --seed 1 --load, VACUUM
# ANALYZE); nginx (authorization off) and the worker run under $BUILD/bench-organize.
# BENCH_KEEP=1 keeps the clusters after the run, and a later run reuses a cluster that holds
# the size's population (10,000 patients are generated once). A worker is started for each
# export, so its VmHWM (read when the export has completed) is that export's peak. Export
# time: kick-off to the 200 manifest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZES=${1:-1000,10000}
RUNS=${2:-3}
THREADS=${BENCH_THREADS:-2}
BIN=$BUILD/bin/fhir-bulk
MODULE=$BUILD/nginx/ngx_http_fhir_bulk_module.so
NGINX=${NGINX:-/usr/sbin/nginx}
VAR=$BUILD/bench-organize
DATA=$BUILD/bench-organize-data
[ -x "$BIN" ] && [ -f "$MODULE" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }

worker_pid="" nginx_started=0
stop_worker() {
    if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
        kill -TERM "$worker_pid"
        wait "$worker_pid" 2>/dev/null || true
    fi
    worker_pid=""
}
stop_nginx() {
    if [ "$nginx_started" = 1 ] && [ -f "$VAR/nginx/nginx.pid" ]; then
        local pid
        pid=$(cat "$VAR/nginx/nginx.pid")
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    nginx_started=0
}
pg_dir=""
stop_pg() {
    if [ -n "$pg_dir" ]; then "$ROOT/scripts/pg-cluster.sh" stop "$pg_dir" >/dev/null 2>&1 || true; fi
    pg_dir=""
}
cleanup() {
    stop_worker
    stop_nginx
    stop_pg
    rm -rf "$VAR"
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT

rm -rf "$VAR"
mkdir -p "$VAR/nginx/conf" "$VAR/nginx/logs" "$VAR/nginx/temp" "$VAR/exports" "$VAR/log" "$DATA"
if [ "$(id -u)" = 0 ]; then  # nginx workers run as nobody and read the export files
    chgrp nogroup "$VAR/exports"
    chmod 2775 "$VAR/exports"
fi
start_pg() {  # start_pg N: the cluster of size N, migrated
    stop_pg
    pg_dir=$DATA/pg-$1
    "$ROOT/scripts/pg-cluster.sh" start "$pg_dir" >/dev/null
    # shellcheck disable=SC1090
    . "$pg_dir/env"
    "$BIN" migrate --quiet --db "$PG_CONNINFO" >/dev/null
}
sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
spread() { sort -g | awk 'NR == 1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
now() { date +%s.%N; }

start_nginx() {
    local port auth=""
    port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or die; print $s->sockport')
    install -m 600 "$pg_dir/nginx-conninfo" "$VAR/nginx/conf/conninfo"
    # A build with SMART authorization (on by default) is measured without it: the tokens'
    # cost is another benchmark's.
    if grep -qa fhir_bulk_auth "$MODULE"; then auth="fhir_bulk_auth off;"; fi
    local user_line=""
    [ "$(id -u)" = 0 ] && user_line="user nobody nogroup;"
    cat >"$VAR/nginx/conf/nginx.conf" <<CONF
load_module $MODULE;
$user_line
worker_processes 2;
pid $VAR/nginx/nginx.pid;
error_log $VAR/nginx/logs/error.log warn;
thread_pool fhir_bulk threads=4 max_queue=512;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $VAR/nginx/temp/body;
    proxy_temp_path $VAR/nginx/temp/proxy;
    fastcgi_temp_path $VAR/nginx/temp/fastcgi;
    uwsgi_temp_path $VAR/nginx/temp/uwsgi;
    scgi_temp_path $VAR/nginx/temp/scgi;
    server {
        listen 127.0.0.1:$port;
        $auth
        location /fhir {
            fhir_bulk_api;
            fhir_bulk_base_url http://127.0.0.1:$port/fhir;
            fhir_bulk_pg_conninfo_file $VAR/nginx/conf/conninfo;
            fhir_bulk_thread_pool fhir_bulk;
            fhir_bulk_export_dir $VAR/exports;
            fhir_bulk_max_active_exports 0;
            fhir_bulk_max_retained_exports 0;
        }
        location /fhir/\$export-files/ {
            fhir_bulk_files $VAR/exports;
            sendfile on;
        }
    }
}
CONF
    "$NGINX" -p "$VAR/nginx" -c "$VAR/nginx/conf/nginx.conf" -e "$VAR/nginx/logs/error.log"
    nginx_started=1
    FHIR_BASE=http://127.0.0.1:$port/fhir
    for _ in $(seq 50); do
        curl -fsS -o /dev/null "$FHIR_BASE/metadata" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nginx does not answer (see $VAR/nginx/logs/error.log)" >&2
    exit 1
}

start_worker() {
    stop_worker
    "$BIN" worker --db "$PG_CONNINFO" --export-dir "$VAR/exports" --threads "$THREADS" \
        ${BENCH_WORKER_ARGS:-} >>"$VAR/log/worker.log" 2>&1 &
    worker_pid=$!
}
worker_hwm_mb() { awk '/^VmHWM/ {printf "%.1f\n", $2 / 1024}' "/proc/$worker_pid/status"; }
export_time() {  # export_time PATH: "seconds resources" from kick-off to the 200 manifest
    local t0 t1 url job code resources
    t0=$(now)
    url=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
        -H 'Prefer: respond-async' "$FHIR_BASE/$1" | tr -d '\r' |
        sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
    job=${url##*/}
    # One session watches the job (a new connection per poll would cost CPU the export needs).
    psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
        WHILE (SELECT state FROM export_job WHERE job_id = '$job') NOT IN
              ('completed', 'failed', 'cancelled') LOOP
            PERFORM pg_sleep(0.02);
        END LOOP; END \$\$" >/dev/null
    code=$(curl -sS -o "$VAR/manifest.json" -w '%{http_code}' "$url")
    t1=$(now)
    if [ "$code" != 200 ]; then
        echo "export $1: status $code: $(head -c 500 "$VAR/manifest.json")" >&2
        exit 1
    fi
    resources=$(sql "SELECT resources_written FROM export_job WHERE job_id = '$job'")
    curl -fsS -X DELETE -o /dev/null "$url"
    rm -rf "$VAR/exports/$job" "$VAR/exports/.cancelled-$job"
    awk -v a="$t0" -v b="$t1" -v n="$resources" 'BEGIN { printf "%.3f %d\n", b - a, n }'
}


echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); worker threads: $THREADS; medians of $RUNS runs"
MD="| patients | resources | by type s | organized s | ratio | worker VmHWM MB, by type | worker VmHWM MB, organized |"$'\n'"|---:|---:|---:|---:|---:|---:|---:|"$'\n'
SUMMARY=""
for N in ${SIZES//,/ }; do
    echo
    echo "== $N patients"
    stop_worker
    stop_nginx
    start_pg "$N"
    sql "DELETE FROM export_job"
    if [ ! -f "$pg_dir/.loaded" ] ||
        [ "$(sql "SELECT count(*) FROM resource WHERE res_type = 'Patient'")" != "$N" ]; then
        rm -f "$pg_dir/.loaded"
        sql "TRUNCATE resource, group_member"
        t0=$(now)
        "$BIN" synth --patients "$N" --seed 1 --load --quiet --db "$PG_CONNINFO"
        sql "VACUUM ANALYZE"
        touch "$pg_dir/.loaded"
        echo "generated and loaded in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
    else
        echo "reusing the population in $pg_dir"
    fi
    sql "CHECKPOINT"
    resources=$(sql "SELECT count(*) FROM resource WHERE NOT deleted")
    start_nginx
    typed=() organized=() typed_mb=() organized_mb=()
    for i in $(seq "$RUNS"); do
        start_worker
        read -r t n < <(export_time '$export')
        [ "$n" = "$resources" ] || { echo "type-organized export wrote $n of $resources" >&2; exit 1; }
        typed+=("$t"); typed_mb+=("$(worker_hwm_mb)")
        start_worker
        read -r o n < <(export_time '$export?organizeOutputBy=Patient')
        [ "$n" = "$resources" ] || { echo "organized export wrote $n of $resources" >&2; exit 1; }
        organized+=("$o"); organized_mb+=("$(worker_hwm_mb)")
        echo "run $i: by type $t s (worker ${typed_mb[-1]} MB), organized $o s (worker ${organized_mb[-1]} MB)"
    done
    stop_worker
    stop_nginx
    stop_pg
    tm=$(printf '%s\n' "${typed[@]}" | median)
    om=$(printf '%s\n' "${organized[@]}" | median)
    tmb=$(printf '%s\n' "${typed_mb[@]}" | median)
    omb=$(printf '%s\n' "${organized_mb[@]}" | median)
    line=$(awk -v N="$N" -v r="$resources" -v t="$tm" -v o="$om" -v a="$tmb" -v b="$omb" \
        'BEGIN { printf "%6d patients, %d resources: organized %.2f s vs by type %.2f s = %.2f x; worker peak RSS %.1f MB organized, %.1f MB by type", N, r, o, t, o / t, b, a }')
    echo "$line"
    SUMMARY+="$line"$'\n'
    MD+="$(awk -v N="$N" -v r="$resources" -v t="$tm" -v o="$om" -v a="$tmb" -v b="$omb" \
        'BEGIN { printf "| %d | %d | %.2f | %.2f | %.2f | %.1f | %.1f |", N, r, t, o, o / t, a, b }')"$'\n'
done
echo
echo "== summary (goal: organized <= 2 x by type; worker peak RSS flat across sizes)"
printf '%s' "$SUMMARY"
if [ -n "${BENCH_MD:-}" ]; then
    {
        echo "Medians of $RUNS interleaved runs; $(nproc) cores; worker threads: $THREADS."
        echo
        printf '%s' "$MD"
    } >>"$BENCH_MD"
fi
