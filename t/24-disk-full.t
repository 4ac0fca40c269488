#!/usr/bin/perl
# Disk full in the export directory (a small tmpfs mounted on it): an export that fills it
# fails cleanly with an OperationOutcome and its partial files are removed (the space comes
# back); an export that cannot even be planned fails the same way; files of other exports
# are served throughout, and the next export after the space is back completes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'mounting a tmpfs needs root' if $> != 0;
$t->start_pg;
$t->mount_export_tmpfs('8m') or plan skip_all => 'cannot mount a tmpfs on the export directory';
$t->synth(60);
my $bytes = $t->psql('SELECT sum(length(body)) FROM resource');
cmp_ok($bytes, '>', 3 * 8 << 20, "a full export ($bytes bytes) does not fit in 8 MB");
# The kick-off's free-space check is off at first: the worker's side must fail cleanly too
# (the disk fills after a kick-off, or through other writers).
$t->write_conf(FhirBulk::Test::default_http_conf(
    location_extra => 'fhir_bulk_min_free_space 0; fhir_bulk_min_free_percent 0;'))->start_nginx;
# the default janitor interval (30 s): the cleanup tested is the failing worker's own
my $worker = $t->start_worker('--threads', 2, '--target-unit-resources', 3000);

# A reload, then until the old worker processes have exited (until then they may still accept
# connections, with the old configuration).
sub reload_and_wait {
    $t->reload_nginx;  # returns once the old workers have exited
}

sub used_bytes {
    my $out = `df -B1 --output=used ${\ $t->export_dir } 2>/dev/null`;
    return ($out =~ /(\d+)\s*$/)[0];
}

# The job's directory and files, and temporary files of any job.
sub leftovers {
    my ($job) = @_;
    my $d = $t->export_dir;
    my @left = -e "$d/$job" ? ("$d/$job", map { "$d/$job/$_" } $t->job_files($job)) : ();
    push @left, glob("$d/*/*.tmp.*");
    return @left;
}

# A small export that fits.
my $small_url = $t->kickoff('/fhir/$export?_type=Patient,Organization')->{headers}{'content-location'};
my $small = $t->poll($small_url, 60);
is($small->{status}, 200, 'a small export completes');
my %md5 = map { $_->{url} => md5_hex($t->get($_->{url})->{content}) } @{ $small->{json}{output} };
my $used_small = used_bytes();

sub small_still_served {
    my ($when) = @_;
    is($t->get($small_url)->{status}, 200, "$when: the small export's manifest is served");
    my $ok = 1;
    $ok &&= md5_hex($t->get($_)->{content}) eq $md5{$_} for keys %md5;
    ok($ok, "$when: and its files, intact");
}

# --- an export that fills the disk while writing --------------------------------------------

my $res = $t->kickoff('/fhir/$export');
my $big_url = $res->{headers}{'content-location'};
my ($big_job) = $big_url =~ m{([0-9a-f-]{36})$};
$res = $t->poll($big_url, 120);
$t->is_outcome($res, 500, 'processing', 'the export that fills the disk fails with an OperationOutcome');
like($res->{json}{issue}[0]{diagnostics} // '',
     qr/^writing the export files failed on the server: No space left on device \(reference [0-9a-f]{8}\)$/,
     'saying the disk is full') or diag($res->{content});
is($t->psql("SELECT state FROM export_job WHERE job_id = '$big_job'"), 'failed', 'the job is failed');
ok($t->wait_until(sub { !leftovers($big_job) }, 10), 'its partial files are removed')
    or diag(join "\n", leftovers($big_job));
ok($t->wait_until(sub { used_bytes() <= $used_small + (256 << 10) }, 10),
   'and the space they used is free again (' . used_bytes() . " bytes used, $used_small before)");
small_still_served('after the failure');

# --- a disk with no room at all -------------------------------------------------------------

my $filler = $t->export_dir . '/filler';
system("dd if=/dev/zero of=$filler bs=64k 2>/dev/null");
ok(-s $filler, 'the export directory is full (' . used_bytes() . ' bytes used)');
$res = $t->kickoff('/fhir/$export?_type=Patient');
is($res->{status}, 202, 'a kick-off is still accepted');
my $full_url = $res->{headers}{'content-location'};
my ($full_job) = $full_url =~ m{([0-9a-f-]{36})$};
small_still_served('while the disk is full');
$res = $t->poll($full_url, 60);
$t->is_outcome($res, 500, 'processing', 'an export on a full disk fails with an OperationOutcome');
like($res->{json}{issue}[0]{diagnostics} // '', qr/No space left on device/, 'saying the disk is full')
    or diag($res->{content});
ok($t->wait_until(sub { !leftovers($full_job) }, 10), 'and leaves nothing behind')
    or diag(join "\n", leftovers($full_job));

# With the minimum free space configured, a kick-off on the full volume is refused at once.
$t->write_conf(FhirBulk::Test::default_http_conf(
    location_extra => 'fhir_bulk_min_free_space 1m; fhir_bulk_min_free_percent 0;'));
reload_and_wait();
$res = $t->kickoff('/fhir/$export?_type=Patient');
$t->is_outcome($res, 503, 'transient', 'below the minimum free space a kick-off is 503');
like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');
unlink $filler;

# --- space again ----------------------------------------------------------------------------

ok(FhirBulk::Test::process_alive($worker), 'the worker kept running');
$res = $t->poll($t->kickoff('/fhir/$export?_type=Patient')->{headers}{'content-location'}, 60);
is($res->{status}, 200, 'with space again, the next export completes');
my $got = $t->download_keys($res->{json}{output});
is_deeply($got->{errors}, [], 'and its files download');
is($got->{types}{Patient}, $t->db_counts->{Patient}, 'with every Patient');
small_still_served('at the end');

$t->finish;
$t->umount_export_dir;
done_testing;
