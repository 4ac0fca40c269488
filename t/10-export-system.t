#!/usr/bin/perl
# A system-level export of the Synthea sample, end to end: kick-off, status, manifest, files
# (with their HTTP semantics), _type, _since with deleted resources, and cancellation.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);

my $base = $t->base_url;

# --- kick-off and status ------------------------------------------------------------------

my $res = $t->kickoff('/fhir/$export');
is($res->{status}, 202, 'kick-off is 202 Accepted');
my $status_url = $res->{headers}{'content-location'} // '';
like($status_url, qr{^\Q$base\E/\$export-status/[0-9a-f-]{36}$},
     'Content-Location is the absolute status URL');

$res = $t->poll($status_url);
is($res->{status}, 200, 'the export completes');
like($res->{headers}{'content-type'}, qr{^application/json}, 'manifest as application/json');
like($res->{headers}{expires} // '', qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/,
     'Expires is an HTTP-date');
my $m = $res->{json};
like($m->{transactionTime}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/,
     'transactionTime is an instant');
is($m->{request}, "$base/\$export", 'request is the kick-off URL');
ok(JSON::PP::is_bool($m->{requiresAccessToken}), 'requiresAccessToken is a boolean');
is_deeply($m->{error}, [], 'no errors');
ok(!exists $m->{deleted}, 'no deleted section without _since');

my %db_count = map { split /\|/ } split /\n/, $t->psql(
    "SELECT res_type || '|' || count(*) FROM resource WHERE NOT deleted GROUP BY res_type");
my %manifest_count;
my $url_ok = 1;
for my $o (@{ $m->{output} }) {
    $manifest_count{ $o->{type} } += $o->{count};
    $url_ok &&= $o->{url} =~ m{^\Q$base\E/\$export-files/[0-9a-f-]{36}/[A-Za-z0-9.]+\.ndjson$};
}
ok($url_ok, 'every output url is absolute and under the files route');
is_deeply(\%manifest_count, \%db_count, 'manifest counts equal the stored resources per type');

my $files = $t->download_all($m->{output});
my (%seen, $dupes, $wrong_type);
for my $type (keys %$files) {
    for my $r (@{ $files->{$type} }) {
        $wrong_type++ if $r->{resourceType} ne $type;
        $dupes++ if $seen{"$r->{resourceType}/$r->{id}"}++;
    }
}
for my $o (@{ $m->{output} }) {
    is(scalar @{ $t->{downloaded}{ $o->{url} } }, $o->{count}, "count matches lines of $o->{url}")
        if $o == $m->{output}[0];
}
ok(!$wrong_type, 'every line is a resource of its file\'s type');
ok(!$dupes, 'no resource appears twice');
is(scalar keys %seen, $t->psql('SELECT count(*) FROM resource WHERE NOT deleted'),
   'every stored resource is exported');
is(scalar(grep { /"reference":"urn:uuid:/ } map { @$_ } values %{ $t->{downloaded} }), 0,
   'no unresolved urn:uuid reference in the output');

# --- file HTTP semantics ------------------------------------------------------------------

my $file = $m->{output}[0]{url};
$res = $t->get($file);
like($res->{headers}{'content-type'}, qr{^application/fhir\+ndjson}, 'files are application/fhir+ndjson');
ok($res->{headers}{etag}, 'files have an ETag');
ok($res->{headers}{'last-modified'}, 'and Last-Modified');
my $full = $res->{content};
$res = $t->request('GET', $file, { Range => 'bytes=10-19' });
is($res->{status}, 206, 'Range gives 206');
is($res->{content}, substr($full, 10, 10), 'with the right bytes');
$res = $t->request('HEAD', $file);
is($res->{headers}{'content-length'}, length $full, 'HEAD gives the length');
$res = $t->request('GET', $file, { 'If-None-Match' => $t->get($file)->{headers}{etag} });
is($res->{status}, 304, 'If-None-Match gives 304');

my ($job) = $status_url =~ m{/([0-9a-f-]{36})$};
for my $bad ("$job/../$job/x.ndjson", "$job/.hidden.ndjson", "$job/Patient.1.1.json",
             "not-a-job/Patient.1.1.ndjson", "$job/%2e%2e%2fetc%2fpasswd") {
    $t->is_outcome($t->get("/fhir/\$export-files/$bad"), 404, 'not-found', "404 for $bad");
}

# --- status errors -----------------------------------------------------------------------

$t->is_outcome($t->get('/fhir/$export-status/00000000-0000-4000-8000-000000000000'), 404,
               'not-found', 'an unknown job is 404');
$t->is_outcome($t->get('/fhir/$export-status/nope'), 404, 'not-found', 'a malformed job id is 404');

# --- _type ---------------------------------------------------------------------------------

$res = $t->poll($t->kickoff('/fhir/$export?_type=Patient,Condition')->{headers}{'content-location'});
is($res->{status}, 200, '_type export completes');
is_deeply([ sort keys %{ { map { $_->{type} => 1 } @{ $res->{json}{output} } } } ],
          [ 'Condition', 'Patient' ], 'only the requested types');

# --- _since and deleted ------------------------------------------------------------------

my $since = $m->{transactionTime};
my $pid = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 1");
my $cid = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Condition' ORDER BY res_id LIMIT 1");
my $patient = decode_json($t->psql("SELECT body FROM resource WHERE res_type = 'Patient' AND res_id = '$pid'"));
$patient->{gender} = $patient->{gender} eq 'male' ? 'female' : 'male';
open(my $fh, '>', $t->dir . '/changed.ndjson') or die;
print $fh encode_json($patient), "\n";
close $fh;
$t->load($t->dir . '/changed.ndjson');
is($t->run_tool('load', '--quiet', '--delete', "Condition/$cid"), 0, 'a Condition is deleted');

(my $since_q = $since) =~ s/\+/%2B/g;
$res = $t->poll($t->kickoff("/fhir/\$export?_since=$since_q")->{headers}{'content-location'});
is($res->{status}, 200, '_since export completes');
my $out = $t->download_all($res->{json}{output});
is_deeply([ map { "$_->{resourceType}/$_->{id}" } map { @$_ } values %$out ], [ "Patient/$pid" ],
          'only the resource changed since the last transactionTime');
my $del = $t->download_all($res->{json}{deleted});
is(scalar @{ $del->{Bundle} || [] }, 1, 'one deleted-resources Bundle line');
is($del->{Bundle}[0]{entry}[0]{request}{url}, "Condition/$cid", 'naming the deleted Condition');
is($del->{Bundle}[0]{entry}[0]{request}{method}, 'DELETE', 'as a DELETE entry');

# --- cancel --------------------------------------------------------------------------------

$res = $t->kickoff('/fhir/$export');
my $url = $res->{headers}{'content-location'};
my $done = $t->poll($url);
my $some_file = $done->{json}{output}[0]{url};
is($t->get($some_file)->{status}, 200, 'a file of a finished export is served');
$res = $t->request('DELETE', $url);
is($res->{status}, 202, 'DELETE on the status URL is 202');
$t->is_outcome($t->get($url), 404, 'not-found', 'the status URL is 404 after cancel');
$t->is_outcome($t->get($some_file), 404, 'not-found', 'and so are its files');
$t->is_outcome($t->request('DELETE', $url), 404, 'not-found', 'a second DELETE is 404');

$t->finish;
done_testing;
