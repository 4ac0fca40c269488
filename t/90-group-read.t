#!/usr/bin/perl
# The Group API's read and search with real tokens (issue 14): scopes (Group r / s, v1 read),
# which Groups a client sees (loaded ones its registration allows, the ones it created; never
# another client's: 404), searchset Bundles with name, _id, _count paging and _summary=count,
# and the token endpoint granting Group write scopes only to clients registered for them.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token bearer
                      token_request assertion);

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
my @pids = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 3");
open(my $fh, '>', $t->dir . '/groups.ndjson') or die;
for my $g ([ 'payer-a', 'Payer A roster', @pids[0, 1] ], [ 'payer-b', 'Payer B roster', $pids[2] ]) {
    my ($id, $name, @members) = @$g;
    print $fh encode_json({ resourceType => 'Group', id => $id, type => 'person', name => $name,
        actual => JSON::PP::true,
        member => [ map { { entity => { reference => "Patient/$_" } } } @members ] }), "\n";
}
close $fh;
$t->load($t->dir . '/groups.ndjson');
# every loaded Group (the sample has its own besides these two)
my @loaded = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Group' AND NOT deleted ORDER BY res_id");
write_token_key($t);
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1))->start_nginx;

my $ka = new_key('ES384');
my $kb = new_key('ES384');
my $kg = new_key('ES384');
my $ko = new_key('ES384');
my $kv = new_key('ES384');
my $a = register_client($t, name => 'A', jwks => jwks_of($ka),
                        scope => 'system/*.read system/Group.cud');
my $b = register_client($t, name => 'B', jwks => jwks_of($kb),
                        scope => 'system/*.read system/Group.cud');
my $g = register_client($t, name => 'G', jwks => jwks_of($kg), groups => ['payer-a'],
                        scope => 'system/*.read system/Group.cud');
my $o = register_client($t, name => 'O', jwks => jwks_of($ko),
                        scope => 'system/Patient.read system/Group.r');
my $v = register_client($t, name => 'V1', jwks => jwks_of($kv),
                        scope => 'system/*.read system/Group.write');
my $ta = get_token($t, $a, $ka, 'system/*.read system/Group.cud');
my $tb = get_token($t, $b, $kb, 'system/*.read system/Group.cud');
my $tg = get_token($t, $g, $kg, 'system/*.read system/Group.cud');
my $to = get_token($t, $o, $ko, 'system/Patient.read system/Group.r');

sub as {
    my ($token, $method, $path, $body) = @_;
    my %h = (Accept => 'application/fhir+json', $token ? %{ bearer($token) } : ());
    $h{'Content-Type'} = 'application/fhir+json' if defined $body;
    return $t->request($method, $path, \%h, $body);
}

