#!/usr/bin/perl
# A standby killed mid-unit (issue 17): the units reading from it are redone at once, within
# the same claim, on the primary: every resource exactly once, no partial file listed, one
# attempt per unit, and the log says where each unit read from.
#
# To catch units mid-read, the primary holds resource_history in ACCESS EXCLUSIVE mode: the
# lock is replayed on the standby, so every unit's COPY (which reads the replaced versions as
# of transactionTime) waits there. Then the standby's backends are killed (SIGKILL: the
# postmaster restarts the standby, as after a crash), and the lock is released.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(20);
my $standby = $t->start_standby('standby');
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

my ($ref, $expected) = $t->reference_export;
is($ref->{status}, 200, 'the reference export (primary) completes');

# Kicked off first: the planner waits for transactions older than the kick-off, not for the
# lock's, which is younger.
my $url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
my $job = $t->job_id_of($url);
my $lock = $t->hold_lock_replayed($standby, 'resource_history');
ok($lock, 'the lock is replayed on the standby');

my $w = $t->start_worker('--threads', 2, '--read-db', $standby, '--lease-seconds', 10);
my $waiting_sql = "SELECT pid FROM pg_stat_activity WHERE application_name = 'fhir-bulk-worker' "
                  . "AND wait_event_type = 'Lock' AND query LIKE 'COPY%'";
ok($t->wait_until(sub { my @p = split /\n/, $t->psql_at($standby, $waiting_sql); @p >= 2 }),
   'two units are reading from the standby (waiting for the lock there)');
my $temp = () = glob($t->dir . "/exports/$job/*.tmp.*");
my @pids = split /\n/, $t->psql_at($standby, $waiting_sql);
is(kill('KILL', @pids), scalar @pids, 'the standby backends serving the units are killed');

# The units go to the primary (where they wait for the lock as well), then it is released.
ok($t->wait_until(sub { $t->worker_log =~ /redoing the unit on the next server/ }),
   'the worker redoes the units elsewhere');
$t->release_lock($lock);
my $res = $t->poll($url, 60);
is($res->{status}, 200, 'the export completes');
$t->stop_worker($w);

is_deeply($t->export_lines($res), $expected, 'exactly the reference resources, byte for byte');
my %seen;
my $dupes = grep { $seen{$_}++ } FhirBulk::Test::resource_keys(@{ $t->export_lines($res) });
is($dupes, 0, 'no resource twice');
is($t->psql("SELECT max(attempts) FROM export_unit WHERE job_id = '$job'"), 1,
   'every unit was claimed once (redone within its claim)');
my $log = $t->worker_log;
my @redone = $log =~ /job \Q$job\E unit (\d+) [^\n]*: reading from replica 127\.0\.0\.1:\d+ failed \([^\n]*\); redoing the unit on the next server/g;
cmp_ok(scalar @redone, '>=', 2, 'the log names the units redone: ' . join(',', @redone));
for my $u (@redone) {
    like($t->psql("SELECT read_from FROM export_unit WHERE job_id = '$job' AND unit_no = $u"),
         qr/^(primary|replica 127\.0\.0\.1:\d+)$/, "unit $u records where it read from");
}
# the files listed are exactly those on disk, and their lines add up
my @listed = sort split /\n/, $t->psql(
    "SELECT file_name FROM export_file WHERE job_id = '$job'");
my @on_disk = sort grep { !/\.gz$/ && !/^\.owner$/ } $t->job_files($job);
is_deeply(\@on_disk, \@listed, 'no partial or unlisted file in the job directory');
my $counted = 0;
$counted += $_->{count} for @{ $res->{json}{output} };
is($counted, scalar @$expected, 'the manifest counts match');

$t->finish;
done_testing;
