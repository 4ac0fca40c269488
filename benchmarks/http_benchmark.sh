#!/usr/bin/env bash
# http_benchmark.sh: the HTTP side of the module against plain nginx in the same nginx, same
# run (issue 7, benchmarks 3-5). Each figure is printed beside its baseline and the ratio;
# figures are medians of BENCH_RUNS runs, the runs of compared things interleaved.
#
#   benchmarks/http_benchmark.sh [downloads] [polling] [token]      default: all three
#
#   downloads  a ~BENCH_DL_MB (500) MB export file through the files location (bearer token of
#              the job's owner checked, sendfile) vs the same file from a plain `alias`
#              location of the same server; one curl stream (BENCH_DL_RUNS runs), and four
#              curls at once (BENCH_RUNS runs); plain and the gzip twin (gzip_static on in the
#              baseline). Goal: ratio >= 0.9. Also nginx's CPU per GB sent, and requests/s of a
#              small file (the per-request cost of the check and the audit record; goal >= 0.9,
#              issue 17), with the CPU each request costs nginx's workers and PostgreSQL (the
#              audit record's row).
#   polling    status polls with a valid bearer token (wrk) of a completed job (200 manifest)
#              and of an accepted job (202; no worker runs) vs `return 200` in the same
#              server; goal >= 0.95 (issue 17; 0.5 in issue 7) with zero errors. Kick-offs/s
#              (jobs accumulate; no goal).
#   token      tokens/s of the token endpoint with ES384 and with RS384 client assertions,
#              each a fresh jti, pre-signed with Perl Crypt::JWT (not timed) and sent by a wrk
#              Lua script; baseline: the same script POSTing the same bodies to `return 200`
#              (the driver's ceiling). The driver's CPU use is printed.
#
# Environment: BUILD (build directory, default build/, as export_benchmark.sh), BENCH_RUNS (3),
# BENCH_DURATION (wrk seconds per run, 5), BENCH_CONNECTIONS (wrk connections for polls,
# kick-offs and small files, 32), BENCH_DL_MB (500), BENCH_DL_RUNS (single-stream downloads of
# each variant, 9), BENCH_DL_PATIENTS (the generated population whose real Observation export
# is repeated into the big file, 100), BENCH_TOKENS (assertions per alg per run, 1000),
# HTTP_BENCH_DIR (the private stack: PostgreSQL, nginx, exports; default
# $BUILD/http-bench, removed first), HTTP_BENCH_KEEP=1 (leave the stack running after a
# successful run, e.g. to profile it).
#
# The stack (PostgreSQL with its defaults as `make up` runs it, nginx from
# conf.d/fhir-bulk.conf.template with fhir_bulk_min_poll_interval 0 and
# fhir_bulk_max_active_exports 0, fhir_bulk_max_retained_exports 0, access_log off) runs on free loopback ports and is stopped
# on exit, whatever happens; its directory is removed after a successful run (kept, minus the
# big files, after a failure).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
BIN=$BUILD_DIR/bin/fhir-bulk
MODULE=$BUILD_DIR/nginx/ngx_http_fhir_bulk_module.so
NGINX=${NGINX:-/usr/sbin/nginx}
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-5}
CONNS=${BENCH_CONNECTIONS:-32}
DL_MB=${BENCH_DL_MB:-500}
DL_PATIENTS=${BENCH_DL_PATIENTS:-100}
DL_RUNS=${BENCH_DL_RUNS:-9}
TOKENS=${BENCH_TOKENS:-1000}
DIR=${HTTP_BENCH_DIR:-$BUILD_DIR/http-bench}

die() { echo "http_benchmark: $*" >&2; exit 1; }
[ -x "$BIN" ] && [ -f "$MODULE" ] || die "build first: make (missing $BIN or $MODULE)"
command -v wrk >/dev/null || die "wrk is not installed"

SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=(downloads polling token)
for s in "${SECTIONS[@]}"; do
    case $s in downloads | polling | token) ;; *) die "unknown section '$s' (downloads, polling, token)" ;; esac
done
want() { local s; for s in "${SECTIONS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# shellcheck source=benchmarks/lib.sh
. "$ROOT/benchmarks/lib.sh"  # bench_pg_cpu
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
        LocalPort => 0, Proto => "tcp")->sockport, "\n"'
}

# --- the private stack ----------------------------------------------------------------------