# --- token endpoint: Group write scopes ----------------------------------------------------------
my $res = token_request($t, assertion($t, $a, $ka), form => { scope => 'system/Group.cud' });
is($res->{status}, 200, 'a client registered for Group.cud is granted it');
is($res->{json}{scope}, 'system/Group.cud', '... exactly');
$res = token_request($t, assertion($t, $o, $ko), form => { scope => 'system/Group.cud' });
is($res->{status}, 400, 'a client not registered for Group writes is refused them');
is($res->{json}{error}, 'invalid_scope', '... invalid_scope');
for my $s ('system/Patient.cud', 'system/*.cud', 'system/Observation.write', 'system/*.write') {
    $res = token_request($t, assertion($t, $a, $ka), form => { scope => $s });
    is($res->{json}{error} // '', 'invalid_scope', "$s stays refused");
}
$res = token_request($t, assertion($t, $v, $kv),
                     form => { scope => 'system/Group.read system/Group.write' });
is($res->{status}, 200, 'v1 Group.write is granted to a client registered for it');
is($res->{json}{scope}, 'system/Group.read system/Group.write', '... in v1 spelling');
my $tv = $res->{json}{access_token};

# --- read ------------------------------------------------------------------------------------------
$res = as(undef, 'GET', '/fhir/Group/payer-a');
$t->is_outcome($res, 401, undef, 'read without a token: 401');
$res = as($ta, 'GET', '/fhir/Group/payer-a');
is($res->{status}, 200, 'read a loaded Group');
is($res->{json}{id}, 'payer-a', '... the Group');
is(scalar @{ $res->{json}{member} }, 2, '... with its members');
like($res->{headers}{etag} // '', qr{^W/"\d+"$}, '... and an ETag');
$res = as($to, 'GET', '/fhir/Group/payer-a');
is($res->{status}, 200, 'Group.r allows reading');
$res = as($to, 'GET', '/fhir/Group?name=Payer');
$t->is_outcome($res, 403, 'forbidden', 'Group.r without s: search refused (403)');
$res = as($tv, 'GET', '/fhir/Group?name=Payer');
is($res->{status}, 200, 'v1 Group.read allows search');
$res = as($tg, 'GET', '/fhir/Group/payer-a');
is($res->{status}, 200, 'a Group-restricted client reads its Group');
$res = as($tg, 'GET', '/fhir/Group/payer-b');
$t->is_outcome($res, 404, 'not-found', '... and not another: 404');
$res = as($ta, 'GET', '/fhir/Group/nope');
$t->is_outcome($res, 404, 'not-found', 'an unknown Group: 404');
$res = as($ta, 'PATCH', '/fhir/Group/payer-a');
is($res->{status}, 405, 'PATCH: 405');

# --- created Groups belong to their creator --------------------------------------------------------
my $body = encode_json({ resourceType => 'Group', type => 'person', actual => JSON::PP::true,
    name => 'Payer A pilot', member => [ { entity => { reference => "Patient/$pids[0]" } } ] });
$res = as($ta, 'POST', '/fhir/Group', $body);
is($res->{status}, 201, 'A creates a Group') or diag($res->{content});
my $mine = $res->{json}{id};
$res = as($ta, 'GET', "/fhir/Group/$mine");
is($res->{status}, 200, 'A reads it');
$t->is_outcome(as($tb, 'GET', "/fhir/Group/$mine"), 404, 'not-found', 'B does not see it: 404');
$res = as($tg, 'POST', '/fhir/Group', $body);
is($res->{status}, 201, 'a Group-restricted client creates a Group');
my $gs = $res->{json}{id};
is(as($tg, 'GET', "/fhir/Group/$gs")->{status}, 200, '... and reads it though not registered for it');

# --- search ---------------------------------------------------------------------------------------
sub ids_of { return [ sort map { $_->{resource}{id} } @{ $_[0]{json}{entry} || [] } ] }
$res = as($ta, 'GET', '/fhir/Group');
is($res->{status}, 200, 'search all');
is($res->{json}{type}, 'searchset', '... a searchset Bundle');
is_deeply(ids_of($res), [ sort @loaded, $mine ],
          'A sees the loaded Groups and its own, not G\'s');
is($res->{json}{total}, @loaded + 1, '... total: the loaded ones and its own');
$res = as($tb, 'GET', '/fhir/Group');
is_deeply(ids_of($res), \@loaded, 'B sees only the loaded Groups');
$res = as($tg, 'GET', '/fhir/Group');
is_deeply(ids_of($res), [ sort 'payer-a', $gs ], 'G sees its registered Group and its own');
$res = as($ta, 'GET', '/fhir/Group?name=payer%20a');
is_deeply(ids_of($res), [ sort 'payer-a', $mine ], 'name: case-insensitive prefix');
$res = as($ta, 'GET', '/fhir/Group?name:exact=Payer%20A%20roster');
is_deeply(ids_of($res), ['payer-a'], 'name:exact');
$res = as($ta, 'GET', '/fhir/Group?_id=payer-b');
is_deeply(ids_of($res), ['payer-b'], '_id');
$res = as($ta, 'GET', '/fhir/Group?_summary=count');
is($res->{json}{total}, @loaded + 1, '_summary=count: the total');
ok(!exists $res->{json}{entry}, '... without entries');
$res = as($ta, 'GET', '/fhir/Group?_count=2');
is(scalar @{ $res->{json}{entry} }, 2, '_count=2: two entries');
my ($next) = map { $_->{url} } grep { $_->{relation} eq 'next' } @{ $res->{json}{link} };
ok($next, '... and a next link');
my @paged = @{ ids_of($res) };
while ($next) {
    $res = as($ta, 'GET', $next);
    push @paged, @{ ids_of($res) };
    ($next) = map { $_->{url} } grep { $_->{relation} eq 'next' } @{ $res->{json}{link} };
}
is_deeply([ sort @paged ], [ sort @loaded, $mine ], 'the pages hold every Group once');
$t->is_outcome(as($ta, 'GET', '/fhir/Group?code=x'), 400, 'not-supported',
               'an unsupported search parameter: 400');
$t->is_outcome(as($ta, 'GET', '/fhir/Group?_count=9999'), 400, 'invalid', '_count too large: 400');

# --- exports of created Groups: another client gets 404 -------------------------------------------
my $ko_res = $t->kickoff("/fhir/Group/$mine/\$export", headers => bearer($tb));
$t->is_outcome($ko_res, 404, 'not-found', "another client's Group export: 404");

# --- writes need write scopes ---------------------------------------------------------------------
my $tr = get_token($t, $a, $ka, 'system/*.read');
$t->is_outcome(as($tr, 'POST', '/fhir/Group', $body), 403, 'forbidden',
               'create without Group.c: 403');
$t->is_outcome(as($tr, 'DELETE', "/fhir/Group/$mine"), 403, 'forbidden',
               'delete without Group.d: 403');

ok($t->wait_until(sub {
       $t->psql("SELECT count(*) FROM audit_event WHERE action = 'group' AND result = 201") == 2 }),
   'creations are audited');

$t->finish;
done_testing;
