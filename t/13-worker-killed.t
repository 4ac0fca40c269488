#!/usr/bin/perl
# A worker killed with SIGKILL in the middle of an export: another worker reclaims its units
# when their leases run out, and the job completes with every resource exactly once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

# Hold export_file so that units stream their resources, write their files and then wait in
# the transaction that would publish them: the worker is caught mid-unit, files half done.
my $locker = fork;
die "fork: $!" unless defined $locker;
if ($locker == 0) {
    { exec('psql', $t->conninfo, '-X', '-q', '-c',
           'BEGIN; LOCK TABLE export_file IN EXCLUSIVE MODE; '
           . 'SELECT pg_sleep(8); COMMIT;'); }
    POSIX::_exit(127);
}
sleep 0.5;

my $first = $t->start_worker('--threads', 2, '--lease-seconds', 3);
my $res = $t->kickoff('/fhir/$export');
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
ok($running >= 2 && $temp > 0, "the worker is mid-export ($running units running, $temp temporary files)");

$t->stop_worker($first, 'KILL');
ok(!kill(0, $first), 'the first worker is gone (SIGKILL)');
is($t->poll($url, 0.1)->{status}, 202, 'the job is still in progress, not failed');

$t->start_worker('--threads', 2, '--lease-seconds', 3);
waitpid($locker, 0);
$res = $t->poll($url, 60);
is($res->{status}, 200, 'the job completes on the second worker');

my $files = $t->download_all($res->{json}{output});
my (%seen, $dupes);
for my $type (keys %$files) {
    $dupes++ for grep { $seen{"$_->{resourceType}/$_->{id}"}++ } @{ $files->{$type} };
}
ok(!$dupes, 'no resource twice');
is(scalar keys %seen, $t->psql('SELECT count(*) FROM resource WHERE NOT deleted'),
   'every resource exactly once');
cmp_ok($t->psql("SELECT max(attempts) FROM export_unit"), '>=', 2,
       'the killed worker\'s unit was attempted again');
my @stray = glob($t->dir . '/exports/*/*.tmp.*');
is(scalar @stray, 0, 'no temporary files are left behind');

$t->finish;
done_testing;