WORKER_PID=""
cleanup() {
    local rc=$?
    set +e
    if [ "${HTTP_BENCH_KEEP:-0}" = 1 ] && [ $rc = 0 ]; then
        echo "HTTP_BENCH_KEEP: the stack runs on under $DIR (nginx $HOST, PG_CONNINFO in $DIR/pg/env);"
        echo "  stop: kill -QUIT \$(cat $DIR/nginx/nginx.pid); scripts/pg-cluster.sh stop $DIR/pg"
        return
    fi
    [ -n "$WORKER_PID" ] && kill -TERM "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null
    if [ -s "$DIR/nginx/nginx.pid" ]; then
        local pid
        pid=$(cat "$DIR/nginx/nginx.pid")
        kill -QUIT "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
    fi
    [ -d "$DIR/pg/data" ] && "$ROOT/scripts/pg-cluster.sh" stop "$DIR/pg" >/dev/null 2>&1
    if [ $rc = 0 ]; then
        rm -rf "$DIR"
    else
        rm -rf "$DIR/exports"  # the big files are not worth keeping
        echo "http_benchmark: logs kept under $DIR (nginx/logs, work/)" >&2
    fi
}

if [ -d "$DIR/pg/data" ]; then "$ROOT/scripts/pg-cluster.sh" stop "$DIR/pg" >/dev/null 2>&1 || true; fi
rm -rf "$DIR"
mkdir -p "$DIR/nginx/conf" "$DIR/nginx/logs" "$DIR/nginx/temp" "$DIR/exports" "$DIR/work"
chmod 755 "$DIR"
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/pg-cluster.sh" start "$DIR/pg" >/dev/null
# shellcheck disable=SC1091
. "$DIR/pg/env"
"$BIN" migrate --quiet --db "$PG_CONNINFO" >/dev/null
sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }

EXPORT_DIR=$DIR/exports
user_line=""
if [ "$(id -u)" = 0 ]; then
    user_line="user nobody nogroup;"
    chgrp nogroup "$EXPORT_DIR"
    chmod 2775 "$EXPORT_DIR"
fi
PORT=$(free_port)
HOST=http://127.0.0.1:$PORT
BASE=$HOST/fhir
(umask 077; echo "kbench $(openssl rand -hex 32)" >"$DIR/nginx/conf/token.key")
install -m 600 "$DIR/pg/nginx-conninfo" "$DIR/nginx/conf/conninfo"

# The server block exactly as deployed (conf.d/fhir-bulk.conf.template), with the poll
# interval, the kick-off limit and the per-address limits (limit_req, limit_conn: wrk runs
# from one address) off for the benchmark, plus the baselines.
server_conf=$("$BIN" config render \
    --template "$ROOT/conf.d/fhir-bulk.conf.template" --set "LISTEN=127.0.0.1:$PORT" \
    --set SSL_CERTIFICATE= --set SSL_CERTIFICATE_KEY= --set "BASE_URL=$BASE" \
    --set BASE_PATH=/fhir --set "CONNINFO_FILE=$DIR/nginx/conf/conninfo" \
    --set "EXPORT_DIR=$EXPORT_DIR" --set "TOKEN_KEY_FILE=$DIR/nginx/conf/token.key" \
    --set ACCESS_LOG=off --set "APP_DIR=$ROOT/app")
baselines="
    # --- benchmark baselines (benchmarks/http_benchmark.sh) ---
    location /plain/ {
        alias $EXPORT_DIR/;
        sendfile on;
        tcp_nopush on;
        gzip_static on;
        default_type application/fhir+ndjson;
    }
    location = /ok {
        return 200;
    }
    location = /okbody {
        return 200 \"{}\";
    }"
server_conf=$(printf '%s\n' "$server_conf" | BASELINES=$baselines perl -0pe '
    s/fhir_bulk_max_active_exports\s+\d+;/fhir_bulk_max_active_exports 0;\n        fhir_bulk_max_retained_exports 0;\n        fhir_bulk_min_poll_interval 0;/
        or die "no fhir_bulk_max_active_exports line in the template\n";
    s/(server_name[^;]*;)/$1\n$ENV{BASELINES}/ or die "no server_name line in the template\n";
    s/^[ \t]*limit_(?:req|conn)[ \t][^;]*;\n//mg;')
cat >"$DIR/nginx/conf/nginx.conf" <<CONF
load_module $MODULE;
$(sed -n 's/^thread_pool .*/&/p' "$ROOT/conf.d/mod-http-fhir-bulk.conf.template")
$user_line
worker_processes 2;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx/temp/body;
    proxy_temp_path $DIR/nginx/temp/proxy;
    fastcgi_temp_path $DIR/nginx/temp/fastcgi;
    uwsgi_temp_path $DIR/nginx/temp/uwsgi;
    scgi_temp_path $DIR/nginx/temp/scgi;
$server_conf
}
CONF
grep -q '^thread_pool ' "$DIR/nginx/conf/nginx.conf" || die "no thread_pool line in the main template"
"$NGINX" -t -q -p "$DIR/nginx" -c "$DIR/nginx/conf/nginx.conf" -e "$DIR/nginx/logs/error.log"
"$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/conf/nginx.conf" -e "$DIR/nginx/logs/error.log"
for _ in $(seq 100); do curl -fsS -o /dev/null "$BASE/metadata" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$BASE/metadata" || die "nginx does not answer on $BASE"

# --- clients, keys, assertions (Perl Crypt::JWT, as the t/ tests) ---------------------------

