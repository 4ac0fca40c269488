#!/usr/bin/perl
# The operator console (app/console/, issue 16) in headless Chromium against the real stack:
# an operator signs in with the PEM key `fhir-bulk client keygen` wrote (the page signs its
# client assertion with WebCrypto), sees an export in progress with its progress bar and a
# completed one in the history, follows a cancel, disables and re-enables an export client
# (which meanwhile cannot get a token, and the audit trail shows it), searches the audit trail
# and draws the charts; no console errors (CSP violations included); screenshots.
# (FHIRBULK_SCREENSHOTS=docs/screenshots prove t/69-console-browser.t refreshes the README's.)

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client assertion token_request
                      get_token bearer);
use FhirBulk::Browser qw(browser_missing run_script);

if (my $why = browser_missing()) { plan skip_all => $why; }

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(30);
write_token_key($t);
my $REPO = $FhirBulk::Test::REPO;
my $extra = <<"EOF";
        location /fhir/_ops/api/ {
            allow 127.0.0.1;
            deny all;
            fhir_bulk_api;
            fhir_bulk_operator_api on;
            fhir_bulk_base_url %%BASE_URL%%;
        }
        location /fhir/_app/ {
            alias $REPO/app/;
            index index.html;
            types { text/html html; text/css css; text/javascript js; }
            add_header Content-Security-Policy "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'" always;
            add_header X-Content-Type-Options nosniff always;
        }
EOF
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1, server_extra => $extra));
$t->start_nginx;
my $dir = $t->dir;
my $BIN = $FhirBulk::Test::BIN;
my $db = $t->conninfo;

# the operator's key pair, as an operator makes it
my $kid = `$BIN client keygen --alg ES384 --private $dir/ops.pem --jwks-out $dir/ops.jwks`;
chomp $kid;
my $op_id = `$BIN client add --operator --name operations --jwks $dir/ops.jwks --db '$db'`;
chomp $op_id;
ok($op_id && $kid, 'an operator client with a key from client keygen');
my $pem = do { local (@ARGV, $/) = ("$dir/ops.pem"); <> };

my $akey = new_key('ES384');
my $alice = register_client($t, name => 'alice analytics', jwks => jwks_of($akey));
register_client($t, name => 'bob payer', jwks => jwks_of(new_key('ES384')));
my $tok = get_token($t, $alice, $akey);

# one completed export (and its downloads), one waiting with no worker running
$t->start_worker;
my $k1 = $t->kickoff('/fhir/$export?_type=Patient,Observation,Condition', headers => bearer($tok));
my ($job1) = $k1->{headers}{'content-location'} =~ m{/([^/]+)$};
ok($t->wait_until(sub {
    $t->request('GET', "/fhir/\$export-status/$job1", bearer($tok))->{status} == 200 }, 60),
   'a first export completes');
my $m = $t->request('GET', "/fhir/\$export-status/$job1", bearer($tok))->{json};
$t->request('GET', $_->{url}, bearer($tok)) for @{ $m->{output} };
$t->stop_worker;
my $k2 = $t->kickoff('/fhir/$export?_type=Patient', headers => bearer($tok));
my ($job2) = $k2->{headers}{'content-location'} =~ m{/([^/]+)$};
is($k2->{status}, 202, 'a second export waits (no worker)');

run_script($t, 'console.py', timeout => 240,
    env => { CONSOLE_CLIENT_ID => $op_id, CONSOLE_KEY_PEM => $pem, CONSOLE_KID => $kid,
             CONSOLE_JOB_DONE => $job1, CONSOLE_JOB_WAITING => $job2,
             CONSOLE_ALICE => $alice },
    handlers => {
        cancel => sub {
            my $r;
            $t->wait_until(sub {
                $r = $t->request('DELETE', "/fhir/\$export-status/$job2", bearer($tok));
                $r->{status} == 202 }, 20);
            return { status => $r->{status} };
        },
        alice_token => sub {
            my $r = token_request($t, assertion($t, $alice, $akey));
            return { status => $r->{status}, error => ($r->{json} || {})->{error} // '' };
        },
    });

is($t->psql("SELECT enabled FROM auth_client WHERE client_id = '$alice'"), 't',
   'alice is enabled again at the end');
is($t->psql("SELECT count(*) FROM audit_event WHERE action = 'client' AND target = '$alice' "
            . "AND client_id = '$op_id'"), 2, 'both changes are in the audit trail');
$t->finish;
done_testing;
