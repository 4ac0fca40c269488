#!/usr/bin/env bash
# replica_benchmark.sh: a system export whose units read from a streaming hot standby
# (`fhir-bulk worker --read-db`, issue 17) beside the same export read from the primary, same
# run: its time (goal <= 1.1 x) and the CPU the primary spends on it (goal <= 20 % of what the
# primary-only export costs it).
#
#   benchmarks/replica_benchmark.sh [PATIENTS] [RUNS]
#
#   PATIENTS  population size (default 1000; fhir-bulk synth --seed 1 --load, VACUUM ANALYZE)
#   RUNS      rounds (default 3); medians are reported
#
# Environment: BUILD (build directory, default build/), BENCH_THREADS (worker threads, default
# 2), BENCH_MD=FILE (append the results as a Markdown table to FILE).
#
# Own primary, standby (scripts/pg-cluster.sh standby: pg_basebackup -R, streaming,
# hot_standby_feedback on; both on this machine), nginx (module, authorization off) under
# $BUILD/bench-replica-var. Each round, interleaved: the export with a worker on the primary
# alone, then with a worker reading from the standby (jobs, leases and files on the primary).
# Time: kick-off to the 200 manifest (benchmarks/lib.sh bench_export). Primary CPU: user +
# system seconds of the primary's postmaster and all its processes (backends, WAL sender,
# background workers; benchmarks/lib.sh bench_pg_cpu) from just before the kick-off to the
# manifest, the worker already connected; and, as a baseline of what the primary spends anyway
# (background processes, the idle worker's heartbeats), the same measurement over the same
# time with no export, right after each round: "net" figures subtract it. Every export's
# resource count is checked, and every
# unit of the standby exports must have read from the standby (export_unit.read_from).
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
VAR=$BUILD/bench-replica-var
[ -x "$BIN" ] && [ -f "$MODULE" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }
# shellcheck source=benchmarks/lib.sh
. "$ROOT/benchmarks/lib.sh"

cleanup() {
    bench_stop_worker
    bench_stop_nginx
    "$ROOT/scripts/pg-cluster.sh" stop "$VAR/standby" >/dev/null 2>&1 || true
    "$ROOT/scripts/pg-cluster.sh" stop "$VAR/pg" >/dev/null 2>&1 || true
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$VAR"; fi
}
trap cleanup EXIT

