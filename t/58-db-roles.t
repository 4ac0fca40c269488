#!/usr/bin/perl
# Least-privilege database roles (issue 15): roles created with LOGIN and passwords, given
# exactly what `fhir-bulk grants` prints, run everything the product does: nginx (as the
# nginx role) issues tokens (a client by value, one by JWKS URL whose cache it writes),
# accepts system, Group and Patient kick-offs, answers polls, serves files and cancels; the
# worker (as the worker role) plans and runs the exports, and its janitor deletes expired jobs
# and prunes the job history. Neither role can do what it was not given.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token bearer);

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(30);
my $BIN = $FhirBulk::Test::BIN;
my $dir = $t->dir;
my $owner = $t->conninfo;

# --- the roles and their grants -----------------------------------------------------------
$t->psql("CREATE ROLE fhir_bulk_nginx LOGIN PASSWORD 'nginx-pw-1'");
$t->psql("CREATE ROLE fhir_bulk_worker LOGIN PASSWORD 'worker-pw-1'");
my $sql = `$BIN grants`;
is($?, 0, 'fhir-bulk grants');
like($sql, qr/GRANT .* TO fhir_bulk_nginx;/, 'grants for the nginx role');
like($sql, qr/GRANT .* TO fhir_bulk_worker;/, 'grants for the worker role');
open(my $psql, '|-', 'psql', $owner, '-X', '-q', '-v', 'ON_ERROR_STOP=1') or die;
print $psql $sql;
close $psql;
is($?, 0, 'psql applies them as the schema owner');

my ($port) = $owner =~ /port=(\d+)/;
my ($dbname) = $owner =~ /dbname=(\S+)/;
my $nginx_db = "host=127.0.0.1 port=$port dbname=$dbname user=fhir_bulk_nginx password=nginx-pw-1";
my $worker_db = "host=127.0.0.1 port=$port dbname=$dbname user=fhir_bulk_worker password=worker-pw-1";
# nginx reads its connection string from the file default_http_conf names.
open(my $fh, '>', $t->conninfo_file) or die;
print $fh "$nginx_db\n";
close $fh;
chmod 0600, $t->conninfo_file;

# Runs SQL as a role; returns true when it succeeded.
sub as_role {
    my ($conninfo, $statement) = @_;
    my $st = system("psql '$conninfo' -X -q -v ON_ERROR_STOP=1 -c \"$statement\" >/dev/null 2>&1");
    return $st == 0;
}
ok(as_role($nginx_db, 'SELECT 1'), 'the nginx role logs in with its password');
ok(as_role($worker_db, 'SELECT 1'), 'the worker role logs in with its password');

# --- the stack with those roles -------------------------------------------------------------
write_token_key($t);
my $url_key = new_key('ES384');
open($fh, '>', "$dir/jwks.json") or die;
print $fh jwks_of($url_key);
close $fh;
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1, server_extra =>
    "location = /keys/jwks.json { alias %%TESTDIR%%/jwks.json; default_type application/json; }"));
$t->start_nginx;
{
    local $t->{conninfo} = $worker_db;
    $t->start_worker('--janitor-interval-seconds', 1, '--retention-seconds', 600,
                     '--grace-seconds', 0, '--history-days', 1);
}

my $key = new_key('RS384');
my $client = register_client($t, jwks => jwks_of($key));
my $token = get_token($t, $client, $key);
ok($token, 'a token (client by value): the nginx role reads clients and records the jti');
my $url_client = register_client($t, jwks_url => $t->base_url =~ s{/fhir$}{/keys/jwks.json}r);
my $url_token = get_token($t, $url_client, $url_key);
ok($url_token, 'a token (client by JWKS URL)');
is($t->psql("SELECT jwks_cache IS NOT NULL FROM auth_client WHERE client_id = '$url_client'"), 't',
   'nginx cached the fetched JWKS (its column grant)');

my $group = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Group' ORDER BY res_id LIMIT 1");
ok($group, "a Group to export ($group)");
my %auth = %{ bearer($token) };
my @kickoffs = ('/fhir/$export?_type=Patient,Observation',
                "/fhir/Group/$group/\$export",
                '/fhir/Patient/$export?_type=Patient,Condition&_typeFilter=Condition%3Fclinical-status%3Dactive');
