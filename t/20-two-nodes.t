#!/usr/bin/perl
# Two nodes: two nginx instances on different ports and two `fhir-bulk worker` processes that
# share one PostgreSQL and one export directory. A kick-off on node A is polled, downloaded
# and cancelled on node B (and the other way round); the units of one export run on both
# workers; every resource is exported exactly once.
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
my $conf = FhirBulk::Test::default_http_conf();
$t->write_conf($conf)->start_nginx;
my $node_b = $t->add_node($conf);
$node_b->start_nginx;
isnt($node_b->port, $t->port, 'node B listens on a port of its own');

# Small units and files, so that one export has dozens of units to share.
my @worker_args = ('--threads', 2, '--target-unit-resources', 2000, '--max-file-resources', 1500,
                   '--janitor-interval-seconds', 1);
my @workers = map { $t->start_worker(@worker_args) } 1 .. 2;

my $job_re = qr{/\$export-status/([0-9a-f-]{36})$};

# Polls a job's status on a node a few times, so that its nginx processes (which answer
# polls from a per-process cache for up to a second, core/server/status_cache.h) hold it.
sub warm {
    my ($node, $url, $status) = @_;
    my @got = map { $node->get($url)->{status} } 1 .. 6;
    return !grep { $_ != $status } @got;
}

# --- one export, both workers -------------------------------------------------------------

# Units stream their rows and then wait for this lock to record their files: every thread
# of both workers ends up holding a unit, whichever was quicker to start.
my $lock = $t->hold_lock('LOCK TABLE export_file IN EXCLUSIVE MODE');
my $res = $t->kickoff('/fhir/$export');
is($res->{status}, 202, 'kick-off on node A');
my $url_a = $res->{headers}{'content-location'};
like($url_a, qr{^\Q${\ $t->base_url }\E}, 'its status URL is on node A');
my ($job) = $url_a =~ $job_re;
my $url_b = $node_b->on_node($url_a);

my $running = $t->wait_until(sub {
    my $by = $t->units_by_worker_pid($job, 'running');
    return (grep { $by->{$_} } @workers) == 2 ? $by : undef;
}, 60);
ok($running, 'units of the export run on both workers at once')
    or diag('running: ' . explain($t->units_by_worker_pid($job, 'running')));
my $units_total = $t->psql("SELECT units_total FROM export_job WHERE job_id = '$job'");
cmp_ok($units_total, '>=', 10, "the export has many units ($units_total)");

$res = $node_b->get($url_b);
is($res->{status}, 202, 'node B answers 202 for the job kicked off on A');
like($res->{headers}{'x-progress'} // '', qr/.+/, 'with X-Progress');
$t->release_lock($lock);

$res = $node_b->poll($url_b, 120);
is($res->{status}, 200, 'node B serves the manifest of the completed export');
my $m = $res->{json};
is($m->{request}, $t->base_url . '/$export', 'request is the kick-off URL on node A');
my $b_base = $node_b->base_url;
is(scalar(grep { $_->{url} !~ m{^\Q$b_base\E/\$export-files/} } @{ $m->{output} }), 0,
   'node B\'s manifest points to node B\'s files');
cmp_ok(scalar @{ $m->{output} }, '>=',
       $t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job' AND resources > 0"),
       'a file or more for every unit that found resources');

my $by = $t->units_by_worker_pid($job);
is($t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job' AND state <> 'done'"), 0,
   'every unit is done');
ok($by->{ $workers[0] } && $by->{ $workers[1] },
   "both workers completed units ($by->{ $workers[0] } and $by->{ $workers[1] })")
    or diag(explain($by));
is(scalar(keys %$by), 2, 'and nobody else did');

my $got = $node_b->download_keys($m->{output});
is_deeply($got->{errors}, [], 'every file downloads from node B with its manifest count');
is(scalar(grep { $_ > 1 } values %{ $got->{keys} }), 0, 'no resource appears twice');
is_deeply($got->{types}, $t->db_counts, 'every stored resource is exported, per type');
is(scalar @{ $m->{output} }, $t->psql("SELECT count(*) FROM export_file WHERE job_id = '$job'"),
   'the manifest lists every recorded file');

# The same file through either node: same bytes, same validator (shared storage).
my $file_b = $m->{output}[0]{url};
my $file_a = $t->on_node($file_b);
my ($fa, $fb) = ($t->get($file_a), $node_b->get($file_b));
is($fa->{status}, 200, 'node A serves a file of the export too');
is($fa->{content}, $fb->{content}, 'the same bytes on both nodes');
is($fa->{headers}{etag}, $fb->{headers}{etag}, 'and the same ETag');
is($t->request('GET', $file_a, { 'If-None-Match' => $fb->{headers}{etag} })->{status}, 304,
   'an ETag from node B revalidates on node A');

# --- cancel on the other node -------------------------------------------------------------

# An export kicked off on B and cancelled on A while it waits to be planned: a transaction
# older than the kick-off holds planning back.
my $old_xact = $t->hold_lock('SELECT pg_current_xact_id()');
$res = $node_b->kickoff('/fhir/$export');
is($res->{status}, 202, 'kick-off on node B');
my $wait_b = $res->{headers}{'content-location'};
my ($wait_job) = $wait_b =~ $job_re;
is($t->get($t->on_node($wait_b))->{status}, 202, 'node A: 202 while it waits to be planned');
ok(warm($node_b, $wait_b, 202), 'node B: 202 too');
$res = $t->request('DELETE', $t->on_node($wait_b));
is($res->{status}, 202, 'node A cancels it') or diag(explain($res));
# "Following the delete request ... the server SHALL return a 404": on every node, at once.
$t->is_outcome($node_b->get($wait_b), 404, 'not-found', 'node B: its status is 404 at once');
$t->is_outcome($t->get($t->on_node($wait_b)), 404, 'not-found', 'so is node A\'s');
$t->release_lock($old_xact);

# An export kicked off on B and cancelled on A while its units run: they stream their rows
# and wait for the lock to record their files. The cancel waits for those commits (they
# hold the job's row), so it runs in a child while the lock is released.
$lock = $t->hold_lock('LOCK TABLE export_file IN EXCLUSIVE MODE');
$res = $node_b->kickoff('/fhir/$export');
is($res->{status}, 202, 'another kick-off on node B');
my $run_b = $res->{headers}{'content-location'};
my ($run_job) = $run_b =~ $job_re;
ok($t->wait_until(sub { $t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$run_job' "
                                 . "AND state = 'running'") >= 2 }, 60),
   'its units are running');
