#!/usr/bin/perl
# The operator API (issue 16; core/server/ops_api.h) over real HTTP against real nginx and
# PostgreSQL: 401 without a token, 403 for an export client's token and for a token without
# the route's operator scope, 200 for an operator's; jobs in progress with progress, history,
# clients, audit, daily stats; enabling and disabling a client takes effect at once (its token
# requests are refused) and is audited; operator clients cannot be disabled from the API; a
# disabled operator's token is refused at once; every parameter limit answers 400.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client assertion token_request
                      get_token bearer);

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(20);
write_token_key($t);
my $ops_location = <<'EOF';
        location /fhir/_ops/api/ {
            allow 127.0.0.1;
            deny all;
            fhir_bulk_api;
            fhir_bulk_operator_api on;
            fhir_bulk_base_url %%BASE_URL%%;
        }
EOF
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1, server_extra => $ops_location));
$t->start_nginx;
my $BIN = $FhirBulk::Test::BIN;
my $db = $t->conninfo;
my $API = '/fhir/_ops/api';

my %key = map { $_ => new_key('ES384') } qw(alice bob op);
my %id;
$id{$_} = register_client($t, name => $_, jwks => jwks_of($key{$_})) for qw(alice bob);
$id{op} = register_client($t, name => 'ops', jwks => jwks_of($key{op}), operator => 1,
                          scope => 'operator/*.read operator/clients.write');
ok($id{op}, 'an operator client is registered with --operator');

# operator/ scopes are for operator clients only: the tool refuses them, the database too
{
    my $file = $t->dir . '/alice.jwks';
    open(my $fh, '>', $file) or die; print $fh jwks_of(new_key('ES384')); close $fh;
    my $st = system("$BIN client add --name x --jwks $file --scope 'operator/*.read' --db '$db' "
                    . ">/dev/null 2>&1") >> 8;
    is($st, 2, 'client add refuses operator/ scopes without --operator');
    is($t->psql("SELECT count(*) FROM auth_client WHERE allowed_scopes LIKE '%operator/%' "
                . "AND NOT operator"), 0, 'no export client holds an operator scope');
    my $err = `psql '$db' -X -q -c "UPDATE auth_client SET allowed_scopes = 'operator/*.read' WHERE client_id = '$id{alice}'" 2>&1`;
    like($err, qr/auth_client_operator_scopes/, 'the CHECK refuses it in the database too');
}

my $res = token_request($t, assertion($t, $id{alice}, $key{alice}),
                        form => { scope => 'operator/*.read' });
is($res->{status}, 400, 'an export client asking for an operator scope is refused');
is($res->{json}{error}, 'invalid_scope', '... invalid_scope');

my $alice = get_token($t, $id{alice}, $key{alice});
my $op = get_token($t, $id{op}, $key{op}, 'operator/*.read operator/clients.write');
my $op_tok = token_request($t, assertion($t, $id{op}, $key{op}),
                           form => { scope => 'operator/*.read operator/clients.write' });
is($op_tok->{json}{scope}, 'operator/*.read operator/clients.write', 'the operator\'s scopes');

sub api {
    my ($method, $path, $token) = @_;
    return $t->request($method, "$API/$path", $token ? bearer($token) : {});
}

# --- 401 / 403 / 200 on every route -------------------------------------------------------------
my @reads = qw(jobs history clients audit stats);
for my $r (@reads) {
    my $x = api('GET', $r);
    $t->is_outcome($x, 401, undef, "GET $r without a token: 401 OperationOutcome");
    is(api('GET', $r, $alice)->{status}, 403, "GET $r with an export client's token: 403");
    my $ok = api('GET', $r, $op);
    is($ok->{status}, 200, "GET $r with the operator's token: 200");
    like($ok->{headers}{'content-type'}, qr{^application/json}, '... JSON');
    is($ok->{headers}{'cache-control'}, 'no-store', '... not cached');
}
is(api('POST', "clients/$id{bob}/disable")->{status}, 401, 'disable without a token: 401');
is(api('POST', "clients/$id{bob}/disable", $alice)->{status}, 403, 'disable as an export client: 403');
is(api('GET', 'jobs', 'not.a.token')->{status}, 401, 'a malformed token: 401');

# a token with one operator scope opens only its routes
my $jobs_only = get_token($t, $id{op}, $key{op}, 'operator/jobs.read');
is(api('GET', 'jobs', $jobs_only)->{status}, 200, 'operator/jobs.read: jobs');
is(api('GET', 'history', $jobs_only)->{status}, 200, '... and history');
is(api('GET', 'audit', $jobs_only)->{status}, 403, '... not the audit trail');
is(api('POST', "clients/$id{bob}/disable", $jobs_only)->{status}, 403, '... nor writes');
my $read_only = get_token($t, $id{op}, $key{op}, 'operator/*.read');
is(api('POST', "clients/$id{bob}/disable", $read_only)->{status}, 403,
   'operator/*.read cannot disable clients');

