#!/usr/bin/perl
# Criteria-based Groups are evaluated by the export workers, never on nginx's thread pool
# (issue 14; worker/cohort_runner.h, sql/0012): POST with Prefer: respond-async answers 202 at
# once and only queues the request; the status URL answers 202 while no worker has evaluated
# it (on any node: the state is in PostgreSQL), then 201 with the Group. A worker's statement
# timeout and member limit refuse a cohort with 400 too-costly naming the limit. Exports
# evaluate the filters again as of their transactionTime: a patient who matches after the
# Group was created is exported, while the Group read keeps the membership of its last
# evaluation (members-refreshed). A kick-off's `patient` list is checked against the filters
# evaluated then (not the stored list), and an export of a cohort grown past the worker's member
# limit fails with too-costly.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(encode_json decode_json);
use FhirBulk::Test;

my $N = 3000;
my $t = FhirBulk::Test->new;
$t->start_pg;

# Patients p0001..; every third has the Condition 44054006, every second an Encounter in
# 2024 (the others in 2019): the cohort is every sixth patient.
sub population {
    my ($file, @ids) = @_;
    open(my $fh, '>', $file) or die "$file: $!";
    for my $i (@ids) {
        my $p = sprintf('p%04d', $i);
        print $fh encode_json({ resourceType => 'Patient', id => $p,
                                gender => $i % 4 ? 'female' : 'male' }), "\n";
        my $code = $i % 3 == 0 ? '44054006' : '38341003';
        print $fh encode_json({ resourceType => 'Condition', id => "c$p",
            subject => { reference => "Patient/$p" },
            code => { coding => [ { system => 'http://snomed.info/sct', code => $code } ] } }), "\n";
        my $year = $i % 2 == 0 ? 2024 : 2019;
        print $fh encode_json({ resourceType => 'Encounter', id => "e$p", status => 'finished',
            class => { system => 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code => 'AMB' },
            subject => { reference => "Patient/$p" },
            period => { start => "$year-03-01T10:00:00Z", end => "$year-03-01T11:00:00Z" } }), "\n";
    }
    close $fh;
    return $file;
}
$t->load(population($t->dir . '/population.ndjson', 1 .. $N));
my @expected = map { sprintf('p%04d', $_) } grep { $_ % 6 == 0 } 1 .. $N;

my $conf = FhirBulk::Test::default_http_conf();
$t->write_conf($conf)->start_nginx;
my $node2 = $t->add_node($conf);
$node2->start_nginx;

my $MF = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/member-filter';
my $MR = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/members-refreshed';
my @filters = ('Condition?code=http://snomed.info/sct|44054006',
               'Encounter?date=ge2024-01-01&date=lt2025-01-01');

sub cohort {
    my ($name, @f) = @_;
    return encode_json({ resourceType => 'Group', type => 'person', actual => JSON::PP::true,
        name => $name, modifierExtension => [ map { { url => $MF, valueExpression => {
            language => 'application/x-fhir-query', expression => $_ } } } @f ] });
}

sub post_async {
    my ($body, $method, $path) = @_;
    return $t->request($method // 'POST', $path // '/fhir/Group', {
        Accept => 'application/fhir+json', 'Content-Type' => 'application/fhir+json',
        Prefer => 'respond-async' }, $body);
}

sub members { [ sort map { $_->{entity}{reference} =~ s{^Patient/}{}r } @{ $_[0]{member} || [] } ] }

