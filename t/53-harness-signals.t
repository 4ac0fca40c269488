#!/usr/bin/perl
# The harness fails a test file during which an nginx worker exited on a signal (issue 11):
# FhirBulk::Test scans the error log when the file ends, through finish or, for a file that
# never calls finish, an END block. Shown here with a worker killed by SIGSEGV: signal_exits
# reports it, and a child test file that does the same without expect_signal_exit fails,
# printing the backtraces of the crashed worker's core dump.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;
use POSIX ();

# No database is needed for /metadata: a connection file that names none.
sub fake_conninfo {
    my ($t) = @_;
    mkdir $t->dir . '/pg';
    open(my $fh, '>', $t->conninfo_file) or die;
    print $fh "host=127.0.0.1 port=1 dbname=x\n";
    close $fh;
}

my $t = FhirBulk::Test->new;
fake_conninfo($t);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
is($t->get('/fhir/metadata')->{status}, 200, 'nginx answers');
is_deeply([ $t->signal_exits ], [], 'no signal exits yet');

my ($victim) = $t->nginx_worker_pids;
ok($victim, "an nginx worker process ($victim)");
$t->expect_signal_exit($victim);
kill 'SEGV', $victim;
ok($t->wait_until(sub { grep { /process $victim exited on signal 11/ }
                        `cat ${\ $t->dir }/error.log` }, 10),
   'nginx logs the worker\'s exit on signal 11');
ok($t->wait_until(sub { $t->get('/fhir/metadata')->{status} == 200 }, 10),
   'the master starts another worker');
is_deeply([ $t->signal_exits ], [], 'an expected exit is no finding');

# the same scan without the expectation
my @found = FhirBulk::Test::scan_signal_exits_unexpected($t);
is(scalar @found, 1, 'signal_exits finds the crash when it is not expected');
like($found[0] // '', qr/worker process $victim exited on signal 11/, 'naming the process');

# The alert scan reads the level at nginx's line prefix only: client text quoted (escaped) in
# a lower-level line may contain "[emerg]" or "exited on signal".
{
    my $log = join("\n",
        '2026/12/07 04:00:00 [error] 7#7: *1 alg \'x\\x0A2026/12/07 04:00:00 [emerg] 1#1: FAKE\'',
        '2026/12/07 04:00:00 [info] 7#7: *2 client sent "[crit] worker process 9 exited on signal 11"',
        '2026/12/07 04:00:01 [crit] 7#7: *3 open() failed',
        '2026/12/07 04:00:02 [alert] 6#6: worker process 8 exited on signal 11',
        '2026/12/07 04:00:03 [alert] 6#6: worker process 9 exited on signal 9');
    my @bad = FhirBulk::Test::scan_log_alerts($log, { 9 => 1 });
    is(scalar @bad, 2, 'scan_log_alerts: only nginx\'s own crit/alert lines') or diag(join("\n", @bad));
    like($bad[0] // '', qr/open\(\) failed/, 'the [crit] line');
    like($bad[1] // '', qr/process 8 exited/, 'the unexpected signal exit');
    my $file = $t->dir . '/fake-error.log';
    open(my $fh, '>', $file) or die;
    print $fh "$log\n";
    close $fh;
    is_deeply([ map { /process (\d+)/ ? $1 : () } FhirBulk::Test::scan_signal_exits($file) ], [ 8, 9 ],
              'scan_signal_exits: nginx\'s exit lines only, not quoted client text');
}

# reload_nginx returns only once the workers from before have exited: one of them is held by
# a request whose header arrives 2 s after the reload.
{
    use IO::Socket::INET;
    use Time::HiRes qw(time sleep);
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port) or die $!;
    print $sock "GET /fhir/metadata HTTP/1.1\r\n";
    $sock->flush;
    sleep 0.5;  # accepted by an old worker
    my $kid = fork // die;
    if (!$kid) {
        sleep 2;
        print $sock "Host: localhost\r\nConnection: close\r\n\r\n";
        $sock->flush;
        my $res = join('', <$sock>);
        POSIX::_exit($res =~ m{^HTTP/1\.1 200} ? 0 : 1);
    }
    my $started = time;
    my @old = $t->reload_nginx(2);
    my $took = time - $started;
    ok(!grep({ FhirBulk::Test::process_alive($_) } @old), 'reload_nginx: no old worker is left');
    cmp_ok($took, '>=', 1.5, sprintf('it waited for the request in flight (%.1f s)', $took));
    waitpid($kid, 0);
    is($? >> 8, 0, 'which the old worker completed');
    close $sock;
}

# A child test file that crashes a worker and ends without finish fails (END block), and one
# that calls finish fails too.
for my $case ([ 'without finish', '' ], [ 'with finish', '$t->finish;' ]) {
    my ($name, $end) = @$case;
    my $child = $t->dir . '/child-' . ($end ? 'finish' : 'plain') . '.t';
    open(my $fh, '>', $child) or die;
    print $fh <<"CHILD";
use strict;
use warnings;
use lib '$FindBin::Bin/lib';
use Test::More;
use FhirBulk::Test;
my \$t = FhirBulk::Test->new;
mkdir \$t->dir . '/pg';
open(my \$fh, '>', \$t->conninfo_file) or die;
print \$fh "host=127.0.0.1 port=1 dbname=x\\n";
close \$fh;
\$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
my (\$w) = \$t->nginx_worker_pids;
# once the worker has set its core limit and directory (nginx does both before its loop)
\$t->wait_until(sub { (readlink("/proc/\$w/cwd") // '') =~ m{/cores\$} }, 10);
kill 'SEGV', \$w;
\$t->wait_until(sub { grep { /exited on signal/ } `cat \${\\ \$t->dir }/error.log` }, 10);
ok(1, 'the child test itself passes');
$end
done_testing;
CHILD
    close $fh;
    my $out = `$^X $child 2>&1`;
    my $status = $? >> 8;
    isnt($status, 0, "a test file that crashed a worker fails ($name)") or diag($out);
    like($out, qr/not ok \d+ - no nginx worker exited on a signal/, 'with a failing check')
        or diag($out);
    like($out, qr/exited on signal 11/, 'which shows the log line') or diag($out);
  SKIP: {
        skip 'no gdb to read the core dump', 1 if system('sh', '-c', 'command -v gdb >/dev/null');
        skip 'the kernel does not write cores to the process directory', 1
            if (`cat /proc/sys/kernel/core_pattern 2>/dev/null` // '') !~ /^core/;
        like($out, qr/core dump .*\n(?s:.*)#\d+ +0x[0-9a-f]+ in \w+/,
             'and the backtraces of the crashed worker\'s core dump') or diag($out);
        my ($core) = $out =~ /core dump (\S+):/;
        unlink $core if $core;
    }
}

$t->finish;
done_testing;
