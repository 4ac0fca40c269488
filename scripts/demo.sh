#!/usr/bin/env bash
# demo.sh (make demo): start the local stack, generate a population, export it with the
# bulk data client (fhir-bulk export), show the result.
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

# A server that publishes a SMART configuration wants SMART Backend Services: register a
# demo client with a freshly generated ES384 key (the public JWK Set from the client itself).
auth=()
if curl -fsS -o /dev/null "$FHIR_BASE/.well-known/smart-configuration" 2>/dev/null; then
    echo
    echo "== a SMART Backend Services client: a new P-384 key, registered (fhir-bulk client add)"
    key=var/run/demo-client.pem
    rm -f "$key" var/run/demo-client.jwks
    (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$key" 2>/dev/null)
    "$FHIR_BULK_BIN" export --key "$key" --print-jwks >var/run/demo-client.jwks
    client_id=$("$FHIR_BULK_BIN" client add --name "make demo" --jwks var/run/demo-client.jwks \
        --scope 'system/*.read')
    echo "client_id $client_id, private key $key"
    auth=(--client-id "$client_id" --key "$key")
fi

out=var/run/demo-export
rm -rf "$out"
echo
echo "== fhir-bulk export --fhir-url $FHIR_BASE --out $out ${auth[*]}"
# kick-off, polling as told (Retry-After), parallel downloads validated line by line
"$FHIR_BULK_BIN" export --fhir-url "$FHIR_BASE" --out "$out" "${auth[@]}"

status_url=$(perl -MJSON::PP -e 'print decode_json(do { local $/; <STDIN> })->{statusUrl}' \
    <"$out/job.json")
job=${status_url##*/}
elapsed=$(psql "$PG_CONNINFO" -X -Atc "SELECT round(extract(epoch FROM finished_at - created_at)::numeric, 2) FROM export_job WHERE job_id = '$job'")
echo "The export itself took ${elapsed}s on the server (kick-off to completed job)."

echo
echo "== the first line of $out/Patient.1.ndjson"
head -c 300 "$out/Patient.1.ndjson"
echo " ..."
echo
echo "The stack keeps running ('make down' stops it); . var/run/env for FHIR_BASE and PG_CONNINFO."
