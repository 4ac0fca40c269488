#!/usr/bin/perl
# The kick-off's Accept header (issue 13): in strict mode (fhir_bulk_strict_headers on, the
# default) it must admit application/fhir+json (exactly, application/*, */*, q > 0):
# `Accept: application/json` alone is 406 with an OperationOutcome, as the reference
# implementation answers. With fhir_bulk_strict_headers off application/json is accepted.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
# Many kick-offs and no worker: no per-client limits.
my $limits = 'fhir_bulk_max_active_exports 0; fhir_bulk_max_retained_exports 0;';
my $conf = FhirBulk::Test::default_http_conf(location_extra => $limits);
$t->write_conf($conf)->start_nginx;
my $lenient = $t->add_node(FhirBulk::Test::default_http_conf(
    location_extra => "fhir_bulk_strict_headers off; $limits"));
$lenient->start_nginx;

sub kick { my ($node, $accept) = @_;
           return $node->kickoff('/fhir/$export?_type=Patient', headers => { Accept => $accept }); }

for my $accept ('application/fhir+json', 'application/*', '*/*',
                'text/html, application/fhir+json;q=0.5', 'application/json, */*;q=0.1',
                'application/fhir+json; fhirVersion=4.0') {
    is(kick($t, $accept)->{status}, 202, "strict: Accept: $accept -> 202");
}
for my $accept ('application/json', 'application/json;q=1', 'text/html',
                'application/fhir+json;q=0', 'application/fhir+json;q=0, */*',
                'application/json, application/*;q=0') {
    my $res = kick($t, $accept);
    $t->is_outcome($res, 406, undef, "strict: Accept: $accept -> 406 OperationOutcome");
    like($res->{json}{issue}[0]{diagnostics} // '', qr/^Accept/, '... naming Accept');
}
my $res = $t->request('GET', '/fhir/$export?_type=Patient', { Prefer => 'respond-async' });
$t->is_outcome($res, 406, undef, 'strict: no Accept -> 406');

for my $accept ('application/json', 'application/fhir+json', '*/*') {
    is(kick($lenient, $accept)->{status}, 202, "lenient: Accept: $accept -> 202");
}
$t->is_outcome(kick($lenient, 'application/fhir+json;q=0, application/json'), 406, undef,
               'lenient: application/fhir+json refused by name -> 406');
is($lenient->request('GET', '/fhir/$export?_type=Patient', { Prefer => 'respond-async' })
       ->{status}, 202, 'lenient: no Accept -> 202');

done_testing;
