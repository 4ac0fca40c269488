#!/usr/bin/perl
# Point-in-time exports (issue 18): resources updated, deleted and created while an export
# runs are exported exactly as they were at its transactionTime, at system, Patient and Group
# level and with _since (deleted list included); the replaced versions are pruned once no
# export can need them.
#
# The expected output is a reference export of each request taken before the writes: nothing
# is written between the reference exports and the exports under test, so both read the same
# data. The exports under test are kicked off while no worker runs, the loader then rewrites
# the data, and only then does a worker run them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);

my $json = JSON::PP->new->canonical;
my @pids = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 6");
my ($p_a, $p_b, $p_c, $p_d, $p_e, $p_f) = @pids;

sub write_ndjson {
    my ($name, @resources) = @_;
    my $path = $t->dir . "/$name";
    open(my $fh, '>', $path) or die "$path: $!";
    print $fh $json->encode($_), "\n" for @resources;
    close $fh;
    return $path;
}
sub body_of {
    my ($type, $id) = @_;
    my $b = $t->psql("SELECT body FROM resource WHERE res_type = '$type' AND res_id = '$id' "
                     . "AND NOT deleted");
    return $b eq '' ? undef : $b;
}
sub group {
    my ($id, @members) = @_;
    return { resourceType => 'Group', id => $id, type => 'person', actual => JSON::PP::true,
             member => [ map { { entity => { reference => "Patient/$_" } } } @members ] };
}
# Resources of a patient's compartment of one type (ids, sorted).
sub ids_of {
    my ($type, $patient, $n) = @_;
    return split /\n/, $t->psql(
        "SELECT res_id FROM resource WHERE res_type = '$type' AND NOT deleted "
        . "AND patients && ARRAY['$patient'] ORDER BY res_id LIMIT $n");
}

$t->load(write_ndjson('groups.ndjson', group('pit', $p_a, $p_b), group('pit2', $p_c)));

# _since: the changes after this instant, made before the exports' transactionTime.
sleep 0.05;
my $since = $t->psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                     . "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
sleep 0.05;
my ($cond_gone_early) = ids_of('Condition', $p_d, 1);
my ($obs_since) = ids_of('Observation', $p_d, 1);
my $o = decode_json(body_of('Observation', $obs_since));
$o->{status} = 'amended';
$t->load(write_ndjson('before.ndjson', $o));
is($t->run_tool('load', '--quiet', '--delete', "Condition/$cond_gone_early"), 0,
   'a Condition is deleted between _since and the exports');

$t->write_conf(FhirBulk::Test::default_http_conf(
    location_extra => 'fhir_bulk_max_active_exports 0; fhir_bulk_max_retained_exports 0;'))
  ->start_nginx;

(my $since_q = $since) =~ s/\+/%2B/g;
my %requests = (
    system  => '/fhir/$export',
    patient => '/fhir/Patient/$export?_type=Patient,Condition,Encounter,Observation,'
               . 'Practitioner,Organization',
    group   => '/fhir/Group/pit/$export',
    group2  => '/fhir/Group/pit2/$export',
    since   => "/fhir/\$export?_since=$since_q",
);
my @names = sort keys %requests;

sub kickoff_all {
    my %url;
    for my $n (@names) {
        my $res = $t->kickoff($requests{$n});
        is($res->{status}, 202, "kick-off $n") or diag($res->{content});
        $url{$n} = $res->{headers}{'content-location'};
    }
    return \%url;
}
# { output => { "Type/id" => line }, deleted => [ sorted "Type/id" ], dupes => n }
sub collect {
    my ($url, $name) = @_;
    my $res = $t->poll($url, 180);
    is($res->{status}, 200, "$name completes") or diag($res->{content});
    my %out = (output => {}, deleted => [], dupes => 0, tt => $res->{json}{transactionTime});
    $t->download_all($res->{json}{output});
    for my $item (@{ $res->{json}{output} || [] }) {
        for my $line (@{ $t->{downloaded}{ $item->{url} } }) {
            my ($key) = FhirBulk::Test::resource_keys($line);
            $out{dupes}++ if exists $out{output}{$key};
            $out{output}{$key} = $line;
        }
    }
    my $del = $t->download_all($res->{json}{deleted} || []);
    for my $b (@{ $del->{Bundle} || [] }) {
        push @{ $out{deleted} }, map { $_->{request}{url} } @{ $b->{entry} };
    }
    $out{deleted} = [ sort @{ $out{deleted} } ];
    return \%out;
}

# --- the reference exports ------------------------------------------------------------------

# retention 20 s: the exports expire soon after the test has read them (their files stay for
# the grace period); history kept only as long as exports need it.
my @worker_args = ('--threads', 2, '--retention-seconds', 20, '--history-retention-seconds', 0,
                   '--janitor-interval-seconds', 1);
$t->start_worker(@worker_args);
my $ref_urls = kickoff_all();
my %ref = map { $_ => collect($ref_urls->{$_}, "reference $_") } @names;
$t->stop_worker;
is(scalar keys %{ $ref{system}{output} }, $t->psql('SELECT count(*) FROM resource WHERE NOT deleted'),
   'the reference system export has every stored resource');
ok(exists $ref{since}{output}{"Observation/$obs_since"}, 'the _since reference has the change');
is_deeply($ref{since}{deleted}, [ "Condition/$cond_gone_early" ],
          'and the deletion in its deleted list');

# --- the exports under test: kicked off, then the data changes, then a worker runs ----------

my $urls = kickoff_all();

