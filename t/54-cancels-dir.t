#!/usr/bin/perl
# "<export dir>/.cancels" on a shared gateway: the nginx master prepares it when it loads its
# configuration, but nothing about it may fail nginx (every site on the gateway would go
# down), and the master (root) never follows or chowns what the export worker's user planted
# there:
#  - an export directory that does not exist (an unmounted volume): nginx -t passes, nginx
#    starts and answers, with a warning naming the directory;
#  - ".cancels" a symbolic link: not followed, its target not chowned; cancels are refused
#    (500, [error]) and so are downloads, whose cancel cannot be looked up;
#  - ".cancels" a directory of another user, writable by all: left alone, cancels refused;
#  - once it is removed, a reload prepares it (nginx's user, 0700) and a cancel works;
#  - a cancel of a job whose row is locked (being planned) is 503 + Retry-After at once, and
#    leaves no marker (the job's files stay served);
#  - the export directory replaced while nginx runs: a marker in the new one is seen within
#    a second or two (each worker holds the directory open and checks it once a second).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use FhirBulk::Test;

plan skip_all => 'needs root (the nginx master as root, workers as nobody)' unless $> == 0;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(3);
my $d = $t->dir;

sub error_log {
    open(my $fh, '<', "$d/error.log") or return '';
    local $/;
    my $log = <$fh>;
    close $fh;
    return $log;
}

# --- an export directory that does not exist ----------------------------------------------

(my $missing_conf = FhirBulk::Test::default_http_conf())
    =~ s{fhir_bulk_export_dir %%EXPORT_DIR%%;}{fhir_bulk_export_dir %%TESTDIR%%/unmounted/exports;};
$t->write_conf($missing_conf);
my ($status, $out) = $t->nginx_test;
is($status, 0, 'nginx -t passes with an export directory that does not exist') or diag($out);
ok(!-e "$d/unmounted", 'and creates nothing');
$t->start_nginx;
is($t->get('/fhir/metadata')->{status}, 200, 'nginx starts and answers');
like(error_log(), qr{\[warn\].*fhir_bulk: "\Q$d\E/unmounted/exports/\.cancels": cannot open the export directory},
     'the missing directory is logged as a warning');
$t->stop_nginx;

# --- a symbolic link planted as .cancels --------------------------------------------------

my $exports = $t->export_dir;
mkdir "$d/target" or die;
chmod 0755, "$d/target";
symlink("$d/target", "$exports/.cancels") or die "symlink: $!";
$t->write_conf(FhirBulk::Test::default_http_conf(), workers => 1);
($status, $out) = $t->nginx_test;
is($status, 0, 'nginx -t passes with .cancels a symbolic link') or diag($out);
is((stat "$d/target")[4], 0, 'nginx -t did not chown the target');
$t->start_nginx;
ok(-l "$exports/.cancels", '.cancels is still the link');
is((stat "$d/target")[4], 0, 'its target is still root\'s');
is((stat "$d/target")[2] & 07777, 0755, 'and keeps its mode');
like(error_log(), qr{\[warn\].*\.cancels": refused \(not a directory, or a symbolic link\)},
     'the link is logged as a warning');

$t->start_worker('--threads', 2);
my $res = $t->kickoff('/fhir/$export?_type=Patient');
is($res->{status}, 202, 'kick-off') or diag($res->{content});
my $url = $res->{headers}{'content-location'};
my $done;
my $deadline = time + 60;
do { sleep 0.2; $done = $t->request('GET', $url); } while ($done->{status} == 202 && time < $deadline);
is($done->{status}, 200, 'the export completes') or diag($done->{content});
$t->stop_worker;
my ($job) = $url =~ m{/([0-9a-f-]{36})$};
my $file = $done->{json}{output}[0]{url};

$t->is_outcome($t->request('DELETE', $url), 500, 'exception',
               'a cancel through the link is refused');
opendir(my $td, "$d/target") or die;
my @planted = grep { !/^\./ } readdir $td;
closedir $td;
is_deeply(\@planted, [], 'no marker was written through the link');
like(error_log(), qr{\[error\].*cancel marker}, 'the refused cancel is logged at [error]');
is($t->get($url)->{status}, 200, 'the export is unchanged');
$t->is_outcome($t->get($file), 500, undef,
               'a download whose cancel cannot be looked up is refused');

# --- a directory of another user, writable by all -----------------------------------------

$t->stop_nginx;
unlink "$exports/.cancels" or die;
my $daemon = getpwnam('daemon');
mkdir "$exports/.cancels" or die;
chown $daemon, 0, "$exports/.cancels";
chmod 0777, "$exports/.cancels";
$t->start_nginx;
is((stat "$exports/.cancels")[4], $daemon, 'another user\'s .cancels is not chowned');
is((stat "$exports/.cancels")[2] & 07777, 0777, 'nor chmodded');
like(error_log(), qr{\[warn\].*\.cancels": refused \(owned by neither root nor nginx's user\)},
     'it is logged as a warning');
$t->is_outcome($t->request('DELETE', $url), 500, 'exception', 'a cancel there is refused');
is($t->get($url)->{status}, 200, 'the export is unchanged');

# --- removed: the next reload prepares it, and cancels work ---------------------------------

rmdir "$exports/.cancels" or die;
$t->reload_nginx(1);
ok($t->wait_until(sub { -d "$exports/.cancels" }, 10), 'a reload creates .cancels');
is((stat "$exports/.cancels")[4], scalar getpwnam('nobody'), 'for nginx\'s user');
is((stat "$exports/.cancels")[2] & 0777, 0700, 'mode 0700');
is($t->get($file)->{status}, 200, 'downloads work again');
# a job whose row is locked (the planner holds it while it plans): the cancel is answered at
# once with 503 + Retry-After, and leaves no marker behind to hide the files of a job that
# goes on
my $lock = $t->hold_lock("SELECT 1 FROM export_job WHERE job_id = '$job' FOR UPDATE");
my $t0 = time;
$res = $t->request('DELETE', $url);
my $took = time - $t0;
$t->is_outcome($res, 503, 'transient', 'a cancel of a job being planned is 503');
like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');
ok($took < 5, sprintf('answered in %.1f s, not after the 10 s statement timeout', $took));
ok(!-e "$exports/.cancels/$job", 'no marker is left');
$t->release_lock($lock);
is($t->get($file)->{status}, 200, 'the job\'s files are still served');
is($t->get($url)->{status}, 200, 'and its status');

# --- the export directory replaced while nginx runs ---------------------------------------
# Each nginx worker holds the export directory open (openat2 beneath it) and checks once a
# second that the configured path still names it: a marker in the new directory must be seen
# (a worker still reading the old one would serve a cancelled job's files).

rename $exports, "$exports.old" or die "rename: $!";
system('cp', '-a', "$exports.old", $exports) == 0 or die "cp: $?";
open(my $marker, '>', "$exports/.cancels/$job") or die "marker: $!";
close $marker;
my $t1 = time;
ok($t->wait_until(sub { $t->get($file)->{status} == 404 }, 5),
   'a cancel marker in the replacing directory is seen')
    or diag('still served from the old directory');
ok(time - $t1 < 3, sprintf('within %.1f s', time - $t1));
unlink "$exports/.cancels/$job" or die;
is($t->get($file)->{status}, 200, 'without it the file is served from the new directory');
system('rm', '-rf', "$exports.old") == 0 or die;

is($t->request('DELETE', $url)->{status}, 202, 'the cancel is accepted');
ok(-f "$exports/.cancels/$job", 'its marker is written');
is($t->get($file)->{status}, 404, 'and the job\'s files are gone');

$t->finish;
done_testing;
