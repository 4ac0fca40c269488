#!/usr/bin/perl
# Job history (issue 15): completed, failed and cancelled exports leave a row in
# export_job_history (sql/0007) that outlives the job's files and row. The row is written by
# a trigger in the transaction that finishes the job, whoever finishes it: the last unit of a
# worker (counts per type as the manifest's), a DELETE on an nginx node with no worker running,
# or any other path to 'failed'. The workers' janitor marks it purged when it removes the job
# and prunes rows older than --history-days; `fhir-bulk jobs list --history` shows them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(30);
$t->write_conf(FhirBulk::Test::default_http_conf());
$t->start_nginx;

my $history = sub {
    my ($job) = @_;
    my $row = $t->psql("SELECT row_to_json(h) FROM export_job_history h WHERE job_id = '$job'");
    return $row eq '' ? undef : decode_json($row);
};
my $job_of = sub { my ($loc) = @_; $loc =~ m{([0-9a-f-]{36})$} or die "no job id in $loc"; $1 };

# --- completed: counts as the manifest's, purged by the janitor, then still there ----------
my $worker = $t->start_worker('--janitor-interval-seconds', 1, '--retention-seconds', 10,
                              '--grace-seconds', 0);
my $res = $t->kickoff('/fhir/$export?_type=Patient,Observation,Condition');
is($res->{status}, 202, 'kick-off accepted');
my $done = $job_of->($res->{headers}{'content-location'});
$res = $t->poll($res->{headers}{'content-location'}, 120);
is($res->{status}, 200, 'export completed');
my %manifest_counts;
my $files = 0;
$manifest_counts{ $_->{type} } += $_->{count}, $files++ for @{ $res->{json}{output} };
my $bytes = $t->psql("SELECT sum(bytes) FROM export_file WHERE job_id = '$done'");

my $h = $history->($done);
ok($h, 'a history row as soon as the job completed');
is($h->{outcome}, 'completed', 'outcome completed');
is($h->{client_id}, 'anonymous', 'the client (authorization off: anonymous)');
is_deeply($h->{type_counts}, \%manifest_counts, 'counts per type = the manifest\'s counts');
is($h->{files}, $files, 'files = the manifest\'s output files');
is($h->{bytes}, $bytes, 'bytes = the NDJSON bytes of the files');
is($h->{resources}, eval { my $s = 0; $s += $_ for values %manifest_counts; $s },
   'resources = the sum of the counts');
is($h->{request}{level}, 'system', 'the request: level');
is_deeply($h->{request}{types}, [qw(Patient Observation Condition)], 'the request: types');
like($h->{request_url}, qr/_type=Patient,Observation,Condition$/, 'the request URL');
ok(defined $h->{finished_at} && defined $h->{created_at}, 'times recorded');
ok(!defined $h->{purged_at}, 'not purged yet');

ok($t->wait_until(sub {
       $t->psql("SELECT count(*) FROM export_job WHERE job_id = '$done'") eq '0' }, 60),
   'the janitor removed the expired job');
ok(!-e $t->export_dir . "/$done", 'its files are gone');
$h = $history->($done);
ok($h && defined $h->{purged_at}, 'the history row stays, marked purged');
is_deeply($h->{type_counts}, \%manifest_counts, 'with its counts');

# --- cancelled on an nginx node while no worker runs ------------------------------------------
$t->stop_worker;
$res = $t->kickoff('/fhir/$export?_type=Patient&_since=2000-01-01T00:00:00Z');
is($res->{status}, 202, 'second kick-off accepted (no worker running)');
my $cancelled = $job_of->($res->{headers}{'content-location'});
$res = $t->request('DELETE', $res->{headers}{'content-location'});
is($res->{status}, 202, 'DELETE cancels it');
$h = $history->($cancelled);
ok($h, 'history written by the cancel itself (no worker, no janitor ran)');
is($h->{outcome}, 'cancelled', 'outcome cancelled');
is($h->{request}{since_us} > 0 ? 1 : 0, 1, 'the request keeps _since');
is($h->{units_done}, 0, 'nothing was run');

# --- failed: any path to 'failed' is recorded with its OperationOutcome ----------------------
$res = $t->kickoff('/fhir/$export?_type=Observation');
my $failed = $job_of->($res->{headers}{'content-location'});
$t->psql("UPDATE export_job SET state = 'failed', finished_at = now(), expires_at = now(), "
         . "error = '{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
         . "\"code\":\"exception\",\"diagnostics\":\"test failure\"}]}' WHERE job_id = '$failed'");
