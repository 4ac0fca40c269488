#!/usr/bin/perl
# The export app (issue 16) in headless Chromium, its other paths (t/browser/export_app_import.py):
# a private RS384 JWK made here is imported into the browser (non-extractable, not kept), the
# _typeFilter builder narrows an all-patients export to one Observation code, and the counts
# shown equal the manifest's and the database's; files come by signed URL (no token), previewed
# and downloaded as such. Stack: nginx from conf.d/fhir-bulk.conf.template,
# PostgreSQL with 20 synthetic patients, an export worker.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token);
use FhirBulk::Browser qw(browser_missing run_script);
use FhirBulk::AppTest qw(app_conf read_manifest);

if (my $why = browser_missing()) { plan skip_all => $why; }
my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(20);
write_token_key($t);
# Signed file URLs (the template's commented lines): the app previews and downloads files
# without the token when the manifest says requiresAccessToken: false.
my $conf = app_conf($t);
my $url_key = $t->dir . '/url.key';
open(my $kf, '>', $url_key) or die;
print $kf 'u1 ', join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32), "\n";
close $kf;
$conf =~ s{# (fhir_bulk_signed_url_key_file) \S+;}{$1 $url_key;} or die "no signed URL line\n";
# URLs that expire within 30 s: the app fetches the manifest again (fresh URLs) before it
# previews or downloads a file.
$conf =~ s{# (fhir_bulk_signed_url_lifetime) \S+;}{$1 20s;} or die "no URL lifetime line\n";
$t->write_conf($conf, main => 'thread_pool fhir_bulk threads=4 max_queue=64;')->start_nginx;
$t->start_worker('--threads', 2);

my $key = new_key('RS384');
my $client_id = register_client($t, name => 'export app (imported key)', jwks => jwks_of($key));
# The most common Observation code, and how many Observations of a patient carry it.
my ($code, $display) = split /\t/, $t->psql(<<'SQL') =~ s/\|X\|/\t/r;
SELECT c->>'system' || '|' || (c->>'code') || '|X|' || coalesce(c->>'display', c->>'code')
  FROM resource, jsonb_array_elements(body::jsonb -> 'code' -> 'coding') AS c
 WHERE res_type = 'Observation' AND NOT deleted
 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1
SQL
my ($system, $value) = split /\|/, $code, 2;
my $expected = $t->psql(
    "SELECT count(*) FROM resource WHERE res_type = 'Observation' AND NOT deleted "
  . "AND cardinality(patients) > 0 AND body::jsonb -> 'code' -> 'coding' @> "
  . "jsonb_build_array(jsonb_build_object('system', '$system', 'code', '$value'))");
my $total = $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Observation'");
ok($expected > 0 && $expected < $total, "the filter selects $expected of $total Observations");

my $private = decode_json($key->{pk}->export_key_jwk('private'));
$private->{kid} = $key->{kid};
run_script($t, 'export_app_import.py', timeout => 240, handlers => {
    key => sub {
        return { jwk => $private, client_id => $client_id, code => $code, display => $display,
                 expected_observations => $expected + 0 };
    },
    manifest => sub { read_manifest($t, $_[0]{url}, get_token($t, $client_id, $key)) },
});

open(my $log, '<', $t->dir . '/access.log') or die;
my @manifests = grep { m{"GET /fhir/\$export-status/\S+ HTTP/1.1" 200 } && /HeadlessChrome/ } <$log>;
close $log;
cmp_ok(scalar @manifests, '>=', 3,
       'the app fetched the manifest again for fresh signed URLs (preview, download)');

$t->finish;
done_testing;
