#!/usr/bin/perl
# The export app (issue 16) in headless Chromium (t/browser/export_app.py) against nginx
# configured from conf.d/fhir-bulk.conf.template (the app at /fhir/_app/, authorization on),
# PostgreSQL with 20 synthetic patients (fhir-bulk synth) and a Group, and an export worker: a key generated in the
# browser is registered, a Group export runs end to end, the counts shown equal the manifest's,
# files are previewed and downloaded, a second export is resumed after a reload and cancelled.
# Screenshots: <test dir>/screenshots, and FHIRBULK_SCREENSHOTS=DIR copies them to DIR.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key register_client get_token bearer);
use FhirBulk::Browser qw(browser_missing run_script);
use FhirBulk::AppTest qw(app_conf read_manifest);

if (my $why = browser_missing()) { plan skip_all => $why; }
my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(20);
my @pids = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 5");
open(my $fh, '>', $t->dir . '/groups.ndjson') or die;
print $fh encode_json({ resourceType => 'Group', id => 'browser-cohort', name => 'browser cohort',
    type => 'person', actual => JSON::PP::true,
    member => [ map { { entity => { reference => "Patient/$_" } } } @pids ] }), "\n";
close $fh;
$t->load($t->dir . '/groups.ndjson');
write_token_key($t);
$t->write_conf(app_conf($t), main => 'thread_pool fhir_bulk threads=4 max_queue=64;')->start_nginx;
$t->start_worker('--threads', 2);

# --- the app's headers --------------------------------------------------------------------
my $res = $t->get('/fhir/_app/');
is($res->{status}, 200, 'the app is served at /fhir/_app/');
my $csp = $res->{headers}{'content-security-policy'} // '';
like($csp, qr/script-src 'self'/, 'CSP: scripts from the app only') or diag($csp);
unlike($csp, qr/unsafe-inline|unsafe-eval/, 'CSP: no unsafe-inline, no unsafe-eval');
like($csp, qr/frame-ancestors 'none'/, 'CSP: no framing');
is($res->{headers}{'x-content-type-options'}, 'nosniff', 'X-Content-Type-Options: nosniff');
is($res->{headers}{'referrer-policy'}, 'no-referrer', 'Referrer-Policy: no-referrer');
like($t->get('/fhir/_app/js/main.js')->{headers}{'content-type'} // '', qr{^text/javascript},
     'modules are served as JavaScript');
is($t->get('/fhir/_app')->{status}, 301, '/fhir/_app redirects to /fhir/_app/');
is($t->request('POST', '/fhir/_app/', {}, 'x')->{status}, 403, 'the app location takes GET only');

# --- the browser run ----------------------------------------------------------------------
note(sprintf("stack ready after %d s", time - $^T));
my $test_key = new_key('ES384');   # the test's own key, registered beside the browser's
my $client_id;
run_script($t, 'export_app.py', timeout => 240, handlers => {
    register => sub {
        my ($args) = @_;
        my $keys = $args->{jwks}{keys};
        die "the app's JWKS holds a private key\n" if grep { exists $_->{d} } @$keys;
        $client_id = register_client($t, name => 'export app',
            jwks => encode_json({ keys => [ @$keys, $test_key->{jwk} ] }));
        return { client_id => $client_id };
    },
    # The manifest as the test reads it itself, all pages, with the Group's member ids.
    manifest => sub {
        my ($args) = @_;
        my $m = read_manifest($t, $args->{url}, get_token($t, $client_id, $test_key));
        $m->{patients} = \@pids;
        return $m;
    },
    poll => sub {
        my $token = get_token($t, $client_id, $test_key);
        my $r = $t->request('GET', $_[0]{url}, { Accept => 'application/json', %{ bearer($token) } });
        return { status => $r->{status} + 0 };
    },
    stop_worker => sub { $t->stop_worker; return {}; },
});

# Retry-After honoured: no poll of the app was refused for coming too early.
open(my $log, '<', $t->dir . '/access.log') or die;
my @early = grep { m{export-status} && m{" 429 } } <$log>;
close $log;
is(scalar @early, 0, 'the app never polled sooner than Retry-After (no 429)') or diag(@early);

$t->finish;
done_testing;
