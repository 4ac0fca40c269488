#!/usr/bin/perl
# SMART Backend Services token endpoint: real RS384 and ES384 assertions against a real nginx +
# PostgreSQL, keys by value and by jwks_url; every rejection of the validation order; scope
# intersection; discovery; the audit trail; no secret in any log.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client assertion token_request
                      get_token form_encode bearer);
use Crypt::JWT qw(encode_jwt);
use JSON::PP qw(encode_json decode_json);
use MIME::Base64 qw(encode_base64url decode_base64url);

my $t = FhirBulk::Test->new;
$t->start_pg;
write_token_key($t);
my $jwks_url = "http://127.0.0.1:" . $t->port . "/keys/jwks.json";
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1, server_extra => <<'EOF'));
        location /keys/ {
            alias %%TESTDIR%%/keys/;
            add_header Cache-Control "max-age=60";
        }
EOF
mkdir $t->dir . '/keys';
$t->start_nginx;

my $es = new_key('ES384');
my $rs = new_key('RS384');
my $es_client = register_client($t, jwks => jwks_of($es), scope => 'system/*.read');
my $rs_client = register_client($t, jwks => jwks_of($rs),
                                scope => 'system/Patient.read system/Observation.rs');
like($es_client, qr/^[A-Za-z0-9_-]{22}$/, 'client ids are random 128-bit base64url');

