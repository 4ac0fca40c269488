#!/usr/bin/perl
# _typeFilter and _elements, end to end on the Synthea sample, in GET and POST form.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker;

sub export {
    my ($path, %opt) = @_;
    my $res = $t->kickoff($path, %opt);
    is($res->{status}, 202, "kick-off $path") or diag($res->{content});
    $res = $t->poll($res->{headers}{'content-location'});
    is($res->{status}, 200, 'completes') or diag($res->{content});
    return $t->download_all($res->{json}{output});
}

sub has_category {
    my ($r, $code) = @_;
    return grep { $_->{code} eq $code } map { @{ $_->{coding} || [] } } @{ $r->{category} || [] };
}

my $labs = $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Observation' "
                    . "AND tokens && ARRAY['category=laboratory']");
cmp_ok($labs, '>', 0, 'the sample has laboratory Observations');

my $out = export('/fhir/$export?_type=Observation,Patient'
                 . '&_typeFilter=Observation%3Fcategory%3Dlaboratory');
is(scalar @{ $out->{Observation} }, $labs, 'GET: exactly the laboratory Observations');
is(scalar(grep { !has_category($_, 'laboratory') } @{ $out->{Observation} }), 0,
   'and nothing else');
is(scalar @{ $out->{Patient} }, 100, 'types without a filter are not filtered');

# two queries for one type are ORed; & inside a query is AND
my $vitals_2015 = $t->psql(
    "SELECT count(*) FROM resource WHERE res_type = 'Observation' AND "
    . "(tokens && ARRAY['category=laboratory'] OR (tokens && ARRAY['category=vital-signs'] AND "
    . "EXISTS (SELECT 1 FROM unnest(date_params, date_lo) d(p, lo) "
    . "WHERE d.p = 'date' AND d.lo >= '2015-01-01T00:00:00Z')))");
$out = export('/fhir/$export', body => encode_json({ resourceType => 'Parameters', parameter => [
    { name => '_type', valueString => 'Observation' },
    { name => '_typeFilter', valueString => 'Observation?category=laboratory' },
    { name => '_typeFilter', valueString => 'Observation?category=vital-signs&date=ge2015-01-01' },
] }));
is(scalar @{ $out->{Observation} }, $vitals_2015, 'POST: two filters ORed, criteria ANDed');

$out = export('/fhir/$export?_type=Patient&_elements=gender,birthDate');
my @keys = sort keys %{ { map { %$_ } @{ $out->{Patient} } } };
is_deeply(\@keys, [qw(birthDate gender id meta resourceType)],
          '_elements keeps only the named elements (plus id, meta)');
my @tags = map { "$_->{system}|$_->{code}" } @{ $out->{Patient}[0]{meta}{tag} || [] };
ok((grep { $_ eq 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue|SUBSETTED' } @tags),
   'subsetted resources carry the SUBSETTED tag');

$t->finish;
done_testing;
