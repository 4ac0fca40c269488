#!/usr/bin/perl
# Criteria-based Groups (Bulk Cohort API, issue 14): POST with Prefer: respond-async and
# member-filter extensions (ANDed) -> 202, the status URL -> 201 with the Group (members,
# quantity, members-refreshed); the members equal a hand-written query of the data; the
# cohort's export equals those members' compartments; bad filters are 400 naming the problem;
# `fhir-bulk group create|list|show|delete` against the server.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);

my $MF = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/member-filter';
my $MR = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/members-refreshed';

# A SNOMED code some but not all patients have, from the data itself.
my $code = $t->psql(
    "SELECT substr(k, 29) FROM (SELECT k, count(DISTINCT p) AS n FROM resource r, "
    . "unnest(r.tokens) k, unnest(r.patients) p WHERE r.res_type = 'Condition' AND NOT r.deleted "
    . "AND k LIKE 'code=http://snomed.info/sct|%' GROUP BY k) s "
    . "WHERE n BETWEEN 10 AND 60 ORDER BY n DESC, k LIMIT 1");
ok($code, "a Condition code to filter on: $code");
my $since = '2015-01-01';

# The hand-written answer: patients with that Condition AND an Encounter whose date is
# ge 2015-01-01 (FHIR: the value's range ends after that day, or lies within it), that exist.
my $day_end = "'$since T23:59:59.999999Z'::timestamptz"; $day_end =~ s/ T/T/;
my @expected = split /\n/, $t->psql(<<"SQL");
SELECT p FROM (
  SELECT unnest(patients) AS p FROM resource WHERE res_type = 'Condition' AND NOT deleted
    AND tokens \@> ARRAY['code=http://snomed.info/sct|$code']
  INTERSECT
  SELECT unnest(patients) FROM resource e WHERE res_type = 'Encounter' AND NOT deleted
    AND EXISTS (SELECT 1 FROM unnest(e.date_params, e.date_lo, e.date_hi) AS d(n, lo, hi)
                WHERE d.n = 'date' AND (d.hi > $day_end
                  OR (d.lo >= '${since}T00:00:00Z' AND d.hi <= $day_end)))
) s WHERE EXISTS (SELECT 1 FROM resource WHERE res_type = 'Patient' AND res_id = s.p
                  AND NOT deleted) ORDER BY p
SQL
cmp_ok(scalar @expected, '>', 0, scalar(@expected) . ' patients expected');

sub cohort {
    my (%o) = @_;
    return encode_json({ resourceType => 'Group', type => 'person', actual => JSON::PP::true,
        (defined $o{name} ? (name => $o{name}) : ()),
        modifierExtension => [ map { { url => $MF, valueExpression => {
            language => 'application/x-fhir-query', expression => $_ } } } @{ $o{filters} } ] });
}

sub post {
    my ($body, %h) = @_;
    return $t->request('POST', '/fhir/Group', { Accept => 'application/fhir+json',
        'Content-Type' => 'application/fhir+json', %h }, $body);
}

# --- asynchronous create --------------------------------------------------------------------------
my @filters = ("Condition?code=http://snomed.info/sct|$code", "Encounter?date=ge$since");
my $res = post(cohort(name => 'diabetic cohort', filters => \@filters),
               Prefer => 'respond-async');
