#!/usr/bin/perl
# The conf.d template's gateway limits (issue 11, row 14), with the template itself rendered
# as scripts/services.sh renders it: token requests and kick-offs beyond their rate per address
# get 429 + Retry-After with an OperationOutcome, other requests are not counted, and a
# connection that does not finish its request headers within client_header_timeout is closed
# (the test shortens it from the template's 10 s to 2 s); what nginx itself refuses (413,
# 414, 400) is an OperationOutcome, not nginx's HTML page.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key);

my $t = FhirBulk::Test->new;
$t->start_pg;
write_token_key($t);

open(my $fh, '<', "$FhirBulk::Test::REPO/conf.d/fhir-bulk.conf.template") or die;
my $conf = do { local $/; <$fh> };
close $fh;
my %vars = (LISTEN => '127.0.0.1:%%PORT%%', BASE_URL => '%%BASE_URL%%', BASE_PATH => '/fhir',
            CONNINFO_FILE => '%%CONNINFO_FILE%%', EXPORT_DIR => '%%EXPORT_DIR%%',
            TOKEN_KEY_FILE => '%%TESTDIR%%/token.key', ACCESS_LOG => '%%TESTDIR%%/access.log fhir_bulk',
            APP_DIR => '%%REPO%%/app');
$conf =~ s/^.*\@SSL_CERTIFICATE(?:_KEY)?\@.*\n//mg;    # plain HTTP: no certificate lines
$conf =~ s/\@([A-Z_]+)\@/exists $vars{$1} ? $vars{$1} : die "unknown \@$1\@\n"/ge;
like($conf, qr/client_header_timeout 10s;/, 'the template sets client_header_timeout');
$conf =~ s/client_header_timeout 10s;/client_header_timeout 2s;/;
$t->write_conf($conf, main => 'thread_pool fhir_bulk threads=2 max_queue=64;');
my ($status, $out) = $t->nginx_test;
is($status, 0, 'nginx accepts the rendered template') or diag($out);
$t->start_nginx;

sub statuses {
    my ($n, $method, $path, $body) = @_;
    my @r;
    for (1 .. $n) {
        my $res = $t->request($method, $path,
                              $body ? { 'Content-Type' => 'application/x-www-form-urlencoded' }
                                    : { Accept => 'application/fhir+json',
                                        Prefer => 'respond-async' },
                              $body);
        push @r, $res;
    }
    return @r;
}

# other requests are not counted
my @meta = statuses(30, 'GET', '/fhir/metadata');
is(scalar(grep { $_->{status} == 200 } @meta), 30, '30 quick metadata requests: all 200');

# token endpoint: 2/s, bursts of 10
my @tok = statuses(25, 'POST', '/fhir/auth/token', 'grant_type=client_credentials');
my @limited = grep { $_->{status} == 429 } @tok;
ok(@limited >= 5, scalar(@limited) . ' of 25 quick token requests are 429');
ok(!grep({ $_->{status} == 429 } @tok[0 .. 9]), 'the first 10 are not');
my $r = $limited[0] || { headers => {}, status => 0 };
$t->is_outcome($r, 429, 'throttled', 'a 429 is an OperationOutcome');
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');

# kick-offs: 30 a minute, bursts of 5
my @kick = statuses(12, 'GET', '/fhir/$export');
my @kick_limited = grep { $_->{status} == 429 } @kick;
ok(@kick_limited >= 5, scalar(@kick_limited) . ' of 12 quick kick-offs are 429');
is($kick[0]{status}, 401, 'the first is answered (401: no token)');
my @pk = statuses(2, 'GET', '/fhir/Patient/$export');
is($pk[-1]{status}, 429, 'Patient/$export shares the kick-off limit');
is($t->get('/fhir/metadata')->{status}, 200, 'metadata still answers');
isnt($t->get('/fhir/$export-status/00000000-0000-4000-8000-000000000000')->{status}, 429,
     'a status URL is no kick-off');

# what nginx itself refuses is an OperationOutcome too
my $big = $t->request('POST', '/fhir/$export',
                      { 'Content-Type' => 'application/fhir+json', Prefer => 'respond-async',
                        Accept => 'application/fhir+json' }, 'x' x (2 * 1024 * 1024));
$t->is_outcome($big, 413, 'too-costly', 'a 2 MB kick-off body: 413 OperationOutcome');
like($big->{headers}{'content-type'} // '', qr{^application/fhir\+json}, 'as application/fhir+json');
my $long = $t->get('/fhir/metadata?x=' . ('a' x 20000));
$t->is_outcome($long, 414, 'too-costly', 'a 20 KB request line: 414 OperationOutcome');
my $bad = do {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port, Proto => 'tcp')
        or die "connect: $!";
    print $s "GET /fhir/metadata HTTP/1.1\r\nConnection: close\r\n\r\n";   # no Host
    local $/;
    my $got = <$s>;
    close $s;
    $got // '';
};
like($bad, qr{^HTTP/1\.1 400 .*application/fhir\+json.*"resourceType":"OperationOutcome"}s,
     'a request without Host: 400 OperationOutcome');
is($t->get('/fhir/metadata')->{status}, 200, 'metadata still answers');

# slow request headers: closed after client_header_timeout (2 s here)
for my $case ([ 'a connection that sends nothing', '' ],
              [ 'a request whose headers never end', "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n" ]) {
    my ($what, $send) = @$case;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port, Proto => 'tcp')
        or die "connect: $!";
    my $start = time;
    print $s $send if length $send;
    $s->autoflush(1);
    my $rin = '';
    vec($rin, fileno($s), 1) = 1;
    my $closed;
    while (time - $start < 15) {
        my $n = select(my $rout = $rin, undef, undef, 0.2);
        next unless $n > 0;
        my $got = sysread($s, my $buf, 4096);
        if (!$got) { $closed = time - $start; last; }
    }
    close $s;
    ok(defined $closed && $closed >= 1.5 && $closed < 6,
       "$what is closed after client_header_timeout")
        or diag('closed after ' . ($closed // 'never'));
}

$t->finish;
done_testing;
