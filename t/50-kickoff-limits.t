#!/usr/bin/perl
# Issue 11 rows 1 and 2 against a real nginx: a kick-off body nested 150,000 deep and a
# 20,000-value _typeFilter get a quick 4xx OperationOutcome naming the limit; the nginx
# worker that parsed them keeps serving the same keep-alive connection; no job is created.
# With Prefer: handling=lenient the costly query is dropped and reported in the error file.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
my $dir = $t->dir;
open(my $fh, '>', "$dir/data.ndjson") or die;
print $fh encode_json({ resourceType => 'Patient', id => 'p1' }), "\n";
print $fh encode_json({ resourceType => 'Observation', id => 'o1', status => 'final',
                        code => { text => 'x' }, subject => { reference => 'Patient/p1' } }), "\n";
print $fh encode_json({ resourceType => 'Encounter', id => 'e1', status => 'finished',
                        class => { code => 'AMB' }, subject => { reference => 'Patient/p1' } }),
    "\n";
close $fh;
$t->load("$dir/data.ndjson");
# nginx's own size limits raised above ours, so that ours answer (413/414 OperationOutcomes)
$t->write_conf(FhirBulk::Test::default_http_conf(
    server_extra => "client_max_body_size 4m;\n        large_client_header_buffers 4 256k;"))
  ->start_nginx;

sub error_log {
    open(my $fh, '<', "$dir/error.log") or return '';
    local $/;
    my $log = <$fh>;
    close $fh;
    return $log;
}

sub diagnostics {
    my ($json) = @_;
    return join ' ', map { $_->{diagnostics} // '' } @{ $json->{issue} || [] };
}

# One HTTP/1.1 request on an open socket; returns { status, headers, content, json } or undef
# when the connection was closed (a worker that died drops it).
sub exchange {
    my ($sock, $method, $path, $headers, $body) = @_;
    $body //= '';
    my $req = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n";
    $req .= "$_: $headers->{$_}\r\n" for sort keys %$headers;
    $req .= 'Content-Length: ' . length($body) . "\r\n" if length $body;
    $req .= "\r\n" . $body;
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($sock, $req, 65536, $off);
        return undef unless defined $n && $n > 0;
        $off += $n;
    }
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread($sock, $buf, 65536, length $buf);
        return undef unless $n;
    }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($status) = $head =~ m{^HTTP/1\.\d (\d+)};
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $head;
    my $content = $rest;
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $raw = $rest;
        $content = '';
        while (1) {
            while ($raw !~ /\r\n/) {
                my $n = sysread($sock, $raw, 65536, length $raw) or return undef;
            }
            my ($size) = $raw =~ /^([0-9a-fA-F]+)/;
            $size = hex $size;
            while (length($raw) < index($raw, "\r\n") + 2 + $size + 2) {
                my $n = sysread($sock, $raw, 65536, length $raw) or return undef;
            }
            $raw = substr($raw, index($raw, "\r\n") + 2);
            last if $size == 0;
            $content .= substr($raw, 0, $size);
            $raw = substr($raw, $size + 2);
        }
    } else {
        my $len = $h{'content-length'} // 0;
        while (length($content) < $len) {
            my $n = sysread($sock, $content, 65536, length $content) or return undef;
        }
    }
    my $json = eval { decode_json($content) };
    return { status => $status, headers => \%h, content => $content, json => $json };
}

my %kickoff_headers = (Accept => 'application/fhir+json', Prefer => 'respond-async',
                       'Content-Type' => 'application/fhir+json');

# --- row 1: 150,000 nested arrays in the Parameters body ---------------------------------------

my @workers_before = sort { $a <=> $b } $t->nginx_worker_pids;
my $deep = '{"resourceType":"Parameters","parameter":[' . ('[' x 150000) . (']' x 150000) . ']}';
cmp_ok(length $deep, '>', 290_000, 'the nested body is ~300 KB (under client_max_body_size 1m)');