cat >"$DIR/work/jwt.pl" <<'PERL'
use strict;
use warnings;
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use Crypt::PK::RSA;
use HTTP::Tiny;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(time);

my $JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
sub load_key { my ($alg, $f) = @_; $alg eq 'ES384' ? Crypt::PK::ECC->new($f) : Crypt::PK::RSA->new($f) }
sub enc { my $s = shift; $s =~ s/([^A-Za-z0-9\-_.~])/sprintf('%%%02X', ord $1)/ge; $s }
sub body {
    my ($alg, $pk, $kid, $client, $aud, $jti) = @_;
    my $jwt = encode_jwt(payload => { iss => $client, sub => $client, aud => $aud,
                                      exp => int(time) + 240, jti => $jti },
                         key => $pk, alg => $alg, extra_headers => { kid => $kid, typ => 'JWT' });
    my %f = (grant_type => 'client_credentials', client_assertion_type => $JWT_BEARER,
             client_assertion => $jwt, scope => 'system/*.read');
    return join '&', map { enc($_) . '=' . enc($f{$_}) } sort keys %f;
}

my $cmd = shift // '';
if ($cmd eq 'keygen') {            # keygen ALG PRIVATE_PEM JWKS KID
    my ($alg, $priv, $jwks, $kid) = @ARGV;
    my $pk = $alg eq 'ES384' ? Crypt::PK::ECC->new : Crypt::PK::RSA->new;
    $alg eq 'ES384' ? $pk->generate_key('secp384r1') : $pk->generate_key(256, 65537);
    open(my $p, '>', $priv) or die "$priv: $!"; print $p $pk->export_key_pem('private'); close $p;
    my $jwk = decode_json($pk->export_key_jwk('public'));
    $jwk->{kid} = $kid;
    open(my $j, '>', $jwks) or die "$jwks: $!"; print $j encode_json({ keys => [$jwk] }); close $j;
} elsif ($cmd eq 'bodies') {       # bodies ALG PRIVATE_PEM KID CLIENT AUD N OUT PROCS
    my ($alg, $priv, $kid, $client, $aud, $n, $out, $procs) = @ARGV;
    my @kids;
    for my $w (0 .. $procs - 1) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $pk = load_key($alg, $priv);
            open(my $o, '>', "$out.$w") or die "$out.$w: $!";
            for (my $i = $w; $i < $n; $i += $procs) {
                print $o body($alg, $pk, $kid, $client, $aud, "bench-$$-$i-" . int(rand(1e12))), "\n";
            }
            close $o;
            exit 0;
        }
        push @kids, $pid;
    }
    waitpid($_, 0) == $_ && $? == 0 || die "a signer failed\n" for @kids;
    open(my $o, '>', $out) or die "$out: $!";
    for my $w (0 .. $procs - 1) {
        open(my $i, '<', "$out.$w") or die; print $o $_ while <$i>; close $i; unlink "$out.$w";
    }
    close $o;
} elsif ($cmd eq 'token') {        # token ALG PRIVATE_PEM KID CLIENT TOKEN_URL
    my ($alg, $priv, $kid, $client, $aud) = @ARGV;
    my $res = HTTP::Tiny->new->post($aud, {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => body($alg, load_key($alg, $priv), $kid, $client, $aud, 'one-' . time . rand()) });
    die "token request: $res->{status} $res->{content}\n" unless $res->{status} == 200;
    print decode_json($res->{content})->{access_token}, "\n";
} else {
    die "usage: jwt.pl keygen|bodies|token ...\n";
}
PERL
jwt() { perl "$DIR/work/jwt.pl" "$@"; }
TOKEN_URL=$BASE/auth/token
declare -A CLIENT
for alg in ES384 RS384; do
    jwt keygen "$alg" "$DIR/work/$alg.pem" "$DIR/work/$alg.jwks" "bench-$alg"
    CLIENT[$alg]=$("$BIN" client add --name "bench $alg" --jwks "$DIR/work/$alg.jwks" \
        --scope 'system/*.read' --db "$PG_CONNINFO")
done
# A fresh access token (they live 300 s: one per measurement)
token() { jwt token ES384 "$DIR/work/ES384.pem" bench-ES384 "${CLIENT[ES384]}" "$TOKEN_URL"; }

