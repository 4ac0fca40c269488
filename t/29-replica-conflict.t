#!/usr/bin/perl
# A recovery conflict cancels a unit's statement on the standby (issue 17): "canceling
# statement due to conflict with recovery" (SQLSTATE 40001 / 40P01). The unit is redone at
# once, within its claim, on the primary; the export is exactly the primary's.
#
# The conflict, made on purpose: the primary holds resource_history in ACCESS EXCLUSIVE mode,
# which the standby replays, so a unit's COPY there waits for it while holding its type's
# table (locked first, in the statement's order). A second primary session then locks that
# table exclusively: replaying that lock conflicts with the waiting COPY, which the standby
# cancels after max_standby_streaming_delay (1 s here).
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
$t->psql_at($standby, "ALTER SYSTEM SET max_standby_streaming_delay = '1s'");
$t->psql_at($standby, 'SELECT pg_reload_conf()');
ok($t->wait_until(sub { $t->psql_at($standby, 'SHOW max_standby_streaming_delay') eq '1s' }),
   'the standby cancels conflicting queries after 1 s');
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

my ($ref, $expected) = $t->reference_export;
is($ref->{status}, 200, 'the reference export (primary) completes');

# Kicked off first: the planner waits for transactions older than the kick-off, not for the
# lock's, which is younger.
my $url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
my $job = $t->job_id_of($url);
my $history_lock = $t->hold_lock_replayed($standby, 'resource_history');
ok($history_lock, 'the history lock is replayed on the standby');

my $w = $t->start_worker('--threads', 1, '--read-db', $standby, '--lease-seconds', 10);
my $held_sql = "SELECT c.relname FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
    . "JOIN pg_class c ON c.oid = l.relation WHERE a.application_name = 'fhir-bulk-worker' "
    . "AND a.wait_event_type = 'Lock' AND a.query LIKE 'COPY%' AND l.granted "
    . "AND c.relkind = 'r' AND c.relname LIKE 'resource\\_%' AND c.relname <> 'resource_history'";
my $table = $t->wait_until(sub { $t->psql_at($standby, $held_sql) });
like($table, qr/^resource_\w+$/, "a unit's COPY waits on the standby, holding $table") or do {
    my $activity = "SELECT string_agg(application_name || ': ' || coalesce(wait_event_type, '-') "
        . "|| ': ' || left(query, 160), E'\\n') FROM pg_stat_activity "
        . "WHERE backend_type = 'client backend'";
    diag("standby:\n" . $t->psql_at($standby, $activity));
    diag("primary:\n" . $t->psql($activity));
    diag($t->worker_log);
    $t->finish;  # nothing below can run without the waiting unit
    done_testing;
    exit;
};

my $table_lock = $t->hold_lock("LOCK TABLE $table IN ACCESS EXCLUSIVE MODE");
ok($t->wait_until(sub { $t->worker_log =~ /redoing the unit on the next server/ }, 30),
   'the standby cancels the statement and the worker redoes the unit');
my ($line) = $t->worker_log =~ /(job \Q$job\E unit \d+ [^\n]*: reading from replica [^\n]*failed[^\n]*)/;
like($line // '', qr/conflict with recovery/, 'for a recovery conflict') or diag($t->worker_log);
$t->release_lock($table_lock);
$t->release_lock($history_lock);
my $res = $t->poll($url, 60);
is($res->{status}, 200, 'the export completes');
$t->stop_worker($w);

is_deeply($t->export_lines($res), $expected, 'exactly the reference resources, byte for byte');
is($t->psql("SELECT max(attempts) FROM export_unit WHERE job_id = '$job'"), 1,
   'every unit was claimed once');
my ($unit) = ($line // '') =~ /unit (\d+)/;
is($t->psql("SELECT read_from FROM export_unit WHERE job_id = '$job' AND unit_no = "
            . ($unit // 0)), 'primary', 'the cancelled unit was redone on the primary');

$t->finish;
done_testing;
