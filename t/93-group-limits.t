#!/usr/bin/perl
# The Group API's limits (issue 14): a 100,000-member Group is within them (created, read,
# exported whole); one member more, or a body over 16 MiB, is refused with an
# OperationOutcome naming the limit.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(time);
use FhirBulk::Test;

my $N = 100_000;
my $t = FhirBulk::Test->new;
$t->start_pg;
open(my $fh, '>', $t->dir . '/patients.ndjson') or die;
printf $fh "{\"resourceType\":\"Patient\",\"id\":\"p%06d\",\"gender\":\"%s\"}\n", $_,
    $_ % 2 ? 'female' : 'male' for 1 .. $N + 1;
close $fh;
$t->load($t->dir . '/patients.ndjson');
is($t->psql("SELECT count(*) FROM resource WHERE res_type = 'Patient'"), $N + 1,
   ($N + 1) . ' patients loaded');
$t->write_conf(FhirBulk::Test::default_http_conf(
    location_extra => 'client_max_body_size 32m;'))->start_nginx;
$t->start_worker('--threads', 2);

sub group_of {
    my ($n, %extra) = @_;
    return '{"resourceType":"Group","type":"person","actual":true,"name":"big",'
        . join('', map { "\"$_\":" . encode_json($extra{$_}) . ',' } sort keys %extra)
        . '"member":['
        . join(',', map { sprintf('{"entity":{"reference":"Patient/p%06d"}}', $_) } 1 .. $n)
        . ']}';
}

sub post {
    my ($body) = @_;
    return $t->request('POST', '/fhir/Group', { Accept => 'application/fhir+json',
        'Content-Type' => 'application/fhir+json' }, $body);
}

my $body = group_of($N);
my $t0 = time;
my $res = post($body);
my $took = time - $t0;
is($res->{status}, 201, sprintf('a %d-member Group (%.1f MB) is created', $N,
   length($body) / 1e6)) or diag(substr($res->{content}, 0, 500));
diag(sprintf('create took %.2f s', $took));
my $id = $res->{json}{id};
is($res->{json}{quantity}, $N, "... quantity $N");
is($t->psql("SELECT count(*) FROM group_member WHERE group_id = '$id'"), $N,
   "... $N group_member rows");
$res = $t->get("/fhir/Group/$id");
is(scalar @{ $res->{json}{member} }, $N, 'read returns every member');

# Its whole export: every unit selects the members' compartment rows by probing a hash of
# the 100,000 members (worker/planner.h PatientsInScopeSql), linear in rows + members; the
# `patients && scope` it replaced compared every row with every member and did not finish in
# 14 minutes.
$t0 = time;
$res = $t->kickoff("/fhir/Group/$id/\$export?_type=Patient");
is($res->{status}, 202, 'export the whole Group') or diag($res->{content});
$res = $t->poll($res->{headers}{'content-location'}, 300);
is($res->{status}, 200, '... completes') or diag($res->{content});
diag(sprintf('whole-Group export took %.2f s', time - $t0));
my $out = $t->download_all($res->{json}{output});
my @ids = map { $_->{id} } @{ $out->{Patient} || [] };
is(scalar @ids, $N, "... $N Patient resources");
my %seen = map { $_ => 1 } @ids;
is(scalar keys %seen, $N, '... each once');
ok(!$seen{sprintf('p%06d', $N + 1)}, '... not the patient outside the Group');
ok($seen{'p000001'} && $seen{sprintf('p%06d', $N)}, '... the first and the last member');

# Narrowed by `patient` to two members.
my $params = encode_json({ resourceType => 'Parameters', parameter => [
    { name => '_type', valueString => 'Patient' },
    map { { name => 'patient', valueReference => { reference => "Patient/$_" } } }
    'p000001', sprintf('p%06d', $N) ] });
$res = $t->kickoff("/fhir/Group/$id/\$export", body => $params);
is($res->{status}, 202, 'export it, narrowed to its first and last member') or diag($res->{content});
$res = $t->poll($res->{headers}{'content-location'}, 300);
is($res->{status}, 200, '... completes') or diag($res->{content});
$out = $t->download_all($res->{json}{output});
is_deeply([ sort map { $_->{id} } @{ $out->{Patient} || [] } ], [ 'p000001', sprintf('p%06d', $N) ],
          '... both are members: their Patient resources');
$t->is_outcome($t->kickoff("/fhir/Group/$id/\$export", body => encode_json({
    resourceType => 'Parameters', parameter => [
        { name => 'patient', valueReference => { reference => sprintf('Patient/p%06d', $N + 1) } } ] })),
    400, 'invalid', 'the patient outside the Group is not a member: 400');

$res = post(group_of($N + 1));
$t->is_outcome($res, 400, 'invalid', ($N + 1) . ' members: 400');
like($res->{json}{issue}[0]{diagnostics} // '', qr/over the limit of $N per Group/,
     '... naming the limit');

$res = post(group_of(10, text => { status => 'generated', div => 'x' x (17 * 1024 * 1024) }));
$t->is_outcome($res, 413, 'invalid', 'a body over 16 MiB: 413');
like($res->{json}{issue}[0]{diagnostics} // '', qr/too large/, '... says so');

$t->finish;
done_testing;
