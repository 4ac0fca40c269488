#!/usr/bin/perl
# Access control of the export API with real tokens: 401 without or with a bad token, scopes
# narrow or refuse kick-offs, jobs and files belong to their client (another client gets 404),
# downloads need a scope for the file's type, Group-restricted clients, disabled clients, and
# the audit trail of kick-offs, cancels and downloads.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use MIME::Base64 ();
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token bearer);
use Crypt::JWT qw(encode_jwt);

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
my @pids = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 3");
open(my $fh, '>', $t->dir . '/groups.ndjson') or die;
for my $g ([ 'payer-a', @pids[0, 1] ], [ 'payer-b', $pids[2] ]) {
    my ($id, @members) = @$g;
    print $fh encode_json({ resourceType => 'Group', id => $id, type => 'person',
        actual => JSON::PP::true,
        member => [ map { { entity => { reference => "Patient/$_" } } } @members ] }), "\n";
}
close $fh;
$t->load($t->dir . '/groups.ndjson');
write_token_key($t);
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1))->start_nginx;
$t->start_worker('--threads', 2);

my $ka = new_key('ES384');
my $kb = new_key('RS384');
my $ko = new_key('ES384');
my $kg = new_key('ES384');
my $a = register_client($t, name => 'A', jwks => jwks_of($ka));
my $b = register_client($t, name => 'B', jwks => jwks_of($kb));
my $o = register_client($t, name => 'O', jwks => jwks_of($ko),
                        scope => 'system/Patient.read system/Observation.read');
my $g = register_client($t, name => 'G', jwks => jwks_of($kg), groups => ['payer-a']);
my $ta = get_token($t, $a, $ka);
my $tb = get_token($t, $b, $kb);

sub kickoff_as {
    my ($token, $path) = @_;
    return $t->kickoff($path, headers => $token ? bearer($token) : {});
}

sub poll_as {
    my ($token, $url) = @_;
    my $deadline = time + 60;
    while (1) {
        my $res = $t->request('GET', $url, { Accept => 'application/json', %{ bearer($token) } });
        return $res if $res->{status} != 202 || time > $deadline;
        select(undef, undef, undef, 0.1);
    }
}

# --- authentication ---------------------------------------------------------------------------
my $res = kickoff_as(undef, '/fhir/$export');
$t->is_outcome($res, 401, 'login', 'kick-off without a token: 401 OperationOutcome');
is($res->{headers}{'www-authenticate'} // '', 'Bearer realm="fhir-bulk"',
   '... with WWW-Authenticate: Bearer, the one realm, no error');
