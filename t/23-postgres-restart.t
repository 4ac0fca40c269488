#!/usr/bin/perl
# PostgreSQL stopped in the middle of an export and started again: while it is down nginx
# answers every database request at once with 503 + Retry-After + an OperationOutcome (files
# are still served); afterwards the same worker process resumes the export and completes it,
# every resource exactly once. A worker allowed a single attempt per unit fails the export
# instead, with a transient OperationOutcome, and leaves no files.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(60);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
my @args = ('--threads', 2, '--lease-seconds', 3, '--target-unit-resources', 2000,
            '--max-file-resources', 1500);
my $worker = $t->start_worker(@args);

my $done_url = $t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'};
my $done = $t->poll($done_url, 60);
is($done->{status}, 200, 'an earlier export completes');
my $done_file = $done->{json}{output}[0]{url};

# Units stream their rows, then wait for this lock to record their files: the database goes
# away under units in flight.
sub export_in_flight {
    my $lock = $t->hold_lock('LOCK TABLE export_file IN EXCLUSIVE MODE');
    my $url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
    my ($job) = $url =~ m{([0-9a-f-]{36})$};
    my $running = $t->wait_until(sub {
        $t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job' AND state = 'running'")
            >= 2 && glob($t->export_dir . "/$job/*.tmp.*");
    }, 60);
    return ($url, $job, $running);
}

my ($url, $job, $running) = export_in_flight();
ok($running, 'an export has units in flight');
$t->stop_pg;

# --- while the database is down -------------------------------------------------------------

my %checks = (
    status => sub { $t->get($url) },
    kickoff => sub { $t->kickoff('/fhir/$export') },
    cancel => sub { $t->request('DELETE', $url) },
    health => sub { $t->get('/fhir/_health') },
);
for my $what (sort keys %checks) {
    my $start = time;
    my $res = $checks{$what}->();
    my $took = time - $start;
    $t->is_outcome($res, 503, 'transient', "database down: $what is 503 with an OperationOutcome");
    is($res->{headers}{'retry-after'}, '7', "  with the configured Retry-After");
    cmp_ok($took, '<', 5, sprintf('  at once (%.2f s)', $took));
}

# Many at once: every one answered, none kept waiting.
my @kids;
for my $i (1 .. 20) {
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $rd;
        my $start = time;
        my $res = $t->get($url);
        printf $wr "%d %.3f %s\n", $res->{status}, time - $start, $res->{headers}{'retry-after'} // '-';
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    push @kids, [$pid, $rd];
}
my (%statuses, $slowest);
for my $k (@kids) {
    my ($status, $took, $retry) = split ' ', (readline($k->[1]) // '0 99 -');
    waitpid($k->[0], 0);
    $statuses{"$status $retry"}++;
    $slowest = $took if !defined $slowest || $took > $slowest;
}
is_deeply(\%statuses, { '503 7' => 20 }, '20 concurrent polls: all 503 with Retry-After');
cmp_ok($slowest, '<', 5, sprintf('  the slowest answered in %.2f s', $slowest));

my $file = $t->get($done_file);
is($file->{status}, 200, 'files of a completed export are still served (no database needed)');

sleep 2;  # through several of the workers' reconnection attempts
ok(FhirBulk::Test::process_alive($worker), 'the worker keeps running while the database is down');
ok(!glob($t->export_dir . "/$job/*.tmp.*"), 'the units in flight removed their temporary files');

# --- back up --------------------------------------------------------------------------------

$t->start_pg;
my $health = $t->wait_until(sub { $t->get('/fhir/_health')->{status} == 200 }, 30);
ok($health, 'nginx serves again once the database is back, without a restart');
my $res = $t->poll($url, 120);
is($res->{status}, 200, 'the interrupted export resumes and completes');
ok(FhirBulk::Test::process_alive($worker), 'on the same worker process');
cmp_ok($t->psql("SELECT max(attempts) FROM export_unit WHERE job_id = '$job'"), '>=', 2,
       'the units in flight were attempted again');
my $got = $t->download_keys($res->{json}{output});
is_deeply($got->{errors}, [], 'every file downloads with its manifest count');
is(scalar(grep { $_ > 1 } values %{ $got->{keys} }), 0, 'no resource appears twice');
is_deeply($got->{types}, $t->db_counts, 'every stored resource is exported, per type');
is(scalar(() = glob($t->export_dir . "/$job/*.tmp.*")), 0, 'no temporary file is left');

# --- a bounded number of attempts -----------------------------------------------------------

$t->stop_worker($worker);
$worker = $t->start_worker(@args, '--max-attempts', 1);
($url, $job, $running) = export_in_flight();
ok($running, 'another export has units in flight');
$t->stop_pg;
sleep 1;
$t->start_pg;
$res = $t->poll($url, 120);
$t->is_outcome($res, 500, 'transient', 'with one attempt per unit allowed, the export fails');
like($res->{json}{issue}[0]{diagnostics} // '', qr/failed 1 times.*start the export again/,
     'saying why and what to do');
ok($t->wait_until(sub { !-e $t->export_dir . "/$job" }, 10), 'its files are removed');
is($t->poll($t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'}, 60)
   ->{status}, 200, 'the next export completes');

$t->finish;
done_testing;
