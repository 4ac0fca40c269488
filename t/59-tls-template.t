#!/usr/bin/perl
# The conf.d templates rendered by `fhir-bulk config render` (issue 15): with TLS (a
# self-signed certificate made here with openssl) `nginx -t` passes and clients get the
# endpoint over https; with `listen ... ssl` but no certificate lines (the old template) it
# fails; plain HTTP (empty certificate values drop their lines) passes; a missing or unsafe
# value renders nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key);

my $t = FhirBulk::Test->new;
my $dir = $t->dir;
my $port = $t->port;
my $BIN = $FhirBulk::Test::BIN;
my $REPO = $FhirBulk::Test::REPO;
$t->start_pg;
write_token_key($t);
$t->export_dir;

system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj',
       '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', "$dir/tls.key",
       '-out', "$dir/tls.crt") == 0 or die 'openssl req failed';  # no -quiet: OpenSSL 3.0 lacks it
chmod 0600, "$dir/tls.key";
ok(-s "$dir/tls.crt" && -s "$dir/tls.key", 'a self-signed certificate and its key');

sub render {
    my ($template, $out, %values) = @_;
    unlink $out;
    my @set = map { ('--set', "$_=$values{$_}") } sort keys %values;
    my $st = system("$BIN config render --template $REPO/conf.d/$template --out $out "
                    . join(' ', map { quotemeta } @set) . " 2>$dir/render.err");
    return $st >> 8;
}
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; return <$fh> // '' }

my %server = (LISTEN => "127.0.0.1:$port ssl", SSL_CERTIFICATE => "$dir/tls.crt",
              SSL_CERTIFICATE_KEY => "$dir/tls.key", BASE_URL => "https://127.0.0.1:$port/fhir",
              BASE_PATH => '/fhir', CONNINFO_FILE => $t->conninfo_file,
              EXPORT_DIR => "$dir/exports", TOKEN_KEY_FILE => "$dir/token.key",
              ACCESS_LOG => "$dir/access.log fhir_bulk",
              APP_DIR => "$FhirBulk::Test::REPO/app");
is(render('mod-http-fhir-bulk.conf.template', "$dir/mod.conf",
          MODULE_PATH => $FhirBulk::Test::MODULE), 0, 'the main-context template renders');
is(render('fhir-bulk.conf.template', "$dir/fhir-bulk.conf", %server), 0,
   'the server template renders with TLS') or diag(slurp("$dir/render.err"));
my $conf = slurp("$dir/fhir-bulk.conf");
like($conf, qr/^\s*ssl_certificate \Q$dir\E\/tls\.crt;$/m, 'ssl_certificate line');
like($conf, qr/^\s*ssl_certificate_key \Q$dir\E\/tls\.key;$/m, 'ssl_certificate_key line');
like($conf, qr/^\s*listen 127\.0\.0\.1:$port ssl;$/m, 'listen ... ssl');
unlike(join('', grep { !/^\s*#/ } split /^/m, $conf), qr/\@[A-Z_]+\@/,
       'no placeholder left outside comments');
is((stat "$dir/fhir-bulk.conf")[2] & 07777, 0644, 'written 0644');

my $user = $> == 0 ? 'user nobody nogroup;' : '';
open(my $fh, '>', "$dir/nginx.conf") or die;
print $fh <<"CONF";
include $dir/mod.conf;
$user
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path $dir/temp-body;
    proxy_temp_path $dir/temp-proxy;
    fastcgi_temp_path $dir/temp-fastcgi;
    uwsgi_temp_path $dir/temp-uwsgi;
    scgi_temp_path $dir/temp-scgi;
    include $dir/fhir-bulk.conf;
}
CONF
close $fh;
my ($st, $out) = $t->nginx_test;
is($st, 0, 'nginx -t passes with the certificate lines') or diag($out);
$t->start_nginx;
my $body = `curl -s --cacert $dir/tls.crt https://127.0.0.1:$port/fhir/metadata`;
is($?, 0, 'curl verifies the certificate and fetches /metadata over https');
is(eval { decode_json($body)->{resourceType} }, 'CapabilityStatement', 'a CapabilityStatement');
my $smart = `curl -s --cacert $dir/tls.crt https://127.0.0.1:$port/fhir/.well-known/smart-configuration`;
is(eval { decode_json($smart)->{token_endpoint} }, "https://127.0.0.1:$port/fhir/auth/token",
   'the token endpoint is an https URL');
my $plain = `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/fhir/metadata`;
is($plain, '400', 'plain HTTP to the TLS port is refused (400)');
my $tls11 = system("curl -s -o /dev/null --cacert $dir/tls.crt --tlsv1.1 --tls-max 1.1 "
                   . "https://127.0.0.1:$port/fhir/metadata 2>/dev/null");
isnt($tls11, 0, 'TLS 1.1 is refused');
$t->stop_nginx;

# The template before issue 15: `listen ... ssl` and no certificate lines.
is(render('fhir-bulk.conf.template', "$dir/fhir-bulk.conf", %server, SSL_CERTIFICATE => '',
          SSL_CERTIFICATE_KEY => ''), 0, 'rendered without the certificate lines');
unlike(slurp("$dir/fhir-bulk.conf"), qr/^\s*ssl_certificate/m, 'an empty value drops its lines');
($st, $out) = $t->nginx_test;
isnt($st, 0, 'nginx -t fails for listen ... ssl without a certificate');
like($out, qr/no "ssl_certificate" is defined/, 'because no ssl_certificate is defined');

# Plain HTTP (make up, the tests): no ssl on the listen, no certificate lines.
is(render('fhir-bulk.conf.template', "$dir/fhir-bulk.conf", %server,
          LISTEN => "127.0.0.1:$port", SSL_CERTIFICATE => '', SSL_CERTIFICATE_KEY => '',
          BASE_URL => "http://127.0.0.1:$port/fhir"), 0, 'rendered for plain HTTP');
($st, $out) = $t->nginx_test;
is($st, 0, 'nginx -t passes for plain HTTP') or diag($out);

# A certificate path that does not exist: the lines are live.
is(render('fhir-bulk.conf.template', "$dir/fhir-bulk.conf", %server,
          SSL_CERTIFICATE => "$dir/missing.crt"), 0, 'rendered with a missing certificate');
($st, $out) = $t->nginx_test;
isnt($st, 0, 'nginx -t fails on a missing certificate file');

# Nothing is written when a value is missing or unsafe.
my %partial = %server;
delete $partial{SSL_CERTIFICATE_KEY};
is(render('fhir-bulk.conf.template', "$dir/bad.conf", %partial), 2, 'a missing value: exit 2');
like(slurp("$dir/render.err"), qr/no value for SSL_CERTIFICATE_KEY/, 'names it');
ok(!-e "$dir/bad.conf", 'and writes nothing');
is(render('fhir-bulk.conf.template', "$dir/bad.conf", %server,
          LISTEN => '443 ssl; include /etc/passwd'), 2, 'a value holding nginx syntax: exit 2');
ok(!-e "$dir/bad.conf", 'nothing written');
is(render('fhir-bulk.conf.template', "$dir/bad.conf", %server, LISTNE => '80'), 2,
   'a misspelt name: exit 2');
like(slurp("$dir/render.err"), qr/LISTNE is not a placeholder/, 'names it');
my @names = split /\n/, `$BIN config placeholders --template $REPO/conf.d/fhir-bulk.conf.template`;
is_deeply([ sort @names ], [ sort keys %server ], 'config placeholders lists what the template needs');

$t->finish;
done_testing;
