#!/usr/bin/perl
# The export client with SMART Backend Services against our server: the token endpoint found
# through .well-known/smart-configuration, ES384 (PEM key, its JWK Set from --print-jwks) and
# RS384 (private JWK) client assertions, system/patient/group exports with bearer tokens, a
# short token lifetime renewed again and again during a slow download, refused credentials and
# scopes (exit 3), and signed file URLs (requiresAccessToken false): no token sent to them, and
# links that expire mid-export replaced from a re-fetched manifest.
# Skipped when the server has no authorization support.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes ();
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
plan skip_all => 'no FhirBulk::Auth (SMART Backend Services not in this tree)'
    unless eval {
        require FhirBulk::Auth;
        FhirBulk::Auth->import(qw(write_token_key new_key jwks_of register_client));
        1;
    };

# Server A: bearer tokens everywhere, 4 s tokens. Server B (same database, worker and
# export directory): signed file URLs living 2 s. Both log whether a request carried an
# Authorization header (never the header itself).
my $port_b = FhirBulk::Test::free_port();
my $base_b = "http://127.0.0.1:$port_b/fhir";
my $log = <<'CONF';
    map $http_authorization $fb_has_auth { "" no; default yes; }
    log_format fb_auth '$msec $request_method $uri $status auth=$fb_has_auth';
CONF
my $server_a = FhirBulk::Test::default_http_conf(auth => 1, server_extra =>
    "fhir_bulk_token_lifetime 4s;\n        access_log %%TESTDIR%%/auth-a.log fb_auth;");
my $server_b = <<"CONF";
    server {
        listen 127.0.0.1:$port_b;
        fhir_bulk_auth on;
        fhir_bulk_token_key_file %%TESTDIR%%/token.key;
        fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%;
        fhir_bulk_signed_url_key_file %%TESTDIR%%/url.key;
        fhir_bulk_signed_url_lifetime 2s;
        access_log %%TESTDIR%%/auth-b.log fb_auth;
        location /fhir {
            fhir_bulk_api;
            fhir_bulk_base_url $base_b;
            fhir_bulk_export_dir %%EXPORT_DIR%%;
            fhir_bulk_min_poll_interval 0;
        }
        location /fhir/\$export-files/ {
            fhir_bulk_files %%EXPORT_DIR%%;
        }
    }
CONF
$t->start_pg;
write_token_key($t);
open(my $fh, '>', $t->dir . '/url.key') or die;
print $fh 'u1 ' . join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32) . "\n";
close $fh;
$t->write_conf($log . $server_a . $server_b);
my ($status, $nginx_out) = $t->nginx_test;
plan skip_all => "this nginx module has no SMART Backend Services: $nginx_out" if $status != 0;
$t->load($t->synthea_dir);
my ($pa, $pb) = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 2");
open($fh, '>', $t->dir . '/group.ndjson') or die;
print $fh encode_json({ resourceType => 'Group', id => 'cohort', type => 'person',
    actual => JSON::PP::true,
    member => [ map { { entity => { reference => "Patient/$_" } } } $pa, $pb ] }), "\n";
close $fh;
$t->load($t->dir . '/group.ndjson');
$t->start_nginx;
$t->start_worker('--threads', 2);
my $c = FhirBulk::ClientTest->new($t);
my $dir = $t->dir;

sub identical_to_server {
    my ($out) = @_;
    my @files = @{ $c->output_files($out) };
    my @differ = grep { FhirBulk::ClientTest::slurp($_->[1])
                        ne FhirBulk::ClientTest::slurp($c->server_file($_->[0]{url})) } @files;
    return @files > 0 && !@differ;
}

# Lines of a server's log ("METHOD uri status auth=yes|no") matching $re, optionally only
# those logged from time $from on.
sub auth_log {
    my ($which, $re, $from) = @_;
    my @lines;
    for (split /\n/, FhirBulk::ClientTest::slurp("$dir/auth-$which.log")) {
        my ($at, $line) = /^(\S+) (.*)$/ or next;
        push @lines, $line if $line =~ $re && (!defined $from || $at >= $from);
    }
    return \@lines;
}

# --- keys and clients ----------------------------------------------------------------------------
# ES384: a PEM key made by openssl; its public JWK Set from the client itself.
system('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384',
       '-out', "$dir/es.pem") == 0 or die 'openssl genpkey';
my $jwks = `$FhirBulk::Test::BIN export --key $dir/es.pem --print-jwks`;
my $set = eval { decode_json($jwks) } || {};
is($set->{keys}[0]{alg}, 'ES384', '--print-jwks: the public JWK Set of a PEM key');
ok(!exists $set->{keys}[0]{d}, '... without the private part');
my $es_client = register_client($t, name => 'es', jwks => $jwks);
# RS384: a private JWK (CryptX), registered by its public half.
my $rs = new_key('RS384');
open($fh, '>', "$dir/rs.jwk") or die;
my $private = decode_json($rs->{pk}->export_key_jwk('private'));
$private->{kid} = $rs->{kid};
print $fh encode_json($private);
close $fh;
my $rs_client = register_client($t, name => 'rs', jwks => jwks_of($rs));
my $narrow_client = register_client($t, name => 'narrow', jwks => jwks_of($rs),
                                    scope => 'system/Patient.read');
