#!/usr/bin/perl
# includeAssociatedData (IG 3.0.0): LatestProvenanceResources and RelevantProvenanceResources,
# the default Provenance rule without the parameter, unsupported and invalid codes (strict
# and lenient), repeated and comma-joined values; the loader indexes Provenance.target.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(8, '--seed', 44);
my $synth_prov = $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Provenance'");
is($synth_prov, 8, 'synth writes one Provenance per patient');
my $obs = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Observation' ORDER BY res_id LIMIT 1");
my $synth_of_obs = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Provenance' "
                            . "AND refs @> ARRAY['target=Observation/$obs']");
ok($synth_of_obs, 'the loader indexes Provenance.target (refs target=Type/id)');

# More Provenance of one Observation: older and newer than synth's (recorded at the end of
# the simulation, 2026-06-30), and one whose target is not stored.
my $dir = $t->dir . '/prov';
mkdir $dir;
open(my $fh, '>', "$dir/Provenance.ndjson") or die;
for ([ 'p-old', '2020-01-01T00:00:00Z', "Observation/$obs" ],
     [ 'p-new', '2026-11-01T00:00:00Z', "Observation/$obs" ],
     [ 'p-orphan', '2026-11-02T00:00:00Z', 'Observation/not-stored' ]) {
    my ($id, $recorded, $target) = @$_;
    print $fh encode_json({ resourceType => 'Provenance', id => $id, recorded => $recorded,
                            target => [ { reference => $target } ],
                            agent => [ { who => { display => 'test' } } ] }), "\n";
}
close $fh;
$t->load($dir);
is($t->psql("SELECT count(*) FROM resource WHERE res_type = 'Provenance' "
            . "AND refs @> ARRAY['target=Observation/$obs']"), 3, 'three Provenance target it');

$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker;

sub provenance_of {
    my ($path, %opt) = @_;
    my $res = $t->kickoff($path, %opt);
    is($res->{status}, 202, "kick-off $path") or diag($res->{content});
    $res = $t->poll($res->{headers}{'content-location'}, 120);
    is($res->{status}, 200, 'completes') or diag($res->{content});
    my $out = $t->download_all($res->{json}{output});
    my %ids = map { $_->{id} => 1 } @{ $out->{Provenance} || [] };
    return (\%ids, $out, $res->{json});
}

my $all = $synth_prov + 3;
my ($ids) = provenance_of('/fhir/$export');
is(scalar(keys %$ids), $all, 'no parameter, system level: every Provenance (default rule)');
($ids) = provenance_of('/fhir/$export?_type=Observation');
is(scalar(keys %$ids), 0, 'no parameter, _type without Provenance: none');
($ids) = provenance_of('/fhir/Patient/$export?_type=Provenance');
is(scalar(keys %$ids), $synth_prov,
   'no parameter, Patient level: the Provenance in the compartment (targeting a patient)');

my @synth_of_observations = split /\n/, $t->psql(
    "SELECT res_id FROM resource p WHERE res_type = 'Provenance' AND res_id NOT LIKE 'p-%' "
    . "AND EXISTS (SELECT 1 FROM unnest(p.refs) r WHERE r LIKE 'target=Observation/%')");
($ids) = provenance_of('/fhir/$export?_type=Observation&includeAssociatedData=RelevantProvenanceResources');
is_deeply([sort keys %$ids], [sort('p-new', 'p-old', @synth_of_observations)],
          'Relevant: every Provenance of an exported resource, not the orphan');
($ids) = provenance_of('/fhir/$export?_type=Observation&includeAssociatedData=LatestProvenanceResources');
ok($ids->{'p-new'} && !$ids->{'p-old'} && !$ids->{'p-orphan'},
   'Latest: the newest Provenance of the Observation, not the older one');
is_deeply([sort keys %$ids], [sort('p-new', @synth_of_observations)],
          'Latest: and the newest of every other Observation (each Provenance once)');

for my $q ('includeAssociatedData=LatestProvenanceResources,RelevantProvenanceResources',
           'includeAssociatedData=LatestProvenanceResources&includeAssociatedData=RelevantProvenanceResources') {
    ($ids) = provenance_of("/fhir/\$export?_type=Observation&$q");
    ok($ids->{'p-old'} && $ids->{'p-new'}, "both codes ($q): the least restrictive (Relevant) wins");
}

# _typeFilter narrows the exported resources, and so their Provenance.
($ids) = provenance_of('/fhir/$export?_type=Observation&_typeFilter=Observation%3F_id%3D' . $obs
                       . '&includeAssociatedData=RelevantProvenanceResources');
is_deeply([sort keys %$ids], [sort('p-new', 'p-old', $synth_of_obs)],
          'Relevant follows _typeFilter: only the Provenance of the one Observation');

# POST, valueCode; Group level follows the members.
my $group = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Group' ORDER BY res_id LIMIT 1");
my ($gids, $gout) = provenance_of("/fhir/Group/$group/\$export", body => encode_json({
    resourceType => 'Parameters', parameter => [
        { name => '_type', valueString => 'Condition' },
        { name => 'includeAssociatedData', valueCode => 'LatestProvenanceResources' } ] }));
my %exported_subjects = map { $_->{subject}{reference} => 1 } @{ $gout->{Condition} || [] };
cmp_ok(scalar(keys %$gids), '>', 0, 'Group level, POST valueCode: Provenance added');
is(scalar(grep { my $p = $_; !grep { $exported_subjects{ $_->{reference} } } @{ $p->{target} } }
          @{ $gout->{Provenance} || [] }), 0,
   'Group level: each targets a patient whose Conditions were exported');

# Unsupported and invalid codes.
my $res = $t->kickoff('/fhir/$export?includeAssociatedData=_custom');
$t->is_outcome($res, 400, 'not-supported', '_custom: 400 (strict)');
$res = $t->kickoff('/fhir/$export?includeAssociatedData=Bogus');
$t->is_outcome($res, 400, undef, 'a code outside the value set: 400');
$res = $t->kickoff('/fhir/$export?includeAssociatedData=Bogus',
                   headers => { Prefer => 'respond-async, handling=lenient' });
$t->is_outcome($res, 400, undef, 'a code outside the value set: 400 also when lenient');
my ($lids, undef, $m) = provenance_of(
    '/fhir/$export?_type=Observation&includeAssociatedData=_custom,RelevantProvenanceResources',
    headers => { Prefer => 'respond-async, handling=lenient' });
ok($lids->{'p-old'}, 'lenient: the supported code still applies');
my $errors = $t->download_all($m->{error});
my @issues = map { @{ $_->{issue} } } @{ $errors->{OperationOutcome} || [] };
ok((grep { $_->{severity} eq 'warning' && ($_->{diagnostics} // '') =~ /_custom/ } @issues),
   'lenient: _custom reported as a warning in the error file');

$t->finish;
done_testing;
