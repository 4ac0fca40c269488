#!/usr/bin/perl
# Export files on a shared host (issue 11, rows 6, 8, 9 and 12), against a real nginx whose
# workers run as nobody:nogroup (as root) and an export directory they may read but not write
# (root:nogroup 2750, the export worker's):
#  - row 6: downloads work with those modes; no bearer token and no URL signature reaches the
#    error log (at info) or the access log (the module masks `signature` in the request line);
#  - row 9: symbolic links planted below the export directory are never followed (404);
#  - row 12: a DELETE of another client's job leaves the owner's cached status alone;
#  - row 8: once a cancel is answered 202 no download of the job succeeds, though nginx cannot
#    move the job directory; when the cancel cannot be recorded it is refused (500, [error])
#    and nothing changes.
# t/53-files-no-openat2.t runs this file again on a (simulated) kernel without openat2().

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token bearer);

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(5);
write_token_key($t);
open(my $fh, '>', $t->dir . '/url.key') or die;
print $fh "u1 " . join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32) . "\n";
close $fh;
# one worker process: the status cache of row 12 is per process
$t->write_conf(FhirBulk::Test::default_http_conf(
                   auth => 1,
                   server_extra => 'fhir_bulk_signed_url_key_file %%TESTDIR%%/url.key;'),
               workers => 1)->start_nginx;
my $exports = $t->export_dir;

my ($ka, $kb) = (new_key('ES384'), new_key('ES384'));
my $a = register_client($t, name => 'A', jwks => jwks_of($ka));
my $b = register_client($t, name => 'B', jwks => jwks_of($kb));
my $ta = get_token($t, $a, $ka);
my $tb = get_token($t, $b, $kb);

sub poll_done {
    my ($token, $url) = @_;
    my $res;
    my $deadline = time + 60;
    do {
        sleep 0.1;
        $res = $t->request('GET', $url, bearer($token));
    } while ($res->{status} == 202 && time < $deadline);
    return $res;
}

