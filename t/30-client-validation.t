#!/usr/bin/perl
# The export client validates what it downloads and reports problems instead of hiding them:
# files corrupted on the server's disk after the export completed (bad JSON, a resource of
# another type, a line missing against the manifest's count) are downloaded, kept, listed in
# summary.json and on the terminal, and the exit status is 5 -- also when a resumed run finds
# the files already on disk, and whether they travel gzip-compressed or not.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Compress::Gzip qw(gzip $GzipError);
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);    # with gzip twins
my $c = FhirBulk::ClientTest->new($t);

my $r = $c->run('--type', 'Patient,Condition');
is($r->{exit}, 0, 'a clean export: exit 0') or diag($r->{stderr});
my $url = $c->json_file("$r->{out}/job.json")->{statusUrl};
my %server = map { $_->[0]{type} => $c->server_file($_->[0]{url}) } @{ $c->output_files($r->{out}) };

# Rewrites a file on the server's disk, and its gzip twin, so both encodings serve the damage.
sub damage {
    my ($path, $edit) = @_;
    my @lines = split /\n/, FhirBulk::ClientTest::slurp($path);
    $edit->(\@lines);
    my $data = join('', map { "$_\n" } @lines);
    open(my $fh, '>:raw', $path) or die "$path: $!";
    print $fh $data;
    close $fh;
    gzip(\$data => "$path.gz") or die "gzip: $GzipError" if -e "$path.gz";
}
damage($server{Patient}, sub {
    my ($l) = @_;
    $l->[2] = substr($l->[2], 0, 40);                              # line 3: cut short
    $l->[4] =~ s/"resourceType":"Patient"/"resourceType":"Observation"/;    # line 5: another type
});
damage($server{Condition}, sub { pop @{ $_[0] } });                # one line fewer than count

for my $mode ([], ['--no-gzip']) {
    my $how = @$mode ? 'identity' : 'gzip';
    $r = $c->run('--status', $url, @$mode);
    is($r->{exit}, 5, "$how: corrupted files exit 5") or diag($r->{stderr});
    my $s = $c->summary($r->{out});
    is($s->{validationErrors}, 3, "$how: three problems counted");
    my %p = map { ("$_->{file}:" . ($_->{line} // 0)) => $_->{message} } @{ $s->{problems} };
    like($p{'Patient.1.ndjson:3'} // '', qr/invalid JSON/, "$how: line 3 is not JSON");
    like($p{'Patient.1.ndjson:5'} // '', qr/resourceType 'Observation' in a file of Patient/,
         "$how: line 5 holds another type");
    like($p{'Condition.1.ndjson:0'} // '', qr/lines, but the manifest's count is/,
         "$how: the Condition file is a line short");
    like($r->{stderr}, qr/warning: Patient\.1\.ndjson: 2 validation error\(s\); line 3: invalid JSON/,
         "$how: reported on stderr");
    like($r->{stdout}, qr/VALIDATION: 3 error\(s\) in 2 file\(s\)/, "$how: and in the summary");
    is(FhirBulk::ClientTest::slurp("$r->{out}/Patient.1.ndjson"),
       FhirBulk::ClientTest::slurp($server{Patient}), "$how: the file is kept as served");
    ok($s->{complete}, "$how: every file was downloaded");
    cmp_ok($s->{wireBytes}, $how eq 'gzip' ? '<' : '==', $s->{bytes},
           "$how: transferred " . ($how eq 'gzip' ? 'compressed' : 'as stored'));

    my $again = $c->run('--status', $url, '--out', $r->{out});
    is($again->{exit}, 5, "$how: a resumed run re-validates the files on disk: exit 5 again");
    like($again->{stderr}, qr/Patient\.1\.ndjson: .*\(downloaded earlier\)/, "$how: ... without fetching them");
}

$t->finish;
done_testing;
