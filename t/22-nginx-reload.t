#!/usr/bin/perl
# nginx reloaded and restarted while an export runs and while clients poll, download and kick
# off: no job is lost, no request fails (except connections cut or refused by a restart), a
# download in flight finishes on its old worker process, and no worker process is left behind.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::MD5 qw(md5_hex);
use POSIX ();
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

# A worker process that shuts down gracefully (reload, QUIT) exits as soon as no timer is
# left; a request waiting for the thread pool keeps one armed (the module's in_flight timer),
# or the worker would exit under it, close the client's connection without an answer and log
# "[alert] open socket #N left in connection". The checks below fail without that timer.

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(60);
# A second port with a small send buffer, for the slow download: a client that stops
# reading holds its download open in nginx.
my $slow_port = FhirBulk::Test::free_port();
(my $conf = FhirBulk::Test::default_http_conf(location_extra =>
    'fhir_bulk_max_active_exports 0; fhir_bulk_max_retained_exports 0;'))
    =~ s/(listen 127\.0\.0\.1:%%PORT%%;)/$1\n        listen 127.0.0.1:$slow_port sndbuf=32k;/ or die;
$t->write_conf($conf)->start_nginx;
# A long lease: the units held back below (blocked, so not renewing it) stay claimed.
$t->start_worker('--threads', 2, '--lease-seconds', 120);

# A completed export to download.
my $done_url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
my $done = $t->poll($done_url, 60);
is($done->{status}, 200, 'an export to download completes');
my ($done_job) = $done_url =~ m{([0-9a-f-]{36})$};
my (%size, %md5);
for my $o (@{ $done->{json}{output} }) {
    my $path = $t->export_dir . "/$done_job/" . ($o->{url} =~ m{([^/]+)$})[0];
    $size{ $o->{url} } = -s $path;
    $md5{ $o->{url} } = md5_hex(do { local (@ARGV, $/) = ($path); <> });
}
my ($big) = sort { $size{$b} <=> $size{$a} } keys %size;
cmp_ok($size{$big}, '>', 4_000_000, "a large file to download slowly ($size{$big} bytes)");
my @files = sort grep { $size{$_} < 2_000_000 } keys %size;  # the clients' downloads
cmp_ok(scalar @files, '>=', 5, 'and smaller ones');

# A request that waits in the thread pool (for a lock in the database) while nginx reloads
# must still be answered. _health (never cached, unlike status polls) reads schema_version.
my $db_lock = $t->hold_lock('LOCK TABLE schema_version IN ACCESS EXCLUSIVE MODE');
pipe(my $rd, my $wr) or die "pipe: $!";
my $kid = fork;
die "fork: $!" unless defined $kid;
if ($kid == 0) {
    close $rd;
    my $r = $t->request_once('GET', '/fhir/_health');
    print $wr "$r->{status} " . ($r->{status} == 599 ? $r->{content} : '') . "\n";
    close $wr;
    POSIX::_exit(0);
}
close $wr;
ok($t->wait_until(sub {
    $t->psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
             . "AND query LIKE '%schema_version%'") > 0
}, 30), 'a health request waits in the database');
my @before = $t->nginx_worker_pids;
$t->reload_nginx(2, wait_old => 0);
sleep 1;
$t->release_lock($db_lock);
my $held = <$rd> // '';
chomp $held;
waitpid($kid, 0);
ok($t->wait_until(sub { !grep { FhirBulk::Test::process_alive($_) } @before }, 20),
   'the workers from before the reload exit');
like($held, qr/^200 /, 'the request held in the database during a reload is answered');

# An export that stays running: its units stream their rows, then wait for this lock to
# record their files. Status polls read the job without waiting (no poll interval is
# configured, so a poll writes nothing).
my $lock = $t->hold_lock('LOCK TABLE export_file IN EXCLUSIVE MODE');
my $run_url = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
my ($run_job) = $run_url =~ m{([0-9a-f-]{36})$};
ok($t->wait_until(sub { $t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$run_job' "
                                 . "AND state = 'running'") }, 60),
   'an export is running (its units are held back)');

my %expect = (manifest => 200, progress => 202, file => 200, range => 206, kickoff => 202,
              health => 200);
