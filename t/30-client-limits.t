#!/usr/bin/perl
# The export client bounds what a server can make it hold (issue 11): a manifest listing more
# files than --max-manifest-files, or larger than --max-manifest-bytes, stops the export with
# exit 4 and says which limit; an NDJSON line longer than --max-line-bytes is a validation
# error of that line (exit 5), the rest of the file is still checked. The loader's limits
# refuse a Bundle with more entries than --max-bundle-entries as one rejection.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
my @bundles = (sort glob($t->synthea_dir . '/*.json'))[0 .. 1];
$t->start_pg;

# The loader: a patient Bundle has hundreds of entries.
is($t->run_tool('load', '--quiet', '--max-bundle-entries', '10', $bundles[0]), 1,
   'load: a Bundle over --max-bundle-entries is rejected (exit 1)');
is($t->psql('SELECT count(*) FROM resource'), 0, 'load: ... and nothing of it is stored');
$t->load(@bundles);

$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--threads', 2);
my $c = FhirBulk::ClientTest->new($t);

my $r = $c->run('--type', 'Patient,Condition,Observation', '--max-manifest-files', '2');
is($r->{exit}, 4, 'three files, --max-manifest-files 2: exit 4') or diag($r->{stderr});
like($r->{stderr}, qr/more than 2 files \(--max-manifest-files\)/, '... naming the limit');
my $url = $c->json_file("$r->{out}/job.json")->{statusUrl};

$r = $c->run('--status', $url, '--max-manifest-bytes', '200');
is($r->{exit}, 4, '--max-manifest-bytes 200: exit 4') or diag($r->{stderr});
like($r->{stderr}, qr/larger than 200 bytes \(--max-manifest-bytes\)/, '... naming the limit');

$r = $c->run('--status', $url, '--max-line-bytes', '600');
is($r->{exit}, 5, '--max-line-bytes 600: long lines are validation errors, exit 5')
    or diag($r->{stderr});
my $s = $c->summary($r->{out});
ok($s->{complete}, 'every file was still downloaded');
my @long = grep { ($_->{message} // '') =~ /^line longer than 600 bytes \(\d+; --max-line-bytes\)$/ }
    @{ $s->{problems} };
ok(@long > 0, 'the long lines are reported with the limit') or diag(explain($s->{problems}));

$r = $c->run('--status', $url);
is($r->{exit}, 0, 'with the default limits the same export is fine') or diag($r->{stderr});

$t->finish;
done_testing;
