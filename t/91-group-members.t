#!/usr/bin/perl
# Member-based Groups through the API (issue 14): create with Patient members (unknown
# patients: 400 listing them), the export of a created Group equal to its members'
# compartments (exactly as a loaded Group's), replace (PUT), delete; another client gets 404
# on every route, a loaded Group is read-only (403).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token bearer);

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
my @pids = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 5");
open(my $fh, '>', $t->dir . '/groups.ndjson') or die;
print $fh encode_json({ resourceType => 'Group', id => 'loaded', type => 'person',
    actual => JSON::PP::true, member => [ { entity => { reference => "Patient/$pids[4]" } } ] }),
    "\n";
close $fh;
$t->load($t->dir . '/groups.ndjson');
write_token_key($t);
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1))->start_nginx;
$t->start_worker('--threads', 2);

my $ka = new_key('ES384');
my $kb = new_key('ES384');
my $a = register_client($t, name => 'A', jwks => jwks_of($ka),
                        scope => 'system/*.read system/Group.cud');
my $b = register_client($t, name => 'B', jwks => jwks_of($kb),
                        scope => 'system/*.read system/Group.cud');
my $ta = get_token($t, $a, $ka, 'system/*.read system/Group.cud');
my $tb = get_token($t, $b, $kb, 'system/*.read system/Group.cud');

sub as {
    my ($token, $method, $path, $body, %h) = @_;
    $h{Accept} = 'application/fhir+json';
    %h = (%h, %{ bearer($token) });
    $h{'Content-Type'} //= 'application/fhir+json' if defined $body;
    return $t->request($method, $path, \%h, $body);
}

sub group_body {
    my (%o) = @_;
    return encode_json({ resourceType => 'Group', type => 'person', actual => JSON::PP::true,
        name => $o{name} // 'pilot',
        member => [ map { { entity => { reference => $_ =~ m{/} ? $_ : "Patient/$_" } } }
                    @{ $o{members} } ] });
}

# the resources in the compartments of these patients, per type, from the database
sub expected {
    my $list = join(',', map { "'$_'" } @_);
    my %n = map { split /\|/ } split /\n/, $t->psql(
        "SELECT res_type || '|' || count(*) FROM resource WHERE NOT deleted "
        . "AND res_type <> 'Group' AND patients && ARRAY[$list] GROUP BY res_type");
    return \%n;
}

sub export_as {
    my ($token, $path) = @_;
    my $res = $t->kickoff($path, headers => bearer($token));
    is($res->{status}, 202, "kick-off $path") or diag($res->{content});
    my $url = $res->{headers}{'content-location'};
    my $deadline = time + 120;
    do {
        select(undef, undef, undef, 0.2);
        $res = $t->request('GET', $url, { Accept => 'application/json', %{ bearer($token) } });
    } while ($res->{status} == 202 && time < $deadline);
    is($res->{status}, 200, "$path completes") or diag($res->{content});
    my %by_type;
    for my $item (@{ $res->{json}{output} }) {
        my $f = $t->request('GET', $item->{url}, bearer($token));
        push @{ $by_type{ $item->{type} } }, map { decode_json($_) } split /\n/, $f->{content};
    }
    return \%by_type;
}