my $client = sub {
    my ($i, $rec) = @_;
    my $r = rand;
    my $res;
    if ($r < 0.2) {
        $res = $t->request_once('GET', $done_url);
        $rec->('manifest', $res->{status}, $res->{status} == 200 ? '' : $res->{content});
    } elsif ($r < 0.4) {
        $res = $t->request_once('GET', $run_url);
        $rec->('progress', $res->{status}, $res->{status} == 202 ? '' : $res->{content});
    } elsif ($r < 0.75) {
        my $u = $files[rand @files];
        $res = $t->request_once('GET', $u);
        my $ok = $res->{status} == 200 && md5_hex($res->{content}) eq $md5{$u};
        $rec->('file', $ok ? 200 : $res->{status} == 200 ? 'bad-content' : $res->{status},
               $ok ? '' : $res->{content});
    } elsif ($r < 0.9) {
        my $u = $files[rand @files];
        $res = $t->request_once('GET', $u, { Range => 'bytes=100-199' });
        my $ok = $res->{status} == 206 && length($res->{content}) == 100;
        $rec->('range', $ok ? 206 : $res->{status} == 206 ? 'bad-content' : $res->{status},
               $ok ? '' : $res->{content});
    } elsif ($r < 0.93) {
        $res = $t->request_once('GET', '/fhir/$export?_type=Patient',
                                { Accept => 'application/fhir+json', Prefer => 'respond-async' });
        $rec->('kickoff', $res->{status},
               $res->{status} == 202 ? $res->{headers}{'content-location'} : $res->{content});
    } else {
        $res = $t->request_once('GET', '/fhir/_health');
        $rec->('health', $res->{status}, $res->{status} == 200 ? '' : $res->{content});
    }
    sleep 0.02;
};