# --- no worker: the request waits, nothing is evaluated on the gateway --------------------------
my $res = post_async(cohort('diabetics 2024', @filters));
is($res->{status}, 202, 'POST with respond-async: 202 at once') or diag($res->{content});
my $status_url = $res->{headers}{'content-location'} // '';
like($status_url, qr{/fhir/\$group-status/}, '... with the status URL');
is($t->psql("SELECT state FROM group_request"), 'pending', '... queued for the workers');
$res = $t->get($status_url);
is($res->{status}, 202, 'the status URL answers 202 while no worker has evaluated it');
like($res->{headers}{'x-progress'} // '', qr/evaluating/, '... X-Progress says so');
$res = $node2->get($node2->on_node($status_url));
is($res->{status}, 202, '... on the other node too');
is($t->psql("SELECT count(*) FROM resource WHERE res_type = 'Group'"), 0, '... no Group stored yet');

# --- a worker evaluates it; both nodes answer 201 ------------------------------------------------
my $w = $t->start_worker('--threads', 1);
$res = $node2->poll($node2->on_node($status_url), 60);
is($res->{status}, 201, 'once a worker ran it, the other node\'s poll answers 201') or diag($res->{content});
my $g = $res->{json};
my $gid = $g->{id};
is($g->{quantity}, scalar @expected, '... quantity ' . scalar @expected);
is_deeply(members($g), \@expected, '... the members: every sixth patient');
my ($refreshed) = map { $_->{valueDateTime} } grep { $_->{url} eq $MR } @{ $g->{extension} || [] };
like($refreshed // '', qr/^\d{4}-/, '... members-refreshed is set');
is($t->get($status_url)->{status}, 201, '... and the first node\'s too');
is($t->psql("SELECT state || ' ' || http_status FROM group_request"), 'done 201', '... recorded done');

# --- membership as of each export's transactionTime ---------------------------------------------
# A new patient matching both filters (p9006, like every sixth patient).
$t->load(population($t->dir . '/late.ndjson', 9006));
$res = $t->kickoff("/fhir/Group/$gid/\$export?_type=Patient,Condition");
is($res->{status}, 202, 'export the cohort after a matching patient was added');
$res = $t->poll($res->{headers}{'content-location'}, 120);
is($res->{status}, 200, '... completes') or diag($res->{content});
my $out = $t->download_all($res->{json}{output});
is_deeply([ sort map { $_->{id} } @{ $out->{Patient} || [] } ], [ @expected, 'p9006' ],
          '... the export holds the members as of its transactionTime: the new patient too');
is(scalar @{ $out->{Condition} || [] }, @expected + 1, '... and their Conditions');
$res = $t->get("/fhir/Group/$gid");
is($res->{json}{quantity}, scalar @expected,
   'the Group read keeps the membership of its last evaluation');
my ($still) = map { $_->{valueDateTime} } grep { $_->{url} eq $MR } @{ $res->{json}{extension} || [] };
is($still, $refreshed, '... with the same members-refreshed');

# A PUT evaluates the filters again and refreshes what the read shows.
$res = post_async(cohort('diabetics 2024', @filters), 'PUT', "/fhir/Group/$gid");
is($res->{status}, 202, 'PUT of the cohort: 202');
$res = $t->poll($res->{headers}{'content-location'}, 60);
is($res->{status}, 200, '... then 200') or diag($res->{content});
is($res->{json}{meta}{versionId}, '2', '... version 2');
is($res->{json}{quantity}, @expected + 1, '... the read now shows the new patient');

# --- the patient parameter names members by the filters now, not by the stored list ------------
# p9012 matches after the Group's last evaluation; p0006 no longer does (its Condition changed).
$t->load(population($t->dir . '/later.ndjson', 9012));
$t->load(do {
    my $f = $t->dir . '/changed.ndjson';
    open(my $fh, '>', $f) or die "$f: $!";
    print $fh encode_json({ resourceType => 'Condition', id => 'cp0006',
        subject => { reference => 'Patient/p0006' },
        code => { coding => [ { system => 'http://snomed.info/sct', code => '38341003' } ] } }), "\n";
    close $fh;
    $f });
sub patients_body {
    encode_json({ resourceType => 'Parameters', parameter => [
        { name => '_type', valueString => 'Patient' },
        map { { name => 'patient', valueReference => { reference => "Patient/$_" } } } @_ ] });
}
is($t->psql("SELECT count(*) FROM group_member m JOIN resource g ON g.res_type = 'Group' "
            . "AND g.res_id = m.group_id WHERE g.res_id = '$gid' AND m.patient_id IN ('p9012', 'p0006')"),
   1, 'the stored membership has p0006, not p9012');
$res = $t->kickoff("/fhir/Group/$gid/\$export", body => patients_body('p9012', 'p0012'));
is($res->{status}, 202, 'patient= a member by the filters now, not yet stored: accepted')
    or diag($res->{content});
$res = $t->poll($res->{headers}{'content-location'}, 120);
$out = $t->download_all($res->{json}{output});
is_deeply([ sort map { $_->{id} } @{ $out->{Patient} || [] } ], [ 'p0012', 'p9012' ],
          '... and exported with the other listed member');
$res = $t->kickoff("/fhir/Group/$gid/\$export", body => patients_body('p0012', 'p0006'));
$t->is_outcome($res, 400, 'invalid', 'patient= a stored member who no longer qualifies: 400');
like($res->{json}{issue}[0]{diagnostics} // '', qr{Patient/p0006 not a member of Group/\Q$gid\E},
     '... naming that patient only') or diag($res->{content});
unlike($res->{json}{issue}[0]{diagnostics} // '', qr{p0012}, '... not the member');

# --- a cohort grown past the worker's member limit fails its export, saying so -------------------
$t->stop_worker($w);
$w = $t->start_worker('--threads', 1, '--cohort-max-members', 400);
$res = $t->kickoff("/fhir/Group/$gid/\$export", body => patients_body('p0012'));
is($res->{status}, 202, 'a narrowed export of a cohort over the limit is accepted');
$res = $t->poll($res->{headers}{'content-location'}, 120);
$t->is_outcome($res, 500, 'too-costly', '... and fails: the Group, evaluated again, is over the limit');
like($res->{json}{issue}[0]{diagnostics} // '',
     qr{Group/\Q$gid\E has 501 members as of this export's transactionTime .* limit of 400},
     '... naming the count and the limit') or diag($res->{content});

# --- limits: a worker's member limit and statement timeout ---------------------------------------
$t->stop_worker($w);
$w = $t->start_worker('--threads', 1, '--cohort-max-members', 100);
$res = post_async(cohort('too many', @filters));
$res = $t->poll($res->{headers}{'content-location'}, 60);
$t->is_outcome($res, 400, 'too-costly', 'more members than the worker\'s limit: 400 too-costly');
like($res->{json}{issue}[0]{diagnostics} // '', qr/over the limit of 100 per Group/,
     '... naming the limit');
$t->stop_worker($w);
$w = $t->start_worker('--threads', 1, '--cohort-timeout-ms', 1);
$res = post_async(cohort('too slow', @filters));
$res = $t->poll($res->{headers}{'content-location'}, 60);
$t->is_outcome($res, 400, 'too-costly', 'an evaluation longer than the statement timeout: 400 too-costly');
like($res->{json}{issue}[0]{diagnostics} // '', qr/took longer than 1 ms/, '... naming the limit');
is($t->psql("SELECT count(*) FROM resource WHERE res_type = 'Group' AND NOT deleted"), 1,
   '... neither refused cohort was stored');
my $log = do { local (@ARGV, $/) = ($t->dir . '/worker.log'); <> };
like($log, qr/cohort request \S+ \(Group\/\S+, create\): refused, 400/,
     'the worker logs the refusals');

# --- a synchronous cohort write is refused --------------------------------------------------------
$res = $t->request('POST', '/fhir/Group', { Accept => 'application/fhir+json',
    'Content-Type' => 'application/fhir+json' }, cohort('sync', @filters));
$t->is_outcome($res, 400, 'invalid', 'a cohort without Prefer: respond-async: 400');

$t->stop_worker;
$node2->finish;
$t->finish;
done_testing;