my @locations;
for my $path (@kickoffs) {
    my $res = $t->kickoff($path, headers => \%auth);
    is($res->{status}, 202, "kick-off $path") or diag($res->{content});
    push @locations, $res->{headers}{'content-location'};
}
my $total = 0;
for my $loc (@locations) {
    my $res;
    ok($t->wait_until(sub {
           $res = $t->request('GET', $loc, \%auth);
           $res->{status} != 202 }, 180),
       'the worker role ran the export');
    is($res->{status}, 200, 'completed') or diag($res->{content});
    for my $item (@{ $res->{json}{output} || [] }) {
        my $file = $t->request('GET', $item->{url}, \%auth);
        is($file->{status}, 200, "download $item->{type}") or last;
        my $lines = () = $file->{content} =~ /\n/g;
        $total += $lines;
        is($lines, $item->{count}, "$item->{type}: the manifest's count");
    }
}
ok($total > 0, "$total resources downloaded");

# --- the Group API as these roles: they write Group rows only (the resource_group partition) ---
my $gkey = new_key('ES384');
my $gclient = register_client($t, name => 'groups', jwks => jwks_of($gkey),
                              scope => 'system/*.read system/Group.cud');
my %gauth = %{ bearer(get_token($t, $gclient, $gkey, 'system/*.read system/Group.cud')) };
my @some = split /\n/, $t->psql("SELECT res_id FROM resource WHERE res_type = 'Patient' "
                                . "ORDER BY res_id LIMIT 3");
sub group_write {
    my ($method, $path, $doc, %h) = @_;
    return $t->request($method, $path, { %gauth, Accept => 'application/fhir+json',
        'Content-Type' => 'application/fhir+json', %h }, encode_json($doc));
}
my %member_group = (resourceType => 'Group', type => 'person', actual => JSON::PP::true,
    name => 'roles', member => [ map { { entity => { reference => "Patient/$_" } } } @some[0, 1] ]);
my $gres = group_write('POST', '/fhir/Group', \%member_group);
is($gres->{status}, 201, 'nginx role: POST a member-based Group') or diag($gres->{content});
my $gid = $gres->{json}{id} // '';
$member_group{id} = $gid;
$member_group{member} = [ map { { entity => { reference => "Patient/$_" } } } @some ];
$gres = group_write('PUT', "/fhir/Group/$gid", \%member_group);
is($gres->{status}, 200, '... PUT replaces it') or diag($gres->{content});
is($t->psql("SELECT count(*) FROM group_member WHERE group_id = '$gid'"), 3, '... three members');
$gres = $t->request('DELETE', "/fhir/Group/$gid", { %gauth, Accept => 'application/fhir+json' });
is($gres->{status}, 204, '... DELETE removes it (a tombstone)') or diag($gres->{content});
is($t->psql("SELECT deleted FROM resource WHERE res_type = 'Group' AND res_id = '$gid'"), 't',
   '... stored as deleted');
my $mf = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/member-filter';
$gres = group_write('POST', '/fhir/Group', { resourceType => 'Group', type => 'person',
    actual => JSON::PP::true, name => 'cohort', modifierExtension => [ { url => $mf,
    valueExpression => { language => 'application/x-fhir-query', expression => 'Patient?gender=female' } } ] },
    Prefer => 'respond-async');
is($gres->{status}, 202, 'a criteria-based Group: 202') or diag($gres->{content});
my $gstatus = $gres->{headers}{'content-location'};
ok($t->wait_until(sub {
       $gres = $t->request('GET', $gstatus, { %gauth, Accept => 'application/fhir+json' });
       $gres->{status} != 202 }, 60), '... evaluated in time');
is($gres->{status}, 201, '... the worker role evaluated and stored it') or diag($gres->{content});
is($gres->{json}{quantity}, $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Patient' "
                                     . "AND body::jsonb ->> 'gender' = 'female'"),
   '... with every female patient');

# a cancel (nginx role: units and files deleted, the history trigger as the owner)
my $res = $t->kickoff('/fhir/$export?_type=Encounter', headers => \%auth);
is($res->{status}, 202, 'another kick-off');
my $cancel_loc = $res->{headers}{'content-location'};
$res = $t->request('DELETE', $cancel_loc, \%auth);
ok($res->{status} == 202 || $res->{status} == 503, "DELETE answered $res->{status}");
if ($res->{status} == 503) {    # being planned: retry as told
    ok($t->wait_until(sub { $t->request('DELETE', $cancel_loc, \%auth)->{status} == 202 }, 30),
       'DELETE accepted on retry');
}
my ($cancel_job) = $cancel_loc =~ m{([0-9a-f-]{36})$};
# (cancelled while running, or completed first and then deleted: cancelled_at)
is($t->psql("SELECT outcome = 'cancelled' OR cancelled_at IS NOT NULL FROM export_job_history "
            . "WHERE job_id = '$cancel_job'"), 't', 'the history row of the cancel');

