#!/usr/bin/perl
# Database calls run on a bounded nginx thread pool: while its threads wait on PostgreSQL the
# event loop keeps serving, and a full queue answers 503 + Retry-After at once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->write_conf(FhirBulk::Test::default_http_conf(location_extra => 'fhir_bulk_thread_pool fb;'),
               main => 'thread_pool fb threads=1 max_queue=1;');
# one worker process, so exactly one thread and one queue slot exist
my $conf = do { local (@ARGV, $/) = ($t->dir . '/nginx.conf'); <> };
$conf =~ s/worker_processes 2;/worker_processes 1;/;
open(my $fh, '>', $t->dir . '/nginx.conf') or die;
print $fh $conf;
close $fh;
$t->start_nginx;

is($t->get('/fhir/_health')->{status}, 200, 'healthy');

# Hold a lock the health query needs, so the pool thread blocks inside PostgreSQL.
my $locker = fork;
die "fork: $!" unless defined $locker;
if ($locker == 0) {
    { exec('psql', $t->conninfo, '-X', '-q', '-c',
           'BEGIN; LOCK TABLE schema_version IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT;'); }
    POSIX::_exit(127);
}
# wait until the lock is really held (a loaded machine may take a while to start psql)
my $lock_deadline = time + 20;
until ($t->psql("SELECT count(*) FROM pg_locks WHERE relation = 'schema_version'::regclass "
                . "AND mode = 'AccessExclusiveLock' AND granted") eq '1') {
    die "the lock was not taken\n" if time > $lock_deadline;
    sleep 0.05;
}

# Six concurrent requests: one runs (blocked), one waits in the queue, the rest overflow.
my @kids;
for my $i (1 .. 6) {
    pipe(my $r, my $w) or die;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $r;
        my $start = time;
        my $res = $t->get('/fhir/_health');
        printf $w "%d %.3f %s\n", $res->{status}, time - $start,
            $res->{headers}{'retry-after'} // '-';
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    push @kids, [$pid, $r];
    sleep 0.05;
}

# The event loop is not blocked: /metadata answers at once while the pool is stuck.
my $start = time;
my $meta = $t->get('/fhir/metadata');
is($meta->{status}, 200, '/metadata answers while the pool threads wait on the database');
cmp_ok(time - $start, '<', 1, 'and it answers fast');

my (%count, @overflow_times);
for my $k (@kids) {
    my ($pid, $r) = @$k;
    my $line = <$r>;
    waitpid($pid, 0);
    my ($status, $secs, $retry) = split ' ', $line;
    $count{$status}++;
    if ($status == 503) {
        push @overflow_times, $secs;
        is($retry, '7', 'an overflow 503 carries Retry-After');
    }
}
waitpid($locker, 0);

is($count{200}, 2, 'the running and the queued request succeed once the lock is gone');
is($count{503}, 4, 'the others are refused because the queue is full');
cmp_ok((sort { $b <=> $a } @overflow_times)[0], '<', 1, 'refusals are immediate, not queued');

open($fh, '<', $t->dir . '/error.log') or die;
my $log = do { local $/; <$fh> };
like($log, qr/thread pool "fb" queue is full/, 'the operator sees the overflow in the log');

# A client that goes away while its request waits in the pool: the request's pending object
# (fhirbulk_pending_t, freed by a request-pool cleanup) is released when the request ends,
# and the worker keeps serving (finish() checks the log for alerts and crashed workers).
$locker = fork;
die "fork: $!" unless defined $locker;
if ($locker == 0) {
    { exec('psql', $t->conninfo, '-X', '-q', '-c',
           'BEGIN; LOCK TABLE schema_version IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT;'); }
    POSIX::_exit(127);
}
$lock_deadline = time + 20;
until ($t->psql("SELECT count(*) FROM pg_locks WHERE relation = 'schema_version'::regclass "
                . "AND mode = 'AccessExclusiveLock' AND granted") eq '1') {
    die "the lock was not taken\n" if time > $lock_deadline;
    sleep 0.05;
}
for my $i (1 .. 2) {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port, Proto => 'tcp')
        or die "connect: $!";
    print $sock "GET /fhir/_health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    sleep 0.2;    # the request reaches the pool, then its client disconnects
    close $sock;
}
waitpid($locker, 0);
my $after = $t->get('/fhir/_health');
for (1 .. 50) { last if $after->{status} == 200; sleep 0.1; $after = $t->get('/fhir/_health'); }
is($after->{status}, 200, 'requests whose clients went away mid-request leave the pool usable');
ok($t->nginx_alive, 'and nginx is running');

$t->finish;
done_testing;