my @updated = (
    "Patient/$p_a", "Patient/$p_c", "Patient/$p_e",
    map({ "Condition/$_" } ids_of('Condition', $p_a, 3)),
    map({ "Observation/$_" } ids_of('Observation', $p_a, 3), ids_of('Observation', $p_c, 2)),
    map({ "Encounter/$_" } ids_of('Encounter', $p_b, 2)),
    "Observation/$obs_since",
);
my ($practitioner) = split /\n/, $t->psql(
    "SELECT substr(r, 14) FROM resource, unnest(outrefs) r WHERE patients && ARRAY['$p_a'] "
    . "AND r LIKE 'Practitioner/%' ORDER BY 1 LIMIT 1");
push @updated, "Practitioner/$practitioner" if $practitioner;
my @deleted = ("Patient/$p_f", map({ "Condition/$_" } ids_of('Condition', $p_b, 2)),
               map({ "Observation/$_" } ids_of('Observation', $p_a, 5)));
@deleted = grep { my $d = $_; !grep { $_ eq $d } @updated } @deleted;
my %before = map { my ($ty, $id) = split m{/}; ($_ => body_of($ty, $id)) } @updated, @deleted;

my @changed;
for my $key (@updated) {
    my $r = decode_json($before{$key});
    $r->{language} = 'x-changed';
    push @changed, $r;
}
my $new_obs = decode_json(body_of('Observation', (ids_of('Observation', $p_a, 1))[0]));
$new_obs->{id} = 'pit-new-observation';
my $new_patient = decode_json($before{"Patient/$p_a"});
$new_patient->{id} = 'pit-new-patient';
my $recreated = { resourceType => 'Condition', id => $cond_gone_early,
                  subject => { reference => "Patient/$p_d" },
                  code => { text => 'recreated after transactionTime' } };
$t->load(write_ndjson('during1.ndjson', @changed, $new_obs, $new_patient, $recreated,
                      group('pit', $p_b, $p_d, 'pit-new-patient')));
# a second round of changes to some of them: several replaced versions of one resource
$_->{language} = 'x-changed-again' for @changed[0 .. 3];
$t->load(write_ndjson('during2.ndjson', @changed[0 .. 3]));
is($t->run_tool('load', '--quiet', map({ ('--delete', $_) } @deleted, 'Group/pit2')), 0,
   'resources are deleted during the export');
cmp_ok($t->psql('SELECT count(*) FROM resource_history'), '>=', @updated + @deleted + 4,
       'the replaced versions are kept');
# the data the exports must not see is really there now
is(body_of('Observation', 'pit-new-observation') ? 1 : 0, 1, 'a new Observation exists now');
isnt(body_of(split m{/}, $updated[0]), $before{ $updated[0] }, 'updated resources changed');
is(body_of(split m{/}, $deleted[0]), undef, 'deleted resources are gone');

$t->start_worker(@worker_args);
my %got = map { $_ => collect($urls->{$_}, $_) } @names;

for my $n (@names) {
    is($got{$n}{dupes}, 0, "$n: no resource twice");
    my @missing = grep { !exists $got{$n}{output}{$_} } sort keys %{ $ref{$n}{output} };
    my @extra = grep { !exists $ref{$n}{output}{$_} } sort keys %{ $got{$n}{output} };
    my @differ = grep { exists $got{$n}{output}{$_} && $got{$n}{output}{$_} ne $ref{$n}{output}{$_} }
        sort keys %{ $ref{$n}{output} };
    ok(!@missing && !@extra && !@differ,
       "$n: exactly the resources as of transactionTime, byte for byte ("
       . scalar(keys %{ $ref{$n}{output} }) . ')')
        or diag("missing @missing[0 .. ($#missing < 4 ? $#missing : 4)]; extra @extra; "
                . "differ @differ[0 .. ($#differ < 4 ? $#differ : 4)]");
    is_deeply($got{$n}{deleted}, $ref{$n}{deleted}, "$n: the deleted list as of transactionTime");
}
my $sys = $got{system}{output};
is(scalar(grep { ($sys->{$_} // '') eq $before{$_} } @updated), scalar @updated,
   'updated resources are exported in their version as of transactionTime');
is(scalar(grep { ($sys->{$_} // '') eq $before{$_} } @deleted), scalar @deleted,
   'resources deleted after transactionTime are exported');
ok(!exists $sys->{'Observation/pit-new-observation'} && !exists $sys->{'Patient/pit-new-patient'},
   'resources created after transactionTime are not');
ok(exists $got{group}{output}{"Patient/$p_a"} && !exists $got{group}{output}{"Patient/$p_d"},
   'the Group export uses the members as of transactionTime');
ok(exists $got{group2}{output}{"Patient/$p_c"},
   'a Group deleted after transactionTime exports its members as of then');
is_deeply($got{since}{deleted}, [ "Condition/$cond_gone_early" ],
          'a resource deleted before and re-created after transactionTime is in deleted');

# --- the next exports see the changes; history is pruned once no export needs it ----------

my $res = $t->poll($t->kickoff('/fhir/$export?_type=Observation')->{headers}{'content-location'});
is($res->{status}, 200, 'a later export completes');
$t->download_all($res->{json}{output});
my %now = map { (FhirBulk::Test::resource_keys($_))[0] => $_ } map { @{ $t->{downloaded}{ $_->{url} } } }
    @{ $res->{json}{output} };
ok(exists $now{'Observation/pit-new-observation'}, 'a later export has the new resources');
my ($obs_key) = grep { m{^Observation/} } @updated;
is($now{$obs_key}, body_of(split m{/}, $obs_key), "and the current versions");

my $left = $t->wait_until(sub { $t->psql('SELECT count(*) FROM resource_history') == 0 }, 90, 0.5);
ok($left, 'replaced versions are pruned once the exports have expired')
    or diag($t->psql('SELECT count(*) FROM resource_history'));
is($t->psql('SELECT count(*) FROM group_member_history'), 0, 'and the kept Group memberships');

$t->finish;
done_testing;
