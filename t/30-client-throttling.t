#!/usr/bin/perl
# The export client honours 429 + Retry-After: a kick-off over the server's limit of active
# exports waits as long as told and tries again, and a status poll that comes too soon (here
# because someone else just polled) waits as told instead of polling faster.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(mktime);
use Time::HiRes qw(sleep time);
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->load($t->synthea_dir) if -d $t->synthea_dir;
$t->write_conf(FhirBulk::Test::default_http_conf(
    min_poll_interval => '2s', location_extra => 'fhir_bulk_max_active_exports 1;'))->start_nginx;
my $c = FhirBulk::ClientTest->new($t);

my %mon = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5, Jul => 6, Aug => 7,
           Sep => 8, Oct => 9, Nov => 10, Dec => 11);
# Seconds of an access log line's [23/Nov/2026:15:35:27 +0000].
sub log_time {
    my ($line) = @_;
    my ($d, $m, $y, $H, $M, $S) = $line =~ m{\[(\d+)/(\w+)/(\d+):(\d+):(\d+):(\d+) } or die $line;
    return mktime($S, $M, $H, $d, $mon{$m}, $y - 1900);
}

# --- a kick-off over the limit waits for Retry-After ------------------------------------------
my $busy = $t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'};
ok($busy, 'another export of this client is running (no worker yet)');
my $pid = $c->start('--type', 'Patient');
ok($c->wait_for_log($pid, qr/kick-off refused for now \(429/), 'the client\'s kick-off gets 429');
my ($wait) = $c->stderr_of($pid) =~ /trying again in (\d+) s/;
ok($wait && $wait >= 2, "it waits the Retry-After the server sent ($wait s)");
is($t->request('DELETE', $busy)->{status}, 202, 'the other export is cancelled');
$t->start_worker;
my $r = $c->wait_run($pid, 120);
is($r->{exit}, 0, 'then the client\'s export runs to completion') or diag($r->{stderr});
my @kickoffs = @{ $c->access_log(qr{"GET /fhir/\$export\?_type=Patient HTTP[^"]*" \d+ .*fhir-bulk}) };
is(scalar @kickoffs, 2, 'two kick-offs: one refused, one accepted');
like($kickoffs[0], qr/" 429 /, 'the first got 429');
like($kickoffs[1], qr/" 202 /, 'the second 202');
cmp_ok(log_time($kickoffs[1]) - log_time($kickoffs[0]), '>=', $wait - 1,
       'the second came after the Retry-After');

# --- a poll that comes too soon waits for Retry-After ---------------------------------------------
$t->stop_worker;
my $url = $t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'};
is($t->get($url)->{status}, 202, 'someone polls the running export');
$pid = $c->start('--status', $url);
ok($c->wait_for_log($pid, qr/polled too often \(429\), next poll in [12] s/),
   'the client\'s first poll, right after, gets 429 and waits as told');
ok($c->wait_for_log($pid, qr/Z export (?:queued|\d+%).*next poll in \d+ s/, 20),
   'then polls again: 202 with X-Progress');
$t->start_worker;
$r = $c->wait_run($pid, 120);
is($r->{exit}, 0, 'the export completes') or diag($r->{stderr});
(my $path = $url) =~ s{^https?://[^/]+}{};
my @polls = @{ $c->access_log(qr{"GET \Q$path\E HTTP[^"]*" \d+ .*fhir-bulk}) };
is(scalar(grep { /" 429 / } @polls), 1, 'only that first poll was too soon');
cmp_ok(scalar @polls, '>=', 2, 'polled until done');

$t->finish;
done_testing;
