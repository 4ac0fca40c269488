#!/usr/bin/perl
# The export client survives interruptions: killed mid-download and resumed with --status
# (Range), Ctrl-C (SIGINT) without a terminal keeps the server's job and says how to resume,
# partial files cut mid-line or longer than the file, nginx going away mid-download (retries
# resume where they stopped), and --cancel.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Handle;
use POSIX ();
use Time::HiRes qw(sleep time);
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);
my $c = FhirBulk::ClientTest->new($t);

# Big types, identity encoding and a rate limit: downloads that take seconds.
my @slow = ('--type', 'Observation,Claim,ExplanationOfBenefit', '--no-gzip',
            '--max-rate', '4000000', '--parallel', '2');

sub identical_to_server {
    my ($out) = @_;
    my @files = @{ $c->output_files($out) };
    my @differ = grep { FhirBulk::ClientTest::slurp($_->[1])
                        ne FhirBulk::ClientTest::slurp($c->server_file($_->[0]{url})) } @files;
    diag("differ: @{[ map { $_->[1] } @differ ]}") if @differ;
    return @files > 0 && !@differ;
}

# Waits until a .part file in $out has at least $min bytes.
sub wait_for_part {
    my ($out, $min) = @_;
    my $deadline = time + 60;
    while (time < $deadline) {
        for my $p (glob "$out/*.part") { return $p if (-s $p // 0) >= $min; }
        sleep 0.05;
    }
    return undef;
}

sub status_url { my ($out) = @_; return $c->json_file("$out/job.json")->{statusUrl}; }

# --- killed mid-download, resumed with --status ---------------------------------------------
my $pid = $c->start(@slow);
my $out = $c->out_of($pid);
my $part = wait_for_part($out, 1_000_000);
ok($part, 'a file is being downloaded');
kill 'KILL', $pid;
my $r = $c->wait_run($pid);
is($r->{exit}, 137, 'the client is killed (SIGKILL)');
my $kept = -s $part;
ok(!-e "$out/summary.json", 'no summary: the export is not complete');
(my $name = $part) =~ s{.*/|\.part$}{}g;
my $url = status_url($out);
$r = $c->run('--status', $url, '--out', $out, '--no-gzip');
is($r->{exit}, 0, 'resumed with --status: exit 0') or diag($r->{stderr});
like($r->{stderr}, qr/\Q$name\E: resuming after/, "$name resumed from its partial file");
like($r->{stderr}, qr/\Q$name\E: [\d,]+ lines, .*\(resumed after/, '... and completed');
ok(!glob("$out/*.part"), 'no partial files left');
ok(identical_to_server($out), 'every file identical to the server\'s');
my $s = $c->summary($out);
is($s->{validationErrors}, 0, 'no validation errors after the resume');
cmp_ok($s->{wireBytes}, '<', $s->{bytes} - $kept + 1, 'the kept bytes were not fetched again');
my ($job, $file) = $c->output_files($out)->[0][0]{url} =~ m{/([0-9a-f-]{36})/};
ok(scalar @{ $c->access_log(qr{GET /fhir/\$export-files/\Q$job\E/\S+ HTTP/1\.1" 206 }) },
   'the server answered a Range request (206)');

# --- partial files from elsewhere: cut mid-line, and longer than the file --------------------
my $done = $out;
$out = $c->new_out;
mkdir $out;
for my $f (qw(job.json)) {
    system('cp', "$done/$f", "$out/$f") == 0 or die;
}
my $obs = "$done/Observation.1.ndjson";
my $data = FhirBulk::ClientTest::slurp($obs);
my $cut = int(length($data) / 2) + 7;    # very likely mid-line
open(my $fh, '>:raw', "$out/Observation.1.ndjson.part") or die;
print $fh substr($data, 0, $cut);
close $fh;
open($fh, '>:raw', "$out/Claim.1.ndjson.part") or die;
print $fh FhirBulk::ClientTest::slurp("$done/Claim.1.ndjson"), "{\"extra\":1}\n";
close $fh;
$r = $c->run('--status', status_url($done), '--out', $out);
is($r->{exit}, 0, 'resumed over odd partial files: exit 0') or diag($r->{stderr});
ok(identical_to_server($out), 'a file cut mid-line and one too long both end up right');
like($r->{stderr}, qr/Claim\.1\.ndjson: [\d,]+ lines/, 'the too-long one was fetched again');
is($c->summary($out)->{validationErrors}, 0, 'and validate');

# --- SIGINT without a terminal: keep the job, say how to resume ------------------------------
$pid = $c->start(@slow);
$out = $c->out_of($pid);
ok(wait_for_part($out, 200_000), 'downloading');
kill 'INT', $pid;
$r = $c->wait_run($pid, 30);
is($r->{exit}, 130, 'SIGINT: exit 130');
like($r->{stderr}, qr/continues on the server\. Resume with:\s+fhir-bulk export --status '\Q${\ status_url($out)}\E' --out '\Q$out\E'/,
     'says how to resume');
is($t->get(status_url($out))->{status}, 200, 'the job is not cancelled on the server');
ok(glob("$out/*.part"), 'the partial files are kept');
$r = $c->run('--status', status_url($out), '--out', $out, '--no-gzip');
is($r->{exit}, 0, 'and the export resumes') or diag($r->{stderr});
ok(identical_to_server($out), '... to the same files');

# --- Ctrl-C on a terminal: the live display, and the question whether to cancel ---------------
SKIP: {
    skip 'no script(1) to give the client a terminal', 5
        unless system('script --version >/dev/null 2>&1') == 0;
    $out = $c->new_out;
    my $screen = $t->dir . '/tty.log';
    my $cmd = join ' ', map { quotemeta } $FhirBulk::Test::BIN, 'export', '--fhir-url',
        $t->base_url, '--out', $out, @slow;
    # script(1) runs the client on a pseudo-terminal and passes what we write to it as typed
    my $tty_pid = open(my $tty, '|-') // die "fork: $!";
    if (!$tty_pid) {
        open(STDOUT, '>', '/dev/null');
        exec('script', '-qfec', $cmd, $screen) or POSIX::_exit(127);
    }
    $tty->autoflush(1);
    ok(wait_for_part($out, 1_500_000), 'downloading on a terminal');
    sleep 1;    # a few redraws of the live display
    print $tty "\x03";    # Ctrl-C
    sleep 1.5;
    print $tty "y\n";
    close $tty;
    is($? >> 8, 130, 'Ctrl-C: exit 130');
    my $shown = FhirBulk::ClientTest::slurp($screen);
    like($shown, qr{downloaded \d+/\d+ files, [\d,]+/[\d,]+ resources \(\d+%\), [\d.]+ [KMG]?B, [\d.]+ [KMG]?B/s},
         'a live totals line: files, resources, bytes, rate');
    like($shown, qr{\n  \w+\.1\.ndjson  [\d.]+ [KMG]?B, [\d,]+/[\d,]+ lines \(\d+%\)},
         'and a line per file in flight');
    like($shown, qr{Cancel the export on the server as well \(DELETE \Q${\ status_url($out)}\E\)\? \[y/N\] y.*the export is cancelled on the server}s,
         'Ctrl-C asks, "y" cancels');
    is($t->get(status_url($out))->{status}, 404, 'the export is gone from the server');
}

# --- the server goes away mid-download: retried, resumed --------------------------------------
$pid = $c->start(@slow, '--retries', '8');
$out = $c->out_of($pid);
ok(wait_for_part($out, 1_000_000), 'downloading');
my $nginx = $t->nginx_pid;
kill 'TERM', $nginx;    # fast shutdown: open connections are cut
my $deadline = time + 10;
sleep 0.05 while kill(0, $nginx) && time < $deadline;
sleep 1.5;
$t->start_nginx;
$r = $c->wait_run($pid);
is($r->{exit}, 0, 'the download survives a server restart') or diag($r->{stderr});
like($r->{stderr}, qr/warning: \S+\.ndjson: .*; retrying in [\d.]+ s from byte \d+/,
     'the cut transfers were retried from where they stopped');
ok(identical_to_server($out), 'every file identical to the server\'s');

# --- --cancel ------------------------------------------------------------------------------------
$url = status_url($out);
my $file_url = $c->manifest($out)->{output}[0]{url};
$r = $c->run('--status', $url, '--cancel');
is($r->{exit}, 0, '--cancel: exit 0') or diag($r->{stderr});
is($t->get($url)->{status}, 404, 'the export is gone from the server');
is($t->get($file_url)->{status}, 404, 'with its files');
$r = $c->run('--status', $url, '--cancel');
is($r->{exit}, 4, '--cancel of an unknown export exits 4');
$r = $c->run('--status', $url, '--out', $c->new_out);
is($r->{exit}, 4, '--status of a cancelled export exits 4');
like($r->{stderr}, qr/no export at/, '... saying so');

$t->finish;
done_testing;