sub unsigned { my ($u) = @_; $u =~ s/\?.*//; return $u; }

$t->start_worker('--threads', 2);
my @jobs;
for (1 .. 2) {
    my $res = $t->kickoff('/fhir/$export?_type=Patient,Observation', headers => bearer($ta));
    is($res->{status}, 202, 'kick-off') or diag($res->{content});
    my $url = $res->{headers}{'content-location'};
    my $done = poll_done($ta, $url);
    is($done->{status}, 200, 'the export completes') or diag($done->{content});
    my ($job) = $url =~ m{/([0-9a-f-]{36})$};
    my ($pat) = grep { $_->{type} eq 'Patient' } @{ $done->{json}{output} || [] };
    push @jobs, { url => $url, id => $job, file => $pat->{url} };
}
$t->stop_worker;   # nothing deletes files behind the tests' backs from here on
my ($j1, $j3) = @jobs;

# --- row 6: modes, and secrets in the logs ---------------------------------------------------

SKIP: {
    skip 'modes need root (nginx as nobody)', 2 unless $> == 0;
    my $mode = (stat $exports)[2] & 07777;
    is(sprintf('%04o', $mode & 0777), '0750', 'the export directory is 0750 (+setgid)');
    is((stat $exports)[5], scalar getgrnam('nogroup'), 'group nogroup, shared with nginx');
}
like($j1->{file}, qr/[?&]signature=[A-Za-z0-9_-]{20,}/, 'the manifest has signed URLs');
is($t->get($j1->{file})->{status}, 200, 'a signed URL downloads');
is($t->get(unsigned($j1->{file}), bearer($ta))->{status}, 200, 'so does the bearer token');
is($t->get($j1->{file} =~ s/signature=/signature=x/r)->{status}, 403,
   'an altered signature is 403');
# a refused download is logged at [error] with its request line
# (another name workers could write: any other name is 404 before the signature is read)
my $tampered = $j1->{file} =~ s{/Patient\.(\d+)\.\d+\.ndjson}{/Patient.$1.99.ndjson}r;
isnt($tampered, $j1->{file}, 'the URL names another file');
is($t->get($tampered)->{status}, 403, 'a signature for another file is 403');
is($t->get($j1->{file} =~ s{/Patient[^/?]*\.ndjson}{/Nope.ndjson}r)->{status}, 404,
   'a name no worker writes is 404');
# requests refused with a bearer token in them
is($t->kickoff('/fhir/$export?_type=Nope', headers => bearer($ta))->{status}, 400,
   'a bad kick-off with a token is 400');
is($t->get(unsigned($j1->{file}), { Authorization => "Bearer ${ta}x" })->{status}, 401,
   'a download with a damaged token is 401');
is($t->get($j1->{url}, { Authorization => "Bearer ${tb}x" })->{status}, 401,
   'a poll with a damaged token is 401');

# --- row 9: symbolic links ---------------------------------------------------------------------

my $jdir = "$exports/$j1->{id}";
my ($other) = grep { /\.ndjson$/ } $t->job_files($j3->{id});
symlink('/etc/passwd', "$jdir/Patient.9.9.ndjson") or die "symlink: $!";
symlink("$exports/$j3->{id}/$other", "$jdir/Observation.9.9.ndjson") or die "symlink: $!";
my $fake = 'aaaaaaaa-0000-4000-8000-000000000000';
symlink($jdir, "$exports/$fake") or die "symlink: $!";
# A regular file whose name is not one workers write (the core's grammar, export/job_dir.h).
system('cp', "$exports/$j3->{id}/$other", "$jdir/notes.ndjson") == 0 or die "cp: $?";
my $base = "/fhir/\$export-files";
for my $case ([ "$j1->{id}/Patient.9.9.ndjson", 'a link to /etc/passwd' ],
              [ "$j1->{id}/Observation.9.9.ndjson", 'a link to a file of another job' ],
              [ "$fake/" . ($j1->{file} =~ m{/([^/?]+)\?})[0], 'a linked job directory' ],
              [ "$j1->{id}/notes.ndjson", 'a file not named as workers name them' ]) {
    my ($path, $what) = @$case;
    my $res = $t->get("$base/$path", bearer($ta));
    $t->is_outcome($res, 404, 'not-found', "$what is 404");
    unlike($res->{content} // '', qr/root:|resourceType":"Patient"/, 'and nothing of it is sent');
}
like(scalar `cat ${\ $t->dir }/error.log`, qr/\[error\].*refused a symbolic link/,
     'the refusal is logged at [error]');
unlink "$jdir/Patient.9.9.ndjson", "$jdir/Observation.9.9.ndjson", "$exports/$fake",
       "$jdir/notes.ndjson";

# --- row 12: another client's DELETE leaves the owner's cached status alone -------------------

# A's job waits (no worker); A's poll puts its 202 in the cache for 1 s. The job's row is then
# deleted behind the cache: only a cache miss can make A's next poll 404.
my $kept = 0;
for my $try (1 .. 3) {
    my $res = $t->kickoff('/fhir/$export?_type=Patient', headers => bearer($ta));
    my $url = $res->{headers}{'content-location'};
    my ($job) = $url =~ m{/([0-9a-f-]{36})$};
    my $started = time;
    next unless $t->get($url, bearer($ta))->{status} == 202;
    $t->psql("DELETE FROM export_job WHERE job_id = '$job'");
    my $other = $t->request('DELETE', $url, bearer($tb));
    my $again = $t->get($url, bearer($ta));
    next if time - $started > 0.8;   # too slow to tell (a loaded machine): try again
    $t->is_outcome($other, 404, 'not-found', 'B\'s DELETE of A\'s job is 404');
    is($again->{status}, 202, 'A\'s cached status survives it (row 12)')
        or diag("got $again->{status}");
    $kept = 1;
    last;
}
ok($kept, 'the cache check ran within the cache lifetime');

# --- row 8: a cancel holds on every node when it is answered --------------------------------

ok(-d "$exports/.cancels", 'the nginx master made the cancel marker directory');
SKIP: {
    skip 'nginx runs as this user', 1 unless $> == 0;
    is((stat "$exports/.cancels")[4], scalar getpwnam('nobody'), 'owned by nginx\'s user');
}

# refused: the marker cannot be written
chmod 0500, "$exports/.cancels";
my $res = $t->request('DELETE', $j3->{url}, bearer($ta));
$t->is_outcome($res, 500, 'exception', 'a cancel that cannot be recorded is refused');
like(scalar `cat ${\ $t->dir }/error.log`, qr/\[error\].*cancel refused: cannot write the cancel marker/,
     'and logged at [error]');
is(poll_done($ta, $j3->{url})->{status}, 200, 'the export is unchanged');
is($t->get($j3->{file})->{status}, 200, 'its files are still served');
# fail closed: a marker that cannot be looked up refuses the download, logged at [error] with
# the request line (its signature masked, checked at the end)
chmod 0000, "$exports/.cancels";
$res = $t->get($j3->{file});
$t->is_outcome($res, 500, undef, 'a download whose cancel marker cannot be looked up is refused');
like(scalar `cat ${\ $t->dir }/error.log`,
     qr/\[error\].*cannot look up the cancel marker.*request: "GET [^"]*signature=\*\*\*/,
     'logged at [error], with the signature masked in the request line');
chmod 0700, "$exports/.cancels";

for my $job ($j3, $j1) {
    $res = $t->request('DELETE', $job->{url}, bearer($ta));
    is($res->{status}, 202, 'the owner cancels') or diag($res->{content});
    ok(-e "$exports/$job->{id}", 'its directory is still there (nginx cannot move it)');
    my @served;
    my $until = time + 2;
    while (time < $until) {
        for my $u ($job->{file}, unsigned($job->{file})) {
            my $r = $t->get($u, $u eq $job->{file} ? {} : bearer($ta));
            push @served, "$r->{status} $u" if $r->{status} != 404;
        }
        sleep 0.05;
    }
    is_deeply(\@served, [], 'no download succeeds after the 202 (signed URL or bearer token)');
    $t->is_outcome($t->get($job->{url}, bearer($ta)), 404, 'not-found', 'its status is 404');
}

# --- row 6, continued: the logs hold no secret ------------------------------------------------

$t->stop_nginx;
for my $log ('error.log', 'access.log') {
    my $text = `cat ${\ $t->dir }/$log`;
    ok(length $text, "$log is not empty");
    for my $secret ([ 'bearer token of A', $ta ], [ 'bearer token of B', $tb ],
                    map { [ 'URL signature', ($_->{file} =~ /[?&]signature=([^&]+)/)[0] ] }
                        $j1, $j3) {
        my ($what, $value) = @$secret;
        ok(index($text, $value) < 0, "no $what in $log");
        # a token's signature part alone would be enough to replay it
        my $tail = substr($value, -30);
        ok(index($text, $tail) < 0, "not even its last 30 characters");
    }
}
like(scalar `cat ${\ $t->dir }/access.log`, qr/signature=\*\*\*/, 'the access log shows signature=***');

# Which way the files were opened: openat2() beneath the export directory, or (under
# t/53-files-no-openat2.t, a kernel without it) nginx's walk, which says so once per worker.
my $fallback = grep { /openat2\(\) is not available/ } split /\n/, `cat ${\ $t->dir }/error.log`;
# openat2(-100, "/", NULL, 0): EINVAL where the kernel has the call, ENOSYS where it has not.
my $root = '/';
my $have_openat2 = !(syscall(437, -100, $root, 0, 0) == -1 && $!{ENOSYS});
if ($ENV{FHIRBULK_EXPECT_NO_OPENAT2}) {
    ok($fallback, 'without openat2(): the downloads above took the walk (notice in the error log)');
} elsif ($have_openat2) {
    is($fallback, 0, 'the downloads above took openat2() (no fallback notice)');
}

$t->finish;
done_testing;
