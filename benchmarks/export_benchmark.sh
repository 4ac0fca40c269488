#!/usr/bin/env bash
# export_benchmark.sh: end-to-end export time of generated populations, each figure beside a
# baseline measured in the same run on the same database (issue: system export <= 1.5 x the
# baseline, cost per resource flat from 1,000 to 10,000 patients, a Group export costing its
# share of the data, worker and nginx memory flat).
#
#   benchmarks/export_benchmark.sh [SIZES] [RUNS]
#
#   SIZES  comma-separated patient counts; default 100,1000, plus 10000 with BENCH_LARGE=1
#          (~4M resources, 5 GB of JSON: ~10 min to load, ~20 min in all, ~25 GB of disk)
#   RUNS   runs of each measurement (default 3); medians are reported
#
# Environment: BUILD (build directory, default build/), BENCH_THREADS (worker threads, default
# 2 as `make up`), BENCH_MD=FILE (append the results as Markdown tables to FILE),
# BENCH_COMPARE_BIN=PATH (also measure another build's fhir-bulk worker, interleaved),
# BENCH_KEEP=1 (keep the database under $BUILD/bench-var afterwards; by default it is removed),
# BENCH_REUSE=1 (reuse a kept database whose population already has the size: no reload),
# BENCH_KINDS (default "system group": which exports to measure), BENCH_VARIANTS (indexes
# of the variants below to run, default all, e.g. "0" for gzip twins only),
# BENCH_CONCURRENT=K (issue 17: also K system exports kicked off at once against the same
# worker, with gzip twins; throughput K x resources / time from the first kick-off to the
# last 200 manifest, over a single export's resources / time in the same round; goal >= 0.9).
#
# Each size gets a fresh population (fhir-bulk synth --seed 1 --load, VACUUM ANALYZE), its own
# PostgreSQL, nginx (with the module, authorization off) and worker under $BUILD/bench-var.
# For each of RUNS rounds, in this order (interleaved, so that the machine's drift hits every
# series alike):
#   baseline   COPY (SELECT body FROM resource WHERE NOT deleted) TO STDOUT (FORMAT binary),
#              via psql to /dev/null
#   system     GET $export with the worker's default gzip twins (level 1), then without them
#              (--gzip-level 0, the same bytes as the baseline: no compression)
#   group      the same for the population's "10% sample" Group, against the COPY of exactly
#              the resources it exports (its members' compartments, without the Group itself,
#              plus the Practitioner/Organization/Location/Medication they reference)
# An export's time is from sending the kick-off to receiving the 200 manifest (the job's state
# is watched over one database session every 20 ms, then the status URL is fetched once, so
# the figure carries at most ~20 ms of polling delay and no status-throttling wait). Every
# export's resource count is checked against its baseline's. Memory: VmHWM (peak RSS) of the
# worker process and of each nginx worker process, all restarted for each size, read after
# its last export.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
if [ -n "${1:-}" ]; then
    SIZES=$1
elif [ "${BENCH_LARGE:-0}" = 1 ]; then
    SIZES=100,1000,10000
else
    SIZES=100,1000
fi
RUNS=${2:-3}
THREADS=${BENCH_THREADS:-2}
BIN=$BUILD/bin/fhir-bulk
MODULE=$BUILD/nginx/ngx_http_fhir_bulk_module.so
NGINX=${NGINX:-/usr/sbin/nginx}
VAR=$BUILD/bench-var
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

if [ "${BENCH_REUSE:-0}" != 1 ]; then rm -rf "$VAR"; fi
mkdir -p "$VAR/nginx/conf" "$VAR/nginx/logs" "$VAR/nginx/temp" "$VAR/exports" "$VAR/log"
if [ "$(id -u)" = 0 ]; then  # nginx workers run as nobody and read the export files
    chgrp nogroup "$VAR/exports"
    chmod 2775 "$VAR/exports"
fi
"$ROOT/scripts/pg-cluster.sh" start "$VAR/pg" >/dev/null
# shellcheck disable=SC1091
. "$VAR/pg/env"
"$BIN" migrate --quiet --db "$PG_CONNINFO" >/dev/null

# What is measured: "label" and "binary gzip-level"; BENCH_COMPARE_BIN adds another build's
# worker (e.g. the last commit's), interleaved with this one's.
VARIANTS=("gzip twins" "no gzip")
VARIANT_ARGS=("$BIN 1" "$BIN 0")
if [ -n "${BENCH_COMPARE_BIN:-}" ]; then
    VARIANTS+=("compared, gzip twins" "compared, no gzip")
    VARIANT_ARGS+=("$BENCH_COMPARE_BIN 1" "$BENCH_COMPARE_BIN 0")
