#!/usr/bin/perl
# The worker as a service (issue 15): started as fhir-bulk-worker.service starts it (--config,
# --db-file, --log-file, --pid-file, $NOTIFY_SOCKET), it tells systemd it is ready, writes
# JSON log lines, survives SIGHUP (log reopened after rotation, configuration reread, the
# engine restarted in place when its options change, a broken configuration refused), and
# stops on SIGTERM with status 0, leaving no unit running.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::UNIX;
use JSON::PP;
use POSIX ();
use Socket qw(SOCK_DGRAM);
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
my $dir = $t->dir;
$t->start_pg;
$t->synth(3);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

sub write_file {
    my ($path, $text) = @_;
    open(my $fh, '>', $path) or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

sub read_lines {
    my ($path) = @_;
    open(my $fh, '<', $path) or return ();
    my @lines = <$fh>;
    close $fh;
    chomp @lines;
    return @lines;
}

# The connection file (a password would live there) and the service's config file.
write_file("$dir/conninfo", $t->conninfo . "\n");
chmod 0640, "$dir/conninfo";
my $log = "$dir/worker-service.log";
my $pid_file = "$dir/worker.pid";
my $export_dir = $t->export_dir;
sub write_config {
    my (%opt) = @_;
    write_file("$dir/worker.conf", <<"EOF" . ($opt{extra} // ''));
# as /etc/fhir-bulk/worker.conf
db-file = $dir/conninfo
export-dir = "$export_dir"
log-file = $log
log-format = ${\ ($opt{format} // 'json') }
threads = ${\ ($opt{threads} // 1) }
EOF
}
write_config();

# systemd's side of Type=notify: a datagram socket named by $NOTIFY_SOCKET.
my $notify_path = "$dir/notify.sock";
my $notify = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $notify_path)
    or die "notify socket: $!";
sub notifications {
    my ($want, $timeout) = @_;
    my @got;
    my $deadline = time + ($timeout // 20);
    while (time < $deadline) {
        my $rin = '';
        vec($rin, fileno($notify), 1) = 1;
        if (select(my $rout = $rin, undef, undef, 0.1) > 0) {
            $notify->recv(my $msg, 4096);
            push @got, $msg;
            return @got if $msg =~ /^\Q$want\E$/m;
        }
    }
    return @got;
}

my $pid = fork;
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    $ENV{NOTIFY_SOCKET} = $notify_path;
    open(STDOUT, '>>', "$dir/worker-service.stderr");
    open(STDERR, '>&', \*STDOUT);
    { exec($FhirBulk::Test::BIN, 'worker', '--config', "$dir/worker.conf",
           '--pid-file', $pid_file); }
    POSIX::_exit(127);
}
push @{ $t->{workers} }, $pid;

my @got = notifications('READY=1');
ok((grep { $_ eq 'READY=1' } @got), 'READY=1 sent to $NOTIFY_SOCKET') or diag("got: @got");
ok($t->wait_until(sub { -s $pid_file }, 10), 'pid file written');
is((read_lines($pid_file))[0], $pid, 'the pid file holds the worker\'s pid');

sub export_ok {
    my ($name) = @_;
    my $res = $t->kickoff('/fhir/$export?_type=Patient');
    is($res->{status}, 202, "$name: kick-off accepted");
    $res = $t->poll($res->{headers}{'content-location'}, 60);
    is($res->{status}, 200, "$name: the export completes");
    my $files = $t->download_all($res->{json}{output});
    is(scalar @{ $files->{Patient} || [] }, 3, "$name: 3 patients");
}
export_ok('first export');

my @lines = read_lines($log);
ok(@lines >= 2, 'the worker writes its log file (' . scalar(@lines) . ' lines)');
my @bad = grep {
    my $j = eval { decode_json($_) };
    !(ref $j eq 'HASH' && $j->{time} && $j->{level} && $j->{program} eq 'fhir-bulk worker'
      && defined $j->{msg})
} @lines;
ok(!@bad, 'every log line is a JSON object with time, level, program and msg')
    or diag(join("\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]));
ok((grep { /serving \Q$export_dir\E/ } @lines), 'the engine logged its start');

# logrotate: move the file, SIGHUP, the worker creates a new one and writes there.
rename($log, "$log.1") or die "rename: $!";
kill('HUP', $pid);
@got = notifications('READY=1');
ok((grep { $_ eq 'RELOADING=1' } @got) && $got[-1] eq 'READY=1',
   'SIGHUP: RELOADING=1, then READY=1') or diag("got: @got");
ok($t->wait_until(sub { grep { /log reopened/ } read_lines($log) }, 10),
   'SIGHUP: a new log file, written to');
ok(kill(0, $pid), 'the worker survives SIGHUP');
my $rotated = () = read_lines("$log.1");
export_ok('export after SIGHUP');
is(scalar(() = read_lines("$log.1")), $rotated, 'nothing more written to the rotated file');
ok(!(grep { /restarting the export engine/ } read_lines($log)),
   'an unchanged configuration does not restart the engine');

# A changed engine option (and log format): the engine restarts in the same process.
write_config(threads => 2, format => 'text');
kill('HUP', $pid);
ok($t->wait_until(sub { grep { /restarting the export engine/ } read_lines($log) }, 10),
   'SIGHUP with new options: the engine restarts');
ok($t->wait_until(sub { grep { /^\S+ fhir-bulk worker: worker \S+ serving .* with 2 threads$/ }
                              read_lines($log) }, 10),
   'the new engine runs with 2 threads and logs as text');
is((read_lines($pid_file))[0], $pid, 'same process');
export_ok('export after the restart');

# A broken configuration is refused and the running one kept.
write_config(extra => "no-such-option = 1\n");
kill('HUP', $pid);
ok($t->wait_until(sub { grep { /configuration not changed: .*no-such-option/ } read_lines($log) },
                  10), 'SIGHUP with a broken configuration: refused and logged');
ok(kill(0, $pid), 'the worker keeps running');
write_config(threads => 2, format => 'json');

# SIGTERM to an idle worker: it exits at once, status 0.
my $idle = $t->start_worker('--threads', 2);
sleep 1;
my $start = time;
kill('TERM', $idle);
ok($t->wait_until(sub { waitpid($idle, POSIX::WNOHANG()) == $idle }, 15, 0.02),
   sprintf('SIGTERM: an idle worker exits (%.2f s)', time - $start));
is($?, 0, 'exit status 0');
ok(time - $start < 3, 'within 3 s');
$t->{workers} = [ grep { $_ != $idle } @{ $t->{workers} } ];

# SIGTERM while a unit waits to publish its files (export_file locked, its rows all written):
# the worker finishes that unit rather than redo it, then exits 0; nothing is left running.
my $locker = fork;
die "fork: $!" unless defined $locker;
if ($locker == 0) {
    open(STDOUT, '>', '/dev/null');
    { exec('psql', $t->conninfo, '-X', '-q', '-c',
           'BEGIN; LOCK TABLE export_file IN EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;'); }
    POSIX::_exit(127);
}
sleep 0.5;
my $res = $t->kickoff('/fhir/$export');
is($res->{status}, 202, 'an export');
ok($t->wait_until(sub { $t->psql("SELECT count(*) FROM export_unit WHERE state = 'running'") > 0 },
                  20), 'the worker is running a unit');
$start = time;
kill('TERM', $pid);
my $exited = $t->wait_until(sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, 20, 0.02);
my $status = $?;
ok($exited, sprintf('SIGTERM: the worker exits (%.1f s, the lock held for 4 s)', time - $start));
is($status, 0, 'exit status 0');
$t->{workers} = [ grep { $_ != $pid } @{ $t->{workers} } ];
ok(!-e $pid_file, 'pid file removed');
is($t->psql("SELECT count(*) FROM export_unit WHERE state = 'running'"), 0,
   'no unit left running: finished or handed back');
@got = notifications('STOPPING=1', 2);
ok((grep { $_ eq 'STOPPING=1' } @got), 'STOPPING=1 sent');
ok((grep { /stopping on SIGTERM/ } read_lines($log)), 'the stop is logged');
waitpid($locker, 0);

# The rest of the export runs on the next worker.
$t->start_worker('--threads', 2);
is($t->poll($res->{headers}{'content-location'}, 60)->{status}, 200,
   'the export completes on another worker');

$t->finish;
done_testing;
