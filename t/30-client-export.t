#!/usr/bin/perl
# fhir-bulk export (the client) against our server, without authorization: system, Patient
# and Group exports end to end with files identical to the server's and validated, gzip,
# _type/_typeFilter/_elements, POST with patient references, _since with deleted resources,
# lenient error files, the summary, and the exit statuses a script relies on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
my ($pa, $pb, $pc) = split /\n/, $t->psql(
    "SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 3");
open(my $fh, '>', $t->dir . '/group.ndjson') or die;
print $fh encode_json({ resourceType => 'Group', id => 'cohort', type => 'person',
    actual => JSON::PP::true,
    member => [ map { { entity => { reference => "Patient/$_" } } } $pa, $pb ] }), "\n";
close $fh;
$t->load($t->dir . '/group.ndjson');
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);
my $c = FhirBulk::ClientTest->new($t);

sub db_counts {
    my ($where) = @_;
    return { map { split /\|/ } split /\n/, $t->psql(
        "SELECT res_type || '|' || count(*) FROM resource WHERE NOT deleted "
        . ($where ? "AND $where " : '') . 'GROUP BY res_type') };
}

sub ok_run {
    my ($r, $name) = @_;
    is($r->{exit}, 0, "$name: exit 0") or diag("stderr:\n$r->{stderr}\nstdout:\n$r->{stdout}");
}

# Local files byte for byte equal to the server's, for a manifest section.
sub same_as_server {
    my ($out, $section) = @_;
    my ($n, $same) = (0, 0);
    for my $f (@{ $c->output_files($out, $section) }) {
        my ($item, $local) = @$f;
        $n++;
        $same++ if -f $local
            && FhirBulk::ClientTest::slurp($local) eq FhirBulk::ClientTest::slurp($c->server_file($item->{url}));
    }
    return ($n, $same);
}

# --- system level -------------------------------------------------------------------------
my $r = $c->run('--system');
ok_run($r, 'system export');
my $m = $c->manifest($r->{out});
my $s = $c->summary($r->{out});
my ($n, $same) = same_as_server($r->{out});
ok($n > 10, "the manifest lists $n files");
is($same, $n, 'every file is on disk, identical to the server\'s');
is_deeply($s->{resources}, db_counts(), 'summary: resources per type = the stored resources');
is($s->{files}, $n, 'summary: the number of files');
is($s->{validationErrors}, 0, 'summary: no validation errors');
ok($s->{complete}, 'summary: complete');
like($s->{statusUrl}, qr{^\Q${\ $t->base_url}\E/\$export-status/}, 'summary: the status URL');
is($s->{transactionTime}, $m->{transactionTime}, 'summary: transactionTime');
my $bytes = 0;
$bytes += -s $_->[1] for @{ $c->output_files($r->{out}) };
is($s->{bytes}, $bytes, 'summary: bytes on disk');
cmp_ok($s->{wireBytes}, '<', $s->{bytes} / 3, 'the files came gzip-compressed');
like($r->{stdout}, qr/^export complete: $n files, [\d,]+ resources/m, 'a summary on stdout');
like($r->{stdout}, qr/^\s+Patient\s+100\s+\(1 file\)$/m, '... with resources per type');
like($r->{stderr}, qr/^\S+Z kick-off: GET \Q${\ $t->base_url}\E\/\$export$/m,
     'plain time-stamped log lines when stderr is not a terminal');
like($r->{stderr}, qr/export accepted; status at/, '... the status URL');
like($r->{stderr}, qr/^\S+Z Patient\.1\.ndjson: 100 lines/m, '... a line per file');
my $job = $c->json_file("$r->{out}/job.json");
is($job->{statusUrl}, $s->{statusUrl}, 'job.json keeps the status URL');
is((stat "$r->{out}/Patient.1.ndjson")[2] & 07777, 0600, 'the data is readable by its owner only');

# identity encoding
$r = $c->run('--type', 'Patient', '--no-gzip');
ok_run($r, '--no-gzip');
$s = $c->summary($r->{out});
is($s->{wireBytes}, $s->{bytes}, '--no-gzip: the bytes as stored');

# --- Patient level, _type, _typeFilter, _elements -----------------------------------------
$r = $c->run('--patient', '--type', 'Patient,Condition', '--type', 'Encounter');
ok_run($r, 'patient-level export');
$s = $c->summary($r->{out});
my $want = db_counts("res_type IN ('Patient', 'Condition', 'Encounter')");
is_deeply($s->{resources}, $want, 'patient level, _type given twice: those three types, all');

my $labs = $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Observation' "
                    . "AND tokens && ARRAY['category=laboratory']");
$r = $c->run('--type', 'Observation', '--type-filter', 'Observation?category=laboratory');
ok_run($r, '_typeFilter');
is_deeply($c->summary($r->{out})->{resources}, { Observation => $labs },
          '_typeFilter: the laboratory Observations');

