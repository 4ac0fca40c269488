#!/usr/bin/perl
# 429 + Retry-After: a client over its limit of concurrent exports, and a client polling a
# running export faster than the configured interval.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
# no worker: accepted jobs stay in progress
$t->write_conf(FhirBulk::Test::default_http_conf(
    min_poll_interval => '2s', location_extra => 'fhir_bulk_max_active_exports 2;'))->start_nginx;

my @urls;
for my $i (1 .. 2) {
    my $res = $t->kickoff('/fhir/$export');
    is($res->{status}, 202, "kick-off $i within the limit");
    push @urls, $res->{headers}{'content-location'};
}
my $res = $t->kickoff('/fhir/$export');
$t->is_outcome($res, 429, 'throttled', 'a third concurrent export is 429');
like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');
like($res->{json}{issue}[0]{diagnostics}, qr/limit is 2/, 'saying what the limit is');

$res = $t->get($urls[0]);
is($res->{status}, 202, 'the first poll is 202');
like($res->{headers}{'x-progress'} // '', qr/.+/, 'with X-Progress');
$res = $t->get($urls[0]);
$t->is_outcome($res, 429, 'throttled', 'an immediate second poll is 429');
like($res->{headers}{'retry-after'} // '', qr/^[12]$/, 'Retry-After says how long to wait');
is($t->get($urls[1])->{status}, 202, 'another job of the client is polled independently');
sleep 2.1;
is($t->get($urls[0])->{status}, 202, 'after waiting, polling succeeds again');

is($t->request('DELETE', $urls[0])->{status}, 202, 'cancel one export');
is($t->kickoff('/fhir/$export')->{status}, 202, 'a cancelled export frees its slot');

$t->finish;
done_testing;
