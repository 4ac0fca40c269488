#!/usr/bin/perl
# Paged manifests at scale (issue 13): a poll of one page of an allowPartialManifests export
# reads that page's files, not the whole job's, so a job of 100,000 files answers a page as
# fast as a job of 1,500 (before, the status path loaded every file of the job and cut the
# page from them). The files are rows inserted directly (writing 100,000 files would take
# minutes); everything else is the real path: kick-off, nginx, the module, PostgreSQL.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->write_conf(FhirBulk::Test::default_http_conf(
    location_extra => 'fhir_bulk_manifest_page_size 500;'))->start_nginx;

# A completed allowPartialManifests export with $n output files and one error file, made by
# a real kick-off (no worker runs: the job is completed by hand).
sub big_job {
    my ($n) = @_;
    my $res = $t->kickoff('/fhir/$export?allowPartialManifests=true&_type=Observation');
    is($res->{status}, 202, "kick-off of a job of $n files") or diag($res->{content});
    my $url = $res->{headers}{'content-location'};
    my ($job) = $url =~ m{/([0-9a-f-]{36})$};
    # The ordinals the trigger (sql/0010) would give, without its row-by-row job update.
    $t->psql("ALTER TABLE export_file DISABLE TRIGGER export_file_ordinal; "
        . "INSERT INTO export_file (job_id, file_name, kind, res_type, unit_no, seq, "
        . "resources, bytes, ordinal) SELECT '$job', 'Observation.' || i || '.1.ndjson', "
        . "'output', 'Observation', i, 1, 1, 100, i FROM generate_series(1, $n) i; "
        . "ALTER TABLE export_file ENABLE TRIGGER export_file_ordinal; "
        . "UPDATE export_job SET files_listed = $n WHERE job_id = '$job'");
    $t->psql("INSERT INTO export_file (job_id, file_name, kind, res_type, unit_no, seq, "
        . "resources, bytes) VALUES ('$job', 'OperationOutcome.0.1.ndjson', 'error', "
        . "'OperationOutcome', 0, 1, 1, 100)");
    $t->psql("UPDATE export_job SET state = 'completed', units_total = 1, units_done = 1, "
        . "finished_at = now(), expires_at = now() + interval '1 hour' WHERE job_id = '$job'");
    $t->psql("ANALYZE export_file");
    return $url;
}
sub next_link {
    my ($m) = @_;
    my @l = grep { ($_->{relation} // '') eq 'next' } @{ $m->{link} || [] };
    return @l ? $l[0]{url} : undef;
}
sub local_url { my ($u) = @_; $u =~ s{^https?://[^/]+}{}; return $u; }

my $big = big_job(100000);
my $small = big_job(5000);

# Walks pages 1..$pages of a job; returns (seconds per page poll, median of pages 2..$pages;
# the manifests).
sub walk {
    my ($url, $pages) = @_;
    my (@times, @manifests);
    my $cur = local_url($url);
    for my $p (1 .. $pages) {
        my $t0 = time;
        my $r = $t->get($cur);
        push @times, time - $t0 if $p > 1;    # page 1 may come from the status cache
        is($r->{status}, 200, "page $p: 200") or return;
        my $m = decode_json($r->{content});
        push @manifests, $m;
        my $next = next_link($m) or last;
        $cur = local_url($next);
    }
    @times = sort { $a <=> $b } @times;
    return ($times[ int(@times / 2) ], \@manifests);
}

my ($small_s, $small_pages) = walk($small, 8);    # pages 1-8 recorded (a first poll of each)
my ($big_s, $big_pages) = walk($big, 8);
($big_s) = walk($big, 8);                          # pages already recorded, as a re-poll
($small_s) = walk($small, 8);

# The pages are right.
my $p1 = $big_pages->[0];
is(scalar @{ $p1->{output} }, 500, 'page 1 of the big job: 500 files');
is($p1->{output}[0]{url} =~ /Observation\.1\.1\.ndjson$/ ? 1 : 0, 1, 'the first committed first');
is(scalar @{ $p1->{error} }, 1, 'its error file');
my $p3 = $big_pages->[2];
is(scalar @{ $p3->{output} }, 500, 'page 3: 500 files');
like($p3->{output}[0]{url}, qr/Observation\.1001\.1\.ndjson$/, 'from the 1001st file');
is(scalar @{ $p3->{error} }, 1, 'the error file on every page');
like(next_link($p3) // '', qr/\?page=4$/, 'and a link to page 4');

# Constant time: a page of the 100,000-file job costs what a page of the 5,000-file job costs.
# (Before: every poll loaded all 100,000 rows first, many times the small job's poll.)
my $ratio = $big_s / $small_s;
diag(sprintf('page poll: %.1f ms (100,000 files) vs %.1f ms (5,000 files), ratio %.2f',
             $big_s * 1000, $small_s * 1000, $ratio));
cmp_ok($ratio, '<', 4, 'a page poll does not grow with the job (ratio < 4)');

# The whole big job, page after page: every file exactly once, the last page without a link.
my ($cur, $files, $pages, %seen, $dups) = (local_url($big), 0, 0);
while (defined $cur) {
    my $r = $t->get($cur);
    unless ($r->{status} == 200) { fail("$cur: $r->{status}"); last; }
    my $m = decode_json($r->{content});
    $pages++;
    for my $f (@{ $m->{output} }) { $files++; $dups++ if $seen{ $f->{url} =~ s/\?.*//r }++; }
    my $next = next_link($m);
    $cur = $next ? local_url($next) : undef;
}
is($pages, 200, '200 pages of 500');
is($files, 100000, 'listing 100,000 files');
ok(!$dups, 'each once');

$t->finish;
done_testing;