$r = $c->run('--type', 'Patient', '--elements', 'gender');
ok_run($r, '_elements');
my @lines = @{ $c->lines("$r->{out}/Patient.1.ndjson") };
is(scalar(grep { /"name"/ } @lines), 0, '_elements: no names left');
is(scalar(grep { /"gender"/ } @lines), scalar @lines, '... genders kept');

# --- Group level, GET and POST --------------------------------------------------------------
$r = $c->run('--group', 'cohort', '--type', 'Patient,Condition');
ok_run($r, 'group export');
$s = $c->summary($r->{out});
is($s->{resources}{Patient}, 2, 'the group\'s two patients');
is($s->{resources}{Condition} // 0,
   $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Condition' AND NOT deleted "
            . "AND patients && ARRAY['$pa','$pb']"),
   'and their Conditions');

$r = $c->run('--group', 'cohort', '--type', 'Patient', '--patient-ref', "Patient/$pa");
ok_run($r, 'group export with --patient-ref');
like($r->{stderr}, qr{kick-off: POST \Q${\ $t->base_url}\E/Group/cohort/\$export$}m,
     '--patient-ref kicks off with POST');
is_deeply([ map { decode_json($_)->{id} } @{ $c->lines("$r->{out}/Patient.1.ndjson") } ], [$pa],
          'only the referenced patient');

$r = $c->run('--group', 'cohort', '--type', 'Patient', '--post', '--since', '2000-01-01T00:00:00Z');
ok_run($r, '--post');
is($c->summary($r->{out})->{resources}{Patient}, 2, 'POST with _since as valueInstant');

# --- _since: changes and deletions --------------------------------------------------------
my $since = $m->{transactionTime};
my $patient = decode_json($t->psql("SELECT body FROM resource WHERE res_type = 'Patient' AND res_id = '$pc'"));
$patient->{gender} = $patient->{gender} eq 'male' ? 'female' : 'male';
open($fh, '>', $t->dir . '/changed.ndjson') or die;
print $fh encode_json($patient), "\n";
close $fh;
$t->load($t->dir . '/changed.ndjson');
my $cid = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Condition' ORDER BY res_id LIMIT 1");
is($t->run_tool('load', '--quiet', '--delete', "Condition/$cid"), 0, 'a Condition is deleted');
$r = $c->run('--since', $since);
ok_run($r, '_since export');
$s = $c->summary($r->{out});
is_deeply($s->{resources}, { Patient => 1 }, '_since: only the changed Patient');
is($s->{deleted}, 1, 'summary: one deleted resource');
my ($del) = @{ $c->lines("$r->{out}/deleted/Bundle.1.ndjson") };
like($del, qr{"url":"Condition/\Q$cid\E"}, 'deleted/Bundle.1.ndjson names the deleted Condition');
($n, $same) = same_as_server($r->{out}, 'deleted');
is($same, 1, '... identical to the server\'s');

# --- lenient: what the server skipped lands in error/ --------------------------------------
$r = $c->run('--type', 'Patient,NoSuchType', '--lenient');
ok_run($r, 'lenient export');
$s = $c->summary($r->{out});
is_deeply($s->{resources}, { Patient => 100 }, 'lenient: the supported type exported');
cmp_ok($s->{serverIssues}{warning} // 0, '>=', 1, 'summary: the server\'s warnings counted');
ok(-s "$r->{out}/error/OperationOutcome.1.ndjson", 'the error file is downloaded');
like($r->{stdout}, qr/NoSuchType/, 'and what it says is shown');

# --- failures and their exit statuses ---------------------------------------------------------
$r = $c->run('--type', 'Patient,NoSuchType');
is($r->{exit}, 4, 'a refused kick-off exits 4');
like($r->{stderr}, qr/HTTP 400.*NoSuchType.*--lenient/s, '... with the server\'s reason and a hint');
$r = $c->run('--group', 'no-such-group');
is($r->{exit}, 4, 'an unknown Group exits 4');
$r = $c->run('--fhir-url', 'http://127.0.0.1:' . FhirBulk::Test::free_port() . '/fhir',
             '--retries', '1');
is($r->{exit}, 4, 'an unreachable server exits 4 (after retrying)');
like($r->{stderr}, qr/retrying in/, '... after retrying');
$r = $c->run('--since', 'yesterday');
is($r->{exit}, 2, 'a bad --since exits 2');
$r = $c->run('--group', 'cohort', '--patient');
is($r->{exit}, 2, 'two export levels exit 2');
my $used = $c->new_out;
mkdir $used;
open($fh, '>', "$used/something") or die;
close $fh;
$r = $c->run('--out', $used);
is($r->{exit}, 2, 'a directory that is not empty exits 2');
like($r->{stderr}, qr/not empty/, '... saying why');
$r = $c->run('--out', "$used/something/out");
is($r->{exit}, 1, 'an output directory that cannot be made exits 1');
$r = $c->run('--out', $t->dir . '/out1', '--type', 'Patient');
is($r->{exit}, 2, 'the directory of another export exits 2');
like($r->{stderr}, qr/resume it with --status/, '... pointing at --status');

$t->finish;
done_testing;
