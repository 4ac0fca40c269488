#!/usr/bin/perl
# Point-in-time exports (issue 18) with a worker killed mid-export: the data changes after the
# kill, and the units another worker redoes still read every resource as of transactionTime
# (the same versions as a reference export taken before any change).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

my $path = '/fhir/$export?_type=Patient,Condition,Observation,Encounter';

sub lines_of {
    my ($manifest) = @_;
    my %out;
    my $dupes = 0;
    $t->download_all($manifest->{output});
    for my $item (@{ $manifest->{output} }) {
        for my $line (@{ $t->{downloaded}{ $item->{url} } }) {
            my ($key) = FhirBulk::Test::resource_keys($line);
            $dupes++ if exists $out{$key};
            $out{$key} = $line;
        }
    }
    return (\%out, $dupes);
}

# The reference: the same export before anything changes.
my $w = $t->start_worker('--threads', 2);
my $res = $t->poll($t->kickoff($path)->{headers}{'content-location'}, 120);
is($res->{status}, 200, 'the reference export completes');
my ($ref) = lines_of($res->{json});
$t->stop_worker($w);

# Hold export_file so that units write their files and then wait in the transaction that
# would publish them: the worker is caught mid-unit (as t/13-worker-killed.t).
my $locker = fork;
die "fork: $!" unless defined $locker;
if ($locker == 0) {
    { exec('psql', $t->conninfo, '-X', '-q', '-o', '/dev/null', '-c',
           'BEGIN; LOCK TABLE export_file IN EXCLUSIVE MODE; SELECT pg_sleep(10); COMMIT;'); }
    POSIX::_exit(127);
}
sleep 0.5;
my $first = $t->start_worker('--threads', 2, '--lease-seconds', 3);
$res = $t->kickoff($path);
is($res->{status}, 202, 'kick-off accepted');
my $url = $res->{headers}{'content-location'};
my ($running, $temp) = (0, 0);
my $deadline = time + 20;
while (time < $deadline) {
    $running = $t->psql("SELECT count(*) FROM export_unit WHERE state = 'running'");
    $temp = () = glob($t->dir . '/exports/*/*.tmp.*');
    last if $running >= 2 && $temp > 0;
    sleep 0.1;
}
ok($running >= 2 && $temp > 0, "the worker is mid-export ($running units running)");
$t->stop_worker($first, 'KILL');

# Change the data before any unit is redone.
my @obs = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Observation' ORDER BY res_id LIMIT 300");
my @pat = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 20");
my @changed;
for my $id (@obs[0 .. 199], @pat[0 .. 9]) {
    my $type = @changed < 200 ? 'Observation' : 'Patient';
    my $r = decode_json($t->psql(
        "SELECT body FROM resource WHERE res_type = '$type' AND res_id = '$id'"));
    $r->{language} = 'x-after-kill';
    push @changed, $r;
}
my $new = { %{ $changed[0] }, id => 'created-after-kill' };
open(my $fh, '>', $t->dir . '/after-kill.ndjson') or die;
print $fh encode_json($_), "\n" for @changed, $new;
close $fh;
$t->load($t->dir . '/after-kill.ndjson');
is($t->run_tool('load', '--quiet', map({ ('--delete', "Observation/$_") } @obs[200 .. 299]),
                map({ ('--delete', "Patient/$_") } @pat[10 .. 19])), 0,
   'resources are deleted after the kill');

$t->start_worker('--threads', 2, '--lease-seconds', 3);
waitpid($locker, 0);
$res = $t->poll($url, 120);
is($res->{status}, 200, 'the job completes on the second worker');
cmp_ok($t->psql("SELECT max(attempts) FROM export_unit WHERE job_id = '" . $t->job_id_of($url) . "'"),
       '>=', 2, 'the killed worker\'s units were redone');
my ($got, $dupes) = lines_of($res->{json});
is($dupes, 0, 'no resource twice');
my @missing = grep { !exists $got->{$_} } keys %$ref;
my @extra = grep { !exists $ref->{$_} } keys %$got;
my @differ = grep { exists $got->{$_} && $got->{$_} ne $ref->{$_} } keys %$ref;
ok(!@missing && !@extra && !@differ,
   'the redone units read every resource as of transactionTime, byte for byte ('
   . scalar(keys %$ref) . ')')
    or diag(scalar(@missing) . ' missing, ' . scalar(@extra) . ' extra, ' . scalar(@differ)
            . ' different');
is($t->psql("SELECT count(*) FROM resource WHERE res_type = 'Observation' AND NOT deleted "
            . "AND body LIKE '%x-after-kill%'"), 201,
   'while the stored data has changed (200 rewritten, 1 created)');

$t->finish;
done_testing;