# --- create ---------------------------------------------------------------------------------------
my $res = as($ta, 'POST', '/fhir/Group', group_body(members => [ @pids[0, 1, 2] ]));
is($res->{status}, 201, 'create a member-based Group') or diag($res->{content});
my $id = $res->{json}{id};
like($id, qr/^[A-Za-z0-9.\-]{1,64}$/, '... with a server-assigned FHIR id');
like($res->{headers}{location} // '', qr{/fhir/Group/\Q$id\E/_history/1$}, '... Location');
is($res->{json}{quantity}, 3, '... quantity 3');
is($res->{json}{meta}{versionId}, '1', '... version 1');
is($t->psql("SELECT count(*) FROM group_member WHERE group_id = '$id'"), 3,
   '... stored as group_member rows like a loaded Group');
is($t->psql("SELECT client_id FROM group_owner WHERE group_id = '$id'"), $a,
   '... owned by its creator');

$res = as($ta, 'POST', '/fhir/Group', group_body(members => [ $pids[0], 'no-such-1', 'no-such-2' ]));
$t->is_outcome($res, 400, 'invalid', 'unknown patients: 400');
like($res->{json}{issue}[0]{diagnostics} // '', qr{Patient/no-such-1, Patient/no-such-2},
     '... listing them');
$res = as($ta, 'POST', '/fhir/Group', group_body(members => ['Practitioner/x']));
$t->is_outcome($res, 400, 'invalid', 'a non-Patient member: 400');
$res = as($ta, 'POST', '/fhir/Group', '{"resourceType":"Patient"}');
$t->is_outcome($res, 400, 'invalid', 'not a Group: 400');
$res = as($ta, 'POST', '/fhir/Group', '{"resourceType":"Group","type":"device"}');
$t->is_outcome($res, 400, 'not-supported', 'a Group of devices: 400');
$res = as($ta, 'POST', '/fhir/Group', '{"resourceType":"Group",', );
$t->is_outcome($res, 400, 'invalid', 'malformed JSON: 400');
$res = as($ta, 'POST', '/fhir/Group', group_body(members => [ $pids[0] ]),
          'Content-Type' => 'text/plain');
$t->is_outcome($res, 415, 'not-supported', 'a non-JSON Content-Type: 415');
$res = as($ta, 'POST', '/fhir/Group', '[' x 100 . ']' x 100);
$t->is_outcome($res, 400, 'invalid', 'deeply nested JSON: 400');

# --- export of the created Group == its members' compartments --------------------------------------
my $out = export_as($ta, "/fhir/Group/$id/\$export");
my %got = map { $_ => scalar @{ $out->{$_} } } keys %$out;
delete $got{$_} for qw(Practitioner Organization Location Medication);
is_deeply(\%got, expected(@pids[0, 1, 2]), 'the export is the members\' compartments');
is_deeply([ sort map { $_->{id} } @{ $out->{Patient} } ], [ sort @pids[0, 1, 2] ],
          '... with their Patient resources');
$t->is_outcome($t->kickoff("/fhir/Group/$id/\$export", headers => bearer($tb)), 404, 'not-found',
               'another client cannot export it: 404');

# --- update ---------------------------------------------------------------------------------------
$res = as($tb, 'PUT', "/fhir/Group/$id", group_body(members => [ $pids[3] ]));
$t->is_outcome($res, 404, 'not-found', 'another client cannot update it: 404');
$res = as($ta, 'PUT', '/fhir/Group/loaded', group_body(members => [ $pids[3] ]));
$t->is_outcome($res, 403, 'forbidden', 'a loaded Group is read-only: 403');
$res = as($ta, 'PUT', "/fhir/Group/$id",
          encode_json({ resourceType => 'Group', id => 'other', type => 'person' }));
$t->is_outcome($res, 400, 'invalid', 'a body id other than the URL\'s: 400');
$res = as($ta, 'PUT', "/fhir/Group/$id", group_body(members => [ @pids[1, 3] ], name => 'v2'));
is($res->{status}, 200, 'the creator replaces the members') or diag($res->{content});
is($res->{json}{meta}{versionId}, '2', '... version 2');
is($res->{json}{quantity}, 2, '... quantity 2');
$res = as($ta, 'GET', "/fhir/Group/$id");
is($res->{json}{name}, 'v2', 'read shows the new version');
$out = export_as($ta, "/fhir/Group/$id/\$export?_type=Patient");
is_deeply([ sort map { $_->{id} } @{ $out->{Patient} } ], [ sort @pids[1, 3] ],
          'an export after the update has the new members');

# --- delete ---------------------------------------------------------------------------------------
$t->is_outcome(as($tb, 'DELETE', "/fhir/Group/$id"), 404, 'not-found',
               'another client cannot delete it: 404');
$t->is_outcome(as($ta, 'DELETE', '/fhir/Group/loaded'), 403, 'forbidden',
               'a loaded Group cannot be deleted: 403');
$res = as($ta, 'DELETE', "/fhir/Group/$id");
is($res->{status}, 204, 'the creator deletes it');
$t->is_outcome(as($ta, 'GET', "/fhir/Group/$id"), 404, 'not-found', 'then it is gone: 404');
$t->is_outcome($t->kickoff("/fhir/Group/$id/\$export", headers => bearer($ta)), 404, 'not-found',
               '... its export too');
is($t->psql("SELECT count(*) FROM group_member WHERE group_id = '$id'"), 0, '... its members');
is($t->psql("SELECT deleted FROM resource WHERE res_type = 'Group' AND res_id = '$id'"), 't',
   '... a tombstone remains for _since exports');

$t->finish;
done_testing;
