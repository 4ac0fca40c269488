#!/usr/bin/env bash
# partial_manifest_benchmark.sh: with allowPartialManifests=true (IG 3.0.0, issue 13), the
# time from the kick-off until the first file is downloadable, beside the full export time
# (goal: <= 20 %), both measured in the same run on the same population.
#
#   benchmarks/partial_manifest_benchmark.sh [PATIENTS] [RUNS]     (defaults 1000, 3)
#
# Environment: BUILD (build directory, default build/), BENCH_THREADS (worker threads, default
# 2), BENCH_BEFORE_MODULE (another build's module: a second nginx with it serves the same
# database and worker, and each run adds the partial export through it, for a before/after
# of the HTTP side in the same run). A fresh population (fhir-bulk synth --seed 1 --load), PostgreSQL, nginx (authorization
# off, fhir_bulk_min_poll_interval 0) and worker under $BUILD/bench-partial-var, removed after.
# For each run, interleaved:
#   full       GET $export (no parameter): kick-off to the 200 manifest, polled every 20 ms
#   partial    GET $export?allowPartialManifests=true, polled every 20 ms: "first file" is when
#              a poll's manifest lists an output file and that file has downloaded (200),
#              "complete" when the 200 manifest arrives
# Both by one persistent client process (perl, HTTP::Tiny, keep-alive), so the figure is the
# server's and not the cost of starting a curl per poll.
# The figure: first file / full export time (median of the per-run ratios), and first file /
# the partial export's own completion. Each partial run also prints the worker's account of
# the job's first moments (planning time, the first unit's read / sync / commit), from its log.
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
    for pidf in "$VAR"/nginx*/nginx.pid; do
        if [ -f "$pidf" ]; then kill -QUIT "$(cat "$pidf")" 2>/dev/null || true; sleep 0.5; fi
    done
    "$ROOT/scripts/pg-cluster.sh" stop "$VAR/pg" >/dev/null 2>&1 || true
    rm -rf "$VAR"
}
trap cleanup EXIT
rm -rf "$VAR"
mkdir -p "$VAR/exports" "$VAR/log"
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

