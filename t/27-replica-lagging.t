#!/usr/bin/perl
# A lagging standby (issue 17): with its WAL replay paused (pg_wal_replay_pause()), the
# standby has not replayed the job's plan (export_job.read_lsn), so a worker reading from it
# waits --read-db-wait-ms and then reads from the primary; with replay resumed during the
# wait, the units read from the standby. Either way the export is exactly the primary's.
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

sub read_from {
    my ($job) = @_;
    return { map { split /\|/ } split /\n/, $t->psql(
        "SELECT s || '|' || count(*) FROM (SELECT CASE WHEN read_from LIKE 'replica %' "
        . "THEN 'replica' ELSE read_from END AS s FROM export_unit WHERE job_id = '$job') u "
        . "GROUP BY s") };
}

# the reference, from the primary
my ($ref, $expected) = $t->reference_export;
is($ref->{status}, 200, 'the reference export completes');
cmp_ok(scalar @$expected, '>', 1000, scalar(@$expected) . ' resources');

# --- replay paused: the units wait, then read from the primary -----------------------------
$t->psql_at($standby, 'SELECT pg_wal_replay_pause()');
ok($t->wait_until(sub { $t->psql_at($standby, 'SELECT pg_get_wal_replay_pause_state()') eq 'paused' }),
   'the standby\'s replay is paused');
my $url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
my $job = $t->job_id_of($url);
my $started = time;
my $w = $t->start_worker('--threads', 2, '--read-db', $standby, '--read-db-wait-ms', 1500);
my $res = $t->poll($url, 60);
my $took = time - $started;
is($res->{status}, 200, 'the export completes with the standby paused');
$t->stop_worker($w);
is_deeply(read_from($job), { primary => $t->psql("SELECT units_total FROM export_job WHERE job_id = '$job'") },
          'every unit read from the primary');
cmp_ok($took, '>=', 1.5, sprintf('after waiting for the standby (%.1f s)', $took));
like($t->worker_log, qr/job \Q$job\E unit \d+ .*reading from the primary: no standby replayed WAL up to [0-9A-F]+\/[0-9A-F]+ within 1500 ms/,
     'the log says why a unit read from the primary');
is_deeply($t->export_lines($res), $expected, 'the same resources as the reference, byte for byte');
my $lsn = $t->psql("SELECT read_lsn FROM export_job WHERE job_id = '$job'");
like($lsn, qr{^[0-9A-F]+/[0-9A-F]+$}, "the job's read_lsn is recorded ($lsn)");
is($t->psql_at($standby, "SELECT pg_last_wal_replay_lsn() >= '$lsn'"), 'f',
   'which the paused standby has not replayed');

# --- replay resumed while the units wait: they read from the standby -----------------------
$url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
$job = $t->job_id_of($url);
$w = $t->start_worker('--threads', 2, '--read-db', $standby, '--read-db-wait-ms', 30000);
ok($t->wait_until(sub {
       $t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job' AND state = 'running'") > 0 }),
   'units are claimed and wait for the standby');
sleep 1;
is($t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job' AND state = 'done'"), 0,
   'none completes while the standby is paused');
$t->psql_at($standby, 'SELECT pg_wal_replay_resume()');
$res = $t->poll($url, 60);
is($res->{status}, 200, 'the export completes once replay resumed');
$t->stop_worker($w);
is_deeply(read_from($job), { replica => $t->psql("SELECT units_total FROM export_job WHERE job_id = '$job'") },
          'every unit read from the standby');
is_deeply($t->export_lines($res), $expected, 'the same resources as the reference, byte for byte');

$t->finish;
done_testing;
