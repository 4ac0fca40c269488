#!/usr/bin/env bash
# export_benchmark.sh: end-to-end export time (kick-off to completed job) of a generated
# population against a raw COPY of the same stored JSON, measured in the same run on the same
# database (issue: export time <= 1.5 x the baseline).
#
#   benchmarks/export_benchmark.sh [PATIENTS] [RUNS]       defaults: 1000 patients, 3 runs
#
# Runs its own stack (PostgreSQL, nginx with the module, one worker) under build/bench-var,
# so it never touches `make up`'s var/. Export time is the job's finished_at - created_at as
# recorded by the database (no polling granularity in the figure). Prints medians.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATIENTS=${1:-1000}
RUNS=${2:-3}
export FHIR_BULK_VAR=$ROOT/build/bench-var
BIN=$ROOT/build/bin/fhir-bulk

"$ROOT/scripts/services.sh" down >/dev/null 2>&1 || true
rm -rf "$FHIR_BULK_VAR"
"$ROOT/scripts/services.sh" up >/dev/null
trap '"$ROOT/scripts/services.sh" down >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. "$FHIR_BULK_VAR/run/env"
sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "generating and loading $PATIENTS patients ..."
"$BIN" synth --patients "$PATIENTS" --seed 1 --load --quiet
sql "VACUUM ANALYZE"
resources=$(sql "SELECT count(*) FROM resource WHERE NOT deleted")
bytes=$(sql "SELECT sum(octet_length(body)) FROM resource WHERE NOT deleted")
group=$(sql "SELECT res_id FROM resource WHERE res_type = 'Group' AND body::jsonb ->> 'name' LIKE '%10\% sample'")
members="(SELECT array_agg(patient_id) FROM group_member WHERE group_id = '$group')"
group_resources=$(sql "SELECT count(*) FROM resource WHERE NOT deleted AND patients && $members")

copy_time() {  # seconds for COPY (query) TO STDOUT (FORMAT binary) > /dev/null
    local start end
    start=$(date +%s.%N)
    psql "$PG_CONNINFO" -X -q -c "COPY ($1) TO STDOUT (FORMAT binary)" >/dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}

export_time() {  # seconds from kick-off to the completed job, from the job's own timestamps
    local url job
    url=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
        -H 'Prefer: respond-async' "$FHIR_BASE/$1" | tr -d '\r' |
        sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
    job=${url##*/}
    while [ "$(sql "SELECT state FROM export_job WHERE job_id = '$job'")" != completed ]; do
        sleep 0.05
    done
    sql "SELECT round(extract(epoch FROM finished_at - created_at)::numeric, 3) FROM export_job WHERE job_id = '$job'"
    curl -fsS -X DELETE -o /dev/null "$url"
}

declare -a base_sys exp_sys base_grp exp_grp
for i in $(seq "$RUNS"); do
    base_sys+=("$(copy_time "SELECT body FROM resource WHERE NOT deleted")")
    exp_sys+=("$(export_time '$export')")
    base_grp+=("$(copy_time "SELECT body FROM resource WHERE NOT deleted AND patients && $members")")
    exp_grp+=("$(export_time "Group/$group/\$export")")
done
bs=$(printf '%s\n' "${base_sys[@]}" | median)
es=$(printf '%s\n' "${exp_sys[@]}" | median)
bg=$(printf '%s\n' "${base_grp[@]}" | median)
eg=$(printf '%s\n' "${exp_grp[@]}" | median)
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $PATIENTS patients, $resources resources, $((bytes / 1000000)) MB of JSON; medians of $RUNS runs"
printf '%-28s %10s %10s %8s %14s\n' "" "baseline s" "export s" "ratio" "export res/s"
awk -v b="$bs" -v e="$es" -v n="$resources" 'BEGIN { printf "%-28s %10.3f %10.3f %8.2f %14.0f\n", "system export", b, e, e / b, n / e }'
awk -v b="$bg" -v e="$eg" -v n="$group_resources" 'BEGIN { printf "%-28s %10.3f %10.3f %8.2f %14.0f\n", "group export (10% sample)", b, e, e / b, n / e }'
echo "baseline: COPY (SELECT body ...) TO STDOUT (FORMAT binary) of the same resources, via psql to /dev/null"
echo "export: kick-off to completed job (planning, files written and fsynced, manifest ready); group export also adds referenced Practitioner/Organization/Location"
