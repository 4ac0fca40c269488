#!/usr/bin/perl
# Load: 50 clients poll running and completed exports and download files (whole, ranges,
# gzip, revalidation) concurrently for FHIR_BULK_LOAD_SECONDS (default 60): every answer is
# the right one (no 5xx, no dropped connection, no wrong byte), memory stays bounded, and the
# database connections stay within the thread pool's size.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::MD5 qw(md5_hex);
use HTTP::Tiny;
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $seconds = $ENV{FHIR_BULK_LOAD_SECONDS} || 60;
my $clients = $ENV{FHIR_BULK_LOAD_CLIENTS} || 50;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(40);
# the default thread pool (32 threads) and 2 worker processes
$t->write_conf(FhirBulk::Test::default_http_conf(location_extra => 'fhir_bulk_max_active_exports 0;'))
  ->start_nginx;
my $worker = $t->start_worker('--threads', 2);

# Completed exports to poll and download.
my (@done_urls, %file);
for my $q ('', '?_type=Patient,Condition', '?_type=Observation&_elements=status,code') {
    my $url = $t->kickoff("/fhir/\$export$q")->{headers}{'content-location'};
    my $res = $t->poll($url, 60);
    is($res->{status}, 200, "export $q completes");
    push @done_urls, $url;
    my ($job) = $url =~ m{([0-9a-f-]{36})$};
    for my $o (@{ $res->{json}{output} }) {
        my ($name) = $o->{url} =~ m{([^/]+)$};
        my $path = $t->export_dir . "/$job/$name";
        my $plain = do { local (@ARGV, $/) = ($path); <> };
        my $gz = do { local (@ARGV, $/) = ("$path.gz"); <> };
        next if length $plain > 1_000_000;  # the clients download the smaller ones
        $file{ $o->{url} } = { md5 => md5_hex($plain), gz_md5 => md5_hex($gz),
                               range_md5 => md5_hex(substr($plain, 100, 900)),
                               size => length $plain };
    }
}
my @files = sort keys %file;
cmp_ok(scalar @files, '>=', 10, scalar(@files) . ' files to download');

# A running export: its units stream their rows, then wait for this lock to record their
# files (polls read the job without waiting: no poll interval is configured).
my $lock = $t->hold_lock('LOCK TABLE export_file IN EXCLUSIVE MODE');
my $run_url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
my ($run_job) = $run_url =~ m{([0-9a-f-]{36})$};
ok($t->wait_until(sub { $t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$run_job' "
                                 . "AND state = 'running'") }, 60), 'an export is running');

my %etag;
$etag{$_} = $t->request('HEAD', $_)->{headers}{etag} for @files;