# the janitor as the worker role (the exports expire now)
$t->psql("UPDATE export_job SET expires_at = now() - interval '1 minute' WHERE state = 'completed'");
ok($t->wait_until(sub { $t->psql('SELECT count(*) FROM export_job') eq '0' }, 60),
   'the janitor deleted the expired and cancelled jobs');
is($t->psql('SELECT count(*) FROM export_job_history WHERE purged_at IS NOT NULL'), 4,
   'their history remains');
$t->psql("UPDATE export_job_history SET finished_at = now() - interval '3 days' "
         . "WHERE job_id = '$cancel_job'");
ok($t->wait_until(sub { $t->psql('SELECT count(*) FROM export_job_history') eq '3' }, 30),
   'the janitor pruned old history (--history-days 1)');

# --- and nothing more ---------------------------------------------------------------------------
ok(!as_role($nginx_db, 'SELECT count(*) FROM resource_patient'), 'nginx: no direct partition reads');
ok(!as_role($nginx_db, "UPDATE resource SET deleted = true WHERE res_type = 'Patient'"),
   'nginx: cannot change stored resources in place');
ok(!as_role($nginx_db, "UPDATE auth_client SET allowed_scopes = 'system/*.*'"),
   'nginx: cannot change a client\'s scopes');
ok(!as_role($nginx_db, "INSERT INTO auth_client (client_id, name, jwks, allowed_scopes) VALUES ('x', 'x', '{}', 'x')"),
   'nginx: cannot register clients');
# The operator API (issue 16) reads the audit trail and the job history; it changes a client
# only through the audited function, never the table, and the worker may not call it.
ok(as_role($nginx_db, 'SELECT count(*) FROM audit_event'), 'nginx: reads the audit trail (operator API)');
ok(!as_role($nginx_db, 'DELETE FROM audit_event'), 'nginx: cannot delete audit events');
ok(!as_role($nginx_db, 'UPDATE audit_event SET detail = NULL'), 'nginx: cannot rewrite audit events');
ok(!as_role($nginx_db, 'DELETE FROM export_job_history'), 'nginx: cannot delete history');
ok(!as_role($nginx_db, 'UPDATE auth_client SET enabled = false'),
   'nginx: cannot disable clients but through the function');
ok(as_role($nginx_db, "SELECT fhir_bulk_ops_set_client_enabled('nobody', false, 'op', '')"),
   'nginx: may call the audited enable/disable function');
ok(!as_role($worker_db, "SELECT fhir_bulk_ops_set_client_enabled('nobody', false, 'op', '')"),
   'worker: may not');
ok(!as_role($nginx_db, 'DELETE FROM export_job'), 'nginx: cannot delete jobs');
ok(!as_role($worker_db, 'SELECT count(*) FROM auth_client'), 'worker: no clients');
ok(!as_role($worker_db, 'SELECT count(*) FROM audit_event'), 'worker: no audit trail');
# Both roles write Groups (the Group API, criteria-based Groups: sql/0012), in their partition
# only: no other resource can be written, through the parent table or its partition.
for my $role ([ nginx => $nginx_db ], [ worker => $worker_db ]) {
    my ($name, $db) = @$role;
    ok(!as_role($db, "UPDATE resource SET body = body WHERE res_type = 'Patient'"),
       "$name: cannot update resources");
    ok(!as_role($db, "DELETE FROM resource WHERE res_type = 'Patient' AND false"),
       "$name: cannot delete resources");
    ok(!as_role($db, "INSERT INTO resource (res_type, res_id, version, last_updated, body) "
                     . "SELECT 'Patient', 'x', 1, now(), '{}' WHERE false"),
       "$name: cannot insert resources");
    ok(!as_role($db, "DELETE FROM resource_patient WHERE false"), "$name: nor into a partition");
    ok(as_role($db, "DELETE FROM resource_group WHERE false"), "$name: may write Group rows");
}
ok(!as_role($worker_db, 'CREATE TABLE x (a int)'), 'worker: cannot create tables');
ok(!as_role($nginx_db, 'CREATE TABLE x (a int)'), 'nginx: cannot create tables');

$t->stop_worker;
for my $log ("$dir/worker.log", "$dir/error.log") {
    open(my $lfh, '<', $log) or die "$log: $!";
    my $text = do { local $/; <$lfh> };
    unlike($text, qr/permission denied/i, "no permission denied in " . ($log =~ s{.*/}{}r));
}
$t->finish;
done_testing;
