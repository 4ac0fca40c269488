#!/usr/bin/env bash
# partial_manifest_benchmark.sh: with allowPartialManifests=true (IG 3.0.0, issue 13), the
# time from the kick-off until the first file is downloadable, beside the full export time
# (goal: <= 20 %), both measured in the same run on the same population.
#
#   benchmarks/partial_manifest_benchmark.sh [PATIENTS] [RUNS]     (defaults 1000, 3)
#
# Environment: BUILD (build directory, default build/), BENCH_THREADS (worker threads, default
# 2). A fresh population (fhir-bulk synth --seed 1 --load), PostgreSQL, nginx (authorization
# off, fhir_bulk_min_poll_interval 0) and worker under $BUILD/bench-partial-var, removed after.
# For each run, interleaved:
#   full       GET $export (no parameter): kick-off to the 200 manifest, polled every 20 ms
#   partial    GET $export?allowPartialManifests=true, polled every 20 ms: "first file" is when
#              a poll's manifest lists an output file and that file has downloaded (200),
#              "complete" when the 200 manifest arrives
# The figure: first file / full export time (median of the per-run ratios), and first file /
# the partial export's own completion.
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
VAR=$BUILD/bench-partial-var
[ -x "$BIN" ] && [ -f "$MODULE" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }

worker_pid=""
cleanup() {
    if [ -n "$worker_pid" ]; then kill -TERM "$worker_pid" 2>/dev/null || true; wait "$worker_pid" 2>/dev/null || true; fi
    if [ -f "$VAR/nginx/nginx.pid" ]; then kill -QUIT "$(cat "$VAR/nginx/nginx.pid")" 2>/dev/null || true; sleep 0.5; fi
    "$ROOT/scripts/pg-cluster.sh" stop "$VAR/pg" >/dev/null 2>&1 || true
    rm -rf "$VAR"
}
trap cleanup EXIT
rm -rf "$VAR"
mkdir -p "$VAR/nginx/conf" "$VAR/nginx/logs" "$VAR/nginx/temp" "$VAR/exports" "$VAR/log"
if [ "$(id -u)" = 0 ]; then chgrp nogroup "$VAR/exports"; chmod 2775 "$VAR/exports"; fi
"$ROOT/scripts/pg-cluster.sh" start "$VAR/pg" >/dev/null
# shellcheck disable=SC1091
. "$VAR/pg/env"
"$BIN" migrate --quiet --db "$PG_CONNINFO" >/dev/null
sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

"$BIN" synth --patients "$N" --seed 1 --load --quiet --db "$PG_CONNINFO"
sql "VACUUM ANALYZE"
resources=$(sql "SELECT count(*) FROM resource WHERE NOT deleted")

port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(Listen => 1,
    LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or die; print $s->sockport')
install -m 600 "$VAR/pg/nginx-conninfo" "$VAR/nginx/conf/conninfo"
user_line=""
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
        fhir_bulk_auth off;
        location /fhir {
            fhir_bulk_api;
            fhir_bulk_base_url http://127.0.0.1:$port/fhir;
            fhir_bulk_pg_conninfo_file $VAR/nginx/conf/conninfo;
            fhir_bulk_thread_pool fhir_bulk;
            fhir_bulk_export_dir $VAR/exports;
            fhir_bulk_max_active_exports 0;
            fhir_bulk_max_retained_exports 0;
            fhir_bulk_min_poll_interval 0;
        }
        location /fhir/\$export-files/ {
            fhir_bulk_files $VAR/exports;
            sendfile on;
        }
    }
}
CONF
"$NGINX" -p "$VAR/nginx" -c "$VAR/nginx/conf/nginx.conf" -e "$VAR/nginx/logs/error.log"
FHIR_BASE=http://127.0.0.1:$port/fhir
for _ in $(seq 50); do curl -fsS -o /dev/null "$FHIR_BASE/metadata" 2>/dev/null && break; sleep 0.1; done
"$BIN" worker --db "$PG_CONNINFO" --export-dir "$VAR/exports" --threads "$THREADS" \
    >>"$VAR/log/worker.log" 2>&1 &
worker_pid=$!

# run_export QUERY: "complete_s first_file_s" (first_file_s is - when no partial manifest)
run_export() {
    local t0 url code first="-" f h
    t0=$(now)
    url=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
        -H 'Prefer: respond-async' "$FHIR_BASE/\$export$1" | tr -d '\r' |
        sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
    while :; do
        code=$(curl -sS -o "$VAR/poll.json" -w '%{http_code}' "$url")
        if [ "$code" = 200 ]; then break; fi
        if [ "$code" != 202 ]; then echo "poll: $code $(head -c 300 "$VAR/poll.json")" >&2; exit 1; fi
        if [ "$first" = "-" ] && [ -s "$VAR/poll.json" ]; then
            f=$(perl -MJSON::PP -0777 -ne 'my $m = decode_json($_); my $o = $m->{output}[0];
                print $o ? $o->{url} : ""' "$VAR/poll.json")
            if [ -n "$f" ] && [ "$(curl -sS -o /dev/null -w '%{http_code}' "$f")" = 200 ]; then
                first=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
            fi
        fi
        sleep 0.02
    done
    h=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    curl -fsS -X DELETE -o /dev/null "$url"
    echo "$h $first"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $N patients, $resources resources; worker threads: $THREADS; $RUNS runs"
full=() partial_done=() partial_first=() ratio=() ratio_own=()
for i in $(seq "$RUNS"); do
    read -r f _ < <(run_export "")
    read -r p pf < <(run_export "?allowPartialManifests=true")
    [ "$pf" = "-" ] && { echo "run $i: no partial manifest before completion" >&2; pf=$p; }
    full+=("$f") partial_done+=("$p") partial_first+=("$pf")
    ratio+=("$(awk -v a="$pf" -v b="$f" 'BEGIN { printf "%.3f", a / b }')")
    ratio_own+=("$(awk -v a="$pf" -v b="$p" 'BEGIN { printf "%.3f", a / b }')")
    echo "run $i: full export $f s; partial: first file downloadable $pf s, complete $p s; first/full ${ratio[-1]}"
done
med() { printf '%s\n' "$@" | median; }
echo
echo "== summary (goal: first file <= 20 % of the full export time)"
printf 'full export (baseline): %.3f s; allowPartialManifests: first file %.3f s, complete %.3f s\n' \
    "$(med "${full[@]}")" "$(med "${partial_first[@]}")" "$(med "${partial_done[@]}")"
printf 'first file / full export: %.1f %% (median of per-run ratios); / its own completion: %.1f %%\n' \
    "$(awk -v r="$(med "${ratio[@]}")" 'BEGIN { print r * 100 }')" \
    "$(awk -v r="$(med "${ratio_own[@]}")" 'BEGIN { print r * 100 }')"