my $client = sub {
    my ($i, $rec) = @_;
    # half the clients keep their connections, half open one per request
    $t->{http} = HTTP::Tiny->new(timeout => 30, max_redirect => 0, keep_alive => $i % 2)
        unless $t->{client_http}++;
    my $r = rand;
    my $u = $files[rand @files];
    my $f = $file{$u};
    my ($what, $res, $ok);
    if ($r < 0.25) {
        $what = 'progress';
        $res = $t->request_once('GET', $run_url);
        $ok = $res->{status} == 202 && ($res->{headers}{'x-progress'} // '') ne '';
    } elsif ($r < 0.40) {
        $what = 'manifest';
        $res = $t->request_once('GET', $done_urls[rand @done_urls]);
        $ok = $res->{status} == 200 && ref $res->{json} eq 'HASH' && $res->{json}{output};
    } elsif ($r < 0.75) {
        $what = 'file';
        $res = $t->request_once('GET', $u);
        $ok = $res->{status} == 200 && md5_hex($res->{content}) eq $f->{md5};
    } elsif ($r < 0.85) {
        $what = 'range';
        $res = $t->request_once('GET', $u, { Range => 'bytes=100-999' });
        $ok = $res->{status} == 206 && md5_hex($res->{content}) eq $f->{range_md5};
    } elsif ($r < 0.95) {
        $what = 'gzip';
        $res = $t->request_once('GET', $u, { 'Accept-Encoding' => 'gzip' });
        $ok = $res->{status} == 200 && ($res->{headers}{'content-encoding'} // '') eq 'gzip'
            && md5_hex($res->{content}) eq $f->{gz_md5};
    } else {
        $what = 'revalidate';
        $res = $t->request_once('GET', $u, { 'If-None-Match' => $etag{$u} });
        $ok = $res->{status} == 304;
    }
    $rec->($what, $res->{status}, $ok ? 'ok' : 'WRONG ' . substr($res->{content} // '', 0, 200));
    sleep rand 0.2;  # a client's think time: load, not a fork bomb on two cores
};

# nginx's processes, the export worker: RSS now and peak.
sub memory {
    my %m;
    for my $pid ($t->nginx_pid, $t->nginx_worker_pids, $worker) {
        my ($rss, $hwm) = FhirBulk::Test::rss_kb($pid);
        $m{$pid} = [ $rss // 0, $hwm // 0 ];
    }
    return \%m;
}

# Each nginx process answers polls from its own cache for up to a second
# (core/server/status_cache.h): let the answers cached while the exports above ran expire.
sleep 1.5;
$t->start_clients($clients, $client);
my $start = time;
sleep($seconds < 20 ? $seconds / 4 : 5);
my $warm = memory();
my @nginx_workers = $t->nginx_worker_pids;
my %max_conns;  # application_name => most connections seen
do {
    for (split /\n/, $t->psql("SELECT application_name, count(*) FROM pg_stat_activity "
                              . "WHERE datname = current_database() GROUP BY application_name")) {
        my ($app, $n) = split /\|/;
        $max_conns{$app} = $n if $n > ($max_conns{$app} // 0);
    }
    sleep 2;
} while (time < $start + $seconds);
my $records = $t->stop_clients;
my $end = memory();
my $elapsed = time - $start;

my %n;
$n{"$_->[1] $_->[2]"}++ for @$records;
my $summary = join(', ', map { "$_: $n{$_}" } sort keys %n);
note("$summary in ${\ int $elapsed } s");
# Floors low enough for a busy 2-core machine, high enough that the load really ran.
cmp_ok(scalar @$records, '>', $clients * 3,
       sprintf('%d requests, %.0f/s', scalar @$records, @$records / $elapsed));
my %per_client;
$per_client{ $_->[4] }++ for @$records;
is(scalar(grep { $per_client{$_} } 1 .. $clients), $clients,
   'every client made requests (at least ' . (sort { $a <=> $b } values %per_client)[0] . ')');

is(scalar(grep { $_->[2] =~ /^5/ } @$records), 0, 'no 5xx and no dropped connection');
my @wrong = grep { $_->[3] ne 'ok' } @$records;
is(scalar @wrong, 0, 'every answer has the right status and bytes') or diag(explain([ @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)] ]));
is(scalar(grep { $_->[1] eq 'died' } @$records), 0, 'no client died');

is_deeply([ $t->nginx_worker_pids ], \@nginx_workers, 'the same nginx worker processes throughout');
for my $pid (@nginx_workers) {
    my ($rss0, $rss1, $peak) = ($warm->{$pid}[0], $end->{$pid}[0], $end->{$pid}[1]);
    # thousands of requests per process: a leak of a few kB each would show
    cmp_ok($rss1 - $rss0, '<', 16 * 1024,
           "nginx worker $pid: RSS grew by less than 16 MB under load ($rss0 -> $rss1 kB)");
    cmp_ok($peak, '<', 128 * 1024, "nginx worker $pid: peak RSS below 128 MB ($peak kB)");
}
my ($w0, $w1) = ($warm->{$worker}[0], $end->{$worker}[0]);
cmp_ok($w1, '<', 128 * 1024, "the export worker stays small ($w0 -> $w1 kB)");
note('database connections: ' . join(', ', map { "$_ $max_conns{$_}" } sort keys %max_conns));
# one per pool thread (32) per nginx worker process (2), plus a few a process may keep for
# itself; the export worker: two per thread, its listener and its janitor
cmp_ok($max_conns{'fhir-bulk'} // 0, '<=', 2 * (32 + 4), 'nginx\'s database connections stay bounded');
cmp_ok($max_conns{'fhir-bulk-worker'} // 0, '<=', 2 * 2 + 2, 'so do the export worker\'s');

$t->release_lock($lock);
is($t->poll($run_url, 60)->{status}, 200, 'the running export completes after the load');

open(my $fh, '<', $t->dir . '/error.log') or die;
my @errors = grep { /\[(error|crit|alert|emerg)\]/ } <$fh>;
is(scalar @errors, 0, 'nothing logged at error level or above') or diag(@errors[0 .. ($#errors < 9 ? $#errors : 9)]);
$t->finish;
done_testing;