$res = kickoff_as('garbage', '/fhir/$export');
$t->is_outcome($res, 401, 'login', 'kick-off with a malformed token: 401');
like($res->{headers}{'www-authenticate'} // '', qr/error="invalid_token"/, '... error="invalid_token"');
{
    my ($h, $p, $s) = split /\./, $ta;
    my $claims = decode_json(MIME::Base64::decode_base64url($p));
    $claims->{scope} = 'system/*.read';
    $claims->{sub} = $b;
    my $forged = join '.', $h, MIME::Base64::encode_base64url(encode_json($claims)), $s;
    $t->is_outcome(kickoff_as($forged, '/fhir/$export'), 401, 'login',
                   'a token whose claims were changed: 401');
}
$t->is_outcome($t->request('GET', '/fhir/$export-status/00000000-0000-0000-0000-000000000000'),
               401, 'login', 'status without a token: 401');
is($t->get('/fhir/metadata')->{status}, 200, 'metadata needs no token');

# --- a job belongs to its client -------------------------------------------------------------
$res = kickoff_as($ta, '/fhir/$export?_type=Patient,Observation');
is($res->{status}, 202, 'client A: kick-off accepted') or diag($res->{content});
my $status_a = $res->{headers}{'content-location'};
$res = poll_as($ta, $status_a);
is($res->{status}, 200, 'client A: export completes') or diag($res->{content});
my $manifest = $res->{json};
is($manifest->{requiresAccessToken}, JSON::PP::true, 'manifest: requiresAccessToken true');
my ($patient_file) = grep { $_->{type} eq 'Patient' } @{ $manifest->{output} };
my ($obs_file) = grep { $_->{type} eq 'Observation' } @{ $manifest->{output} };
ok($patient_file && $obs_file, 'Patient and Observation files listed');
is($t->request('GET', $patient_file->{url}, bearer($ta))->{status}, 200, 'A downloads its file');
$res = $t->request('GET', $patient_file->{url});
$t->is_outcome($res, 401, 'login', 'download without a token: 401');
is($res->{headers}{'www-authenticate'} // '', 'Bearer realm="fhir-bulk"',
   '... with the API\'s challenge and realm');
$t->is_outcome(poll_as($tb, $status_a), 404, 'not-found', 'B polls A\'s job: 404');
$t->is_outcome($t->request('GET', $patient_file->{url}, bearer($tb)), 404, 'not-found',
               'B downloads A\'s file: 404');
$t->is_outcome($t->request('DELETE', $status_a, bearer($tb)), 404, 'not-found',
               'B cancels A\'s job: 404');
is(poll_as($ta, $status_a)->{status}, 200, '... and A\'s job is still there');

# --- issue 11 row 10: a token MACed with the real key but with a far expiry --------------------
{
    open(my $kf, '<', $t->dir . '/token.key') or die "token.key: $!";
    my ($kid, $secret) = split ' ', scalar <$kf>;
    close $kf;
    my $mint = sub {
        my ($iat, $exp) = @_;
        return encode_jwt(payload => { sub => $a, scope => 'system/*.read', iat => $iat,
                                       exp => $exp, jti => 'minted-' . rand() },
                          key => $secret, alg => 'HS256',
                          extra_headers => { typ => 'at+jwt', kid => $kid });
    };
    my $now = time;
    is(poll_as($mint->($now, $now + 300), $status_a)->{status}, 200,
       'a token minted here with the server key and a 300 s lifetime is accepted (control)');
    my $res = poll_as($mint->($now, $now + 365 * 86400), $status_a);
    $t->is_outcome($res, 401, 'login', 'the same token with exp a year ahead: 401');
    like($res->{content}, qr/lifetime/, '... saying its lifetime is too long');
    $t->is_outcome(poll_as($mint->($now - 3000, $now + 200), $status_a), 401, 'login',
                   'an old iat with exp still ahead (lifetime 3200 s): 401');
    $t->is_outcome(poll_as($mint->($now + 3600, $now + 3700), $status_a), 401, 'login',
                   'iat an hour in the future: 401');
    $t->is_outcome(kickoff_as($mint->($now, $now + 365 * 86400), '/fhir/$export'), 401, 'login',
                   'kick-off with the year-long token: 401');
    $t->is_outcome($t->request('GET', $patient_file->{url}, bearer($mint->($now, $now + 86400))),
                   401, 'login', 'download with a day-long token: 401');
    $t->is_outcome(kickoff_as('e' x 5000, '/fhir/$export'), 401, 'login',
                   'a 5000-byte bearer token: 401');
}

# --- scopes -----------------------------------------------------------------------------------
my $to = get_token($t, $o, $ko);
$res = kickoff_as($to, '/fhir/$export?_type=Encounter');
$t->is_outcome($res, 403, 'forbidden', '_type outside the scopes: 403');
like($res->{content}, qr/Encounter/, '... naming the type');
like($res->{headers}{'www-authenticate'} // '', qr/insufficient_scope/, '... insufficient_scope');
$res = kickoff_as($to, '/fhir/$export');
is($res->{status}, 202, 'no _type: accepted, narrowed to the scopes') or diag($res->{content});
my $status_o = $res->{headers}{'content-location'};
$res = poll_as($to, $status_o);
is($res->{status}, 200, '... completes');
is_deeply([ sort keys %{ { map { $_->{type} => 1 } @{ $res->{json}{output} } } } ],
          [ 'Observation', 'Patient' ], '... with only the types the token may read');
my %o_files = map { $_->{type} => $_->{url} } @{ $res->{json}{output} };
my $obs_only = get_token($t, $o, $ko, 'system/Observation.read');
$res = $t->request('GET', $o_files{Patient}, bearer($obs_only));
$t->is_outcome($res, 403, 'forbidden', 'an Observation token downloading a Patient file: 403');
is($t->request('GET', $o_files{Observation}, bearer($obs_only))->{status}, 200,
   '... the Observation file: 200');
$t->is_outcome(poll_as($obs_only, $status_o), 403, 'forbidden',
               'status with a token that no longer covers the job\'s types: 403');
$t->is_outcome(kickoff_as($obs_only, '/fhir/Patient/$export'), 403, 'forbidden',
               'Patient-level export without Patient read: 403');
$t->is_outcome(kickoff_as($to, '/fhir/Group/payer-a/$export'), 403, 'forbidden',
               'Group-level export without Group read: 403');

# --- Group-restricted client --------------------------------------------------------------------
my $tg = get_token($t, $g, $kg);
$t->is_outcome(kickoff_as($tg, '/fhir/$export'), 403, 'forbidden',
               'Group-restricted client: system export 403');
$t->is_outcome(kickoff_as($tg, '/fhir/Patient/$export'), 403, 'forbidden',
               'Group-restricted client: Patient export 403');
$t->is_outcome(kickoff_as($tg, '/fhir/Group/payer-b/$export'), 403, 'forbidden',
               'Group-restricted client: another Group 403');
$res = kickoff_as($tg, '/fhir/Group/payer-a/$export?_type=Patient');
is($res->{status}, 202, 'Group-restricted client: its Group is accepted') or diag($res->{content});
$res = poll_as($tg, $res->{headers}{'content-location'});
my @patients;
for my $f (@{ $res->{json}{output} || [] }) {
    push @patients, map { decode_json($_)->{id} }
        split /\n/, $t->request('GET', $f->{url}, bearer($tg))->{content};
}
is_deeply([ sort @patients ], [ sort @pids[0, 1] ], '... and exports exactly its members');

# --- disabled client ----------------------------------------------------------------------------
is($t->run_tool('client', 'disable', $a), 0, 'disable A');
$t->is_outcome(kickoff_as($ta, '/fhir/$export'), 401, 'login', 'disabled client: kick-off 401');
$t->is_outcome(poll_as($ta, $status_a), 404, 'not-found', 'disabled client: its jobs are gone (404)');
is($t->run_tool('client', 'enable', $a), 0, 'enable A');

# --- cancel and audit -----------------------------------------------------------------------------
$res = kickoff_as($ta, '/fhir/$export?_type=Condition');
my $to_cancel = $res->{headers}{'content-location'};
is($t->request('DELETE', $to_cancel, bearer($ta))->{status}, 202, 'A cancels its own job');
my ($job_a) = $status_a =~ m{([0-9a-f-]{36})$};
my ($job_c) = $to_cancel =~ m{([0-9a-f-]{36})$};
my $deadline = time + 10;
my %n;
while (time < $deadline) {
    %n = map { split /\|/ } split /\n/, $t->psql(
        "SELECT k || '|' || count(*) FROM (SELECT action || ':' || coalesce(client_id, '-') "
        . "|| ':' || result AS k FROM audit_event) e GROUP BY k");
    last if $n{"download:$b:404"} && $n{"cancel:$a:202"};
    select(undef, undef, undef, 0.2);
}
ok($n{"kickoff:$a:202"}, 'audit: accepted kick-off, with its client');
ok($n{"kickoff:-:401"}, 'audit: kick-off without a valid token');
ok($n{"kickoff:$o:403"}, 'audit: forbidden kick-off');
ok($n{"cancel:$a:202"}, 'audit: cancel');
ok($n{"cancel:$b:404"}, 'audit: refused cancel of another client\'s job');
ok($n{"download:$a:200"}, 'audit: download');
ok($n{"download:$b:404"}, 'audit: refused download of another client\'s file');
ok($n{"download:$o:403"}, 'audit: download refused for scope');
is($t->psql("SELECT count(*) FROM audit_event WHERE action = 'cancel' AND target = '$job_c'"), 1,
   'audit: the cancel names the job');
is($t->psql("SELECT count(*) FROM audit_event WHERE remote_addr = '127.0.0.1'") > 0 ? 1 : 0, 1,
   'audit: the peer address is recorded');

$t->finish;
done_testing;