my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port, Proto => 'tcp',
                                 Timeout => 30) or die "connect: $!";
my $started = time;
my $res = exchange($sock, 'POST', '/fhir/$export', \%kickoff_headers, $deep);
ok($res, 'the connection survives the nested body (the worker answered)');
SKIP: {
    skip 'no response', 4 unless $res;
    is($res->{status}, 400, 'nested body: 400');
    is($res->{json}{resourceType}, 'OperationOutcome', 'nested body: an OperationOutcome');
    like(diagnostics($res->{json}), qr/nested deeper than 32/, 'it names the nesting limit');
    cmp_ok(time - $started, '<', 5, 'answered quickly');
}
my $again = $res ? exchange($sock, 'GET', '/fhir/metadata', { Accept => 'application/fhir+json' })
                 : undef;
ok($again && $again->{status} == 200,
   'the same keep-alive connection serves a follow-up request');
close $sock;

# twenty more on fresh connections: a crash "every time" would show here too
my $bad = 0;
for (1 .. 20) {
    my $r = $t->request_once('POST', '/fhir/$export', \%kickoff_headers, $deep);
    $bad++ unless $r->{status} == 400;
}
is($bad, 0, 'twenty more nested bodies: each a 400');
my @workers_after = sort { $a <=> $b } $t->nginx_worker_pids;
is_deeply(\@workers_after, \@workers_before, 'the same nginx workers are running');
unlike(error_log(), qr/exited on signal/, 'no worker exited on a signal');

# the limits on the rest of the request, end to end: body size is nginx's (1m) here, the
# query string is bounded by nginx's header buffers; counts are ours
my $many_patients = encode_json({ resourceType => 'Parameters', parameter => [
    map { { name => 'patient', valueReference => { reference => "Patient/p$_" } } } 1 .. 10001 ] });
$res = $t->kickoff('/fhir/Patient/$export', body => $many_patients);
$t->is_outcome($res, 400, undef, '10,001 patient references: 400');
like(diagnostics($res->{json}), qr/limit of 10000 patients/, 'it names the patient limit');
$res = $t->kickoff('/fhir/$export?_type=' . join(',', ('Patient') x 1001));
$t->is_outcome($res, 400, undef, '_type with 1,001 items: 400');
like(diagnostics($res->{json}), qr/limit of 1000 items/, 'it names the list limit');

my $huge = encode_json({ resourceType => 'Parameters', parameter => [
    { name => '_type', valueString => 'Patient' . (' ' x (1100 * 1024)) } ] });
$res = $t->kickoff('/fhir/$export', body => $huge);
$t->is_outcome($res, 413, undef, 'a 1.1 MB body: 413 OperationOutcome');
like(diagnostics($res->{json}), qr/over the limit of 1048576 bytes/, 'it names the body limit');
$res = $t->kickoff('/fhir/$export?_type=Patient&_elements=' . join(',', ('id') x 35000));
$t->is_outcome($res, 414, undef, 'a 105 KB query string: 414 OperationOutcome');
like(diagnostics($res->{json}), qr/over the limit of 65536 bytes/, 'it names the query limit');

# --- row 2: _typeFilter=Observation?subject=p0,...,p19999 ---------------------------------------

my $ids = join ',', map { "p$_" } 0 .. 19999;
my $attack = "Observation?subject=$ids";
cmp_ok(length $attack, '>', 128_000, 'the filter is ~129 KB');
my $body = encode_json({ resourceType => 'Parameters', parameter => [
    { name => '_type', valueString => 'Observation,Encounter' },
    { name => '_typeFilter', valueString => $attack },
    { name => '_typeFilter', valueString => 'Encounter?status=finished' } ] });
$started = time;
$res = $t->kickoff('/fhir/$export', body => $body);
my $elapsed = time - $started;
$t->is_outcome($res, 400, undef, 'strict: 20,000 values in one _typeFilter parameter is a 400');
like(diagnostics($res->{json}), qr/20000 values, over the limit of 1000 values per parameter/,
     'it names the values-per-parameter limit');