# operator scopes read no data: an operator's token cannot export
is($t->kickoff('/fhir/$export', headers => bearer($op))->{status}, 403,
   'an operator token cannot kick off an export');

# --- jobs in progress, history ----------------------------------------------------------------
my $k1 = $t->kickoff('/fhir/$export?_type=Patient,Observation', headers => bearer($alice));
is($k1->{status}, 202, 'alice kicks off an export (no worker yet)');
my ($job1) = $k1->{headers}{'content-location'} =~ m{/([^/]+)$};
my $jobs = api('GET', 'jobs', $op)->{json}{jobs};
my ($row) = grep { $_->{job_id} eq $job1 } @$jobs;
ok($row, 'the waiting export is listed as in progress');
is($row->{client_id}, $id{alice}, '... with its client');
is($row->{client_name}, 'alice', '... and the client\'s name');
is($row->{state}, 'accepted', '... its state');
is($row->{progress_percent}, 0, '... and its progress (a number)');
is($row->{types}, 'Patient,Observation', '... and types');

$t->start_worker('--janitor-interval-seconds', 1);
ok($t->wait_until(sub {
    $t->request('GET', "/fhir/\$export-status/$job1", bearer($alice))->{status} == 200 }, 60),
   'the export completes');
is_deeply([ grep { $_->{job_id} eq $job1 } @{ api('GET', 'jobs', $op)->{json}{jobs} } ], [],
          'a completed export is no longer in progress');
my $completed = api('GET', 'jobs?state=completed', $op)->{json}{jobs};
is(scalar(grep { $_->{job_id} eq $job1 } @$completed), 1, '?state=completed lists it');
is($completed->[0]{progress_percent}, 100, '... at 100 %');

# download one file (for the downloads figure)
my $manifest = $t->request('GET', "/fhir/\$export-status/$job1", bearer($alice))->{json};
is($t->request('GET', $manifest->{output}[0]{url}, bearer($alice))->{status}, 200, 'a download');

# The second export is cancelled while it waits: with a worker running, a quiet machine could
# finish it before the DELETE, and history would say completed.
$t->stop_worker;
my $k2 = $t->kickoff('/fhir/$export?_type=Condition', headers => bearer($alice));
my ($job2) = $k2->{headers}{'content-location'} =~ m{/([^/]+)$};
my $del;
ok($t->wait_until(sub {
    $del = $t->request('DELETE', "/fhir/\$export-status/$job2", bearer($alice));
    $del->{status} == 202 }, 20), 'a second export is cancelled');
$t->start_worker('--janitor-interval-seconds', 1);

my $hist = api('GET', 'history', $op)->{json};
my %h = map { $_->{job_id} => $_ } @{ $hist->{history} };
is($h{$job1}{outcome}, 'completed', 'history: the completed export');
ok($h{$job1}{resources} > 0, '... with its resource count (a number)');
is($h{$job2}{outcome}, 'cancelled', 'history: the cancelled one');
is($hist->{limit}, 50, 'history: the default page size');
my $page = api('GET', 'history?limit=1', $op)->{json};
is(scalar @{ $page->{history} }, 1, 'history?limit=1: one row');
is($page->{next_offset}, 1, '... and the next page\'s offset');
my $page2 = api('GET', 'history?limit=1&offset=1', $op)->{json};
isnt($page2->{history}[0]{job_id}, $page->{history}[0]{job_id}, 'the next page is another job');
is_deeply(api('GET', "history?client=$id{bob}", $op)->{json}{history}, [], 'history?client= filters');
is(scalar @{ api('GET', 'history?outcome=cancelled', $op)->{json}{history} }, 1,
   'history?outcome= filters');

# --- clients, enable, disable ---------------------------------------------------------------
my $clients = api('GET', 'clients', $op);
my %c = map { $_->{client_id} => $_ } @{ $clients->{json}{clients} };
is(scalar(keys %c), 3, 'three clients');
is($c{$id{op}}{operator}, JSON::PP::true, 'the operator is marked');
is($c{$id{bob}}{enabled}, JSON::PP::true, 'bob is enabled');
unlike($clients->{content}, qr/"kty"|"x"\s*:/, 'no key material in the list');

my $dis = api('POST', "clients/$id{bob}/disable", $op);
is($dis->{status}, 200, 'the operator disables bob');
is_deeply($dis->{json}, { client_id => $id{bob}, enabled => JSON::PP::false, outcome => 'disabled' },
          '... the answer says so');
is($t->psql("SELECT enabled FROM auth_client WHERE client_id = '$id{bob}'"), 'f', '... in the database');
$res = token_request($t, assertion($t, $id{bob}, $key{bob}));
is($res->{status}, 400, 'a disabled client gets no token');
is($res->{json}{error}, 'invalid_client', '... invalid_client');
is(api('POST', "clients/$id{bob}/disable", $op)->{json}{outcome}, 'unchanged',
   'disabling again: unchanged');
