#!/usr/bin/perl
# Issue 11 row 7: signed file URLs are bearer capabilities and follow the bearer-token expiry
# rules (Bulk Data IG 3.0.0): by default they live at most 5 minutes, a longer lifetime than an
# hour is refused at configuration time, a re-fetched manifest carries fresh URLs, and a
# disabled client gets no manifest (so no new URLs) while the ones it has run out with their
# lifetime. Also the bounds on signed-URL queries (length, parameter count): 403, no crash.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token bearer);

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
write_token_key($t);
open(my $fh, '>', $t->dir . '/url.key') or die;
print $fh "u1 " . join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32) . "\n";
close $fh;

# --- configuration: at most 1 h ------------------------------------------------------------------
for my $case ([ '2h', 0 ], [ '3601s', 0 ], [ '1h', 1 ], [ '300s', 1 ]) {
    my ($lifetime, $valid) = @$case;
    $t->write_conf(FhirBulk::Test::default_http_conf(auth => 1, server_extra =>
        "fhir_bulk_signed_url_key_file %%TESTDIR%%/url.key;\n"
        . "        fhir_bulk_signed_url_lifetime $lifetime;"));
    my ($status, $out) = $t->nginx_test;
    if ($valid) {
        is($status, 0, "fhir_bulk_signed_url_lifetime $lifetime: accepted") or diag($out);
    } else {
        isnt($status, 0, "fhir_bulk_signed_url_lifetime $lifetime: refused");
        like($out, qr/fhir_bulk_signed_url_lifetime.*1h/, '... naming the limit');
    }
}

# --- the default lifetime --------------------------------------------------------------------------
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1, server_extra =>
    "fhir_bulk_signed_url_key_file %%TESTDIR%%/url.key;"));
$t->start_nginx;
$t->start_worker;

my $key = new_key('ES384');
my $client = register_client($t, jwks => jwks_of($key));
my $token = get_token($t, $client, $key);
my $res = $t->kickoff('/fhir/$export?_type=Patient', headers => bearer($token));
is($res->{status}, 202, 'kick-off') or diag($res->{content});
my $status = $res->{headers}{'content-location'};
my $deadline = time + 60;
do {
    select(undef, undef, undef, 0.1);
    $res = $t->request('GET', $status, bearer($token));
} while ($res->{status} == 202 && time < $deadline);
is($res->{status}, 200, 'export completes');
my ($file) = @{ $res->{json}{output} };
my ($expires) = ($file->{url} // '') =~ /expires=(\d+)/;
ok(defined $expires, 'the manifest URL is signed');
my $left = $expires - time;
cmp_ok($left, '<=', 300, "default lifetime at most 5 minutes ($left s left)");
cmp_ok($left, '>', 240, '... and not much less');
is($t->request('GET', $file->{url})->{status}, 200, 'the signed URL downloads');

# --- a re-fetched manifest carries fresh URLs ----------------------------------------------------
sleep 2;
$res = $t->request('GET', $status, bearer($token));
is($res->{status}, 200, 'manifest fetched again');
my ($again) = ($res->{json}{output}[0]{url} // '') =~ /expires=(\d+)/;
cmp_ok($again, '>', $expires, 'its URLs expire later than the first ones (fresh signatures)');

# --- bounds on the query -------------------------------------------------------------------------
$t->is_outcome($t->request('GET', $file->{url} . '&pad=' . ('x' x 3000)), 403, 'forbidden',
               'a signed URL with a 3 KB query: 403');
$t->is_outcome($t->request('GET', $file->{url} . join('', map { "&p$_=1" } 1 .. 20)), 403,
               'forbidden', 'a signed URL with 24 parameters: 403');
is($t->request('GET', $file->{url})->{status}, 200, '... the genuine URL still works');

# --- a disabled client ---------------------------------------------------------------------------
is($t->run_tool('client', 'disable', $client), 0, 'disable the client');
sleep 2;    # the status cache (1 s)
$t->is_outcome($t->request('GET', $status, bearer($token)), 404, 'not-found',
               'disabled client: no manifest, so no new signed URLs');
my ($old_expires) = $file->{url} =~ /expires=(\d+)/;
cmp_ok($old_expires - time, '<=', 300,
       'the URLs it already holds expire within 5 minutes of being issued');

$t->finish;
done_testing;
