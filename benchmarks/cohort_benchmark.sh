#!/usr/bin/env bash
# cohort_benchmark.sh: a criteria-based Group (Bulk Cohort API, issue 14) evaluated by the
# server, against a hand-written SQL query returning the same patient ids, in the same run on
# the same database (goal: <= 1.5 x the query and <= 2 s for 10,000 patients).
#
#   benchmarks/cohort_benchmark.sh [PATIENTS] [RUNS]     (defaults 10000 and 5)
#
# A generated population (fhir-bulk synth --seed 1 --load, VACUUM ANALYZE) in its own
# PostgreSQL, nginx with the module (authorization off). The cohort has two member-filters, a
# Condition code (the most common SNOMED code held by 5-30 % of the patients) and an
# Encounter date range (the population's last full year: date=geY-01-01&date=ltY+1-01-01).
# For each of RUNS rounds, interleaved:
#   baseline  the hand-written query (psql, ids to /dev/null): the Condition's patients
#             INTERSECT the patients with an Encounter in that range (the FHIR date-prefix
#             semantics written out over the index columns), restricted to existing Patients
#   cohort    POST [base]/Group with the two member-filters and Prefer: respond-async, then
#             polling the status URL every 20 ms until 201: parsing, queueing, a worker's
#             evaluation (worker/cohort_runner.h) and storing the Group with its members, as a
#             client sees it (the worker wakes on the POST's NOTIFY)
# The Group's quantity is checked against the baseline's row count. Medians are reported.
# BENCH_KEEP=1 keeps the database under $BUILD/cohort-bench-var; BENCH_REUSE=1 reuses it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PATIENTS=${1:-10000}
RUNS=${2:-5}
BIN=$BUILD/bin/fhir-bulk
MODULE=$BUILD/nginx/ngx_http_fhir_bulk_module.so
NGINX=${NGINX:-/usr/sbin/nginx}
VAR=$BUILD/cohort-bench-var
[ -x "$BIN" ] && [ -f "$MODULE" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }

nginx_started=0
worker_pid=
cleanup() {
    if [ -n "$worker_pid" ]; then kill "$worker_pid" 2>/dev/null || true; wait "$worker_pid" 2>/dev/null || true; fi
    if [ "$nginx_started" = 1 ] && [ -f "$VAR/nginx/nginx.pid" ]; then
        kill -QUIT "$(cat "$VAR/nginx/nginx.pid")" 2>/dev/null || true
        sleep 0.5
    fi
    "$ROOT/scripts/pg-cluster.sh" stop "$VAR/pg" >/dev/null 2>&1 || true
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$VAR"; fi
}
trap cleanup EXIT

if [ "${BENCH_REUSE:-0}" != 1 ]; then rm -rf "$VAR"; fi
mkdir -p "$VAR/nginx/conf" "$VAR/nginx/logs" "$VAR/nginx/temp" "$VAR/exports"
"$ROOT/scripts/pg-cluster.sh" start "$VAR/pg" >/dev/null
# shellcheck disable=SC1091
. "$VAR/pg/env"
"$BIN" migrate --quiet --db "$PG_CONNINFO" >/dev/null
sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

have=$(sql "SELECT count(*) FROM resource WHERE res_type = 'Patient'")
if [ "$have" != "$PATIENTS" ]; then
    echo "generating and loading $PATIENTS patients ..."
    t0=$(now)
    "$BIN" synth --patients "$PATIENTS" --seed 1 --load --quiet --db "$PG_CONNINFO"
    sql "VACUUM ANALYZE" >/dev/null
    echo "  loaded in $(echo "$(now) - $t0" | bc) s: $(sql "SELECT count(*) FROM resource") resources"
fi

port=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
    LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp")->sockport')
install -m 600 "$VAR/pg/nginx-conninfo" "$VAR/nginx/conf/conninfo"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user nobody nogroup;"
cat >"$VAR/nginx/conf/nginx.conf" <<CONF
load_module $MODULE;
$user_line
worker_processes 1;
pid $VAR/nginx/nginx.pid;
error_log $VAR/nginx/logs/error.log warn;
events { worker_connections 64; }
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
            fhir_bulk_export_dir $VAR/exports;
        }
    }
}
CONF
"$NGINX" -p "$VAR/nginx" -c "$VAR/nginx/conf/nginx.conf" -e "$VAR/nginx/logs/error.log"
nginx_started=1
BASE=http://127.0.0.1:$port/fhir
"$BIN" worker --db "$PG_CONNINFO" --export-dir "$VAR/exports" --threads 1 >"$VAR/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 50); do curl -fsS -o /dev/null "$BASE/metadata" 2>/dev/null && break; sleep 0.1; done

code=$(sql "SELECT substr(k, 29) FROM (SELECT k, count(DISTINCT p) AS n FROM resource r,
    unnest(r.tokens) k, unnest(r.patients) p WHERE r.res_type = 'Condition' AND NOT r.deleted
    AND k LIKE 'code=http://snomed.info/sct|%' GROUP BY k) s
    WHERE n BETWEEN $PATIENTS * 5 / 100 AND $PATIENTS * 30 / 100 ORDER BY n DESC, k LIMIT 1")