cmp_ok(length($res->{content}), '<', 4096, 'the OperationOutcome does not echo the 129 KB');
cmp_ok($elapsed, '<', 5, 'answered quickly');
# the same filter in a GET query (1,000 values: within the query size limit)
$res = $t->kickoff('/fhir/$export?_typeFilter=Observation%3Fsubject%3D'
                   . join('%2C', map { "p$_" } 0 .. 1000));
$t->is_outcome($res, 400, undef, 'GET: 1,001 values in one _typeFilter parameter is a 400');
like(diagnostics($res->{json}), qr/1001 values, over the limit of 1000/, 'naming the limit');

# within the value limit but over the compiled-terms limit: Basic.subject targets any type
my $any = 'Basic?subject=' . join(',', map { "b$_" } 1 .. 40);
$res = $t->kickoff('/fhir/$export', body => encode_json({ resourceType => 'Parameters',
    parameter => [ { name => '_typeFilter', valueString => $any } ] }));
$t->is_outcome($res, 400, undef, 'strict: 40 bare ids of an any-type reference are a 400');
like(diagnostics($res->{json}), qr/over the limit of 5000 terms per kick-off/,
     'it names the compiled-terms limit');

is($t->psql('SELECT count(*) FROM export_job'), 0, 'no refused kick-off created a job');

# lenient: the costly query is dropped and reported; the export runs with the other filter
$t->start_worker;
$res = $t->kickoff('/fhir/$export', body => $body,
                   headers => { Prefer => 'respond-async, handling=lenient' });
is($res->{status}, 202, 'lenient: accepted') or diag($res->{content});
my $issues = $t->psql("SELECT request->'ignored' FROM export_job");
like($issues, qr/too-costly/, 'the job records the dropped query as too costly');
like($issues, qr/values per parameter/, 'with the limit it went over');
$res = $t->poll($res->{headers}{'content-location'}, 60);
is($res->{status}, 200, 'the lenient export completes') or diag($res->{content});
my $out = $t->download_all($res->{json}{output});
is(scalar @{ $out->{Observation} || [] }, 1, 'Observation is exported unfiltered (query dropped)');
is(scalar @{ $out->{Encounter} || [] }, 1, 'the other filter still applies');
my $errors = $t->download_all($res->{json}{error});
my @warnings = grep { $_->{code} eq 'too-costly' }
    map { @{ $_->{issue} || [] } } @{ $errors->{OperationOutcome} || [] };
is(scalar @warnings, 1, 'the error file carries one too-costly warning');
like($warnings[0]{diagnostics} // '', qr/limit of 1000 values per parameter/,
     'naming the limit');

unlike(error_log(), qr/exited on signal/, 'still no worker exited on a signal');

# the compiled-terms limit is an nginx directive
$t->stop_nginx;
$t->write_conf(FhirBulk::Test::default_http_conf(
    location_extra => 'fhir_bulk_typefilter_max_terms 7;'))->start_nginx;
my $eight = encode_json({ resourceType => 'Parameters', parameter => [
    { name => '_typeFilter', valueString => 'Observation?subject=a,b' } ] });
$res = $t->kickoff('/fhir/$export', body => $eight);
$t->is_outcome($res, 400, undef, 'fhir_bulk_typefilter_max_terms 7: 8 terms are a 400');
like(diagnostics($res->{json}), qr/compiles to 8 search terms .* limit of 7 terms/,
     'naming the configured limit');
$res = $t->kickoff('/fhir/$export', body => encode_json({ resourceType => 'Parameters',
    parameter => [ { name => '_typeFilter', valueString => 'Observation?subject=Patient/a' } ] }));
is($res->{status}, 202, 'one explicit reference (1 term) is accepted') or diag($res->{content});
$t->finish;
done_testing;