# CPU time of nginx's worker processes so far (all their threads), in nanoseconds
worker_cpu_ns() {
    local pids p
    pids=$(ps --ppid "$(cat "$DIR/nginx/nginx.pid")" -o pid=)
    for p in $pids; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# --- wrk helpers ----------------------------------------------------------------------------

# run_wrk ARGS...: runs wrk; sets WRK_RPS (requests/s) and WRK_ERR (non-2xx/3xx responses plus
# socket errors) and WRK_BPS (bytes/s read, partial responses included). The report stays in
# work/wrk.out.
run_wrk() {
    local out=$DIR/work/wrk.out
    WRK_RPS="" WRK_ERR="" WRK_REQ=""
    wrk "$@" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
    read -r WRK_RPS WRK_ERR WRK_BPS WRK_REQ < <(awk '/^Requests\/sec:/ { rps = $2 }
         / requests in / { req = $1 }
         /^Transfer\/sec:/ { v = $2; m = 1; if (v ~ /GB$/) m = 2^30; else if (v ~ /MB$/) m = 2^20; else if (v ~ /KB$/) m = 2^10
                             gsub(/[A-Z]+$/, "", v); bps = v * m }
         /Non-2xx or 3xx responses:/ { err += $NF }
         /Socket errors:/ { for (i = 3; i <= NF; i++) { v = $i; gsub(/,/, "", v); if (v ~ /^[0-9]+$/) err += v } }
         END { printf "%s %d %.0f %d\n", rps, err, bps, req }' "$out")
    [ -n "$WRK_RPS" ] || { cat "$out" >&2; die "no Requests/sec in wrk's report"; }
}

row_header() {
    printf '%-50s %10s %10s %7s %7s %5s %3s %s\n' "" "baseline" "module" "ratio" "paired" "goal" "N" "errors"
}
# row LABEL UNIT "BASELINE RUNS" "MODULE RUNS" GOAL ERRORS: medians of the runs, the ratio of the
# medians, and "paired": the median of the per-run ratios (run i of the module over run i of
# the baseline, measured one after the other), which the machine's drift affects less. The
# verdict is on the paired ratio.
row() {
    local b m pr n
    b=$(printf '%s\n' $3 | median)
    m=$(printf '%s\n' $4 | median)
    pr=$(paste -d' ' <(printf '%s\n' $4) <(printf '%s\n' $3) | awk '{ print ($2 > 0 ? $1 / $2 : 0) }' | median)
    n=$(printf '%s\n' $4 | wc -l)
    awk -v l="$1 ($2)" -v b="$b" -v m="$m" -v p="$pr" -v g="$5" -v n="$n" -v e="$6" 'BEGIN {
        r = b > 0 ? m / b : 0
        verdict = g == "-" ? "" : (p >= g && e == 0 ? " met" : " MISSED")
        printf "%-50s %10.1f %10.1f %7.3f %7.3f %5s %3d %s%s\n", l, b, m, r, p, g, n, e, verdict }'
}

echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), 2 worker processes, access_log off; wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'); runs interleaved, medians of $RUNS"

