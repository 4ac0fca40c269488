#!/usr/bin/perl
# Bad kick-offs get a 4xx OperationOutcome that names the problem, and create no job.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
# one Patient and a Group holding it, so group-level checks have something to find
my $dir = $t->dir;
open(my $fh, '>', "$dir/data.ndjson") or die;
print $fh encode_json({ resourceType => 'Patient', id => 'p1' }), "\n";
print $fh encode_json({ resourceType => 'Patient', id => 'p2' }), "\n";
print $fh encode_json({ resourceType => 'Group', id => 'g1', type => 'person', actual => JSON::PP::true,
                        member => [ { entity => { reference => 'Patient/p1' } } ] }), "\n";
print $fh encode_json({ resourceType => 'Group', id => 'devices', type => 'device',
                        actual => JSON::PP::true }), "\n";
close $fh;
$t->load("$dir/data.ndjson");
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

sub rejects {
    my ($name, $res, $status, $pattern) = @_;
    $t->is_outcome($res, $status, undef, "$name: $status");
    my $diag = join ' ', map { $_->{diagnostics} // '' } @{ $res->{json}{issue} || [] };
    like($diag, $pattern, "$name: the OperationOutcome says why") if $pattern;
}

rejects('no Prefer', $t->request('GET', '/fhir/$export', { Accept => 'application/fhir+json' }),
        400, qr/Prefer/);
rejects('Accept: text/csv', $t->kickoff('/fhir/$export', headers => { Accept => 'text/csv' }),
        406, qr/Accept/);
rejects('_outputFormat=text/csv', $t->kickoff('/fhir/$export?_outputFormat=text%2Fcsv'),
        400, qr/_outputFormat/);
rejects('a malformed _since', $t->kickoff('/fhir/$export?_since=yesterday'), 400, qr/_since/);
rejects('a _since in the future', $t->kickoff('/fhir/$export?_since=2999-01-01T00:00:00Z'),
        400, qr/_since/);
rejects('an unknown type', $t->kickoff('/fhir/$export?_type=Patient,Foo'), 400, qr/Foo/);
rejects('an unknown parameter', $t->kickoff('/fhir/$export?_count=10'), 400, qr/_count/);
rejects('an unsupported _typeFilter parameter',
        $t->kickoff('/fhir/$export?_type=Observation&_typeFilter=Observation%3Fnope%3D1'),
        400, qr/nope/);
rejects('a custom includeAssociatedData value (strict)',
        $t->kickoff('/fhir/$export?includeAssociatedData=_custom'),
        400, qr/includeAssociatedData/);
rejects('a POST with malformed JSON', $t->kickoff('/fhir/Patient/$export', body => '{"resourceType":'),
        400, qr/JSON/);
rejects('a POST that is not Parameters',
        $t->kickoff('/fhir/Patient/$export', body => '{"resourceType":"Patient"}'), 400,
        qr/Parameters/);
rejects('a POST with the wrong Content-Type',
        $t->kickoff('/fhir/Patient/$export', body => '{"resourceType":"Parameters"}',
                    headers => { 'Content-Type' => 'text/plain' }), 400, qr/Content-Type/);
my $patient_param = encode_json({ resourceType => 'Parameters', parameter => [
    { name => 'patient', valueReference => { reference => 'Patient/p1' } } ] });
rejects('patient on system level', $t->kickoff('/fhir/$export', body => $patient_param),
        400, qr/patient/);
my $unknown_patient = encode_json({ resourceType => 'Parameters', parameter => [
    { name => 'patient', valueReference => { reference => 'Patient/nobody' } } ] });
rejects('an unknown patient', $t->kickoff('/fhir/Patient/$export', body => $unknown_patient),
        400, qr{Patient/nobody});
my $non_member = encode_json({ resourceType => 'Parameters', parameter => [
    { name => 'patient', valueReference => { reference => 'Patient/p2' } } ] });
rejects('a patient outside the group', $t->kickoff('/fhir/Group/g1/$export', body => $non_member),
        400, qr{Patient/p2});
rejects('an unknown group', $t->kickoff('/fhir/Group/nope/$export'), 404, qr{Group/nope});
rejects('a group of devices', $t->kickoff('/fhir/Group/devices/$export'), 400, qr/person/);
rejects('PUT on $export', $t->request('PUT', '/fhir/$export'), 405);

is($t->psql('SELECT count(*) FROM export_job'), 0, 'no rejected kick-off created a job');

# lenient: the unknown type is ignored and reported, the export is accepted
my $res = $t->kickoff('/fhir/$export?_type=Patient,Foo',
                      headers => { Prefer => 'respond-async, handling=lenient' });
is($res->{status}, 202, 'lenient: an unknown type is accepted');

# a well-formed POST kick-off is accepted
$res = $t->kickoff('/fhir/Group/g1/$export', body => encode_json({ resourceType => 'Parameters',
    parameter => [ { name => '_type', valueString => 'Patient' },
                   { name => 'patient', valueReference => { reference => 'Patient/p1' } } ] }));
is($res->{status}, 202, 'a valid POST kick-off is accepted');

$t->finish;
done_testing;
