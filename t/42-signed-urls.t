#!/usr/bin/perl
# Signed file URLs: the manifest says requiresAccessToken false and every URL carries an
# expiring HMAC bound to job, file and client; nginx checks it without the database, so an
# "edge" nginx with only the URL key (no database, no token key) serves the files too.
# Altered or expired URLs get 403.

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
my $edge_port = $t->free_port;
my $main_extra = "fhir_bulk_signed_url_key_file %%TESTDIR%%/url.key;\n"
    . "        fhir_bulk_signed_url_lifetime 4s;";
my $edge = <<"EDGE";
    server {
        listen 127.0.0.1:$edge_port;
        fhir_bulk_auth on;
        fhir_bulk_signed_url_key_file %%TESTDIR%%/url.key;
        location /fhir/\$export-files/ {
            fhir_bulk_files %%EXPORT_DIR%%;
        }
    }
EDGE
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1, server_extra => $main_extra) . $edge);
$t->start_nginx;
$t->start_worker;

my $key = new_key('ES384');
my $client = register_client($t, jwks => jwks_of($key));
my $token = get_token($t, $client, $key);
my $res = $t->kickoff('/fhir/$export?_type=Patient,Encounter', headers => bearer($token));
is($res->{status}, 202, 'kick-off') or diag($res->{content});
my $status = $res->{headers}{'content-location'};
my $deadline = time + 60;
do {
    select(undef, undef, undef, 0.1);
    $res = $t->request('GET', $status, bearer($token));
} while ($res->{status} == 202 && time < $deadline);
is($res->{status}, 200, 'export completes');
my $m = $res->{json};
is($m->{requiresAccessToken}, JSON::PP::false, 'manifest: requiresAccessToken false');
my ($pat) = grep { $_->{type} eq 'Patient' } @{ $m->{output} };
my ($enc) = grep { $_->{type} eq 'Encounter' } @{ $m->{output} };
like($pat->{url}, qr/\?client=[^&]+&expires=\d+&kid=u1&signature=[A-Za-z0-9_-]{43}$/,
     'file URLs carry client, expiry, key id and signature');

$res = $t->request('GET', $pat->{url});
is($res->{status}, 200, 'signed URL, no token: 200');
my $n = () = $res->{content} =~ /\n/g;
is($n, $pat->{count}, '... the whole file');
(my $edge_url = $pat->{url}) =~ s/:\d+\//:$edge_port\//;
is($t->request('GET', $edge_url)->{status}, 200,
   'the edge nginx (URL key only, no database) serves it');
(my $unsigned = $edge_url) =~ s/\?.*//;
$t->is_outcome($t->request('GET', $unsigned), 401, 'login', 'the edge refuses unsigned requests');

my %alter = (
    'signature changed' => sub { $_[0] =~ s/signature=(.)/'signature=' . ($1 eq 'A' ? 'B' : 'A')/e },
    'expiry extended'   => sub { $_[0] =~ s/expires=(\d+)/'expires=' . ($1 + 3600)/e },
    'client changed'    => sub { $_[0] =~ s/client=[^&]+/client=someone-else/ },
    'another file'      => sub { my ($f) = $enc->{url} =~ m{/([^/?]+)\?}; $_[0] =~ s{/[^/?]+\?}{/$f?} },
    'unknown key id'    => sub { $_[0] =~ s/kid=u1/kid=u2/ },
    'a parameter removed' => sub { $_[0] =~ s/&kid=u1// },
);
for my $name (sort keys %alter) {
    my $url = $pat->{url};
    $alter{$name}->($url);
    isnt($url, $pat->{url}, "($name: URL altered)");
    $t->is_outcome($t->request('GET', $url), 403, 'forbidden', "$name: 403");
}
is($t->request('GET', $pat->{url} =~ s/\?.*//r, bearer($token))->{status}, 200,
   'the owner\'s bearer token still works without a signature');

sleep 5;
$res = $t->request('GET', $pat->{url});
$t->is_outcome($res, 403, 'forbidden', 'expired signed URL: 403');
like($res->{content}, qr/expired/, '... saying it expired');

$t->finish;
done_testing;
