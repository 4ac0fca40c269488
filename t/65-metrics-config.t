#!/usr/bin/perl
# fhir_bulk_metrics configuration: nginx -t refuses a metrics location without a database
# connection, or inside a fhir_bulk_api location, naming the directive; a metrics location
# whose database is unreachable from the start still answers 200 with the counters and
# fhir_bulk_database_up 0; HEAD has no body; the counters exist even before any traffic.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
# a conninfo file without starting a database: nothing listens on port 1
mkdir $t->dir . '/pg';
open(my $fh, '>', $t->dir . '/pg/nginx-conninfo') or die;
print $fh "host=127.0.0.1 port=1 dbname=x connect_timeout=2\n";
close $fh;

sub conf_with {
    my ($server_body) = @_;
    return "    server {\n"
         . "        listen 127.0.0.1:%%PORT%%;\n"
         . "        $server_body\n"
         . "    }\n";
}

$t->write_conf(conf_with('location = /metrics { fhir_bulk_metrics; }'));
my ($status, $out) = $t->nginx_test;
isnt($status, 0, 'a metrics location without a connection: nginx -t fails');
like($out, qr/"fhir_bulk_metrics" requires "fhir_bulk_pg_conninfo"/, '... naming the directive');

$t->write_conf(conf_with('location /fhir { fhir_bulk_api; fhir_bulk_metrics;'
                         . ' fhir_bulk_base_url %%BASE_URL%%; fhir_bulk_auth off;'
                         . ' fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%; }'));
($status, $out) = $t->nginx_test;
isnt($status, 0, 'fhir_bulk_metrics in a fhir_bulk_api location: nginx -t fails');
like($out, qr/fhir_bulk_metrics.*fhir_bulk_api/, '... saying why');

$t->write_conf(conf_with('location = /metrics { fhir_bulk_metrics; fhir_bulk_metrics; '
                         . 'fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%; }'));
($status, $out) = $t->nginx_test;
isnt($status, 0, 'fhir_bulk_metrics twice: nginx -t fails');
like($out, qr/"fhir_bulk_metrics" directive is duplicate/, '... as a duplicate');

$t->write_conf(conf_with('fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%;'
                         . ' location = /metrics { fhir_bulk_metrics; }'));
($status, $out) = $t->nginx_test;
is($status, 0, 'the connection inherited from the server: nginx -t passes') or diag($out);
$t->start_nginx;

my $res = $t->get('/metrics');
is($res->{status}, 200, 'database unreachable: /metrics still 200');
like($res->{content}, qr/^fhir_bulk_database_up 0$/m, '... with fhir_bulk_database_up 0');
like($res->{content}, qr/^fhir_bulk_requests_total\{route="poll",code="202"\} 0$/m,
     '... and the counters, at zero before any traffic');
unlike($res->{content}, qr/^fhir_bulk_jobs/m, '... but no database gauges');
my $head = $t->request('HEAD', '/metrics');
is($head->{status}, 200, 'HEAD /metrics: 200');
is($head->{content} // '', '', '... without a body');

$t->finish;
done_testing;