my $events = api('GET', "audit?action=client&target=$id{bob}", $op)->{json}{events};
ok(scalar(@$events) >= 1, 'the audit trail shows the change');
is($events->[-1]{client_id}, $id{op}, '... made by the operator');
like($events->[-1]{detail}, qr/^disable: disabled/, '... what was done');
is($events->[-1]{result}, 200, '... with its status');
is(api('POST', "clients/$id{bob}/enable", $op)->{json}{outcome}, 'enabled', 'bob is enabled again');
ok(get_token($t, $id{bob}, $key{bob}), 'and gets a token again');

is(api('POST', "clients/$id{op}/disable", $op)->{status}, 403,
   'an operator client cannot be disabled from the API');
is($t->psql("SELECT enabled FROM auth_client WHERE client_id = '$id{op}'"), 't', '... it is not');
is(api('POST', 'clients/nosuchclient/disable', $op)->{status}, 404, 'an unknown client: 404');
is(api('GET', "clients/$id{bob}/disable", $op)->{status}, 405, 'GET on a write route: 405');
is(api('POST', 'jobs', $op)->{status}, 405, 'POST on a read route: 405');
is(api('GET', 'nosuchroute', $op)->{status}, 404, 'an unknown route: 404');

# --- audit and stats --------------------------------------------------------------------------
my $audit = api('GET', "audit?client=$id{alice}&action=kickoff", $op)->{json};
is(scalar @{ $audit->{events} }, 2, 'audit: alice\'s two kick-offs');
is($audit->{events}[0]{action}, 'kickoff', '... by action');
ok($audit->{events}[0]{event_id} > $audit->{events}[1]{event_id}, '... newest first');
is(scalar @{ api('GET', 'audit?since=2999-01-01', $op)->{json}{events} }, 0, 'audit?since= filters');
is(scalar @{ api('GET', 'audit?until=2000-01-01', $op)->{json}{events} }, 0, 'audit?until= filters');
my $today = `date -u +%Y-%m-%d`; chomp $today;
ok(scalar @{ api('GET', "audit?since=$today&until=$today", $op)->{json}{events} } > 0,
   'a date covers its whole day');
ok(scalar(grep { $_->{action} eq 'ops' && $_->{result} == 403 }
          @{ api('GET', 'audit?action=ops&limit=500', $op)->{json}{events} }) > 0,
   'refused operator requests are audited');

my $stats = api('GET', 'stats', $op)->{json}{days};
is(scalar @$stats, 30, 'stats: 30 days by default');
is($stats->[-1]{day}, $today, '... the last is today');
ok($stats->[-1]{started} >= 2, '... with the exports started today');
is($stats->[-1]{completed}, 1, '... completed');
is($stats->[-1]{cancelled}, 1, '... cancelled');
ok($stats->[-1]{resources} > 0, '... resources');
ok(defined $stats->[-1]{resources_per_second}, '... resources per second');
ok($stats->[-1]{downloads} >= 1, '... downloads');
is(scalar @{ api('GET', 'stats?days=7', $op)->{json}{days} }, 7, 'stats?days=7');

# --- parameter limits: 400 OperationOutcome ---------------------------------------------------
my @bad = (
    'jobs?limit=0', 'jobs?limit=501', 'jobs?limit=abc', 'jobs?offset=-1', 'jobs?offset=100001',
    'jobs?state=bogus', 'jobs?outcome=completed', 'jobs?client=a%20b', 'jobs?limit=1&limit=2',
    'jobs?nosuch=1', 'history?outcome=running', 'history?state=completed',
    'audit?since=yesterday', 'audit?since=2026-02-30', 'audit?since=2026-01-02&until=2026-01-01',
    'audit?result=99', 'audit?result=600', 'audit?action=bogus', 'audit?target=' . ('x' x 513),
    'audit?target=%01', 'audit?client=' . ('a' x 129), 'stats?days=0', 'stats?days=367',
    'clients?limit=5', 'jobs?' . join('&', map { "a$_=1" } 1 .. 17),
    'audit?target=' . ('y' x 4100),
);
for my $q (@bad) {
    $t->is_outcome(api('GET', $q, $op), 400, undef, 'GET ' . substr($q, 0, 60) . ': 400');
}

# --- a disabled operator is refused at once ----------------------------------------------------
system("$BIN client disable $id{op} --db '$db' >/dev/null") == 0 or die 'client disable';
is(api('GET', 'jobs', $op)->{status}, 403, 'a disabled operator\'s live token: 403 at once');

# --- the operator API needs authorization: nginx -t refuses it without -----------------------
$t->stop_nginx;
$t->write_conf(FhirBulk::Test::default_http_conf(
    auth => 0, location_extra => 'fhir_bulk_operator_api on;'));
my ($st, $out) = $t->nginx_test;
isnt($st, 0, 'nginx -t refuses fhir_bulk_operator_api on with fhir_bulk_auth off');
like($out, qr/operator API needs authorization/, '... saying why');

$t->finish;
done_testing;