my @es = ('--client-id', $es_client, '--key', "$dir/es.pem");
my @rs = ('--client-id', $rs_client, '--key', "$dir/rs.jwk");

# --- system, patient and group exports with tokens -------------------------------------------
my $r = $c->run(@es, '--type', 'Patient,Condition');
is($r->{exit}, 0, 'ES384 client: system export, exit 0') or diag($r->{stderr});
like($r->{stderr}, qr{token endpoint \Q${\ $t->base_url}\E/auth/token \(from the SMART configuration\)},
     'the token endpoint is discovered');
like($r->{stderr}, qr/access token obtained \(expires in 4 s/, 'a token is obtained');
unlike($r->{stderr} . $r->{stdout}, qr/eyJ|Bearer /, 'no token or assertion in the output');
ok(identical_to_server($r->{out}), 'the files are the server\'s');
is($c->manifest($r->{out})->{requiresAccessToken}, JSON::PP::true, 'requiresAccessToken true');
my $files = auth_log('a', qr{^GET /fhir/\$export-files/});
ok(@$files && !grep({ !/ 200 auth=yes$/ } @$files), 'every file request carried the token');

$r = $c->run(@rs, '--patient', '--type', 'Patient');
is($r->{exit}, 0, 'RS384 client (private JWK): patient export, exit 0') or diag($r->{stderr});
is($c->summary($r->{out})->{resources}{Patient}, 100, '... every patient');

$r = $c->run(@rs, '--group', 'cohort', '--type', 'Patient', '--patient-ref', "Patient/$pa");
is($r->{exit}, 0, 'group export with POST and a patient reference') or diag($r->{stderr});
is_deeply($c->summary($r->{out})->{resources}, { Patient => 1 }, '... one patient');

# --- 4 s tokens, a download of many seconds: renewed as it goes -------------------------------
my $t0 = Time::HiRes::time();
# 2 MB/s: every file takes longer than the 3 s after which a 4 s token is replaced
$r = $c->run(@es, '--type', 'Observation,Claim,ExplanationOfBenefit', '--no-gzip',
             '--max-rate', '2000000', '--parallel', '1');
my $took = int(Time::HiRes::time() - $t0);
is($r->{exit}, 0, 'a slow download with short-lived tokens completes') or diag($r->{stderr});
my $renewed = () = $r->{stderr} =~ /access token renewed/g;
cmp_ok($renewed, '>=', 2, "the token was renewed $renewed times during the ${took}s export");
ok(identical_to_server($r->{out}), 'the files are the server\'s');
is(scalar @{ auth_log('a', qr{ 401 auth=yes$}, $t0) }, 0,
   'no request was refused for an expired token');
is(scalar @{ auth_log('a', qr{^POST /fhir/auth/token 200 }, $t0) }, $renewed + 1,
   'one token request at the start, one per renewal');

# --- refused -------------------------------------------------------------------------------------
$r = $c->run('--client-id', $es_client, '--key', "$dir/rs.jwk");
is($r->{exit}, 3, 'an assertion signed with another key: exit 3');
like($r->{stderr}, qr/token endpoint refused client '\Q$es_client\E' \(\d+ invalid_client/,
     '... with the OAuth error');
$r = $c->run('--type', 'Patient');
is($r->{exit}, 3, 'no credentials against a server that wants them: exit 3');
like($r->{stderr}, qr/HTTP 401.*--client-id, --key/, '... saying what is missing');
$r = $c->run('--client-id', $narrow_client, '--key', "$dir/rs.jwk", '--type', 'Observation');
is($r->{exit}, 3, 'a type outside the granted scopes: exit 3');
like($r->{stderr}, qr/HTTP 403/, '... 403');
$r = $c->run(@es, '--token-url', $t->base_url . '/no/such/endpoint');
is($r->{exit}, 3, 'a wrong token URL: exit 3');

# --- signed URLs: no token sent; expired links replaced ------------------------------------------
$r = $c->run(@es, '--fhir-url', $base_b, '--type', 'Patient,Observation,Claim,Condition,Encounter',
             '--no-gzip', '--max-rate', '3000000', '--parallel', '1');
is($r->{exit}, 0, 'signed URLs: exit 0') or diag($r->{stderr});
my $m = $c->manifest($r->{out});
is($m->{requiresAccessToken}, JSON::PP::false, 'requiresAccessToken false');
$files = auth_log('b', qr{^GET /fhir/\$export-files/.* 200 });
ok(@$files && !grep({ /auth=yes$/ } @$files), 'no file request carried the token');
ok(@{ auth_log('b', qr{^GET /fhir/\$export-status/.* 200 auth=yes$}) },
   'the status requests did');
like($r->{stderr}, qr/HTTP 403; retrying with the link of a re-fetched manifest/,
     'links that expired during the export were replaced from a re-fetched manifest');
cmp_ok(scalar @{ auth_log('b', qr{^GET /fhir/\$export-status/.* 200 }) }, '>=', 2,
       '... which was fetched again');
ok(identical_to_server($r->{out}), 'the files are the server\'s');

$t->finish;
done_testing;
