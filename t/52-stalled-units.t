#!/usr/bin/perl
# Issue 11, rows 3 and 11 against real nginx, PostgreSQL and two worker processes: units whose
# statements return no rows for longer than the lease keep their leases (nobody runs them a
# second time); a DELETE on the status URL stops the job's statements on every worker within
# seconds; a unit over the time limit fails its job with an OperationOutcome that names the
# limit, not PostgreSQL's message.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(5);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
my @workers = map { $t->start_worker('--threads', 1, '--lease-seconds', 2) } 1 .. 2;

# Statements of the worker threads waiting for the test's lock.
sub waiting {
    my ($lock) = @_;
    return $t->psql("SELECT count(*) FROM pg_stat_activity a WHERE application_name = "
        . "'fhir-bulk-worker' AND state = 'active' AND query LIKE 'COPY (SELECT%' AND EXISTS "
        . "(SELECT 1 FROM pg_stat_activity l WHERE l.application_name = '$lock->{name}' "
        . "AND l.pid = ANY(pg_blocking_pids(a.pid)))");
}

# Kicks off $path so that its units' statements wait without returning a row (as a selective
# filter over a large table does): REINDEX holds an index of each table exclusively, which a
# unit's statement needs for planning it, while the worker's planner (table sizes only) is
# not held up. The REINDEX starts after the kick-off (planning waits for older transactions)
# but before planning ends (an older transaction holds planning back meanwhile).
sub kickoff_stalled {
    my ($path, @tables) = @_;
    my $older = $t->hold_lock('SELECT pg_current_xact_id()');
    my $res = $t->kickoff($path);
    die "kick-off: $res->{status}\n" unless $res->{status} == 202;
    $t->wait_until(sub { $t->psql("SELECT count(*) FROM export_job WHERE planner IS NOT NULL "
                                  . "AND state = 'accepted'") }, 30)
        or die "the job was not claimed for planning\n";
    my @sql;
    for my $table (@tables) {
        my $index = $t->psql("SELECT indexrelid::regclass FROM pg_index "
                             . "WHERE indrelid = '$table'::regclass ORDER BY 1 LIMIT 1");
        die "no index on $table\n" unless $index;
        push @sql, "REINDEX INDEX $index";
    }
    my $lock = $t->hold_lock(join('; ', @sql));
    $t->release_lock($older);
    return ($res->{headers}{'content-location'}, $lock);
}

my ($url, $lock) = kickoff_stalled('/fhir/$export?_type=Patient,Observation',
                                   'resource_patient', 'resource_observation');
my ($job) = $url =~ m{([0-9a-f-]{36})$};
ok($t->wait_until(sub { waiting($lock) == 2 }, 30),
   'both units wait for the lock, one on each worker')
    or diag($t->psql("SELECT unit_no, state, worker FROM export_unit WHERE job_id = '$job'"));
is(scalar keys %{ $t->units_by_worker_pid($job, 'running') }, 2, 'on two worker processes');

# Three leases (2 s) without a row.
sleep 6;
is($t->psql("SELECT string_agg(attempts || ' ' || (lease_until > now())::text, ',') "
            . "FROM export_unit WHERE job_id = '$job'"),
   '1 true,1 true', 'no row for three leases: the leases were renewed, no unit ran twice');

my $t0 = time;
is($t->request('DELETE', $url)->{status}, 202, 'cancel the export');
ok($t->wait_until(sub { waiting($lock) == 0 }, 5), 'its statements stopped on every worker');
my $took = time - $t0;
ok($took < 4, sprintf('within seconds (%.1f s), with the lock still held', $took));
diag(sprintf('cancel to statements stopped on 2 workers: %.2f s', $took));
$t->release_lock($lock);
ok(FhirBulk::Test::process_alive($_), 'the worker is still running') for @workers;

# --- the per-unit time limit -----------------------------------------------------------------

$t->stop_worker;
$t->start_worker('--threads', 2, '--unit-timeout-seconds', 2);
($url, $lock) = kickoff_stalled('/fhir/$export?_type=Observation', 'resource_observation');
$t0 = time;
my $res = $t->poll($url, 30);
$took = time - $t0;
$t->is_outcome($res, 500, 'processing', 'a unit over the time limit fails its export');
like($res->{json}{issue}[0]{diagnostics} // '',
     qr/^a part of the export ran longer than the server's limit of 2 seconds; .* \(reference [0-9a-f]{8}\)$/,
     'naming the limit and a reference') or diag($res->{content});
unlike($res->{content}, qr/SQLSTATE|statement|cancel|resource_/i, 'not PostgreSQL\'s message');
ok($took < 10, sprintf('soon (%.1f s)', $took));
is(waiting($lock), 0, 'its statement was stopped while the lock is still held');
$t->release_lock($lock);

# --- row 11: a unit failing inside PostgreSQL -----------------------------------------------

$t->psql('ALTER TABLE resource RENAME COLUMN body TO body_hidden_name');
$res = $t->poll($t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'}, 30);
$t->is_outcome($res, 500, 'processing', 'a unit failing inside PostgreSQL fails its export');
my $diag = $res->{json}{issue}[0]{diagnostics} // '';
like($diag, qr/^the export failed on the server \(reference ([0-9a-f]{8})\)$/,
     'with a generic diagnostic and a reference') or diag($res->{content});
my ($ref) = $diag =~ /reference ([0-9a-f]{8})/;
my $log = do { local $/; open(my $fh, '<', $t->dir . '/worker.log') or die; <$fh> };
like($log, qr/reference \Q$ref\E\): .*body.*42703/s, 'the details are in the worker log')
    if defined $ref;
$t->psql('ALTER TABLE resource RENAME COLUMN body_hidden_name TO body');

$t->finish;
done_testing;
