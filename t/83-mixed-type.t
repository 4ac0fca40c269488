#!/usr/bin/perl
# Patient and Group level _type mixing Patient-compartment and other types (issue 13): 202
# in strict and lenient mode; the compartment types are exported (with the supporting
# resources as before) and each ignored type is reported as a warning OperationOutcome in the
# manifest's error files. 400 only when no requested type is in the compartment.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
my ($pa, $pb) = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 2");
open(my $fh, '>', $t->dir . '/group.ndjson') or die;
print $fh encode_json({ resourceType => 'Group', id => 'cohort', type => 'person',
    actual => JSON::PP::true,
    member => [ map { { entity => { reference => "Patient/$_" } } } $pa, $pb ] }), "\n";
close $fh;
$t->load($t->dir . '/group.ndjson');
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);

for my $case (['/fhir/Patient/$export', 'Patient level', 0],
              ['/fhir/Group/cohort/$export', 'Group level', 0],
              ['/fhir/Patient/$export', 'Patient level, lenient', 1]) {
    my ($path, $name, $lenient) = @$case;
    my %h = $lenient ? (headers => { Prefer => 'respond-async, handling=lenient' }) : ();
    my $res = $t->kickoff("$path?_type=Condition,Device,Encounter,Library", %h);
    is($res->{status}, 202, "$name: compartment + other types -> 202") or diag($res->{content});
    $res = $t->poll($res->{headers}{'content-location'}, 180);
    is($res->{status}, 200, "$name: completes");
    my $m = $res->{json};
    my %types = map { $_->{type} => 1 } @{ $m->{output} };
    ok($types{Condition} && $types{Encounter}, "$name: Condition and Encounter exported");
    ok(!$types{Device} && !$types{Library}, "$name: Device and Library not");
    is(scalar @{ $m->{error} }, 1, "$name: one error file");
    my @issues;
    for my $e (@{ $m->{error} }) {
        my $body = $t->get($e->{url})->{content};
        push @issues, map { @{ decode_json($_)->{issue} } } grep { /\S/ } split /\n/, $body;
    }
    my @warned = map { $_->{diagnostics} =~ /'(\w+)'/ ? $1 : () }
                 grep { $_->{severity} eq 'warning' } @issues;
    is_deeply([ sort @warned ], [ 'Device', 'Library' ],
              "$name: a warning OperationOutcome for each ignored type");
}

# Only types outside the compartment: 400, strict and lenient.
$t->is_outcome($t->kickoff('/fhir/Patient/$export?_type=Device,Library'), 400, 'not-supported',
               'Patient level, only other types: 400');
$t->is_outcome($t->kickoff('/fhir/Group/cohort/$export?_type=PractitionerRole',
                           headers => { Prefer => 'respond-async, handling=lenient' }),
               400, 'not-supported', 'Group level, lenient, only other types: 400');
# A type that is not an R4 type at all is still an error in strict mode.
$t->is_outcome($t->kickoff('/fhir/Patient/$export?_type=Condition,Foo'), 400, 'not-supported',
               'Patient level, an unknown type: 400');

done_testing;