ok(-d $t->export_dir . "/$run_job", 'its directory exists');
ok(warm($node_b, $run_b, 202), 'node B: 202 while they run');
pipe(my $rd, my $wr) or die "pipe: $!";
my $kid = fork;
die "fork: $!" unless defined $kid;
if ($kid == 0) {
    close $rd;
    my $r = $t->request('DELETE', $t->on_node($run_b));
    print $wr "$r->{status}\n";
    close $wr;
    POSIX::_exit(0);
}
close $wr;
sleep 0.5;
$t->release_lock($lock);
my $cancel_status = <$rd> // '';
chomp $cancel_status;
waitpid($kid, 0);
# The cancel locks the job's row, then its units'; a completing unit does the same (it used to
# lock its unit first, and a cancel meeting completing units deadlocked: 503).
is($cancel_status, '202', 'node A cancels the running export');
$t->is_outcome($node_b->get($run_b), 404, 'not-found', 'node B: its status is 404 at once');
ok(-e $t->export_dir . "/.cancels/$run_job", 'its cancel marker is written: no node serves its files');
cmp_ok($t->psql("SELECT count(*) FROM export_job WHERE job_id = '$run_job' AND "
                . "state = 'cancelled'"), '<=', 1, 'the job is cancelled (or already deleted)');

# The janitor (every second here) deletes the rows and the moved directories; no unit
# publishes anything into the served tree afterwards.
ok($t->wait_until(sub {
    $t->psql("SELECT count(*) FROM export_job WHERE job_id IN ('$run_job', '$wait_job')") == 0
        && !grep { -e $t->export_dir . "/$_" }
               map { ($_, ".cancelled-$_") } $run_job, $wait_job;
}, 60), 'the cancelled jobs\' rows and files are deleted by the workers')
    or diag(`ls -la ${\ $t->export_dir }`);
ok(!-e $t->export_dir . "/$wait_job", 'the job cancelled before planning never got a directory');

# A completed export kicked off on A, its file downloaded on B, cancelled on B.
is($node_b->get($file_b)->{status}, 200, 'node B serves the file before the cancel');
ok(warm($t, $url_a, 200), 'node A serves its manifest');
$res = $node_b->request('DELETE', $url_b);
is($res->{status}, 202, 'node B cancels the export kicked off on A');
$t->is_outcome($t->get($url_a), 404, 'not-found', 'node A: its status is 404 at once');
$t->is_outcome($t->get($file_a), 404, 'not-found', 'node A: its files are 404');
$t->is_outcome($node_b->get($file_b), 404, 'not-found', 'node B: its files are 404');
$t->is_outcome($t->request('DELETE', $url_a), 404, 'not-found', 'a second DELETE on A is 404');

# Both workers are still serving: one more export completes.
$res = $t->poll($node_b->on_node($t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'}), 60);
is($res->{status}, 200, 'a later export still completes');

ok(FhirBulk::Test::process_alive($_), "worker $_ is still running") for @workers;
$node_b->finish;
$t->finish;
done_testing;
