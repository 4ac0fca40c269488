#!/usr/bin/perl
# fhir-bulk export --organize-output-by Patient checks patient blocks across files (issue 13):
# with small files some blocks span two files (header repeated, continuesInFile pointing at
# the next file) and the client accepts the export; a manifest whose continuesInFile points
# at the wrong file, or that drops the link of a block split across files, is a validation
# failure (exit 5) naming the file. The manifests are the server's own, changed in the
# database between runs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(24, '--seed', 43);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--block-unit-patients', 12, '--max-file-resources', 120, '--threads', 2);
my $c = FhirBulk::ClientTest->new($t);

my $r = $c->run('--system', '--organize-output-by', 'Patient');
is($r->{exit}, 0, 'an organized export with blocks spanning files: exit 0')
    or diag("stderr:\n$r->{stderr}\nstdout:\n$r->{stdout}");
my $m = $c->manifest($r->{out});
my $s = $c->summary($r->{out});
is($s->{validationErrors}, 0, 'no validation errors');
my @spans = grep { $_->{continuesInFile} } @{ $m->{output} };
cmp_ok(scalar @spans, '>', 0, scalar(@spans) . ' files continue in another');
my $status = decode_json(FhirBulk::ClientTest::slurp("$r->{out}/job.json"))->{statusUrl}
    // die 'job.json has no statusUrl';
my ($job) = $status =~ m{/([0-9a-f-]{36})$};

# A file that continues in another: its name, its target's, and a third file that is nobody's
# continuation (and not the file itself).
my ($src, $dst) = split /\|/, $t->psql(
    "SELECT file_name || '|' || continues_in FROM export_file WHERE job_id = '$job' "
    . "AND continues_in IS NOT NULL ORDER BY ordinal LIMIT 1");
my $other = $t->psql(
    "SELECT file_name FROM export_file f WHERE job_id = '$job' AND kind = 'output' "
    . "AND file_name NOT IN ('$src', '$dst') AND NOT EXISTS (SELECT 1 FROM export_file g "
    . "WHERE g.job_id = f.job_id AND g.continues_in = f.file_name) ORDER BY ordinal LIMIT 1");
ok($src && $dst && $other, "a continued block: $src -> $dst; another file: $other");

# Downloads the (changed) export again into a fresh directory.
sub rerun {
    sleep 1.2;    # the status answer is cached for 1 s per nginx process
    return $c->run('--status', $status);
}

$t->psql("UPDATE export_file SET continues_in = '$other' WHERE job_id = '$job' "
    . "AND file_name = '$src'");
$r = rerun();
is($r->{exit}, 5, 'continuesInFile pointing at a file that does not start with the block: exit 5')
    or diag("stderr:\n$r->{stderr}\nstdout:\n$r->{stdout}");
$s = $c->summary($r->{out});
my @p = grep { $_->{message} =~ /goes on in a file that starts with/ } @{ $s->{problems} || [] };
is(scalar @p, 1, 'one problem: the block goes on in a file that starts with another block')
    or diag(encode_json($s->{problems}));
like($p[0]{url} // '', qr/\Q$src\E/, 'reported on the continuing file') if @p;

$t->psql("UPDATE export_file SET continues_in = NULL WHERE job_id = '$job' "
    . "AND file_name = '$src'");
$r = rerun();
is($r->{exit}, 5, 'a block split across files without continuesInFile: exit 5')
    or diag("stderr:\n$r->{stderr}\nstdout:\n$r->{stdout}");
$s = $c->summary($r->{out});
@p = grep { $_->{message} =~ /split across files without continuesInFile/ }
    @{ $s->{problems} || [] };
is(scalar @p, 1, 'one problem: the split block') or diag(encode_json($s->{problems}));
like($p[0]{url} // '', qr/\Q$dst\E/, 'reported on the file the block goes on in') if @p;

$t->psql("UPDATE export_file SET continues_in = '$dst' WHERE job_id = '$job' "
    . "AND file_name = '$src'");
$r = rerun();
is($r->{exit}, 0, 'the link restored: exit 0 again') or diag("stderr:\n$r->{stderr}");

$t->finish;
done_testing;
