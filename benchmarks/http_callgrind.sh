#!/usr/bin/env bash
# http_callgrind.sh: instructions per request (valgrind --tool=callgrind) of one nginx worker
# process serving the module's small-file downloads and status polls, beside plain nginx
# serving the same file and `return 200` in the same process (issue 17). Unlike requests/s,
# instruction counts do not depend on how loaded the machine is.
#
#   HTTP_BENCH_KEEP=1 HTTP_BENCH_DIR=DIR BENCH_RUNS=1 BENCH_DURATION=1 \
#       benchmarks/http_benchmark.sh polling          # leaves a stack with a completed export
#   benchmarks/http_callgrind.sh DIR MODULE.so [MODULE.so ...]
#
# For each module (e.g. the build before and after a change), an nginx with that module and
# the stack's configuration (one worker process, no master, its own port) runs under callgrind;
# after 50 warm-up requests of each kind the counters are zeroed, N (HTTP_CG_REQUESTS, 2000)
# requests of one kind are sent over one keep-alive connection (one curl), the counters are
# dumped, and so on for each kind. The figure is the dump's total instructions / N: nginx,
# the module, the core and libraries, in the worker's event loop and its threads (the thread
# pool, the audit writer). HTTP_CG_KEEP=DIR keeps the dumps there (<build>-<kind>.out) for
# callgrind_annotate. Requests: the small file (1,584 B, like http_benchmark.sh) through
# the files location with the owner's bearer token and through the plain `alias` location,
# a poll of the completed job (200), a poll of an accepted job (202), and `return 200`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: http_callgrind.sh STACK_DIR MODULE.so [MODULE.so ...]}
shift
[ $# -gt 0 ] || { echo "usage: http_callgrind.sh STACK_DIR MODULE.so [MODULE.so ...]" >&2; exit 1; }
N=${HTTP_CG_REQUESTS:-2000}
NGINX=${NGINX:-/usr/sbin/nginx}
CONF=$DIR/nginx/conf/nginx.conf
[ -f "$CONF" ] && [ -f "$DIR/pg/env" ] || { echo "no kept stack under $DIR (HTTP_BENCH_KEEP=1)" >&2; exit 1; }
# shellcheck disable=SC1091
. "$DIR/pg/env"
sql() { psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -Atc "$1"; }
PORT=$(sed -n 's/.*listen 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$CONF" | head -1)
HOST=http://127.0.0.1:$PORT
client=$(sql "SELECT client_id FROM auth_client WHERE name = 'bench ES384'")
token() { perl "$DIR/work/jwt.pl" token ES384 "$DIR/work/ES384.pem" bench-ES384 "$client" "$HOST/fhir/auth/token"; }
done_job=$(sql "SELECT job_id FROM export_job WHERE state = 'completed' AND client_id = '$client' ORDER BY created_at LIMIT 1")
accepted_job=$(sql "SELECT job_id FROM export_job WHERE state = 'accepted' AND client_id = '$client' ORDER BY created_at LIMIT 1")
[ -n "$done_job" ] && [ -n "$accepted_job" ] || { echo "the stack has no completed and accepted job" >&2; exit 1; }
EXPORTS=$(sed -n 's/.*alias \(.*\)\/;.*/\1/p' "$CONF" | head -1)
src=$(ls "$EXPORTS/$done_job"/*.ndjson | head -1)
head -c 2000 "$src" | sed '$d' >"$EXPORTS/$done_job/Observation.1.99.ndjson"
chmod 644 "$EXPORTS/$done_job/Observation.1.99.ndjson"
small=$(stat -c %s "$EXPORTS/$done_job/Observation.1.99.ndjson")

declare -A URL HDR
URL[plain]="$HOST/plain/$done_job/Observation.1.99.ndjson"
URL[file]="$HOST/fhir/\$export-files/$done_job/Observation.1.99.ndjson"
URL[ok]="$HOST/ok"
URL[poll200]="$HOST/fhir/\$export-status/$done_job"
URL[poll202]="$HOST/fhir/\$export-status/$accepted_job"
KINDS=(plain file ok poll200 poll202)

urls() { local u=$1 n=$2; for _ in $(seq "$n"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$u"; done; }
# send KIND N: N requests over one connection; checks every status
send() {
    local kind=$1 n=$2 want=200 codes
    [ "$kind" = poll202 ] && want=202
    codes=$(urls "${URL[$kind]}" "$n" | curl -s -K - -H "Authorization: Bearer $TOK" \
        -H 'Accept: application/json' -w '%{http_code}\n' | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' ')
    [ "$codes" = "$want:$n " ] || { echo "$kind: statuses $codes (want $want x $n)" >&2; return 1; }
}
vpid=""
trap '[ -n "$vpid" ] && kill "$vpid" 2>/dev/null' EXIT

echo "callgrind, instructions per request (N = $N each, after warm-up); small file $small B; $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-60s' "module"
for k in "${KINDS[@]}"; do printf ' %10s' "$k"; done
printf ' %10s %10s\n' "file/plain" "poll/ok"
for module in "$@"; do
    TOK=$(token)  # 300 s: one per module
    cg=$DIR/callgrind.$$
    rm -rf "$cg"; mkdir -p "$cg"
    cgport=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp")->sockport')
    # the stack's configuration with this module, one worker process in the foreground, on its port
    sed -e "s|^load_module .*|load_module $module;|" -e "s|^worker_processes .*|worker_processes 1;\nmaster_process off;\ndaemon off;|" \
        -e "s|^pid .*|pid $cg/nginx.pid;|" -e "s|127\.0\.0\.1:$PORT|127.0.0.1:$cgport|g" "$CONF" >"$cg/nginx.conf"
    valgrind --tool=callgrind --callgrind-out-file="$cg/out.%p" --dump-instr=no --collect-atstart=yes \
        "$NGINX" -p "$DIR/nginx" -c "$cg/nginx.conf" -e "$cg/error.log" >"$cg/valgrind.log" 2>&1 &
    vpid=$!
    for _ in $(seq 600); do curl -fsS -o /dev/null "http://127.0.0.1:$cgport/ok" 2>/dev/null && break; sleep 0.1; done
    for k in "${KINDS[@]}"; do URL[$k]=${URL[$k]//:$PORT\//:$cgport\/}; done
    # warm-up: until every kind answers as it should (the first database connections of a
    # process under valgrind may time out: 503)
    for k in "${KINDS[@]}"; do
        for try in $(seq 10); do send "$k" 50 2>/dev/null && break; [ "$try" = 10 ] && send "$k" 50; sleep 1; done
    done
    declare -A IR=()
    for k in "${KINDS[@]}"; do
        callgrind_control -z "$vpid" >/dev/null 2>&1
        send "$k" "$N" || exit 1
        sleep 1  # the audit writer's batch (it lingers up to 50 ms) belongs to this kind
        callgrind_control -d "$k" "$vpid" >/dev/null 2>&1
        f=$(ls -t "$cg"/out.* | head -1)
        IR[$k]=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
        # HTTP_CG_KEEP=DIR: keep each dump for callgrind_annotate
        if [ -n "${HTTP_CG_KEEP:-}" ]; then
            mkdir -p "$HTTP_CG_KEEP"
            cp "$f" "$HTTP_CG_KEEP/$(basename "$(dirname "$(dirname "$module")")")-$k.out"
        fi
    done
    for k in "${KINDS[@]}"; do URL[$k]=${URL[$k]//:$cgport\//:$PORT\/}; done
    kill -QUIT "$vpid" 2>/dev/null || true
    wait "$vpid" 2>/dev/null || true
    vpid=""
    printf '%-60s' "$module"
    for k in "${KINDS[@]}"; do printf ' %10.0f' "$(awk -v t="${IR[$k]}" -v n="$N" 'BEGIN {print t / n}')"; done
    awk -v f="${IR[file]}" -v p="${IR[plain]}" -v q="${IR[poll200]}" -v o="${IR[ok]}" 'BEGIN { printf " %10.2f %10.2f\n", f / p, q / o }'
    rm -rf "$cg"
done
rm -f "$EXPORTS/$done_job/Observation.1.99.ndjson"
