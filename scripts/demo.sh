#!/usr/bin/env bash
# demo.sh (make demo): start the local stack and show it working end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh up
# shellcheck disable=SC1091
. var/run/env

echo
echo "== GET $FHIR_BASE/metadata"
curl -fsS "$FHIR_BASE/metadata" | perl -MJSON::PP -e '
    my $cs = decode_json(join "", <STDIN>);
    printf "%s %s, FHIR %s, instantiates %s\n", $cs->{resourceType}, $cs->{software}{name},
        $cs->{fhirVersion}, join(", ", @{ $cs->{instantiates} });'
echo
echo "== GET $FHIR_BASE/_health"
curl -fsS "$FHIR_BASE/_health"
echo
echo
echo "The stack keeps running: 'make down' stops it."
