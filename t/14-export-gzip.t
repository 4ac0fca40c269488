#!/usr/bin/perl
# Gzip twins of the export files: the worker writes "<file>.gz" beside every file while it
# streams, and nginx sends it unchanged with Content-Encoding: gzip to clients that accept
# gzip (Range included), the plain file to the others; --gzip-level 0 writes no twins.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
my $worker = $t->start_worker('--threads', 2);  # the default --gzip-level: 1

sub slurp {
    my ($path) = @_;
    open(my $fh, '<:raw', $path) or die "$path: $!";
    local $/;
    my $data = <$fh>;
    close $fh;
    return $data;
}

sub gunzipped {
    my ($gz) = @_;
    my $out;
    gunzip(\$gz => \$out, Strict => 1) or return "gunzip failed: $GunzipError";
    return $out;
}

# The job id and the file's path on disk, from a manifest url.
sub file_of {
    my ($url) = @_;
    my ($job, $name) = $url =~ m{/([0-9a-f-]{36})/([^/]+)$} or die "odd url $url";
    return ($job, $t->export_dir . "/$job/$name");
}

# --- the twins on disk -------------------------------------------------------------------------

my $res = $t->kickoff('/fhir/$export?_type=Patient,Observation');
is($res->{status}, 202, 'kick-off is 202 Accepted');
$res = $t->poll($res->{headers}{'content-location'});
is($res->{status}, 200, 'the export completes');
my $m = $res->{json};
ok(@{ $m->{output} } >= 2, 'files of both types');
ok(!grep({ $_->{url} !~ /\.ndjson$/ } @{ $m->{output} }), 'the manifest lists the plain files');

my ($job) = file_of($m->{output}[0]{url});
my ($twins_ok, $sizes_ok, $smaller) = (1, 1, 1);
for my $o (@{ $m->{output} }) {
    my (undef, $path) = file_of($o->{url});
    my $plain = slurp($path);
    my $gz = -f "$path.gz" ? slurp("$path.gz") : '';
    $twins_ok &&= gunzipped($gz) eq $plain;
    $smaller &&= length($gz) < length($plain) / 3;
    my $lines = () = $plain =~ /\n/g;
    $sizes_ok &&= $lines == $o->{count};
}
ok($twins_ok, 'every file has a gzip twin that gunzips to exactly its bytes');
ok($smaller, 'and the twins are compressed');
ok($sizes_ok, 'the manifest counts the plain files\' lines');
is($t->psql("SELECT count(*) FROM export_file WHERE job_id = '$job' AND file_name LIKE '%.gz'"),
   0, 'export_file lists no twins');
is($t->psql("SELECT sum(bytes) FROM export_file WHERE job_id = '$job'"),
   do { my $s = 0; $s += -s $_ for glob($t->export_dir . "/$job/*.ndjson"); $s },
   'export_file bytes are the plain sizes');
is(scalar(() = glob($t->export_dir . '/*/*.tmp.*')), 0, 'no temp files are left');

# --- HTTP: identity and gzip representations ----------------------------------------------

# The largest Observation file: several deflate blocks, so ranges fall mid-stream.
my ($obs) = sort { $b->{count} <=> $a->{count} } grep { $_->{type} eq 'Observation' }
    @{ $m->{output} };
my $url = $obs->{url};
my (undef, $path) = file_of($url);
my $plain = slurp($path);
my $gz = slurp("$path.gz");
SKIP: {
    skip 'no gzip program', 1 unless grep { -x "$_/gzip" } split /:/, $ENV{PATH};
    is(system('gzip', '-t', "$path.gz"), 0, 'gzip -t accepts the twin');
}

$res = $t->get($url);
is($res->{status}, 200, 'GET without Accept-Encoding is 200');
ok(!defined $res->{headers}{'content-encoding'}, 'with no Content-Encoding');
ok($res->{content} eq $plain, 'and exactly the bytes of the plain file on disk');
is($res->{headers}{vary}, 'Accept-Encoding', 'Vary: Accept-Encoding on the identity response');
my $identity_etag = $res->{headers}{etag};

