#!/usr/bin/perl
# Issue 11, row 5: a client looping kick-offs must not fill the shared export volume. Per
# client, exports in progress or kept for download (not yet expired) are limited in number
# and bytes (429 + Retry-After + OperationOutcome); a DELETE of a completed export frees its
# share; below the minimum free space on the export volume kick-offs get 503 + Retry-After.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(5);
$t->write_conf(FhirBulk::Test::default_http_conf(location_extra =>
    'fhir_bulk_max_active_exports 0; fhir_bulk_max_retained_exports 3;'))->start_nginx;
$t->start_worker('--threads', 2);

# A reload, then until the old worker processes have exited (until then they may still accept
# connections, with the old configuration).
sub reload_and_wait {
    $t->reload_nginx;  # returns once the old workers have exited
}

# --- count --------------------------------------------------------------------------------

my @urls;
for my $i (1 .. 3) {
    my $res = $t->kickoff('/fhir/$export?_type=Patient');
    is($res->{status}, 202, "kick-off $i within the retained limit");
    push @urls, $res->{headers}{'content-location'};
}
for my $url (@urls) {
    is($t->poll($url)->{status}, 200, 'the export completes');
}
my $res = $t->kickoff('/fhir/$export?_type=Patient');
$t->is_outcome($res, 429, 'throttled',
               'completed exports kept for download count: the fourth kick-off is 429');
like($res->{json}{issue}[0]{diagnostics} // '', qr/kept for download.*limit is 3/,
     'saying what the limit is');
my $retry = $res->{headers}{'retry-after'} // '';
like($retry, qr/^\d+$/, 'with Retry-After');
ok($retry >= 3000 && $retry <= 3600,
   "Retry-After points at the next expiry, capped at an hour (got $retry)");

is($t->request('DELETE', $urls[0])->{status}, 202, 'delete a completed export');
$res = $t->kickoff('/fhir/$export?_type=Patient');
is($res->{status}, 202, 'the deleted export freed its share of the quota');
is($t->poll($res->{headers}{'content-location'})->{status}, 200, 'and that export completes');

# --- bytes --------------------------------------------------------------------------------

$t->write_conf(FhirBulk::Test::default_http_conf(location_extra =>
    'fhir_bulk_max_active_exports 0; fhir_bulk_max_retained_exports 0; '
    . 'fhir_bulk_max_retained_size 1k;'));
reload_and_wait();
$res = $t->kickoff('/fhir/$export?_type=Patient');
$t->is_outcome($res, 429, 'throttled', 'the kept files exceed the size limit: 429');
like($res->{json}{issue}[0]{diagnostics} // '', qr/bytes \(the limit is 1024\)/,
     'naming the size limit');
like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');

# --- a looping client, with the default limits ----------------------------------------------

$t->psql("DELETE FROM export_job");
$t->write_conf(FhirBulk::Test::default_http_conf());
reload_and_wait();
my ($accepted, $refused, $other) = (0, 0, 0);
my $t0 = time;
for my $i (1 .. 300) {
    my $s = $t->kickoff('/fhir/$export?_type=Patient')->{status};
    if ($s == 202) { $accepted++ } elsif ($s == 429) { $refused++ } else { $other++ }
}
my $took = time - $t0;
diag(sprintf('300 kick-offs in a loop: %d accepted, %d refused (429), %d other in %.1f s',
             $accepted, $refused, $other, $took));
ok($accepted >= 4 && $accepted <= 20, "at most 20 retained exports per client ($accepted)");
is($other, 0, 'every other kick-off is 429');
my $kept = $t->psql("SELECT count(*) FROM export_job WHERE state IN ('accepted', 'running', "
                    . "'completed')");
ok($kept <= 20, "at most 20 exports kept ($kept)");

# --- free space on the export volume ------------------------------------------------------

$t->write_conf(FhirBulk::Test::default_http_conf(location_extra =>
    'fhir_bulk_min_free_space 1000000g;'));
reload_and_wait();
$res = $t->kickoff('/fhir/$export?_type=Patient');
$t->is_outcome($res, 503, 'transient', 'an export volume short of space: 503');
like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');
unlike($res->{content}, qr{/exports|\Q$t->{dir}\E}, 'not naming the directory');

$t->write_conf(FhirBulk::Test::default_http_conf(location_extra =>
    'fhir_bulk_min_free_space 0; fhir_bulk_min_free_percent 99;'));
reload_and_wait();
$res = $t->kickoff('/fhir/$export?_type=Patient');
$t->is_outcome($res, 503, 'transient', 'less than 99 % of the volume free: 503');

$t->write_conf(FhirBulk::Test::default_http_conf(location_extra =>
    'fhir_bulk_min_free_percent 100;'));
my ($status) = $t->nginx_test;
isnt($status, 0, 'a minimum free percent of 100 is a configuration error');

$t->finish;
done_testing;
