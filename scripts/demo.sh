#!/usr/bin/env bash
# demo.sh (make demo): start the local stack, generate a population, export it, show the result.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh up
# shellcheck disable=SC1091
. var/run/env

echo
echo "== a synthetic population: 100 patients (fhir-bulk synth --load)"
"$FHIR_BULK_BIN" synth --patients "${DEMO_PATIENTS:-100}" --seed 1 --load --quiet

echo
echo "== GET $FHIR_BASE/metadata"
curl -fsS "$FHIR_BASE/metadata" | perl -MJSON::PP -e '
    my $cs = decode_json(join "", <STDIN>);
    printf "%s %s, FHIR %s, instantiates %s\n", $cs->{resourceType}, $cs->{software}{name},
        $cs->{fhirVersion}, join(", ", @{ $cs->{instantiates} });'

echo
echo "== kick-off: GET $FHIR_BASE/\$export"
status_url=$(curl -fsS -o /dev/null -D - -H 'Accept: application/fhir+json' \
    -H 'Prefer: respond-async' "$FHIR_BASE/\$export" |
    tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ocation: //p')
echo "202 Accepted, status at $status_url"

# Poll as a well-behaved client does: wait as long as Retry-After says (202 and 429 alike).
while :; do
    code=$(curl -sS -o var/run/manifest.json -D var/run/status.headers -w '%{http_code}' \
        "$status_url")
    [ "$code" != 202 ] && [ "$code" != 429 ] && break
    sed -n 's/^[Xx]-[Pp]rogress: /  progress: /p' var/run/status.headers | tr -d '\r'
    wait=$(tr -d '\r' <var/run/status.headers | sed -n 's/^[Rr]etry-[Aa]fter: //p')
    sleep "${wait:-1}"
done
[ "$code" = 200 ] || { echo "the export failed ($code):"; cat var/run/manifest.json; exit 1; }
job=${status_url##*/}
elapsed=$(psql "$PG_CONNINFO" -X -Atc "SELECT round(extract(epoch FROM finished_at - created_at)::numeric, 2) FROM export_job WHERE job_id = '$job'")

echo "200 OK; the export itself took ${elapsed}s (kick-off to completed job). The manifest:"
perl -MJSON::PP -e '
    my $m = decode_json(do { local $/; <STDIN> });
    my (%n, %f, $total);
    for my $o (@{ $m->{output} }) { $n{$o->{type}} += $o->{count}; $f{$o->{type}}++; $total += $o->{count}; }
    printf "  transactionTime %s\n  request %s\n", $m->{transactionTime}, $m->{request};
    printf "  %-22s %9d resources in %d file(s)\n", $_, $n{$_}, $f{$_} for sort keys %n;
    printf "  %-22s %9d resources, %d files, %d errors\n", "total", $total,
        scalar @{ $m->{output} }, scalar @{ $m->{error} };
    print "  first file: $m->{output}[0]{url}\n";' <var/run/manifest.json

first=$(perl -MJSON::PP -e 'print decode_json(do { local $/; <STDIN> })->{output}[0]{url}' \
    <var/run/manifest.json)
echo
echo "== its first line (GET, served by nginx with sendfile)"
curl -fsS "$first" | head -c 300
echo " ..."
echo
echo "The stack keeps running ('make down' stops it); . var/run/env for FHIR_BASE and PG_CONNINFO."