sub oauth_error {
    my ($res, $error, $name) = @_;
    my $ok = $res->{status} == 400
        && ($res->{headers}{'content-type'} // '') =~ m{^application/json}
        && ($res->{headers}{'cache-control'} // '') eq 'no-store'
        && ref $res->{json} eq 'HASH' && ($res->{json}{error} // '') eq $error
        && defined $res->{json}{error_description};
    ok($ok, "$name: 400 $error") or diag("got $res->{status}: $res->{content}");
}

# --- discovery --------------------------------------------------------------------------------
my $cfg = $t->get('/fhir/.well-known/smart-configuration');
is($cfg->{status}, 200, 'smart-configuration answers');
like($cfg->{headers}{'content-type'}, qr{^application/json}, '... as JSON');
is($cfg->{json}{token_endpoint}, $t->base_url . '/auth/token', '... absolute token endpoint');
is_deeply($cfg->{json}{grant_types_supported}, ['client_credentials'], '... client_credentials');
is_deeply([ sort @{ $cfg->{json}{token_endpoint_auth_signing_alg_values_supported} } ],
          [ 'ES384', 'RS384' ], '... RS384 and ES384');
ok((grep { $_ eq 'client-confidential-asymmetric' } @{ $cfg->{json}{capabilities} }),
   '... client-confidential-asymmetric');
my $meta = $t->get('/fhir/metadata');
my $sec = $meta->{json}{rest}[0]{security};
is($sec->{service}[0]{coding}[0]{code}, 'SMART-on-FHIR', 'CapabilityStatement: SMART-on-FHIR service');
is($sec->{extension}[0]{extension}[0]{valueUri}, $t->base_url . '/auth/token',
   'CapabilityStatement: oauth-uris token');

# --- success ----------------------------------------------------------------------------------
my $res = token_request($t, assertion($t, $es_client, $es));
is($res->{status}, 200, 'ES384 assertion (JWKS by value): token issued') or diag($res->{content});
is($res->{json}{token_type}, 'bearer', '... token_type bearer');
ok($res->{json}{expires_in} > 0 && $res->{json}{expires_in} <= 300, '... expires_in <= 300');
is($res->{json}{scope}, 'system/*.read', '... scope granted');
is($res->{headers}{'cache-control'}, 'no-store', '... Cache-Control: no-store');
is($res->{headers}{pragma}, 'no-cache', '... Pragma: no-cache');
my $es_token = $res->{json}{access_token};

$res = token_request($t, assertion($t, $rs_client, $rs), form => { scope => 'system/*.read' });
is($res->{status}, 200, 'RS384 assertion: token issued') or diag($res->{content});
is($res->{json}{scope}, 'system/Observation.read system/Patient.read',
   'scope: the intersection of system/*.read with the client\'s allowed scopes, in v1 spelling as requested');
$res = token_request($t, assertion($t, $rs_client, $rs),
                     form => { scope => 'system/Observation.r system/Encounter.read' });
is($res->{json}{scope}, 'system/Observation.r', 'scope: only what both allow (v2 letters kept)');
oauth_error(token_request($t, assertion($t, $rs_client, $rs),
                          form => { scope => 'system/Encounter.read' }),
            'invalid_scope', 'scope outside the pre-authorization');

# jwks_url, with jku, and key rotation picked up on an unknown kid
my $url_key = new_key('ES384');
open(my $fh, '>', $t->dir . '/keys/jwks.json') or die;
print $fh jwks_of($url_key);
close $fh;
my $url_client = register_client($t, jwks_url => $jwks_url);
my $first_fetch = time;
$res = token_request($t, assertion($t, $url_client, $url_key));
is($res->{status}, 200, 'ES384 assertion, keys by jwks_url: token issued') or diag($res->{content});
$res = token_request($t, assertion($t, $url_client, $url_key, headers => { jku => $jwks_url }));
is($res->{status}, 200, 'jku equal to the registered URL: accepted') or diag($res->{content});
oauth_error(token_request($t, assertion($t, $url_client, $url_key,
                                        headers => { jku => "http://127.0.0.1:1/evil.json" })),
            'invalid_client', 'jku not the registered URL');
oauth_error(token_request($t, assertion($t, $es_client, $es, headers => { jku => $jwks_url })),
            'invalid_client', 'jku with a client registered by value');
is($t->psql("SELECT count(*) FROM auth_client WHERE client_id = '$url_client' "
            . "AND jwks_cache IS NOT NULL AND jwks_cache_expires > now()"), 1,
   'the fetched JWKS is cached with an expiry');
my $rs_url = new_key('RS384');
open($fh, '>', $t->dir . '/keys/jwks.json') or die;
print $fh jwks_of($url_key, $rs_url);
close $fh;
$t->psql("UPDATE auth_client SET jwks_fetched_at = now() - interval '1 minute' "
         . "WHERE client_id = '$url_client'");
# Each nginx process fetches one client's set at most once per 10 s (issue 11 row 13).
sleep(1) while time < $first_fetch + 11;
$res = token_request($t, assertion($t, $url_client, $rs_url));
is($res->{status}, 200, 'a key added to the hosted JWKS is found (re-fetch on unknown kid)')
    or diag($res->{content});

# --- rejections, in the order of the validation ------------------------------------------------
oauth_error(token_request($t, assertion($t, $es_client, $es), content_type => 'application/json'),
            'invalid_request', 'wrong Content-Type');
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { scope => undef }),
            'invalid_request', 'missing scope');
oauth_error(token_request($t, undef, form => { client_assertion => undef }),
            'invalid_request', 'missing client_assertion');
{
    my $body = form_encode(grant_type => 'client_credentials', scope => 'system/*.read',
                           client_assertion_type => 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
                           client_assertion => assertion($t, $es_client, $es))
        . '&scope=system%2F*.read';
    oauth_error($t->request('POST', '/fhir/auth/token',
                            { 'Content-Type' => 'application/x-www-form-urlencoded' }, $body),
                'invalid_request', 'repeated parameter');
}
oauth_error(token_request($t, assertion($t, $es_client, $es),
                          form => { grant_type => 'authorization_code' }),
            'unsupported_grant_type', 'bad grant_type');
oauth_error(token_request($t, assertion($t, $es_client, $es),
                          form => { client_assertion_type => 'urn:x' }),
            'invalid_client', 'bad client_assertion_type');
is($t->request('GET', '/fhir/auth/token')->{status}, 405, 'GET on the token endpoint: 405');
oauth_error(token_request($t, 'not.a.jwt'), 'invalid_client', 'garbage assertion');
oauth_error(token_request($t, assertion($t, $es_client, $es, claims => { aud => 'https://other/token' })),
            'invalid_client', 'wrong aud');
oauth_error(token_request($t, assertion($t, $es_client, $es, claims => { sub => 'someone-else' })),
            'invalid_client', 'iss != sub');
oauth_error(token_request($t, assertion($t, $es_client, $es, claims => { exp => time - 300 })),
            'invalid_client', 'expired');
oauth_error(token_request($t, assertion($t, $es_client, $es, claims => { exp => time + 3600 })),
            'invalid_client', 'exp more than 5 minutes ahead');
oauth_error(token_request($t, assertion($t, $es_client, $es, claims => { exp => undef })),
            'invalid_client', 'no exp');
oauth_error(token_request($t, assertion($t, $es_client, $es, claims => { jti => undef })),
            'invalid_client', 'no jti');
oauth_error(token_request($t, assertion($t, $es_client, $es, headers => { kid => 'nope' })),
            'invalid_client', 'unknown kid');
oauth_error(token_request($t, assertion($t, $es_client, $es, headers => { typ => undef })),
            'invalid_client', 'no typ');
oauth_error(token_request($t, assertion($t, 'no-such-client', $es)),
            'invalid_client', 'unknown client');
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { client_id => $rs_client }),
            'invalid_client', 'form client_id differs from iss');
{
    my $other = new_key('ES384', $es->{kid});    # same kid, another key
    oauth_error(token_request($t, assertion($t, $es_client, $other)),
                'invalid_client', 'signed with a key that is not registered');
    my $good = assertion($t, $es_client, $es);
    my ($h, $p, $s) = split /\./, $good;
    my $claims = decode_json(decode_base64url($p));
    $claims->{sub} = $claims->{iss} = $rs_client;
    oauth_error(token_request($t, join('.', $h, encode_base64url(encode_json($claims)), $s)),
                'invalid_client', 'tampered payload');
    my $sig = decode_base64url($s);
    substr($sig, 10, 1) = chr(ord(substr($sig, 10, 1)) ^ 1);
    oauth_error(token_request($t, join('.', $h, $p, encode_base64url($sig))),
                'invalid_client', 'tampered signature');
    my $none = encode_base64url(encode_json({ alg => 'none', typ => 'JWT', kid => $es->{kid} }));
    oauth_error(token_request($t, "$none.$p."), 'invalid_client', 'alg none');
    # the classic confusion: HS256 keyed with the public key the server holds
    my $pub_pem = $rs->{pk}->export_key_pem('public');
    my $hs = encode_jwt(payload => { iss => $rs_client, sub => $rs_client,
                                     aud => $t->base_url . '/auth/token', exp => time + 200,
                                     jti => 'hs-' . rand() },
                        key => $pub_pem, alg => 'HS256',
                        extra_headers => { kid => $rs->{kid}, typ => 'JWT' });
    oauth_error(token_request($t, $hs), 'invalid_client', 'HS256 signed with the public key');
    oauth_error(token_request($t, assertion($t, $rs_client, $rs, alg => 'RS256')),
                'invalid_client', 'RS256 (not on the allow-list)');
}
{
    my $a = assertion($t, $es_client, $es, claims => { jti => 'fixed-jti-1' });
    is(token_request($t, $a)->{status}, 200, 'first use of a jti: accepted');
    oauth_error(token_request($t, $a), 'invalid_client', 'replayed jti');
    my $b = assertion($t, $es_client, $es, claims => { jti => 'fixed-jti-1' });
    oauth_error(token_request($t, $b), 'invalid_client', 'jti reused in a new assertion');
}
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { scope => 'system/*.write' }),
            'invalid_scope', 'write scope');
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { scope => 'system/Foo.read' }),
            'invalid_scope', 'unknown resource type');
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { scope => 'system/*.sr' }),
            'invalid_scope', 'letters out of order');
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { scope => 'patient/*.read' }),
            'invalid_scope', 'patient/ scope');