year=$(sql "SELECT max(extract(year FROM d.lo))::int - 1 FROM resource e,
    unnest(e.date_params, e.date_lo) AS d(n, lo) WHERE e.res_type = 'Encounter' AND d.n = 'date'")
lo="$year-01-01"
hi="$((year + 1))-01-01"
echo "cohort: Condition?code=http://snomed.info/sct|$code AND Encounter?date=ge$lo&date=lt$hi"

# FHIR date prefixes over the index (sql/0001): ge X: the value's range ends after day X or lies
# within it; lt Y: it starts before day Y.
baseline="SELECT c.p FROM (
  SELECT unnest(patients) AS p FROM resource WHERE res_type = 'Condition' AND NOT deleted
    AND tokens @> ARRAY['code=http://snomed.info/sct|$code']
  INTERSECT
  SELECT unnest(patients) FROM resource e WHERE res_type = 'Encounter' AND NOT deleted
    AND EXISTS (SELECT 1 FROM unnest(e.date_params, e.date_lo, e.date_hi) AS d(n, lo, hi)
      WHERE d.n = 'date' AND (d.hi > '${lo}T23:59:59.999999Z'
        OR (d.lo >= '${lo}T00:00:00Z' AND d.hi <= '${lo}T23:59:59.999999Z')))
    AND EXISTS (SELECT 1 FROM unnest(e.date_params, e.date_lo) AS d(n, lo)
      WHERE d.n = 'date' AND d.lo < '${hi}T00:00:00Z')
) c WHERE EXISTS (SELECT 1 FROM resource pt WHERE pt.res_type = 'Patient' AND pt.res_id = c.p
  AND NOT pt.deleted) ORDER BY c.p"
# The same query as someone who knows the date hull index (sql/0012) would write it: the
# Encounter range also as a condition on each row's date hull, which that index answers.
indexed=${baseline/"WHERE res_type = 'Encounter' AND NOT deleted"/"WHERE res_type = 'Encounter' AND NOT deleted
    AND fhirbulk_date_hull(e.date_lo, e.date_hi) && tstzrange('${lo}T00:00:00Z', '${hi}T00:00:00Z', '[]')"}
[ "$indexed" != "$baseline" ] || { echo "indexed baseline not built" >&2; exit 1; }
expected=$(sql "SELECT count(*) FROM ($baseline) s")
[ "$(sql "SELECT count(*) FROM ($indexed) s")" = "$expected" ] || { echo "indexed baseline differs" >&2; exit 1; }
body=$(cat <<JSON
{"resourceType":"Group","type":"person","actual":true,"name":"bench cohort","modifierExtension":[
 {"url":"http://hl7.org/fhir/uv/bulkdata/StructureDefinition/member-filter","valueExpression":{"language":"application/x-fhir-query","expression":"Condition?code=http://snomed.info/sct|$code"}},
 {"url":"http://hl7.org/fhir/uv/bulkdata/StructureDefinition/member-filter","valueExpression":{"language":"application/x-fhir-query","expression":"Encounter?date=ge$lo&date=lt$hi"}}]}
JSON
)
: >"$VAR/base.txt"
: >"$VAR/indexed.txt"
: >"$VAR/cohort.txt"
for run in $(seq "$RUNS"); do
    t0=$(now)
    psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$baseline" >/dev/null
    echo "$(now) - $t0" | bc >>"$VAR/base.txt"
    t0=$(now)
    psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$indexed" >/dev/null
    echo "$(now) - $t0" | bc >>"$VAR/indexed.txt"
    t0=$(now)
    status_url=$(curl -sS -o /dev/null -D - -X POST -H 'Content-Type: application/fhir+json' \
        -H 'Accept: application/fhir+json' -H 'Prefer: respond-async' --data-binary "$body" \
        "$BASE/Group" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
    while :; do
        code_and_body=$(curl -sS -w '\n%{http_code}' "$status_url")
        [ "${code_and_body##*$'\n'}" != 202 ] && break
        sleep 0.02
    done
    echo "$(now) - $t0" | bc >>"$VAR/cohort.txt"
    answer=${code_and_body%$'\n'*}
    got=$(printf '%s' "$answer" | perl -MJSON::PP -0777 -ne 'print decode_json($_)->{quantity} // "?"')
    if [ "$got" != "$expected" ]; then
        echo "run $run: the cohort has $got members, the query $expected" >&2
        exit 1
    fi
done
b=$(median <"$VAR/base.txt")
x=$(median <"$VAR/indexed.txt")
c=$(median <"$VAR/cohort.txt")
printf 'patients %s, cohort members %s, runs %s (medians)\n' "$PATIENTS" "$expected" "$RUNS"
printf '  hand-written SQL (psql)      %.3f s\n' "$b"
printf '  ... using the hull index     %.3f s\n' "$x"
printf '  POST /Group async to 201     %.3f s\n' "$c"
printf '  ratio to the indexed query   %.2f\n' "$(echo "$c / $x" | bc -l)"
printf '  ratio to the plain query     %.2f\n' "$(echo "$c / $b" | bc -l)"
