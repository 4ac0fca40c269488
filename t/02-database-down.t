#!/usr/bin/perl
# PostgreSQL down: 503 + Retry-After + OperationOutcome, nginx keeps running, and requests
# succeed again when the database returns, without restarting nginx.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

is($t->get('/fhir/_health')->{status}, 200, 'healthy while the database is up');

$t->stop_pg;
for my $i (1 .. 3) {
    my $res = $t->get('/fhir/_health');
    $t->is_outcome($res, 503, 'transient', "database down: 503 (try $i)");
    is($res->{headers}{'retry-after'}, '7', 'with the configured Retry-After');
    unlike($res->{content}, qr/127\.0\.0\.1|port|password/i,
           'without internal connection details');
}
is($t->get('/fhir/metadata')->{status}, 200, 'routes without the database still answer');
ok($t->nginx_alive, 'nginx keeps running');

$t->start_pg;
my $status = 0;
for (1 .. 40) {
    $status = $t->get('/fhir/_health')->{status};
    last if $status == 200;
    sleep 0.1;
}
is($status, 200, 'requests succeed again once the database is back, without a restart');
# every worker and pool thread reconnects (after its short back-off), not just one
sleep 0.6;
my %seen;
$seen{ $t->get('/fhir/_health')->{status} }++ for 1 .. 20;
is_deeply(\%seen, { 200 => 20 }, 'all following requests succeed');

open(my $fh, '<', $t->dir . '/error.log') or die;
my $log = do { local $/; <$fh> };
like($log, qr/fhir_bulk: Unavailable: cannot connect to the database/,
     'the operator finds the database error in the error log');

$t->finish;
done_testing;