# start_nginx DIR MODULE: an nginx with MODULE under $VAR/DIR; prints its FHIR base URL.
start_nginx() {
    local dir=$VAR/$1 module=$2 port user_line=""
    mkdir -p "$dir/conf" "$dir/logs" "$dir/temp"
    port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or die; print $s->sockport')
    install -m 600 "$VAR/pg/nginx-conninfo" "$dir/conf/conninfo"
    [ "$(id -u)" = 0 ] && user_line="user nobody nogroup;"
    cat >"$dir/conf/nginx.conf" <<CONF
load_module $module;
$user_line
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
thread_pool fhir_bulk threads=4 max_queue=512;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    server {
        listen 127.0.0.1:$port;
        fhir_bulk_auth off;
        location /fhir {
            fhir_bulk_api;
            fhir_bulk_base_url http://127.0.0.1:$port/fhir;
            fhir_bulk_pg_conninfo_file $dir/conf/conninfo;
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
    "$NGINX" -p "$dir" -c "$dir/conf/nginx.conf" -e "$dir/logs/error.log"
    for _ in $(seq 50); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/fhir/metadata" 2>/dev/null && break
        sleep 0.1
    done
    echo "http://127.0.0.1:$port/fhir"
}
FHIR_BASE=$(start_nginx nginx "$MODULE")
BEFORE_BASE=""
if [ -n "${BENCH_BEFORE_MODULE:-}" ]; then BEFORE_BASE=$(start_nginx nginx-before "$BENCH_BEFORE_MODULE"); fi
"$BIN" worker --db "$PG_CONNINFO" --export-dir "$VAR/exports" --threads "$THREADS" \
    >>"$VAR/log/worker.log" 2>&1 &
worker_pid=$!

# run_export QUERY: "complete_s first_file_s job t0" (first_file_s is - when no partial manifest).
# One client process does the kick-off, the polls every 20 ms and the download: a curl and a
# perl per poll cost this loaded machine a second or more per round (measured: the server had
# the first file listed 0.5 s after the kick-off, the shell loop downloaded it 1.5 s later).
cat >"$VAR/run_export.pl" <<'PERL'
use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time sleep);
my ($url) = @ARGV;
my $http = HTTP::Tiny->new(timeout => 120, keep_alive => 1);
my $t0 = time;
my $r = $http->get($url, { headers => { Accept => 'application/fhir+json',
                                        Prefer => 'respond-async' } });
die "kick-off: $r->{status} $r->{content}\n" unless $r->{status} == 202;
my $status = $r->{headers}{'content-location'};
my $first = '-';
while (1) {
    $r = $http->get($status);
    last if $r->{status} == 200;
    die "poll: $r->{status} " . substr($r->{content}, 0, 300) . "\n" unless $r->{status} == 202;
    if ($first eq '-' && length $r->{content}) {
        my $o = decode_json($r->{content})->{output}[0];
        if ($o && $http->get($o->{url})->{status} == 200) { $first = sprintf('%.3f', time - $t0); }
    }
    sleep 0.02;
}
my $done = sprintf('%.3f', time - $t0);
$http->delete($status);
my ($job) = $status =~ m{([^/]+)$};
printf "%s %s %s %.6f\n", $done, $first, $job, $t0;
PERL
run_export() { perl "$VAR/run_export.pl" "${2:-$FHIR_BASE}/\$export$1"; }
profile() {  # profile JOB T0: the worker's lines on planning and the first two units, with
    # their time after the kick-off (the log's timestamps are UTC, ISO 8601)
    local line ts
    grep -F "job $1" "$VAR/log/worker.log" | grep -E 'planned| unit [12] ' |
        while IFS= read -r line; do
            ts=$(date -d "${line%% *}" +%s.%N 2>/dev/null) || ts=""
            if [ -n "$ts" ]; then
                printf '    worker +%.3f s: %s\n' "$(awk -v a="$2" -v b="$ts" 'BEGIN { print b - a }')" "${line#* }"
            else
                printf '    worker: %s\n' "$line"
            fi
        done || true
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $N patients, $resources resources; worker threads: $THREADS; $RUNS runs"
full=() partial_done=() partial_first=() ratio=() ratio_own=() before_first=() before_ratio=()
for i in $(seq "$RUNS"); do
    read -r f _ _ < <(run_export "")
    read -r p pf job kicked < <(run_export "?allowPartialManifests=true")
    [ "$pf" = "-" ] && { echo "run $i: no partial manifest before completion" >&2; pf=$p; }
    full+=("$f") partial_done+=("$p") partial_first+=("$pf")
    ratio+=("$(awk -v a="$pf" -v b="$f" 'BEGIN { printf "%.3f", a / b }')")
    ratio_own+=("$(awk -v a="$pf" -v b="$p" 'BEGIN { printf "%.3f", a / b }')")
    echo "run $i: full export $f s; partial: first file downloadable $pf s, complete $p s; first/full ${ratio[-1]}"
    profile "$job" "$kicked"
    if [ -n "$BEFORE_BASE" ]; then  # the same partial export through the "before" module
        read -r bp bpf _ _ < <(run_export "?allowPartialManifests=true" "$BEFORE_BASE")
        [ "$bpf" = "-" ] && bpf=$bp
        before_first+=("$bpf")
        before_ratio+=("$(awk -v a="$bpf" -v b="$f" 'BEGIN { printf "%.3f", a / b }')")
        echo "run $i: before ($BENCH_BEFORE_MODULE): first file downloadable $bpf s, complete $bp s; first/full ${before_ratio[-1]}"
    fi
done
med() { printf '%s\n' "$@" | median; }
echo
echo "== summary (goal: first file <= 20 % of the full export time)"
printf 'full export (baseline): %.3f s; allowPartialManifests: first file %.3f s, complete %.3f s\n' \
    "$(med "${full[@]}")" "$(med "${partial_first[@]}")" "$(med "${partial_done[@]}")"
printf 'first file / full export: %.1f %% (median of per-run ratios); / its own completion: %.1f %%\n' \
    "$(awk -v r="$(med "${ratio[@]}")" 'BEGIN { print r * 100 }')" \
    "$(awk -v r="$(med "${ratio_own[@]}")" 'BEGIN { print r * 100 }')"
if [ -n "$BEFORE_BASE" ]; then
    printf 'before (BENCH_BEFORE_MODULE): first file %.3f s, first file / full export: %.1f %%\n' \
        "$(med "${before_first[@]}")" "$(awk -v r="$(med "${before_ratio[@]}")" 'BEGIN { print r * 100 }')"
fi
