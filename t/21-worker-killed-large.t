#!/usr/bin/perl
# A worker killed with SIGKILL in the middle of a large export (generated population, dozens
# of units, many files per unit): caught streaming, after it has published some units. A
# second worker takes over once the leases run out: the job completes, every resource exactly
# once, the killed worker's published units are not redone, its half-written files are gone.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $patients = $ENV{FHIR_BULK_LARGE_PATIENTS} || 200;
my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth($patients);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
my $total = $t->psql('SELECT count(*) FROM resource WHERE NOT deleted');
cmp_ok($total, '>', $patients * 300, "a large population: $total resources");

my @args = ('--lease-seconds', 3, '--target-unit-resources', 4000, '--max-file-resources', 700,
            '--janitor-interval-seconds', 1);
my $first = $t->start_worker('--threads', 1, @args);
my $res = $t->kickoff('/fhir/$export');
is($res->{status}, 202, 'kick-off accepted');
my $url = $res->{headers}{'content-location'};
my ($job) = $url =~ m{([0-9a-f-]{36})$};
my $dir = $t->export_dir . "/$job";

# Watch the directory (no database round trip, so the watch is fast): kill the worker once
# it has published several files and is in the middle of a unit that has more than one file
# (one written, the next being written).
my ($published, $partial) = (0, 0);
my $caught = $t->wait_until(sub {
    my @names = $t->job_files($job);
    $published = grep { /\.ndjson$/ } @names;
    $partial = grep { /\.ndjson\.tmp\./ && -s "$dir/$_" } @names;
    return $published >= 6 && $partial >= 2;
}, 120, 0.005);
kill 'KILL', $first;
$t->stop_worker($first);
ok($caught, "the worker is killed mid-export ($published files published, $partial being written)");
ok(!FhirBulk::Test::process_alive($first), 'the first worker is gone');

my %unit_state = map { split /\|/ } split /\n/, $t->psql(
    "SELECT unit_no || '|' || state FROM export_unit WHERE job_id = '$job'");
my @killed_units = grep { $unit_state{$_} eq 'running' } keys %unit_state;
my @done_before = grep { $unit_state{$_} eq 'done' } keys %unit_state;
ok(@killed_units >= 1, 'a unit was left running by the killed worker (' . "@killed_units)");
ok(@done_before >= 1, scalar(@done_before) . ' units were completed before the kill');
my @stray_before = grep { /\.tmp\./ } $t->job_files($job);
ok(@stray_before >= 1, 'its half-written files are still there: ' . scalar(@stray_before));
is($t->poll($url, 0.1)->{status}, 202, 'the job is still in progress, not failed');

my $second = $t->start_worker('--threads', 2, @args);
$res = $t->poll($url, 180);
is($res->{status}, 200, 'the job completes on the second worker');
my $m = $res->{json};

# Streaming: the worker's memory does not grow with the export (COPY rows are written as
# they arrive, through a fixed buffer).
my $exported = $t->psql('SELECT sum(length(body)) FROM resource WHERE NOT deleted');
my (undef, $peak_kb) = FhirBulk::Test::rss_kb($second);
cmp_ok($peak_kb * 1024, '<', $exported / 2,
       "the worker's peak RSS ($peak_kb kB) is a fraction of the $exported bytes exported");
cmp_ok($peak_kb, '<', 96 * 1024, 'and below 96 MB');

my $by = $t->units_by_worker_pid($job);
ok($by->{$first} && $by->{$second}, "both workers completed units ($by->{$first}, $by->{$second})")
    or diag(explain($by));
is($t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job' AND unit_no IN ("
            . join(',', @done_before) . ") AND attempts = 1"),
   scalar @done_before, 'units completed before the kill were not redone');
my %redo = map { split /\|/ } split /\n/, $t->psql(
    "SELECT unit_no || '|' || attempts FROM export_unit WHERE job_id = '$job' AND unit_no IN ("
    . join(',', @killed_units) . ")");
is(scalar(grep { $redo{$_} >= 2 } @killed_units), scalar @killed_units,
   'the units the killed worker was running were attempted again');
is_deeply($t->units_by_worker_pid($job, 'pending', 'running'), {}, 'no unit is left over');

my $got = $t->download_keys($m->{output});
is_deeply($got->{errors}, [], 'every file downloads with its manifest count');
my @dupes = grep { $got->{keys}{$_} > 1 } keys %{ $got->{keys} };
is(scalar @dupes, 0, 'no resource appears twice') or diag("e.g. $dupes[0]");
is(scalar keys %{ $got->{keys} }, $total, 'every resource is exported');
is_deeply($got->{types}, $t->db_counts, 'per type, as stored');

# On disk: exactly the manifest's files, each with its gzip twin; nothing half-written.
my %listed = map { ($_->{url} =~ m{/([^/]+)$})[0] => 1 } @{ $m->{output} };
my @names = $t->job_files($job);
my @extra = grep { $_ ne '.owner' && !$listed{$_} && !($_ =~ /^(.*)\.gz$/ && $listed{$1}) } @names;
is_deeply(\@extra, [], 'no file in the job directory that the manifest does not list');
is(scalar(grep { /\.gz$/ } @names), scalar keys %listed, 'every file has its gzip twin');
my ($some) = grep { /\.ndjson$/ } @names;
my $plain = do { local (@ARGV, $/) = ("$dir/$some"); <> };
my $gz = do { local (@ARGV, $/) = ("$dir/$some.gz"); <> };
my $unz;
gunzip(\$gz => \$unz) or diag($GunzipError);
ok(defined $unz && $unz eq $plain, "the twin of $some holds the same lines");

$t->finish;
done_testing;