bench_setup
PRIMARY=$PG_CONNINFO
t0=$(bench_now)
"$BIN" synth --patients "$N" --seed 1 --load --quiet --db "$PRIMARY"
bench_sql "VACUUM ANALYZE"
bench_sql "CHECKPOINT"
"$ROOT/scripts/pg-cluster.sh" standby "$VAR/pg" "$VAR/standby" >/dev/null
STANDBY=$(. "$VAR/standby/env" && echo "$PG_CONNINFO")
# the standby has caught up before the first round
lsn=$(bench_sql "SELECT pg_current_wal_lsn()")
for _ in $(seq 600); do
    [ "$(psql "$STANDBY" -X -Atc "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
    sleep 0.1
done
resources=$(bench_sql "SELECT count(*) FROM resource WHERE NOT deleted")
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $N patients, $resources resources, generated, loaded and replicated in $(awk -v a="$t0" -v b="$(bench_now)" 'BEGIN { printf "%.0f", b - a }') s; worker threads: $THREADS"
bench_start_nginx

declare -A T=() C=() I=() NET=()
for i in $(seq "$RUNS"); do
    line="run $i:"
    for mode in primary replica; do
        if [ "$mode" = primary ]; then
            bench_start_worker --threads "$THREADS"
        else
            bench_start_worker --threads "$THREADS" --read-db "$STANDBY"
        fi
        sleep 1  # connected and idle
        c0=$(bench_pg_cpu "$VAR/pg/data")
        read -r t n job url < <(bench_export '$export')
        c1=$(bench_pg_cpu "$VAR/pg/data")
        bench_stop_worker
        [ "$n" = "$resources" ] || { echo "$mode export wrote $n resources, expected $resources" >&2; exit 1; }
        if [ "$mode" = replica ]; then
            off=$(bench_sql "SELECT count(*) FROM export_unit WHERE job_id = '$job' AND read_from NOT LIKE 'replica %'")
            [ "$off" = 0 ] || { echo "$off units of the replica export read from the primary" >&2; exit 1; }
        fi
        bench_drop_job "$job" "$url"
        # idle: the same time, a worker connected, nothing to export
        bench_start_worker --threads "$THREADS"
        sleep 1
        i0=$(bench_pg_cpu "$VAR/pg/data")
        sleep "$t"
        i1=$(bench_pg_cpu "$VAR/pg/data")
        bench_stop_worker
        I[$mode,$i]=$(awk -v a="$i0" -v b="$i1" 'BEGIN { printf "%.2f", b - a }')
        T[$mode,$i]=$t
        C[$mode,$i]=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
        NET[$mode,$i]=$(awk -v c="${C[$mode,$i]}" -v i="${I[$mode,$i]}" 'BEGIN { printf "%.2f", c - i }')
        line+=" $mode ${T[$mode,$i]} s (primary CPU ${C[$mode,$i]} s, idle ${I[$mode,$i]} s);"
    done
    echo "$line"
done

series() { local -n arr=$1; for i in $(seq "$RUNS"); do echo "${arr[$2,$i]}"; done; }
tp=$(series T primary | bench_median)
tr=$(series T replica | bench_median)
cp=$(series C primary | bench_median)
cr=$(series C replica | bench_median)
# paired: the median of the per-round ratios
pt=$(for i in $(seq "$RUNS"); do awk -v a="${T[replica,$i]}" -v b="${T[primary,$i]}" 'BEGIN { printf "%.3f\n", a / b }'; done | bench_median)
pc=$(for i in $(seq "$RUNS"); do awk -v a="${C[replica,$i]}" -v b="${C[primary,$i]}" 'BEGIN { printf "%.3f\n", (b > 0) ? a / b : 0 }'; done | bench_median)
np=$(series NET primary | bench_median)
nr=$(series NET replica | bench_median)
pn=$(for i in $(seq "$RUNS"); do awk -v a="${NET[replica,$i]}" -v b="${NET[primary,$i]}" 'BEGIN { printf "%.3f\n", (b > 0) ? a / b : 0 }'; done | bench_median)
echo
printf '%-40s %10s %10s %7s %7s\n' "medians of $RUNS" "primary" "replica" "ratio" "paired"
awk -v a="$tp" -v b="$tr" -v p="$pt" 'BEGIN { printf "%-40s %10.2f %10.2f %7.2f %7.2f   (goal <= 1.10)\n", "export time, s", a, b, b / a, p }'
awk -v a="$cp" -v b="$cr" -v p="$pc" 'BEGIN { printf "%-40s %10.2f %10.2f %7.2f %7.2f   (goal <= 0.20)\n", "primary CPU during the export, s", a, b, (a > 0) ? b / a : 0, p }'
awk -v a="$np" -v b="$nr" -v p="$pn" 'BEGIN { printf "%-40s %10.2f %10.2f %7.2f %7.2f   (goal <= 0.20)\n", "  net of the idle baseline, s", a, b, (a > 0) ? b / a : 0, p }'
if [ -n "${BENCH_MD:-}" ]; then
    {
        echo "Medians of $RUNS interleaved rounds; $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); $N patients, $resources resources; worker threads: $THREADS."
        echo
        echo "| figure | reading from the primary | reading from the standby | ratio | paired | goal |"
        echo "|---|---:|---:|---:|---:|---:|"
        awk -v a="$tp" -v b="$tr" -v p="$pt" 'BEGIN { printf "| export time, s | %.2f | %.2f | %.2f | %.2f | <= 1.10 |\n", a, b, b / a, p }'
        awk -v a="$cp" -v b="$cr" -v p="$pc" 'BEGIN { printf "| primary CPU during the export, s | %.2f | %.2f | %.2f | %.2f | <= 0.20 |\n", a, b, (a > 0) ? b / a : 0, p }'
        awk -v a="$np" -v b="$nr" -v p="$pn" 'BEGIN { printf "| primary CPU net of the idle baseline (same time, no export), s | %.2f | %.2f | %.2f | %.2f | <= 0.20 |\n", a, b, (a > 0) ? b / a : 0, p }'
    } >>"$BENCH_MD"
fi