# Issue 13: a scope parameter that is present but empty (or blank) asks for nothing.
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { scope => '' }),
            'invalid_scope', 'empty scope');
oauth_error(token_request($t, assertion($t, $es_client, $es), form => { scope => '   ' }),
            'invalid_scope', 'blank scope');

is($t->run_tool('client', 'disable', $es_client), 0, 'fhir-bulk client disable');
oauth_error(token_request($t, assertion($t, $es_client, $es)), 'invalid_client', 'disabled client');
is($t->run_tool('client', 'enable', $es_client), 0, 'fhir-bulk client enable');
is(token_request($t, assertion($t, $es_client, $es))->{status}, 200, 'enabled again: token issued');

# --- issue 11 row 4: client text cannot forge log lines or audit rows -------------------------
# The forged lines say [emerg], as in the attack: finish() reads the level only at nginx's
# line prefix, so the escaped text of a refused request, which still contains the word, does
# not fail this file, and a forged line that got through would.
{
    my $forged_alg = "RS384\n2026/12/07 04:00:00 [emerg] 1#1: FAKE-ALG";
    my $hdr = encode_base64url(encode_json({ alg => $forged_alg, typ => 'JWT', kid => $rs->{kid} }));
    my $pl = encode_base64url(encode_json({ iss => $rs_client, sub => $rs_client, jti => 'forge-1',
                                            aud => $t->base_url . '/auth/token', exp => time + 60 }));
    oauth_error(token_request($t, "$hdr.$pl." . encode_base64url('sig')), 'invalid_client',
                'alg with a newline and a forged log line');
    oauth_error(token_request($t, assertion($t, $rs_client, $rs,
                    headers => { kid => "nokey\r\n2026/12/07 04:00:00 [emerg] 1#1: FAKE-KID" })),
                'invalid_client', 'kid with CR LF and a forged log line');
    oauth_error(token_request($t, assertion($t, "who\n2026/12/07 04:00:00 [emerg] 1#1: FAKE-ISS", $rs)),
                'invalid_client', 'iss with a newline and a forged log line');
    my $deadline = time + 10;
    my $rows = '';
    while (time < $deadline) {
        $rows = $t->psql("SELECT string_agg(detail, '|' ORDER BY event_id) FROM audit_event "
                         . "WHERE action = 'token' AND detail LIKE '%FAKE-%'") // '';
        last if ($rows =~ tr/|//) >= 2;
        select(undef, undef, undef, 0.2);
    }
    like($rows, qr/alg 'RS384\\x0A2026\/12\/07 04:00:00 \[emerg\] 1#1: FAKE-ALG' not allowed/,
         'audit: the forged alg is stored escaped');
    like($rows, qr/kid 'nokey\\x0D\\x0A2026\/12\/07 04:00:00 \[emerg\] 1#1: FAKE-KID'/,
         'audit: the forged kid is stored escaped');
    like($rows, qr/unknown client who\\x0A2026/, 'audit: the forged iss is stored escaped');
    is($t->psql("SELECT count(*) FROM audit_event WHERE detail ~ '[\\n\\r]' "
                . "OR target ~ '[\\n\\r]' OR client_id ~ '[\\n\\r]'"), 0,
       'audit: no row holds a newline or carriage return');
    local $/;
    open(my $e, '<', $t->dir . '/error.log') or die;
    my $log = <$e> // '';
    unlike($log, qr/^\S+ \S+ \[emerg\] 1#1: FAKE/m, 'error log: no forged line');
    unlike($log, qr/[\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/, 'error log: no control characters');
    like($log, qr/alg 'RS384\\x0A2026\/12\/07 04:00:00 \[emerg\] 1#1: FAKE-ALG' not allowed/,
         'error log: the refusal is logged, escaped');
}

# --- audit and logs ---------------------------------------------------------------------------
my $deadline = time + 10;
my ($issued, $refused);
while (time < $deadline) {
    $issued = $t->psql("SELECT count(*) FROM audit_event WHERE action = 'token' AND result = 200");
    $refused = $t->psql("SELECT count(*) FROM audit_event WHERE action = 'token' AND result = 400");
    last if $issued >= 8 && $refused >= 30;
    select(undef, undef, undef, 0.2);
}
cmp_ok($issued, ">=", 8, "tokens issued are audited ($issued)");
cmp_ok($refused, '>=', 30, "tokens refused are audited ($refused)");
is($t->psql("SELECT count(*) FROM audit_event WHERE action = 'token' AND result = 400 "
            . "AND client_id = '$es_client' AND detail LIKE '%jti already used%'"), 2,
   'the audit record says why (replay, with the client)');
{
    my $all = $t->psql("SELECT string_agg(coalesce(detail, '') || target, ' ') FROM audit_event") // '';
    local $/;
    open(my $e, '<', $t->dir . '/error.log');
    my $log = <$e> // '';
    open(my $a, '<', $t->dir . '/access.log');
    my $access = <$a> // '';
    my $leak = 0;
    for my $secret ($es_token, (split /\./, $es_token)[2]) {
        $leak++ if index($all, $secret) >= 0 || index($log, $secret) >= 0 || index($access, $secret) >= 0;
    }
    is($leak, 0, 'no access token in the audit trail or the nginx logs');
    unlike($all . $log, qr/eyJ[A-Za-z0-9_-]{10,}\.eyJ/, 'no JWT of any kind in the audit trail or error log');
}

$t->finish;
done_testing;
