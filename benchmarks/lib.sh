# lib.sh: shell helpers shared by the end-to-end benchmarks (sourced, not run). The caller
# sets ROOT, BIN, MODULE, NGINX and VAR (the benchmark's own directory); bench_setup starts
# PostgreSQL under $VAR/pg and sets PG_CONNINFO; bench_start_nginx sets FHIR_BASE.
# Used by export_benchmark.sh, point_in_time_benchmark.sh and replica_benchmark.sh, and by
# http_benchmark.sh for bench_pg_cpu only. The
# others keep their own setup: organize and cohort keep a cached population in a cluster of
# their own, partial_manifest runs two modules side by side.

bench_now() { date +%s.%N; }
bench_median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
bench_spread() { sort -g | awk 'NR == 1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
bench_sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }

# Directories, the primary and the schema.
bench_setup() {
    rm -rf "$VAR"
    mkdir -p "$VAR/nginx/conf" "$VAR/nginx/logs" "$VAR/nginx/temp" "$VAR/exports" "$VAR/log"
    if [ "$(id -u)" = 0 ]; then  # nginx workers run as nobody and read the export files
        chgrp nogroup "$VAR/exports"
        chmod 2775 "$VAR/exports"
    fi
    "$ROOT/scripts/pg-cluster.sh" start "$VAR/pg" >/dev/null
    # shellcheck disable=SC1091
    . "$VAR/pg/env"
    "$BIN" migrate --quiet --db "$PG_CONNINFO" >/dev/null
}

BENCH_WORKER_PID="" BENCH_NGINX_STARTED=0
bench_stop_worker() {
    if [ -n "$BENCH_WORKER_PID" ] && kill -0 "$BENCH_WORKER_PID" 2>/dev/null; then
        kill -TERM "$BENCH_WORKER_PID"
        wait "$BENCH_WORKER_PID" 2>/dev/null || true
    fi
    BENCH_WORKER_PID=""
}
bench_start_worker() {  # bench_start_worker ARGS...: a worker on $PG_CONNINFO and $VAR/exports
    bench_stop_worker
    "$BIN" worker --db "$PG_CONNINFO" --export-dir "$VAR/exports" "$@" >>"$VAR/log/worker.log" 2>&1 &
    BENCH_WORKER_PID=$!
}
bench_stop_nginx() {
    if [ "$BENCH_NGINX_STARTED" = 1 ] && [ -f "$VAR/nginx/nginx.pid" ]; then
        local pid
        pid=$(cat "$VAR/nginx/nginx.pid")
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    BENCH_NGINX_STARTED=0
}
# nginx with the module (authorization off: the tokens' cost is another benchmark's).
bench_start_nginx() {
    local port auth="" user_line=""
    port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or die; print $s->sockport')
    install -m 600 "$VAR/pg/nginx-conninfo" "$VAR/nginx/conf/conninfo"
    if grep -qa fhir_bulk_auth "$MODULE"; then auth="fhir_bulk_auth off;"; fi
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
    BENCH_NGINX_STARTED=1
    FHIR_BASE=http://127.0.0.1:$port/fhir
    for _ in $(seq 50); do
        curl -fsS -o /dev/null "$FHIR_BASE/metadata" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nginx does not answer (see $VAR/nginx/logs/error.log)" >&2
    exit 1
}

# bench_export PATH: kicks off, waits (one session watching the job every 20 ms), fetches the
# manifest; prints "seconds resources job_id status_url". The job and its files stay
# (bench_drop_job).
bench_export() {
    local t0 t1 url job code resources
    t0=$(bench_now)
    url=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
        -H 'Prefer: respond-async' "$FHIR_BASE/$1" | tr -d '\r' |
        sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
    job=${url##*/}
    psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
        WHILE (SELECT state FROM export_job WHERE job_id = '$job') NOT IN
              ('completed', 'failed', 'cancelled') LOOP
            PERFORM pg_sleep(0.02);
        END LOOP; END \$\$" >/dev/null
    code=$(curl -sS -o "$VAR/manifest.json" -w '%{http_code}' "$url")
    t1=$(bench_now)
    if [ "$code" != 200 ]; then
        echo "export $1: status $code: $(head -c 500 "$VAR/manifest.json")" >&2
        exit 1
    fi
    resources=$(bench_sql "SELECT resources_written FROM export_job WHERE job_id = '$job'")
    awk -v a="$t0" -v b="$t1" -v n="$resources" -v j="$job" -v u="$url" \
        'BEGIN { printf "%.3f %d %s %s\n", b - a, n, j, u }'
}
bench_drop_job() {  # bench_drop_job JOB_ID STATUS_URL
    curl -fsS -X DELETE -o /dev/null "$2" 2>/dev/null || true
    rm -rf "$VAR/exports/$1" "$VAR/exports/.cancelled-$1"
}

# CPU seconds (user + system) a PostgreSQL server has used so far: its postmaster's own and
# its reaped children's (cutime/cstime), plus those of its live children (backends, WAL
# sender, background processes). bench_pg_cpu DATA_DIR
bench_pg_cpu() {
    local pm
    pm=$(head -1 "$1/postmaster.pid")
    local hz
    hz=$(getconf CLK_TCK)
    {
        awk '{ sub(/^[^)]*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat"
        for c in $(pgrep -P "$pm"); do
            awk '{ sub(/^[^)]*\) /, ""); print $12 + $13 }' "/proc/$c/stat" 2>/dev/null || true
        done
    } | awk -v hz="$hz" '{ s += $1 } END { printf "%.2f\n", s / hz }'
}