# A completed export (the worker runs only for it): its files feed the downloads and its status
# URL is the 200 poll.
need_export=0
want downloads && need_export=1
want polling && need_export=1
if [ $need_export = 1 ]; then
    "$BIN" synth --patients "$DL_PATIENTS" --seed 1 --load --quiet --db "$PG_CONNINFO"
    "$BIN" worker --db "$PG_CONNINFO" --export-dir "$EXPORT_DIR" --threads 2 \
        >>"$DIR/work/worker.log" 2>&1 </dev/null &
    WORKER_PID=$!
    TOK=$(token)
    status_url=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
        -H 'Prefer: respond-async' -H "Authorization: Bearer $TOK" \
        "$BASE/\$export?_type=Observation" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
    [ -n "$status_url" ] || die "the Observation export was not accepted"
    COMPLETED_URL=$status_url
    JOB=${status_url##*/}
    for _ in $(seq 1200); do
        code=$(curl -s -o "$DIR/work/manifest.json" -w '%{http_code}' \
            -H "Authorization: Bearer $TOK" "$status_url")
        [ "$code" = 202 ] || break
        sleep 0.25
    done
    [ "$code" = 200 ] || die "the Observation export did not complete ($code)"
    # no worker from here on: a new job stays accepted
    kill -TERM "$WORKER_PID"
    wait "$WORKER_PID" || true
    WORKER_PID=""
fi

# --- 3. downloads -----------------------------------------------------------------------------

if want downloads; then
    echo
    echo "== downloads: export file through the module (bearer token, sendfile) vs plain alias location"
    src=$EXPORT_DIR/$JOB
    mapfile -t parts < <(cd "$src" && ls Observation.*.ndjson | sort -V)
    [ ${#parts[@]} -gt 0 ] || die "the export wrote no Observation file"
    BIG=$(cat /proc/sys/kernel/random/uuid)
    mkdir "$EXPORT_DIR/$BIG"
    cp "$src/.owner" "$EXPORT_DIR/$BIG/.owner"
    # The real file(s) repeated until the target size; the gzip twin is the same repetition of
    # the real twins (concatenated gzip members decompress to the concatenated text).
    target=$((DL_MB * 1000000))
    size=0
    : >"$EXPORT_DIR/$BIG/Observation.1.1.ndjson"
    : >"$EXPORT_DIR/$BIG/Observation.1.1.ndjson.gz"
    while [ "$size" -lt "$target" ]; do
        for p in "${parts[@]}"; do
            cat "$src/$p" >>"$EXPORT_DIR/$BIG/Observation.1.1.ndjson"
            [ -f "$src/$p.gz" ] && cat "$src/$p.gz" >>"$EXPORT_DIR/$BIG/Observation.1.1.ndjson.gz"
        done
        size=$(stat -c %s "$EXPORT_DIR/$BIG/Observation.1.1.ndjson")
    done
    gz_size=$(stat -c %s "$EXPORT_DIR/$BIG/Observation.1.1.ndjson.gz")
    chmod 644 "$EXPORT_DIR/$BIG"/*
    path=$BIG/Observation.1.1.ndjson
    MOD_URL=$BASE/\$export-files/$path
    PLAIN_URL=$HOST/plain/$path
    echo "file: $((size / 1000000)) MB ($(awk -v s="$size" -v b="$(stat -c %s "$src/${parts[0]}")" 'BEGIN {printf "%.0f", s / b}') x the real ${parts[0]} of a $DL_PATIENTS-patient export), gzip twin $((gz_size / 1000000)) MB"

    # curl_get URL GZIP(0|1): one download with curl; sets MBPS. Checks status and size.
    curl_get() {
        local url=$1 want=$size enc=(-H 'Accept-Encoding: identity') code bytes secs ttfb
        [ "$2" = 1 ] && { want=$gz_size; enc=(-H 'Accept-Encoding: gzip'); }
        local t0 t1
        t0=$(worker_cpu_ns)
        read -r code bytes secs ttfb < <(curl -s -o /dev/null -H "Authorization: Bearer $TOK" "${enc[@]}" \
            -w '%{http_code} %{size_download} %{time_total} %{time_starttransfer}\n' "$url")
        t1=$(worker_cpu_ns)
        TTFB_MS=$(awk -v t="$ttfb" 'BEGIN { printf "%.3f", t * 1000 }')
        [ "$code" = 200 ] && [ "$bytes" = "$want" ] ||
            die "GET $url: status $code, $bytes bytes (want 200, $want)"
        MBPS=$(awk -v s="$bytes" -v t="$secs" 'BEGIN { printf "%.1f", s / t / 1e6 }')
        # nginx's CPU per GB sent: milliseconds
        CPU_MS_GB=$(awk -v d=$((t1 - t0)) -v s="$bytes" 'BEGIN { printf "%.1f", d / 1e6 / (s / 1e9) }')
    }
    # the module must refuse without the token (the check is on)
    code=$(curl -s -o /dev/null -w '%{http_code}' "$MOD_URL")
    [ "$code" = 401 ] || die "a download without a token got $code, not 401"
    TOK=$(token)
    for u in "$MOD_URL" "$PLAIN_URL"; do curl_get "$u" 0; curl_get "$u" 1; done  # page cache, checks
    # par_get URL GZIP: 4 curl downloads at once; sets MBPS (4 x size / wall time of all four)
    par_get() {
        local url=$1 want=$size enc=(-H 'Accept-Encoding: identity') k start end code bytes secs
        [ "$2" = 1 ] && { want=$gz_size; enc=(-H 'Accept-Encoding: gzip'); }
        start=$(date +%s.%N)
        for k in 1 2 3 4; do
            curl -s -o /dev/null -H "Authorization: Bearer $TOK" "${enc[@]}" \
                -w '%{http_code} %{size_download} %{time_total}\n' "$url" >"$DIR/work/par.$k" &
        done
        wait
        end=$(date +%s.%N)
        for k in 1 2 3 4; do
            read -r code bytes secs <"$DIR/work/par.$k"
            [ "$code" = 200 ] && [ "$bytes" = "$want" ] ||
                die "GET $url: status $code, $bytes bytes (want 200, $want)"
        done
        MBPS=$(awk -v s="$want" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", 4 * s / (b - a) / 1e6 }')
    }
    declare -a cb cm gb gm pb_ pm pgb pgm ccb ccm cgb cgm tfb tfm
    for i in $(seq "$DL_RUNS"); do
        TOK=$(token)
        curl_get "$PLAIN_URL" 0; cb+=("$MBPS"); ccb+=("$CPU_MS_GB"); tfb+=("$TTFB_MS")
        curl_get "$MOD_URL" 0; cm+=("$MBPS"); ccm+=("$CPU_MS_GB"); tfm+=("$TTFB_MS")
        curl_get "$PLAIN_URL" 1; gb+=("$MBPS"); cgb+=("$CPU_MS_GB")
        curl_get "$MOD_URL" 1; gm+=("$MBPS"); cgm+=("$CPU_MS_GB")
    done
    for i in $(seq "$RUNS"); do
        TOK=$(token)
        par_get "$PLAIN_URL" 0; pb_+=("$MBPS")
        par_get "$MOD_URL" 0; pm+=("$MBPS")
        par_get "$PLAIN_URL" 1; pgb+=("$MBPS")
        par_get "$MOD_URL" 1; pgm+=("$MBPS")
    done
    row_header
    row "1 stream (curl), plain" "MB/s" "${cb[*]}" "${cm[*]}" 0.9 0
    row "1 stream (curl), gzip twin" "MB/s" "${gb[*]}" "${gm[*]}" 0.9 0
    row "4 streams at once (curl), plain" "MB/s" "${pb_[*]}" "${pm[*]}" 0.9 0
    row "4 streams at once (curl), gzip twin" "MB/s" "${pgb[*]}" "${pgm[*]}" 0.9 0
    echo "runs (MB/s, baseline/module): 1 stream plain: $(paste -d/ <(printf '%s\n' "${cb[@]}") <(printf '%s\n' "${cm[@]}") | tr '\n' ' ')"
    echo "  1 stream gzip: $(paste -d/ <(printf '%s\n' "${gb[@]}") <(printf '%s\n' "${gm[@]}") | tr '\n' ' ')"
    echo "  4 streams plain: $(paste -d/ <(printf '%s\n' "${pb_[@]}") <(printf '%s\n' "${pm[@]}") | tr '\n' ' ')"
    echo "  4 streams gzip: $(paste -d/ <(printf '%s\n' "${pgb[@]}") <(printf '%s\n' "${pgm[@]}") | tr '\n' ' ')"
    echo "MB/s = bytes on the wire (the gzip rows: compressed bytes) / curl's time_total; every download checked: 200 and the exact size"
    echo "time to first byte, 1 stream plain (ms, median): baseline $(printf '%s\n' "${tfb[@]}" | median), module $(printf '%s\n' "${tfm[@]}" | median) (the module's check happens before the first byte)"
    echo "nginx workers' CPU per GB sent (ms, median; from schedstat, less noisy than MB/s on a shared machine):"
    echo "  plain: baseline $(printf '%s\n' "${ccb[@]}" | median), module $(printf '%s\n' "${ccm[@]}" | median); gzip twin: baseline $(printf '%s\n' "${cgb[@]}" | median), module $(printf '%s\n' "${cgm[@]}" | median)"

    # The per-request cost of the check (token, owner file, audit record): a small file
    head -c 2000 "$EXPORT_DIR/$BIG/Observation.1.1.ndjson" | sed '$d' >"$EXPORT_DIR/$BIG/Observation.1.2.ndjson"
    chmod 644 "$EXPORT_DIR/$BIG/Observation.1.2.ndjson"
    small=$(stat -c %s "$EXPORT_DIR/$BIG/Observation.1.2.ndjson")
    declare -a sb sm snb snm spb spm
    serr=0
    # CPU per request of nginx's workers (schedstat, ns) and of PostgreSQL (ticks) over a run
    per_request_us() { awk -v a="$1" -v b="$2" -v s="$3" -v r="$4" 'BEGIN { printf "%.2f", (b - a) * s / 1000 / r }'; }
    small_run() {  # small_run URL: sets WRK_*, RUN_NGINX_US, RUN_PG_US
        local n0 n1 p0 p1
        n0=$(worker_cpu_ns); p0=$(bench_pg_cpu "$DIR/pg/data")
        run_wrk -t2 -c"$CONNS" -d"${DURATION}s" -H "Authorization: Bearer $TOK" "$1"
        n1=$(worker_cpu_ns); p1=$(bench_pg_cpu "$DIR/pg/data")
        RUN_NGINX_US=$(per_request_us "$n0" "$n1" 1 "$WRK_REQ")
        RUN_PG_US=$(per_request_us "$p0" "$p1" 1000000000 "$WRK_REQ")
    }
    for i in $(seq "$RUNS"); do
        TOK=$(token)
        small_run "$HOST/plain/$BIG/Observation.1.2.ndjson"
        sb+=("$WRK_RPS"); snb+=("$RUN_NGINX_US"); spb+=("$RUN_PG_US")
        small_run "$BASE/\$export-files/$BIG/Observation.1.2.ndjson"
        sm+=("$WRK_RPS"); snm+=("$RUN_NGINX_US"); spm+=("$RUN_PG_US"); serr=$((serr + WRK_ERR))
    done
    row "small file ($small B, wrk -c$CONNS ${DURATION}s)" "req/s" "${sb[*]}" "${sm[*]}" 0.9 "$serr"
    echo "runs (req/s, baseline/module): $(paste -d/ <(printf '%s\n' "${sb[@]}") <(printf '%s\n' "${sm[@]}") | tr '\n' ' ')"
    snb_m=$(printf '%s\n' "${snb[@]}" | median) snm_m=$(printf '%s\n' "${snm[@]}" | median)
    echo "CPU per small file (us, median): nginx workers: baseline $snb_m, module $snm_m" \
        "($(awk -v b="$snb_m" -v m="$snm_m" 'BEGIN { printf "%.3f", b / m }')x: the throughput ratio of" \
        "an nginx host whose database runs elsewhere); PostgreSQL: baseline" \
        "$(printf '%s\n' "${spb[@]}" | median), module $(printf '%s\n' "${spm[@]}" | median) (the audit row)"
    rm -rf "${EXPORT_DIR:?}/$BIG"
fi

# --- 4. status polling and kick-off -----------------------------------------------------------

if want polling; then
    echo
    echo "== status polls (bearer token, 1 s per-process cache) and kick-offs vs 'return 200' (wrk -t2 -c$CONNS -d${DURATION}s)"
    TOK=$(token)
    ACCEPTED_URL=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
        -H 'Prefer: respond-async' -H "Authorization: Bearer $TOK" "$BASE/\$export?_type=Patient" |
        tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
    for u in "$COMPLETED_URL" "$ACCEPTED_URL"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK" "$u")
        want_code=$([ "$u" = "$COMPLETED_URL" ] && echo 200 || echo 202)
        [ "$code" = "$want_code" ] || die "poll $u: $code, expected $want_code"
    done
    manifest_bytes=$(curl -s -H "Authorization: Bearer $TOK" "$COMPLETED_URL" | wc -c)
    jobs_before=$(sql "SELECT count(*) FROM export_job")
    declare -a pb p200 p202 kb ko
    perr200=0 perr202=0 kerr=0
    poll() { run_wrk -t2 -c"$CONNS" -d"${DURATION}s" -H "Authorization: Bearer $TOK" "$@"; }
    for i in $(seq "$RUNS"); do
        TOK=$(token)
        poll -H 'Accept: application/json' "$HOST/ok"
        pb+=("$WRK_RPS")
        poll -H 'Accept: application/json' "$COMPLETED_URL"
        p200+=("$WRK_RPS"); perr200=$((perr200 + WRK_ERR))
        poll -H 'Accept: application/json' "$ACCEPTED_URL"
        p202+=("$WRK_RPS"); perr202=$((perr202 + WRK_ERR))
        poll -H 'Accept: application/fhir+json' -H 'Prefer: respond-async' "$HOST/ok"
        kb+=("$WRK_RPS")
        poll -H 'Accept: application/fhir+json' -H 'Prefer: respond-async' "$BASE/\$export?_type=Patient"
        ko+=("$WRK_RPS"); kerr=$((kerr + WRK_ERR))
    done
    jobs_after=$(sql "SELECT count(*) FROM export_job")
    row_header
    row "poll, completed job (200, ${manifest_bytes} B manifest)" "req/s" "${pb[*]}" "${p200[*]}" 0.95 "$perr200"
    row "poll, accepted job (202)" "req/s" "${pb[*]}" "${p202[*]}" 0.95 "$perr202"
    row "kick-off (202, one job each)" "req/s" "${kb[*]}" "${ko[*]}" - "$kerr"
    echo "runs (req/s) baseline: ${pb[*]}; 200 polls: ${p200[*]}; 202 polls: ${p202[*]}; kick-off baseline: ${kb[*]}; kick-offs: ${ko[*]}"
    echo "jobs created by the kick-off runs: $((jobs_after - jobs_before)) (no worker runs; fhir_bulk_max_active_exports 0); the goal applies to polls with 0 errors"
fi

# --- 5. token endpoint ------------------------------------------------------------------------

if want token; then
    echo
    echo "== token endpoint: client_credentials with a fresh signed assertion each (wrk -t1 -c16, Lua)"
    cat >"$DIR/work/tokens.lua" <<'LUA'
-- Sends each pre-signed body once (POST <path>) and counts the answers: a 200 with a body
-- (and, unless mode is "baseline", an access_token in it) is ok, anything else bad. When every
-- body has been answered it notes the time and stops wrk (SIGINT); requests that keep the
-- other connections busy after the last body go to /ok (empty body, not counted).
-- done() prints "TOKENS <ok> <bad> <seconds from the first request to the last answer>".
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
int kill(int pid, int sig);
int getpid(void);
]]
local function now()
  local t = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, t)  -- CLOCK_MONOTONIC
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) * 1e-9
end
-- per thread (each wrk thread has its own Lua state; done() reads them with thread:get)
local bodies, n, nexti, path, baseline = {}, 0, 1, nil, false
tok_ok, tok_bad, tok_first, tok_last = 0, 0, nil, nil
function init(args)
  for line in io.lines(args[1]) do n = n + 1; bodies[n] = line end
  path = args[2]
  baseline = args[3] == "baseline"
end
local calls = 0
function request()
  calls = calls + 1
  -- wrk calls request() once before connecting, to check it (thread 1 only): not a real one
  if calls == 1 then return wrk.format("GET", "/ok") end
  if nexti <= n then
    local b = bodies[nexti]
    nexti = nexti + 1
    if tok_first == nil then tok_first = now() end
    return wrk.format("POST", path, { ["Content-Type"] = "application/x-www-form-urlencoded" }, b)
  end
  return wrk.format("GET", "/ok")
end
function response(status, headers, body)
  if tok_last ~= nil then return end
  if status == 200 and (body == nil or #body == 0) then return end  -- filler
  if status == 200 and (baseline or body:find('"access_token"', 1, true)) then
    tok_ok = tok_ok + 1
  else
    tok_bad = tok_bad + 1
  end
  if tok_ok + tok_bad >= n then
    tok_last = now()
    ffi.C.kill(ffi.C.getpid(), 2)
  end
end
-- main state
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local ok, bad, first, last = 0, 0, nil, nil
  for _, t in ipairs(threads) do
    ok = ok + (t:get("tok_ok") or 0)
    bad = bad + (t:get("tok_bad") or 0)
    local f, l = t:get("tok_first"), t:get("tok_last")
    if f ~= nil and (first == nil or f < first) then first = f end
    if l ~= nil and (last == nil or l > last) then last = l end
  end
  if first == nil or last == nil then io.write("TOKENS-INCOMPLETE\n") return end
  io.write(string.format("TOKENS %d %d %.6f\n", ok, bad, last - first))
end
LUA
    # tokens_run BODIES PATH MODE: sends every body once; sets TOK_RATE (ok answers per second,
    # first request to last answer), TOK_BAD and TOK_CPU (wrk's CPU, % of one core, over its run)
    tokens_run() {
        local start end ticks
        start=$(date +%s.%N)
        # wrk's CPU time: the children's times of a subshell that waited for it
        ticks=$( (wrk -t1 -c16 -d120s --timeout 30s -s "$DIR/work/tokens.lua" "$HOST" -- "$1" "$2" "$3" \
                    >"$DIR/work/wrk-token.out" 2>&1
                  awk '{print $16 + $17}' /proc/$BASHPID/stat) )
        end=$(date +%s.%N)
        grep -q '^TOKENS ' "$DIR/work/wrk-token.out" || { cat "$DIR/work/wrk-token.out" >&2; die "the token driver failed"; }
        read -r TOK_RATE TOK_BAD TOK_CPU < <(awk -v hz="$(getconf CLK_TCK)" -v t="$ticks" -v a="$start" -v b="$end" \
            '/^TOKENS / { printf "%.1f %d %.0f\n", ($4 > 0 ? $2 / $4 : 0), $3, 100 * t / hz / (b - a) }' \
            "$DIR/work/wrk-token.out")
    }
    declare -a tb tes trs
    terr_es=0 terr_rs=0
    declare -a cpu_b cpu_es cpu_rs
    procs=$(nproc)
    gen_s=0
    for i in $(seq "$RUNS"); do
        for alg in ES384 RS384; do
            t0=$(date +%s.%N)
            jwt bodies "$alg" "$DIR/work/$alg.pem" "bench-$alg" "${CLIENT[$alg]}" "$TOKEN_URL" \
                "$TOKENS" "$DIR/work/$alg.bodies" "$procs"
            gen_s=$(awk -v g="$gen_s" -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {print g + b - a}')
        done
        tokens_run "$DIR/work/ES384.bodies" /okbody baseline
        tb+=("$TOK_RATE"); cpu_b+=("$TOK_CPU")
        tokens_run "$DIR/work/ES384.bodies" /fhir/auth/token token
        tes+=("$TOK_RATE"); terr_es=$((terr_es + TOK_BAD)); cpu_es+=("$TOK_CPU")
        tokens_run "$DIR/work/RS384.bodies" /fhir/auth/token token
        trs+=("$TOK_RATE"); terr_rs=$((terr_rs + TOK_BAD)); cpu_rs+=("$TOK_CPU")
    done
    row_header
    row "token, ES384 assertion" "tokens/s" "${tb[*]}" "${tes[*]}" - "$terr_es"
    row "token, RS384 assertion (2048-bit)" "tokens/s" "${tb[*]}" "${trs[*]}" - "$terr_rs"
    echo "runs (per s) baseline: ${tb[*]}; ES384: ${tes[*]}; RS384: ${trs[*]}"
    echo "$TOKENS assertions per alg per run, each used once; baseline: the same driver POSTing the same bodies to 'return 200'"
    echo "driver (wrk + Lua) CPU, % of one core over the run: baseline ${cpu_b[*]}; ES384 ${cpu_es[*]}; RS384 ${cpu_rs[*]}"
    echo "signing the assertions (Perl Crypt::JWT, $procs processes, not timed): $(awk -v s="$gen_s" -v n=$((2 * RUNS * TOKENS)) 'BEGIN {printf "%.0f assertions/s", n / s}')"
    echo "jti rows: $(sql "SELECT count(*) FROM auth_jti"); PostgreSQL fsync: $(sql 'SHOW fsync'), synchronous_commit: $(sql 'SHOW synchronous_commit')"
fi

# crashes or alerts during the run would make the figures meaningless
if grep -E '\[(alert|crit|emerg)\]|exited on signal' "$DIR/nginx/logs/error.log" >&2; then
    die "nginx logged alerts or crashes during the benchmark (above)"
fi
