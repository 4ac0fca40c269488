#!/usr/bin/perl
# /metadata, unknown routes and the health route against a real nginx and PostgreSQL.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
my $cs_body;
$t->start_pg;
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

my $res = $t->get('/fhir/metadata');
is($res->{status}, 200, 'GET /metadata is 200');
like($res->{headers}{'content-type'}, qr{^application/fhir\+json}, 'as application/fhir+json');
my $cs = $res->{json};
is($cs->{resourceType}, 'CapabilityStatement', 'a CapabilityStatement');
ok((grep { $_ eq 'http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data' }
    @{ $cs->{instantiates} || [] }), 'instantiates the bulk-data CapabilityStatement');
is($cs->{fhirVersion}, '4.0.1', 'FHIR R4');
is($cs->{kind}, 'instance', 'kind instance');
is($cs->{implementation}{url}, $t->base_url, 'implementation.url is the configured base');
is($cs->{rest}[0]{mode}, 'server', 'rest mode server');
is_deeply([ map { "$_->{name} $_->{definition}" } @{ $cs->{rest}[0]{operation} } ],
          [ 'export http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' ],
          'the system export operation');
my %res = map { $_->{type} => $_ } @{ $cs->{rest}[0]{resource} };
for my $level (['Patient', 'patient-export'], ['Group', 'group-export']) {
    my ($type, $op) = @$level;
    my %ops = map { $_->{name} => $_->{definition} } @{ $res{$type}{operation} || [] };
    is($ops{export}, "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/$op",
       "$type lists the export operation");
    is($ops{$op}, "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/$op",
       "$type also lists it as $op, for clients that look for that name");
}
ok((grep { $_->{name} eq 'code' } @{ $res{Observation}{searchParam} }),
   'the _typeFilter search parameters are listed (Observation code)');

$res = $t->request('HEAD', '/fhir/metadata');
is($res->{status}, 200, 'HEAD /metadata is 200');
is($res->{content} // '', '', 'HEAD has no body');
is($res->{headers}{'content-length'}, length($cs_body = $t->get('/fhir/metadata')->{content}), 'HEAD has the GET Content-Length');

$res = $t->request('POST', '/fhir/metadata', { 'Content-Type' => 'application/fhir+json' }, '{}');
$t->is_outcome($res, 405, 'not-supported', 'POST /metadata is 405');
is($res->{headers}{allow}, 'GET, HEAD', 'with Allow');

for my $path ('/fhir', '/fhir/', '/fhir/nope', '/fhir/Patient/123', '/fhirx', '/fhir/metadata/x') {
    $t->is_outcome($t->get($path), 404, 'not-found', "unknown route $path is 404");
}

$res = $t->get('/fhir/_health');
is($res->{status}, 200, 'health is 200 with the database up');
is($res->{json}{schemaVersion}, $t->psql('SELECT max(version) FROM schema_version'),
   'health reports the schema version from the database');

$t->finish;
done_testing;
