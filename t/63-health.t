#!/usr/bin/perl
# Whole-system health (issue 15): /_health reads the workers' heartbeats and the queue. With a
# worker it passes; with none it warns; with none while a job has waited past
# FHIRBULK_HEALTH_QUEUE_FAIL_SECONDS (30 s; the test ages the job in the database instead of
# waiting) it fails with 503, and passes again once a worker is back. A worker's row appears
# when it starts, says who it is, and goes when it stops gracefully; a killed worker's row ages
# out of "live".

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->write_conf(FhirBulk::Test::default_http_conf());
$t->start_nginx;

sub health { return $t->get('/fhir/_health'); }

my $h = health();
is($h->{status}, 200, 'no worker, nothing queued: 200');
like($h->{headers}{'content-type'}, qr{^application/health\+json}, '... as health+json');
is($h->{json}{status}, 'warn', '... warn');
is($h->{json}{workers}, 0, '... no live worker');
is($h->{json}{queuedJobs}, 0, '... nothing queued');
is($h->{json}{database}, 'up', '... database up');
is($h->{json}{schemaVersion}, $t->psql('SELECT max(version) FROM schema_version'),
   '... the schema version');

# --- a worker: its row, and pass ----------------------------------------------------------
my $w = $t->start_worker('--threads', 3);
ok($t->wait_until(sub { health()->{json}{status} eq 'pass' }, 20), 'a worker starts: pass');
$h = health();
is($h->{status}, 200, '... 200');
is($h->{json}{workers}, 1, '... one live worker');
my ($pid, $threads, $fresh) = split /\|/, $t->psql(
    "SELECT pid, threads, last_seen > now() - interval '15 seconds' FROM worker_heartbeat");
is($pid, $w, 'the heartbeat row names the worker process');
is($threads, 3, '... its threads');
is($fresh, 't', '... and is fresh');
my $first = $t->psql('SELECT last_seen FROM worker_heartbeat');
ok($t->wait_until(sub { $t->psql('SELECT last_seen FROM worker_heartbeat') ne $first }, 15),
   'the worker beats again within the interval');

# --- the worker stops: warn at once (its row is deleted), fail once a job waits ------------
$t->stop_worker($w);
is($t->psql('SELECT count(*) FROM worker_heartbeat'), 0, 'a worker stopping deletes its row');
$h = health();
is($h->{status}, 200, 'no worker: still 200');
is($h->{json}{status}, 'warn', '... warn');

my $k = $t->kickoff('/fhir/$export');
is($k->{status}, 202, 'a kick-off is accepted without a worker');
my $status_url = $k->{headers}{'content-location'};
$h = health();
is($h->{json}{status}, 'warn', 'a job queued for less than 30 s: warn');
is($h->{json}{queuedJobs}, 1, '... one queued job');

$t->psql("UPDATE export_job SET created_at = created_at - interval '45 seconds'");
$h = health();
is($h->{status}, 503, 'no worker and a job queued for 45 s: 503');
is($h->{json}{status}, 'fail', '... fail');
is($h->{json}{workers}, 0, '... no live worker');
cmp_ok($h->{json}{oldestQueuedJobAgeSeconds}, '>=', 45, '... the oldest queued job\'s age');
like($h->{json}{output}, qr/no export worker/, '... and says why');
is($h->{json}{checks}{'workers:live'}[0]{status}, 'fail', '... in the checks too');
is($h->{headers}{'cache-control'}, 'no-store', '... never cached');

# --- a worker returns: pass, and the job completes ----------------------------------------
$w = $t->start_worker;
ok($t->wait_until(sub { health()->{status} == 200 && health()->{json}{status} eq 'pass' }, 20),
   'a worker returns: pass');
my $done = $t->poll($status_url, 60);
is($done->{status}, 200, 'the queued export completes');
is(health()->{json}{queuedJobs}, 0, 'nothing queued any more');

# --- a killed worker: its row stays, but ages out of "live" --------------------------------
$t->stop_worker($w, 'KILL');
is($t->psql('SELECT count(*) FROM worker_heartbeat'), 1, 'a killed worker leaves its row');
is(health()->{json}{workers}, 1, '... which counts while fresh');
$t->psql("UPDATE worker_heartbeat SET last_seen = now() - interval '16 seconds'");
$h = health();
is($h->{json}{workers}, 0, '... and no longer once older than 15 s');
is($h->{json}{status}, 'warn', '... warn');

# --- the database down: fail ---------------------------------------------------------------
$t->stop_pg;
$h = health();
is($h->{status}, 503, 'database down: 503');
$t->start_pg;

$t->finish;
done_testing;
