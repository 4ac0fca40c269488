#!/usr/bin/perl
# nginx -t rejects a missing or invalid directive with a message naming it, never a crash.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
# a conninfo file without starting a database: configuration checks need none
mkdir $t->dir . '/pg';
open(my $fh, '>', $t->dir . '/pg/nginx-conninfo') or die;
print $fh "host=127.0.0.1 port=1 dbname=x\n";
close $fh;
open($fh, '>', $t->dir . '/empty-conninfo') or die;
close $fh;

sub conf_with {
    my ($location_body) = @_;
    return "    server {\n"
         . "        listen 127.0.0.1:%%PORT%%;\n"
         . "        location /fhir {\n"
         . "            $location_body\n"
         . "        }\n"
         . "    }\n";
}

my $good = 'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; '
         . 'fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%; fhir_bulk_auth off;';
my $with_auth = 'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; '
         . 'fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%; '
         . 'fhir_bulk_token_key_file %%TESTDIR%%/token.key;';
open($fh, '>', $t->dir . '/token.key') or die;
print $fh "# rotated 2026-11\nk2 0123456789abcdef0123456789abcdef01\nk1 fedcba9876543210fedcba9876543210fe\n";
close $fh;
open($fh, '>', $t->dir . '/short.key') or die;
print $fh "k1 tooshort\n";
close $fh;

my @cases = (
    [ 'a valid configuration', $good, undef ],
    [ 'fhir_bulk_api without a base URL',
      'fhir_bulk_api; fhir_bulk_pg_conninfo "host=x";', qr/requires "fhir_bulk_base_url"/ ],
    [ 'a relative base URL',
      'fhir_bulk_api; fhir_bulk_base_url /fhir; fhir_bulk_pg_conninfo "host=x";',
      qr/invalid value "\/fhir" in "fhir_bulk_base_url"/ ],
    [ 'a base URL with a query',
      'fhir_bulk_api; fhir_bulk_base_url http://h/fhir?x=1; fhir_bulk_pg_conninfo "host=x";',
      qr/fhir_bulk.*query/ ],
    [ 'no database configured', 'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%;',
      qr/requires "fhir_bulk_pg_conninfo" or "fhir_bulk_pg_conninfo_file"/ ],
    [ 'both conninfo directives',
      'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; fhir_bulk_pg_conninfo "host=x"; '
      . 'fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%;',
      qr/"fhir_bulk_pg_conninfo" and "fhir_bulk_pg_conninfo_file" are exclusive/ ],
    [ 'a missing conninfo file',
      'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; '
      . 'fhir_bulk_pg_conninfo_file %%TESTDIR%%/nope;',
      qr/"fhir_bulk_pg_conninfo_file": cannot open/ ],
    [ 'an empty conninfo file',
      'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; '
      . 'fhir_bulk_pg_conninfo_file %%TESTDIR%%/empty-conninfo;',
      qr/"fhir_bulk_pg_conninfo_file": .* is empty/ ],
    [ 'a duplicate fhir_bulk_api', "$good fhir_bulk_api;",
      qr/"fhir_bulk_api" directive is duplicate/ ],
    [ 'fhir_bulk_api with an argument', 'fhir_bulk_api on;',
      qr/invalid number of arguments in "fhir_bulk_api"/ ],
    [ 'a retry-after of 0', "$good fhir_bulk_retry_after 0;",
      qr/invalid value "0" in "fhir_bulk_retry_after"/ ],
    [ 'a non-numeric retry-after', "$good fhir_bulk_retry_after soon;",
      qr/invalid value "soon" in "fhir_bulk_retry_after"/ ],
    [ 'an undeclared thread pool', "$good fhir_bulk_thread_pool nope;",
      qr/unknown thread pool "nope"/ ],
    [ 'authorization with a token key (rotation: two keys)', $with_auth, undef ],
    [ 'authorization on by default without a token key',
      'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%;',
      qr/fhir_bulk_token_key_file/ ],
    [ 'a missing token key file',
      'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%; '
      . 'fhir_bulk_token_key_file %%TESTDIR%%/nope.key;', qr/token key file/ ],
    [ 'a token key too short',
      'fhir_bulk_api; fhir_bulk_base_url %%BASE_URL%%; fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%; '
      . 'fhir_bulk_token_key_file %%TESTDIR%%/short.key;', qr/at least 32 characters/ ],
    [ 'a token lifetime over 300 s', "$with_auth fhir_bulk_token_lifetime 301s;",
      qr/"fhir_bulk_token_lifetime" must be from 1s to 300s/ ],
    # values the core takes as int: 2^32 must not wrap to 0 (= no limit)
    [ 'max_retained_exports of 2^32', "$good fhir_bulk_max_retained_exports 4294967296;",
      qr/"fhir_bulk_max_retained_exports" must be from 0 to 1000000/ ],
    [ 'max_active_exports of 2^32', "$good fhir_bulk_max_active_exports 4294967296;",
      qr/"fhir_bulk_max_active_exports" must be from 0 to 1000000/ ],
    [ 'typefilter_max_terms of 2^32', "$good fhir_bulk_typefilter_max_terms 4294967296;",
      qr/"fhir_bulk_typefilter_max_terms" must be from 1 to 1000000/ ],
    [ 'typefilter_max_terms of 0', "$good fhir_bulk_typefilter_max_terms 0;",
      qr/"fhir_bulk_typefilter_max_terms" must be from 1 to 1000000/ ],
    [ 'min_free_percent of 2^32 + 5', "$good fhir_bulk_min_free_percent 4294967301;",
      qr/"fhir_bulk_min_free_percent" must be from 0 to 99/ ],
    [ 'min_free_percent of 100', "$good fhir_bulk_min_free_percent 100;",
      qr/"fhir_bulk_min_free_percent" must be from 0 to 99/ ],
    [ 'a min_poll_interval over 1h', "$good fhir_bulk_min_poll_interval 25d;",
      qr/"fhir_bulk_min_poll_interval" must be at most 1h/ ],
    [ 'limits at their maxima',
      "$good fhir_bulk_max_retained_exports 1000000; fhir_bulk_max_active_exports 0; "
      . 'fhir_bulk_typefilter_max_terms 1000000; fhir_bulk_min_free_percent 99;', undef ],
    [ 'a signed URL key file that does not exist',
      "$with_auth fhir_bulk_signed_url_key_file %%TESTDIR%%/nope.key;", qr/URL key file/ ],
);

for my $c (@cases) {
    my ($name, $body, $expect) = @$c;
    $t->write_conf(conf_with($body));
    my ($status, $out) = $t->nginx_test;
    if (!defined $expect) {
        is($status, 0, "nginx -t accepts $name") or diag($out);
        next;
    }
    # exit status 1 is a configuration error; a crash would show as a signal
    is($status >> 8, 1, "nginx -t rejects $name") or diag($out);
    is($status & 127, 0, "nginx -t does not crash on $name");
    like($out, $expect, "and names the directive for $name");
}

# a declared thread pool is accepted
$t->write_conf(conf_with("$good fhir_bulk_thread_pool fb;"),
               main => 'thread_pool fb threads=2 max_queue=8;');
my ($status, $out) = $t->nginx_test;
is($status, 0, 'a declared thread pool is accepted') or diag($out);

done_testing;
