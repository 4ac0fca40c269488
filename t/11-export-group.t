#!/usr/bin/perl
# Group and Patient level exports: exactly the active members' compartments, their Patient
# resources and the supporting resources they reference; never another group's patients.
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

my @pids = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 4");
my ($a, $b, $c, $d) = @pids;
my $now = time;
my $iso = sub { my @t = gmtime(shift); sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ',
    $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0]) };
open(my $fh, '>', $t->dir . '/groups.ndjson') or die;
# two active members, one inactive, one whose membership period ended
print $fh encode_json({ resourceType => 'Group', id => 'aco', type => 'person',
    actual => JSON::PP::true, member => [
        { entity => { reference => "Patient/$a" } },
        { entity => { reference => "Patient/$b" }, period => { start => $iso->($now - 86400) } },
        { entity => { reference => "Patient/$c" }, inactive => JSON::PP::true },
        { entity => { reference => "Patient/$d" },
          period => { start => '2001-01-01', end => $iso->($now - 86400) } } ] }), "\n";
print $fh encode_json({ resourceType => 'Group', id => 'empty', type => 'person',
    actual => JSON::PP::true }), "\n";
close $fh;
$t->load($t->dir . '/groups.ndjson');

$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);

sub export {
    my ($path, %opt) = @_;
    my $res = $t->kickoff($path, %opt);
    is($res->{status}, 202, "kick-off $path") or diag($res->{content});
    $res = $t->poll($res->{headers}{'content-location'});
    is($res->{status}, 200, "$path completes") or diag($res->{content});
    return ($res->{json}, $t->download_all($res->{json}{output}));
}

# the resources in the compartments of these patients, per type, from the database
sub expected {
    my @ids = @_;
    my $list = join(',', map { "'$_'" } @ids);
    my %n = map { split /\|/ } split /\n/, $t->psql(
        "SELECT res_type || '|' || count(*) FROM resource WHERE NOT deleted "
        . "AND res_type <> 'Group' AND patients && ARRAY[$list] GROUP BY res_type");
    return \%n;
}

my ($m, $out) = export('/fhir/Group/aco/$export');
my %got = map { $_ => scalar @{ $out->{$_} } } keys %$out;
my %support = map { $_ => delete $got{$_} } grep { exists $got{$_} }
    qw(Practitioner Organization Location Medication);
is_deeply(\%got, expected($a, $b), 'the active members\' compartments, nothing else');
is_deeply([ sort map { $_->{id} } @{ $out->{Patient} } ], [ sort $a, $b ],
          'the Patient resources of the active members (not inactive, not expired)');
ok($support{Practitioner} && $support{Organization},
   'referenced Practitioners and Organizations are added');
my %referenced = map { $_ => 1 } split /\n/, $t->psql(
    "SELECT DISTINCT unnest(outrefs) FROM resource WHERE patients && ARRAY['$a','$b']");
my @unreferenced = grep { !$referenced{"$_->{resourceType}/$_->{id}"} }
    map { @{ $out->{$_} || [] } } qw(Practitioner Organization Location Medication);
is(scalar @unreferenced, 0, 'only the referenced supporting resources');

($m, $out) = export('/fhir/Group/empty/$export');
is_deeply($m->{output}, [], 'an empty group exports nothing');

($m, $out) = export('/fhir/Group/aco/$export?_type=Patient,Condition');
is_deeply([ sort keys %$out ], [ grep { exists $out->{$_} } 'Condition', 'Patient' ],
          '_type limits a group export');

my $body = encode_json({ resourceType => 'Parameters', parameter => [
    { name => 'patient', valueReference => { reference => "Patient/$a" } } ] });
($m, $out) = export('/fhir/Group/aco/$export', body => $body);
is_deeply([ map { $_->{id} } @{ $out->{Patient} } ], [ $a ], 'patient narrows a group export');

($m, $out) = export('/fhir/Patient/$export?_type=Patient');
is(scalar @{ $out->{Patient} }, $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Patient'"),
   'a patient-level export has every patient');

$t->finish;
done_testing;