$h = $history->($failed);
is($h->{outcome}, 'failed', 'outcome failed');
is($h->{error}{issue}[0]{diagnostics}, 'test failure', 'with the OperationOutcome');

# --- a completed job cancelled afterwards keeps its outcome and counts ---------------------
$worker = $t->start_worker('--janitor-interval-seconds', 1, '--grace-seconds', 0);
$res = $t->kickoff('/fhir/$export?_type=Patient');
my $later = $job_of->($res->{headers}{'content-location'});
my $status_url = $res->{headers}{'content-location'};
is($t->poll($status_url, 120)->{status}, 200, 'third export completed');
my $patients = $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Patient' AND NOT deleted");
is($t->request('DELETE', $status_url)->{status}, 202, 'a completed export deleted by its client');
$h = $history->($later);
is($h->{outcome}, 'completed', 'outcome stays completed');
ok(defined $h->{cancelled_at}, 'the DELETE is noted (cancelled_at)');
is($h->{type_counts}{Patient}, $patients, 'counts kept although its files are deleted');
ok($t->wait_until(sub {
       $t->psql("SELECT count(*) FROM export_job WHERE job_id IN ('$later', '$cancelled', "
                . "'$failed')") eq '0' }, 60),
   'the janitor removed the cancelled and failed jobs');
is($t->psql('SELECT count(*) FROM export_job_history WHERE purged_at IS NOT NULL'), 4,
   'all four history rows remain, purged');

# --- the operator's view ----------------------------------------------------------------------
my $json = `$FhirBulk::Test::BIN jobs list --history --format json --db '${\ $t->conninfo }'`;
is($?, 0, 'jobs list --history');
my %by_id = map { $_->{job_id} => $_ } @{ decode_json($json) };
is(scalar(keys %by_id), 4, 'four jobs in the history');
is($by_id{$done}{outcome}, 'completed', 'listed: completed');
is($by_id{$cancelled}{outcome}, 'cancelled', 'listed: cancelled');
is($by_id{$failed}{outcome}, 'failed', 'listed: failed');
is($by_id{$done}{types}, 'Patient,Observation,Condition', 'listed: types');
is($by_id{$done}{files}, $files, 'listed: files (a JSON number)');
$json = `$FhirBulk::Test::BIN jobs list --history --state cancelled --format json --db '${\ $t->conninfo }'`;
is_deeply([ map { $_->{job_id} } @{ decode_json($json) } ], [$cancelled], '--state filters');
$json = `$FhirBulk::Test::BIN jobs show $done --format json --db '${\ $t->conninfo }'`;
is($?, 0, 'jobs show of a purged job');
is(decode_json($json)->{history}{state}, 'completed', 'shows its history row');

# --- retention: --history-days ----------------------------------------------------------------
$t->psql("UPDATE export_job_history SET finished_at = now() - interval '10 days' "
         . "WHERE job_id = '$done'");
$t->psql("UPDATE export_job_history SET finished_at = now() - interval '4 days' "
         . "WHERE job_id = '$failed'");
$t->stop_worker;
$worker = $t->start_worker('--janitor-interval-seconds', 1, '--history-days', 0);
sleep 2.5;
is($t->psql('SELECT count(*) FROM export_job_history'), 4, '--history-days 0 keeps everything');
$t->stop_worker;
$worker = $t->start_worker('--janitor-interval-seconds', 1, '--history-days', 5);
ok($t->wait_until(sub {
       $t->psql("SELECT count(*) FROM export_job_history WHERE job_id = '$done'") eq '0' }, 30),
   'a row older than --history-days is pruned');
is($t->psql('SELECT count(*) FROM export_job_history'), 3, 'the younger ones stay');
$t->stop_worker;
is(system($FhirBulk::Test::BIN, 'worker', '--db', $t->conninfo, '--export-dir', $t->export_dir,
          '--history-days', '-1', '--once') >> 8, 2, '--history-days -1 is refused');

open(my $fh, '<', $t->dir . '/worker.log') or die;
my $log = do { local $/; <$fh> };
like($log, qr/pruned 1 job history rows/, 'the janitor logs what it pruned');
unlike($log, qr/permission denied|ERROR/i, 'no database errors in the worker log');

$t->finish;
done_testing;