$res = $t->request('GET', $url, { 'Accept-Encoding' => 'gzip' });
is($res->{status}, 200, 'GET with Accept-Encoding: gzip is 200');
is($res->{headers}{'content-encoding'}, 'gzip', 'with Content-Encoding: gzip');
is($res->{headers}{vary}, 'Accept-Encoding', 'and Vary: Accept-Encoding');
like($res->{headers}{'content-type'}, qr{^application/fhir\+ndjson},
     'still application/fhir+ndjson');
is($res->{headers}{'content-length'}, length $gz, 'Content-Length is the twin\'s size');
ok($res->{content} eq $gz, 'the twin is sent as it is on disk');
ok(gunzipped($res->{content}) eq $plain, 'the body gunzips to exactly the identity body');
isnt($res->{headers}{etag}, $identity_etag, 'the representations have different ETags');

$res = $t->request('GET', $url, { 'Accept-Encoding' => 'deflate, gzip;q=0.5, br' });
is($res->{headers}{'content-encoding'}, 'gzip', 'gzip among other codings with a q-value');
$res = $t->request('GET', $url, { 'Accept-Encoding' => 'gzip;q=0' });
ok(!defined $res->{headers}{'content-encoding'} && $res->{content} eq $plain,
   'gzip;q=0 gets the identity body');

$res = $t->request('HEAD', $url, { 'Accept-Encoding' => 'gzip' });
is($res->{headers}{'content-length'}, length $gz, 'HEAD with gzip gives the twin\'s length');

# --- Range on the gzip representation -----------------------------------------------------

my $mid = int(length($gz) / 2);
$res = $t->request('GET', $url,
                   { 'Accept-Encoding' => 'gzip', Range => "bytes=$mid-" . ($mid + 999) });
is($res->{status}, 206, 'Range on the gzip representation is 206');
is($res->{headers}{'content-encoding'}, 'gzip', 'still Content-Encoding: gzip');
is($res->{headers}{'content-range'}, "bytes $mid-" . ($mid + 999) . '/' . length($gz),
   'Content-Range counts the gzip bytes');
ok($res->{content} eq substr($gz, $mid, 1000), 'with the right bytes of the twin');

# A client resuming a download: the pieces join into the whole twin.
my $joined = '';
my $step = int(length($gz) / 3) + 1;
for (my $from = 0; $from < length $gz; $from += $step) {
    my $range = "bytes=$from-" . ($from + $step - 1);
    my $r = $t->request('GET', $url, { 'Accept-Encoding' => 'gzip', Range => $range });
    $joined .= $r->{status} == 206 ? $r->{content} : '';
}
ok(gunzipped($joined) eq $plain, 'ranges of the twin join into a stream that gunzips to the file');

$res = $t->request('GET', $url, { Range => 'bytes=10-19' });
is($res->{status}, 206, 'Range without gzip is 206');
ok($res->{content} eq substr($plain, 10, 10), 'with the right bytes of the plain file');

# --- --gzip-level 0 --------------------------------------------------------------------------

$t->stop_worker($worker);
$t->start_worker('--threads', 1, '--gzip-level', 0);
$res = $t->poll($t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'});
is($res->{status}, 200, 'an export with --gzip-level 0 completes');
my ($job0) = file_of($res->{json}{output}[0]{url});
is(scalar(() = glob($t->export_dir . "/$job0/*.gz")), 0, 'it writes no twins');
$res = $t->request('GET', $res->{json}{output}[0]{url}, { 'Accept-Encoding' => 'gzip' });
ok($res->{status} == 200 && !defined $res->{headers}{'content-encoding'},
   'a gzip client then gets the identity body');
is($res->{headers}{vary}, 'Accept-Encoding', 'still with Vary: Accept-Encoding');

{
    open(my $saved, '>&', \*STDERR) or die;
    open(STDERR, '>', $t->dir . '/refused.log') or die;
    my $status = system($FhirBulk::Test::BIN, 'worker', '--export-dir', $t->export_dir,
                        '--gzip-level', 10, '--once', '--db', $t->conninfo);
    open(STDERR, '>&', $saved) or die;
    is($status >> 8, 2, '--gzip-level 10 is a usage error');
    like(slurp($t->dir . '/refused.log'), qr/--gzip-level must be between 0 and 9/, 'saying why');
}

$t->finish;
done_testing;