is($res->{status}, 202, 'a cohort POST with respond-async: 202') or diag($res->{content});
my $status_url = $res->{headers}{'content-location'} // '';
like($status_url, qr{^http://127\.0\.0\.1:\d+/fhir/\$group-status/[A-Za-z0-9.\-]+$},
     '... Content-Location is the status URL');
$res = $t->poll($status_url);
is($res->{status}, 201, 'the status URL answers 201 with the Group') or diag($res->{content});
my $g = $res->{json};
my $gid = $g->{id};
like($res->{headers}{location} // '', qr{/fhir/Group/\Q$gid\E/_history/1$}, '... and Location');
is($g->{quantity}, scalar @expected, '... quantity = the hand-written query\'s count');
is_deeply([ sort map { $_->{entity}{reference} =~ s{^Patient/}{}r } @{ $g->{member} } ],
          \@expected, '... members = the hand-written query\'s patients');
my ($refreshed) = grep { $_->{url} eq $MR } @{ $g->{extension} || [] };
like($refreshed->{valueDateTime} // '', qr/^\d{4}-\d\d-\d\dT/, '... members-refreshed is set');
is(scalar @{ $g->{modifierExtension} }, 2, '... the member-filters are kept');
is($t->get("/fhir/Group/$gid")->{json}{quantity}, scalar @expected, 'it can be read');

# the workers evaluate cohorts: without respond-async it is refused, nothing is stored
$res = post(cohort(name => 'conditions', filters => [ $filters[0] ]));
$t->is_outcome($res, 400, 'invalid', 'a cohort without respond-async: 400');
like($res->{json}{issue}[0]{diagnostics} // '', qr/Prefer: respond-async/, '... saying what to send');
sub cohort_async {
    my ($r) = post(@_, Prefer => 'respond-async');
    return $r unless $r->{status} == 202;
    return $t->poll($r->{headers}{'content-location'});
}
# each filter alone is a superset; together they intersect
$res = cohort_async(cohort(name => 'conditions', filters => [ $filters[0] ]));
is($res->{status}, 201, 'one filter');
cmp_ok($res->{json}{quantity}, '>=', scalar @expected, '... one filter: at least as many');

# a Patient filter combines with the others
my $female = $t->psql(
    "SELECT count(*) FROM unnest(ARRAY[" . join(',', map { "'$_'" } @expected) . "]) p "
    . "JOIN resource r ON r.res_type = 'Patient' AND r.res_id = p "
    . "WHERE r.body::jsonb ->> 'gender' = 'female'");
$res = cohort_async(cohort(name => 'women', filters => [ @filters, 'Patient?gender=female' ]));
is($res->{json}{quantity}, $female, 'Patient?gender=female narrows to the women');

# --- the cohort's export == the members' compartments ----------------------------------------------
$res = $t->kickoff("/fhir/Group/$gid/\$export");
is($res->{status}, 202, 'export the cohort');
$res = $t->poll($res->{headers}{'content-location'}, 120);
is($res->{status}, 200, '... completes') or diag($res->{content});
my $out = $t->download_all($res->{json}{output});
my %got = map { $_ => scalar @{ $out->{$_} } } keys %$out;
delete $got{$_} for qw(Practitioner Organization Location Medication);
my $list = join(',', map { "'$_'" } @expected);
my %want = map { split /\|/ } split /\n/, $t->psql(
    "SELECT res_type || '|' || count(*) FROM resource WHERE NOT deleted "
    . "AND res_type <> 'Group' AND patients && ARRAY[$list] GROUP BY res_type");
is_deeply(\%got, \%want, 'the export is exactly the expected members\' compartments');

# --- bad filters ----------------------------------------------------------------------------------
my @bad = (
    [ 'Condition?foo=bar', 'not-supported', qr/foo/, 'an unknown search parameter' ],
    [ 'Condition?code=x&_sort=date', 'not-supported', qr/_sort/, 'a result parameter' ],
    [ 'Practitioner?name=x', 'invalid', qr/compartment/, 'a type outside the compartment' ],
    [ 'Encounter?date=notadate', 'invalid', qr/date/, 'a malformed date' ],
    [ 'code=x', 'invalid', qr/Type\?param=value/, 'no type' ],
    [ 'Condition?code=x,Observation?code=y', 'invalid', qr/one search/, 'two searches in one' ],
);
for my $b (@bad) {
    my ($expr, $code, $re, $what) = @$b;
    $res = post(cohort(name => 'bad', filters => [$expr]), Prefer => 'respond-async');
    $t->is_outcome($res, 400, $code, "$what: 400 $code");
    like($res->{json}{issue}[0]{diagnostics} // '', $re, '... naming it');
}
$res = post(cohort(filters => [ $filters[0] ]));
$t->is_outcome($res, 400, 'invalid', 'a cohort without a name: 400');
$res = post(encode_json({ resourceType => 'Group', type => 'person', name => 'x',
    modifierExtension => [ { url => 'http://example.org/unknown', valueBoolean => JSON::PP::true } ] }));
$t->is_outcome($res, 400, 'not-supported', 'an unknown modifierExtension: 400');
$res = post(cohort(name => 'x', filters => [ ($filters[0]) x 9 ]));
$t->is_outcome($res, 400, 'invalid', 'more member-filters than the limit (8): 400');
like($res->{json}{issue}[0]{diagnostics} // '', qr/limit of 8/, '... naming the limit');
$res = $t->get('/fhir/$group-status/nonexistent');
$t->is_outcome($res, 404, 'not-found', 'an unknown status URL: 404');

# --- fhir-bulk group ------------------------------------------------------------------------------
my $base = $t->base_url;
my $tool = sub {
    my @args = @_;
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) { open(STDERR, '>&', \*STDOUT); exec($FhirBulk::Test::BIN, 'group', @args); exit 127 }
    local $/;
    my $o = <$fh>;
    close $fh;
    return ($? >> 8, $o // '');
};
my ($rc, $text) = $tool->('create', '--fhir-url', $base, '--name', 'cli cohort',
                          map { ('--filter', $_) } @filters);
is($rc, 0, 'fhir-bulk group create --filter') or diag($text);
my ($cli_id, $cli_n) = $text =~ /^(\S+)\t(\d+)\t/m;
is($cli_n, scalar @expected, '... prints the id and the member count');
($rc, $text) = $tool->('create', '--fhir-url', $base, '--name', 'cli list',
                       '--member', $expected[0], '--member', "Patient/$expected[-1]");
is($rc, 0, 'fhir-bulk group create --member') or diag($text);
like($text, qr/^\S+\t2\tcli list$/m, '... two members');
($rc, $text) = $tool->('list', '--fhir-url', $base, 'cli');
is($rc, 0, 'fhir-bulk group list NAME');
is(scalar(() = $text =~ /^\S+\t\d+\tcli /mg), 2, '... lists both');
($rc, $text) = $tool->('show', '--fhir-url', $base, $cli_id);
is($rc, 0, 'fhir-bulk group show');
is(decode_json($text)->{id}, $cli_id, '... prints the Group');
($rc, $text) = $tool->('delete', '--fhir-url', $base, $cli_id);
is($rc, 0, 'fhir-bulk group delete');
is($t->get("/fhir/Group/$cli_id")->{status}, 404, '... deleted');
($rc, $text) = $tool->('create', '--fhir-url', $base, '--name', 'x', '--filter', 'Condition?foo=1');
is($rc, 4, 'a refused create: exit 4');
like($text, qr/HTTP 400.*foo/, '... with the server\'s diagnostics');

$t->finish;
done_testing;