# A download that reads 64 KB, waits until $go exists, then reads the rest. Returns the pid
# and a pipe that says "started", then "<status> <md5 of the body>".
sub slow_download {
    my ($url, $go) = @_;
    my ($path) = $url =~ m{^http://127\.0\.0\.1:\d+(/.*)$} or die "bad url $url";
    my $port = $slow_port;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $rd;
        $wr->autoflush(1);
        my $data = '';
        my $ok = eval {
            socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
            setsockopt($s, SOL_SOCKET, SO_RCVBUF, 16384) or die "setsockopt: $!";
            connect($s, pack_sockaddr_in($port, inet_aton('127.0.0.1'))) or die "connect: $!";
            my $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            syswrite($s, $req) == length $req or die "write: $!";
            my $started = 0;
            while (1) {
                my $n = sysread($s, $data, 16384, length $data);
                die "read: $!" unless defined $n;
                last if $n == 0;
                if (!$started && length($data) >= 65536) {
                    print $wr "started\n";
                    $started = 1;
                    my $deadline = time + 120;
                    sleep 0.05 while !-e $go && time < $deadline;
                }
            }
            1;
        };
        my ($head, $body) = split /\r\n\r\n/, $data, 2;
        my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
        print $wr $ok ? ($status // 0) . ' ' . md5_hex($body // '') . "\n" : "0 $@\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    my $started = <$rd> // '';
    die "the slow download did not start\n" unless $started eq "started\n";
    return ($pid, $rd);
}

sub finish_download {
    my ($pid, $rd) = @_;
    my $line = <$rd> // '';
    chomp $line;
    waitpid($pid, 0);
    return $line;
}

# Requests answered by the module from the thread pool (database) and those nginx answers
# alone (files).
my %via_pool = map { $_ => 1 } qw(manifest progress kickoff health);

# Records that are not the expected answer, except those $allow accepts.
sub unexpected {
    my ($records, $allow) = @_;
    return grep {
        my ($time, $what, $status, $detail) = @$_;
        $status ne ($expect{$what} // 'x') && !($allow && $allow->($_));
    } @$records;
}

sub summary {
    my ($records) = @_;
    my %n;
    $n{"$_->[1] $_->[2]"}++ for @$records;
    return join(', ', map { "$_: $n{$_}" } sort keys %n);
}

sub first10 { my @r = @_; return [ @r[0 .. ($#r < 9 ? $#r : 9)] ] }

my @kickoffs;  # status URLs of accepted kick-offs
sub note_kickoffs {
    push @kickoffs, map { $_->[3] } grep { $_->[1] eq 'kickoff' && $_->[2] eq '202' } @{ $_[0] };
}


# --- reload ---------------------------------------------------------------------------------

my @gen0 = $t->nginx_worker_pids;
is(scalar @gen0, 2, 'two nginx worker processes');
$t->start_clients(6, $client);
my $go = $t->dir . '/go-1';
my @slow = slow_download($big, $go);
sleep 1;
my @old = $t->reload_nginx(2, wait_old => 0);
is_deeply(\@old, \@gen0, 'reload: the workers from before are the old ones');
my @gen1 = grep { my $p = $_; !grep { $_ == $p } @gen0 } $t->nginx_worker_pids;
is(scalar @gen1, 2, 'two new worker processes');
sleep 1;
$t->reload_nginx(2, wait_old => 0);
ok($t->wait_until(sub { (grep { FhirBulk::Test::process_alive($_) } @gen0, @gen1) == 1 }, 20),
   'old workers exit, except the one still sending the slow download');
sleep 1;
open(my $fh, '>', $go) or die;
close $fh;
my $slow = finish_download(@slow);
is($slow, "200 $md5{$big}", 'the download in flight across two reloads completes, intact');
ok($t->wait_until(sub { !grep { FhirBulk::Test::process_alive($_) } @gen0, @gen1 }, 20),
   'then its worker exits too: no old worker process is left');
is(scalar(my @now = $t->nginx_worker_pids), 2, 'two worker processes run after the reloads');
sleep 1;
my $records = $t->stop_clients;
note_kickoffs($records);
cmp_ok(scalar @$records, '>', 50, 'clients made requests throughout: ' . summary($records));
my @bad = unexpected($records);
my @bad_files = grep { !$via_pool{ $_->[1] } } @bad;
is(scalar @bad_files, 0, 'no download failed during the reloads') or diag(explain(first10(@bad_files)));
my @bad_pool = grep { $via_pool{ $_->[1] } } @bad;
is(scalar @bad_pool, 0, 'no status, kick-off or health request failed during the reloads')
    or diag(explain(first10(@bad_pool)));

# --- graceful restart (QUIT, then start) -----------------------------------------------------

# While nginx is down connections are refused, and connections waiting in the listen queue
# when a listening socket closes (the stop, and `nginx -t` binding the port before the start)
# are reset: the connection errors of a restart. Anything else is a failure.
my $restart_error = sub {
    $_[0][2] eq '599' && $_[0][3] =~ /Connection refused|Connection reset by peer/;
};

$t->start_clients(6, $client);
$go = $t->dir . '/go-2';
@slow = slow_download($big, $go);
my $master = $t->nginx_pid;
my @gen3 = $t->nginx_worker_pids;
kill 'QUIT', $master;
ok($t->wait_until(sub { !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
                                              Proto => 'tcp') }, 20),
   'graceful stop: nginx stops listening at once');
ok(FhirBulk::Test::process_alive($master), 'while the download in flight is still being sent');
open($fh, '>', $go) or die;
close $fh;
$slow = finish_download(@slow);
is($slow, "200 $md5{$big}", 'the download in flight completes, intact');
ok($t->wait_until(sub { !FhirBulk::Test::process_alive($master) }, 30), 'the old master exits');
is(scalar(grep { FhirBulk::Test::process_alive($_) } @gen3), 0, 'and all its workers');
$t->start_nginx;
sleep 2;
$records = $t->stop_clients;
note_kickoffs($records);
@bad = unexpected($records, $restart_error);
@bad_files = grep { !$via_pool{ $_->[1] } } @bad;
is(scalar @bad_files, 0, 'graceful restart: downloads fail only by refused or reset connections ('
   . summary($records) . ')') or diag(explain(first10(@bad_files)));
@bad_pool = grep { $via_pool{ $_->[1] } } @bad;
is(scalar @bad_pool, 0, 'graceful restart: so do requests to the database')
    or diag(explain(first10(@bad_pool)));

# --- fast restart (TERM, then start) ---------------------------------------------------------

$t->start_clients(6, $client);
$go = $t->dir . '/go-3';
@slow = slow_download($big, $go);
$master = $t->nginx_pid;
my @gen4 = $t->nginx_worker_pids;
kill 'TERM', $master;
ok($t->wait_until(sub { !FhirBulk::Test::process_alive($master) }, 30),
   'fast stop: the master exits');
is(scalar(grep { FhirBulk::Test::process_alive($_) } @gen4), 0, 'and all its workers');
open($fh, '>', $go) or die;
close $fh;
$slow = finish_download(@slow);
isnt($slow, "200 $md5{$big}", 'the download in flight was cut (a fast stop does that)');
$t->start_nginx;
sleep 2;
$records = $t->stop_clients;
note_kickoffs($records);
@bad = unexpected($records, sub { $_[0][2] eq '599' });
is(scalar @bad, 0, 'fast restart: only connection errors (' . summary($records) . ')')
    or diag(explain(first10(@bad)));

# --- no job lost ---------------------------------------------------------------------------

is($t->get($run_url)->{status}, 202, 'the running export is still running');
$t->release_lock($lock);
is($t->poll($run_url, 60)->{status}, 200, 'and completes after the restarts');
cmp_ok(scalar @kickoffs, '>=', 1, scalar(@kickoffs) . ' kick-offs were accepted meanwhile');
my @lost = grep { $t->poll($_, 60)->{status} != 200 } @kickoffs;
is(scalar @lost, 0, 'every accepted kick-off completes');
my %ids = map { (m{([0-9a-f-]{36})$})[0] => 1 } @kickoffs, $done_url, $run_url;
my $in_db = $t->psql("SELECT count(*) FROM export_job WHERE job_id IN ("
                     . join(',', map { "'$_'" } keys %ids) . ") AND state = 'completed'");
is($in_db, scalar keys %ids, 'and each is one completed job in the database');

# finish fails on any [alert] in the error log, "open socket #N left in connection" included.
$t->finish;
done_testing;
