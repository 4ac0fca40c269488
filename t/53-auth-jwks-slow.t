#!/usr/bin/perl
# Issue 11 row 13: clients registered with a JWKS URL whose host answers slowly with
# Cache-Control: no-cache (or fails) cannot make every token request fetch again, nor hold the
# thread pool: a fetched set is cached at least 60 s, one client's set is fetched at most once
# per 10 s per nginx process, at most 2 fetches run at once per process (beyond: 503
# temporarily_unavailable + Retry-After at once), and a fetch gives up after 3 s.
# A slow JWKS host on loopback (fhir_bulk_jwks_allow_insecure on) counts the fetches.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Fcntl qw(:flock);
use Time::HiRes qw(time sleep);
use JSON::PP qw(decode_json);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client assertion token_request);

my $t = FhirBulk::Test->new;
$t->start_pg;
write_token_key($t);

# --- the JWKS host: /slow/* answers after 2 s, /fail/* with 500 at once; every hit logged -------
my $key = new_key('ES384');
my $jwks = jwks_of($key);
my $hits_file = $t->dir . '/jwks-hits.log';
my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
                                     ReuseAddr => 1) or die "listen: $!";
my $jwks_port = $listener->sockport;
my $server_pid = fork;
die "fork: $!" unless defined $server_pid;
if ($server_pid == 0) {
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $listener->accept) {
        my $pid = fork;
        if (defined $pid && $pid == 0) {
            my $line = <$c> // '';
            while (my $h = <$c>) { last if $h =~ /^\r?\n$/ }
            my ($path) = $line =~ m{^GET (\S+)};
            $path //= '?';
            if (open(my $log, '>>', $hits_file)) {
                flock($log, LOCK_EX);
                printf $log "%.3f %s\n", time, $path;
                close $log;
            }
            my ($status, $body) = (200, $jwks);
            if ($path =~ m{^/slow/}) {
                sleep 2;
            } elsif ($path =~ m{^/fail/}) {
                ($status, $body) = (500, 'oops');
            }
            print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                . "Cache-Control: no-cache\r\nContent-Length: " . length($body)
                . "\r\nConnection: close\r\n\r\n$body";
            close $c;
            POSIX::_exit(0);
        }
        close $c;
    }
    POSIX::_exit(0);
}
close $listener;
END { kill 'TERM', $server_pid if $server_pid; }

sub hits {
    my ($prefix) = @_;
    open(my $fh, '<', $hits_file) or return 0;
    return scalar grep { m{ \Q$prefix\E} } <$fh>;
}

# Two nginx workers, each with a pool of 4 threads.
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1,
                   location_extra => 'fhir_bulk_thread_pool fb;'),
               main => 'thread_pool fb threads=4;');
$t->start_nginx;

my $base = "http://127.0.0.1:$jwks_port";

# --- no-cache: cached 60 s anyway ---------------------------------------------------------------
my $c1 = register_client($t, jwks_url => "$base/slow/c1.json");
my $start = time;
my $res = token_request($t, assertion($t, $c1, $key));
is($res->{status}, 200, 'slow JWKS host: the first request gets its token') or diag($res->{content});
cmp_ok(time - $start, '<', 3.5, '... after the 2 s fetch');
$start = time;
for my $i (1 .. 5) {
    $res = token_request($t, assertion($t, $c1, $key));
    is($res->{status}, 200, "request $i after it: token") or diag($res->{content});
}
cmp_ok(time - $start, '<', 2, '... answered from the cache, not the slow host');
is(hits('/slow/c1.json'), 1, 'Cache-Control: no-cache did not cause a fetch per request');

# --- a failing host: one fetch per 10 s per process ---------------------------------------------
my $c2 = register_client($t, jwks_url => "$base/fail/c2.json");
for my $i (1 .. 8) {
    $res = token_request($t, assertion($t, $c2, $key));
    is($res->{status}, 400, "failing JWKS host, request $i: 400");
}
cmp_ok(hits('/fail/c2.json'), '<=', 2, 'at most one fetch per nginx worker within 10 s ('
       . hits('/fail/c2.json') . ')');

# --- many clients on the slow host at once: the pool is not starved -------------------------------
my $n = 12;
my @slow = map { register_client($t, jwks_url => "$base/slow/many$_.json") } 1 .. $n;
my $by_value = register_client($t, jwks => jwks_of($key));
my @assertions = map { assertion($t, $_, $key) } @slow;
my @kids;
for my $i (0 .. $n - 1) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $s = time;
        my $r = token_request($t, $assertions[$i]);
        my $err = $r->{json} && ref $r->{json} eq 'HASH' ? ($r->{json}{error} // '') : '';
        open(my $out, '>', $t->dir . "/slow-$i.result");
        printf $out "%d %.3f %s %s\n", $r->{status}, time - $s, $r->{headers}{'retry-after'} // '-',
            $err || '-';
        close $out;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
sleep 0.5;    # the slow requests are in the pool now
my @other;
for my $i (1 .. 3) {
    my $s = time;
    my $r = token_request($t, assertion($t, $by_value, $key));
    push @other, [ $r->{status}, time - $s ];
}
waitpid($_, 0) for @kids;
is_deeply([ map { $_->[0] } @other ], [ 200, 200, 200 ],
          'another client\'s token requests succeed meanwhile');
my $slowest = (sort { $b <=> $a } map { $_->[1] } @other)[0];
cmp_ok($slowest, '<', 1.5, sprintf('... without waiting for the slow host (%.2f s at most)', $slowest));
my (%by_status, $refused_fast, $retry_after_ok);
for my $i (0 .. $n - 1) {
    open(my $in, '<', $t->dir . "/slow-$i.result") or next;
    my ($status, $secs, $retry, $err) = split ' ', scalar <$in>;
    $by_status{$status}++;
    if ($status == 503) {
        $refused_fast++ if $secs < 1.0;
        $retry_after_ok++ if $retry =~ /^\d+$/ && $err eq 'temporarily_unavailable';
    }
}
diag(join ', ', map { "$_: $by_status{$_}" } sort keys %by_status);
is(($by_status{200} // 0) + ($by_status{503} // 0), $n, 'every slow-host request: 200 or 503');
cmp_ok($by_status{503} // 0, '>=', $n - 4 * 2, 'beyond 2 fetches per worker at once: 503');
is($refused_fast // 0, $by_status{503} // 0, '... each answered within 1 s');
is($retry_after_ok // 0, $by_status{503} // 0, '... with Retry-After and temporarily_unavailable');
my $fetches = hits('/slow/many');
cmp_ok($fetches, '<=', 4 * 2, "fetches bounded ($fetches for $n requests)");

$t->finish;
done_testing;