fi

worker_hwm_kb=0
start_worker() {  # start_worker GZIP_LEVEL [BINARY]
    stop_worker
    "${2:-$BIN}" worker --db "$PG_CONNINFO" --export-dir "$VAR/exports" --threads "$THREADS" \
        --gzip-level "$1" ${BENCH_WORKER_ARGS:-} >>"$VAR/log/worker.log" 2>&1 &
    worker_pid=$!
}
note_worker_hwm() {
    local kb
    kb=$(awk '/^VmHWM/ {print $2}' "/proc/$worker_pid/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$worker_hwm_kb" ] && worker_hwm_kb=$kb
    return 0
}
nginx_hwm_kb() {  # the largest VmHWM among the nginx worker processes
    local master kb max=0
    master=$(cat "$VAR/nginx/nginx.pid")
    for p in $(pgrep -P "$master"); do
        kb=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        [ "${kb:-0}" -gt "$max" ] && max=$kb
    done
    echo "$max"
}

copy_time() {  # COPY (query) TO STDOUT (FORMAT binary) > /dev/null: "seconds"
    local t0 t1
    t0=$(bench_now)
    psql "$PG_CONNINFO" -X -q -c "COPY ($1) TO STDOUT (FORMAT binary)" >/dev/null
    t1=$(bench_now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

export_time() {  # export_time PATH: "seconds resources" from kick-off to the 200 manifest
    local secs resources job url
    read -r secs resources job url <<<"$(bench_export "$1")"
    [ -n "$url" ] || exit 1  # bench_export said why (its exit stays in the subshell)
    bench_drop_job "$job" "$url"
    echo "$secs $resources"
}

# export_times_concurrent K PATH: "seconds resources" for K exports of PATH kicked off at once
# (all K kick-offs sent, then all K watched to their 200 manifest); resources: their sum.
export_times_concurrent() {
    local k=$1 t0 t1 i url code total=0 n
    local -a urls=() jobs=()
    t0=$(bench_now)
    for i in $(seq "$k"); do
        url=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
            -H 'Prefer: respond-async' "$FHIR_BASE/$2" | tr -d '\r' |
            sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
        urls+=("$url")
        jobs+=("'${url##*/}'")
    done
    local in_list
    in_list=$(IFS=,; echo "${jobs[*]}")
    psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
        WHILE EXISTS (SELECT 1 FROM export_job WHERE job_id IN ($in_list) AND state NOT IN
              ('completed', 'failed', 'cancelled')) LOOP
            PERFORM pg_sleep(0.02);
        END LOOP; END \$\$" >/dev/null
    for url in "${urls[@]}"; do
        code=$(curl -sS -o "$VAR/manifest.json" -w '%{http_code}' "$url")
        if [ "$code" != 200 ]; then
            echo "export $2 (one of $k at once): status $code: $(head -c 500 "$VAR/manifest.json")" >&2
            exit 1
        fi
    done
    t1=$(bench_now)
    for url in "${urls[@]}"; do
        n=$(bench_sql "SELECT resources_written FROM export_job WHERE job_id = '${url##*/}'")
        total=$((total + n))
        curl -fsS -X DELETE -o /dev/null "$url"
        rm -rf "$VAR/exports/${url##*/}" "$VAR/exports/.cancelled-${url##*/}"
    done
    awk -v a="$t0" -v b="$t1" -v n="$total" 'BEGIN { printf "%.3f %d\n", b - a, n }'
}
CONCURRENT=${BENCH_CONCURRENT:-0}
KINDS=${BENCH_KINDS:-system group}

MD=""
md() { MD+="$*"$'\n'; }
md "| patients | export | resources | baseline s | export s | ratio | µs/resource | time vs system export | share of the resources |"
md "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
MEM_MD="| patients | worker VmHWM MB | nginx worker VmHWM MB (largest) |"$'\n'"|---:|---:|---:|"$'\n'
SUMMARY=""

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg); worker threads: $THREADS; medians of $RUNS runs"
for N in ${SIZES//,/ }; do
    echo
    echo "== $N patients"
    stop_worker
    bench_stop_nginx
    if [ "${BENCH_REUSE:-0}" = 1 ] && [ "$(bench_sql "SELECT count(*) FROM resource WHERE res_type = 'Patient'")" = "$N" ]; then
        echo "reusing the loaded population"
    else
        bench_sql "TRUNCATE resource, group_member; DELETE FROM export_job"
        t0=$(bench_now)
        "$BIN" synth --patients "$N" --seed 1 --load --quiet --db "$PG_CONNINFO"
        bench_sql "VACUUM ANALYZE"
        echo "generated and loaded in $(awk -v a="$t0" -v b="$(bench_now)" 'BEGIN { printf "%.0f", b - a }') s"
    fi
    bench_sql "CHECKPOINT"
    resources=$(bench_sql "SELECT count(*) FROM resource WHERE NOT deleted")
    mb=$(bench_sql "SELECT sum(octet_length(body)) / 1000000 FROM resource WHERE NOT deleted")
    group=$(bench_sql "SELECT res_id FROM resource WHERE res_type = 'Group' AND body::jsonb ->> 'name' LIKE '%10\% sample'")
    members="(SELECT array_agg(patient_id) FROM group_member WHERE group_id = '$group' AND NOT inactive)"
    sys_q="SELECT body FROM resource WHERE NOT deleted"
    grp_q="SELECT body FROM resource WHERE NOT deleted AND res_type <> 'Group' AND patients && $members
UNION ALL SELECT body FROM resource WHERE res_type IN ('Location', 'Medication', 'Organization', 'Practitioner')
 AND NOT deleted AND res_type || '/' || res_id IN (SELECT unnest(outrefs) FROM resource
 WHERE NOT deleted AND res_type <> 'Group' AND patients && $members)"
    grp_resources=$(bench_sql "SELECT count(*) FROM ($grp_q) g")
    echo "$resources resources, $mb MB of JSON; group '10% sample': $grp_resources resources"

    bench_start_nginx
    worker_hwm_kb=0
    declare -A T=()  # T[<series>,<run>]: seconds
    for i in $(seq "$RUNS"); do
        line="run $i:"
        for kind in $KINDS; do
            if [ "$kind" = system ]; then q=$sys_q path='$export' want=$resources; else q=$grp_q path="Group/$group/\$export" want=$grp_resources; fi
            T[$kind-baseline,$i]=$(copy_time "$q")
            line+=" $kind baseline ${T[$kind-baseline,$i]}"
            for v in ${BENCH_VARIANTS:-${!VARIANTS[@]}}; do
                read -r vbin vgz <<<"${VARIANT_ARGS[$v]}"
                start_worker "$vgz" "$vbin"
                read -r t n < <(export_time "$path")
                [ "$n" = "$want" ] || { echo "$kind export (${VARIANTS[$v]}) wrote $n resources, expected $want" >&2; exit 1; }
                T[$kind-$v,$i]=$t
                line+=", ${VARIANTS[$v]} $t"
                [ "$vbin" = "$BIN" ] && note_worker_hwm
            done
            if [ "$kind" = system ] && [ "$CONCURRENT" -gt 1 ]; then
                # the same worker configuration as the single export's gzip-twin series
                start_worker 1 "$BIN"
                read -r t n < <(export_times_concurrent "$CONCURRENT" "$path")
                [ "$n" = $((CONCURRENT * want)) ] || { echo "$CONCURRENT exports at once wrote $n resources, expected $((CONCURRENT * want))" >&2; exit 1; }
                T[concurrent,$i]=$t
                line+=", $CONCURRENT at once $t"
                note_worker_hwm
            fi
            [ "$kind" = system ] && line+=";"
        done
        echo "$line"
    done
    stop_worker
    nginx_kb=$(nginx_hwm_kb)
    bench_stop_nginx

    series() { for i in $(seq "$RUNS"); do echo "${T[$1,$i]}"; done; }
    share=$(awk -v g="$grp_resources" -v n="$resources" 'BEGIN { printf "%.3f", g / n }')
    echo
    printf '%-34s %10s %10s %7s %12s %12s\n' "$N patients, medians of $RUNS" "baseline s" "export s" "ratio" "µs/resource" "range s"
    for kind in $KINDS; do
        if [ "$kind" = system ]; then n=$resources; else n=$grp_resources; fi
        base=$(series "$kind-baseline" | bench_median)
        awk -v l="COPY baseline ($kind)" -v b="$base" -v n="$n" -v r="$(series "$kind-baseline" | bench_spread)" \
            'BEGIN { printf "%-34s %10.3f %10s %7s %12.2f %12s\n", l, b, "", "", b / n * 1e6, r }'
        for v in ${BENCH_VARIANTS:-${!VARIANTS[@]}}; do
            e=$(series "$kind-$v" | bench_median)
            sys_e=$(series "system-$v" | bench_median)
            awk -v l="$kind export, ${VARIANTS[$v]}" -v b="$base" -v e="$e" -v n="$n" -v r="$(series "$kind-$v" | bench_spread)" \
                'BEGIN { printf "%-34s %10.3f %10.3f %7.2f %12.2f %12s\n", l, b, e, e / b, e / n * 1e6, r }'
            if [ "$kind" = system ]; then
                frac="" sh="$mb MB of JSON"
                SUMMARY+="$(awk -v N="$N" -v l="${VARIANTS[$v]}" -v b="$base" -v e="$e" -v n="$n" \
                    'BEGIN { printf "%6d patients, %-22s system export %.2f x baseline, %.1f µs/resource (baseline %.1f)", N, l ":", e / b, e / n * 1e6, b / n * 1e6 }')"$'\n'
            else
                frac=$(awk -v a="$e" -v b="$sys_e" 'BEGIN { printf "%.1f%%", a / b * 100 }')
                sh=$(awk -v s="$share" 'BEGIN { printf "%.1f%%", s * 100 }')
            fi
            md "$(awk -v N="$N" -v l="$kind, ${VARIANTS[$v]}" -v b="$base" -v e="$e" -v n="$n" -v f="$frac" -v s="$sh" \
                'BEGIN { printf "| %d | %s | %d | %.2f | %.2f | %.2f | %.1f | %s | %s |", N, l, n, b, e, e / b, e / n * 1e6, f, s }')"
        done
    done
    if [ "$CONCURRENT" -gt 1 ] && [[ " $KINDS " == *" system "* ]]; then
        # per round: (K x resources / K-at-once time) / (resources / single time), the single
        # export being the same round's gzip-twin series (variant 0)
        ratios=$(for i in $(seq "$RUNS"); do awk -v s="${T[system-0,$i]}" -v c="${T[concurrent,$i]}" -v k="$CONCURRENT" 'BEGIN { printf "%.3f\n", k * s / c }'; done)
        c_med=$(series concurrent | bench_median)
        s_med=$(series system-0 | bench_median)
        line=$(awk -v k="$CONCURRENT" -v c="$c_med" -v s="$s_med" -v n="$resources" -v p="$(printf '%s\n' $ratios | bench_median)" -v r="$(series concurrent | bench_spread)" 'BEGIN {
            printf "%d system exports at once (gzip twins): %.3f s (range %s) for %d resources = %.0f resources/s; one export %.3f s = %.0f resources/s; throughput ratio %.2f (median of per-round ratios %.2f; goal >= 0.9)", k, c, r, k * n, k * n / c, s, n / s, k * s / c, p }')
        echo "$line"
        SUMMARY+="$(printf '%6d patients, %s' "$N" "$line")"$'\n'
    fi
    for v in ${BENCH_VARIANTS:-${!VARIANTS[@]}}; do
        [[ " $KINDS " == *" group "* ]] || break
        awk -v l="${VARIANTS[$v]}" -v s="$share" -v g="$(series "group-$v" | bench_median)" -v x="$(series "system-$v" | bench_median)" \
            'BEGIN { printf "group (%s): %.1f%% of the resources, %.1f%% of the system export'"'"'s time\n", l, s * 100, g / x * 100 }'
    done
    awk -v w="$worker_hwm_kb" -v x="$nginx_kb" 'BEGIN {
        printf "peak RSS (VmHWM): worker %.1f MB, nginx worker %.1f MB (the larger of the two)\n", w / 1024, x / 1024 }'
    MEM_MD+="$(awk -v N="$N" -v w="$worker_hwm_kb" -v x="$nginx_kb" 'BEGIN { printf "| %d | %.1f | %.1f |", N, w / 1024, x / 1024 }')"$'\n'

done

echo
echo "== summary (goal: system export <= 1.5 x baseline; µs/resource flat from 1,000 to 10,000 patients)"
printf '%s' "$SUMMARY"
echo "baseline: COPY (SELECT body ...) TO STDOUT (FORMAT binary) of the same resources via psql to /dev/null, in the same run"
echo "export: kick-off to the 200 manifest (planning, files written and fdatasynced, published); worker threads: $THREADS"
if [ -n "${BENCH_MD:-}" ]; then
    {
        echo "Medians of $RUNS interleaved runs; $(nproc) cores, load average at the start $(cut -d' ' -f1-3 /proc/loadavg); worker threads: $THREADS."
        echo
        printf '%s' "$MD"
        echo
        printf '%s' "$MEM_MD"
    } >>"$BENCH_MD"
fi
