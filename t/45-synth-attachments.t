#!/usr/bin/perl
# `fhir-bulk synth`: every DocumentReference attachment is dereferenceable: inline `data` with
# contentType, size and hash (base64 SHA-1 of the data, FHIR R4 Attachment), no URL that
# would not resolve. Checked on what the server exports after `synth --load`.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use MIME::Base64 qw(decode_base64 encode_base64);
use Digest::SHA qw(sha1);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(40, '--seed', 45);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker;

my $res = $t->kickoff('/fhir/$export?_type=DocumentReference');
is($res->{status}, 202, 'kick-off');
$res = $t->poll($res->{headers}{'content-location'}, 120);
is($res->{status}, 200, 'completes') or diag($res->{content});
my $docs = $t->download_all($res->{json}{output})->{DocumentReference} || [];
cmp_ok(scalar(@$docs), '>', 20, 'DocumentReferences exported');

my (@bad, $attachments);
for my $d (@$docs) {
    for my $c (@{ $d->{content} || [] }) {
        my $a = $c->{attachment} || {};
        $attachments++;
        my $where = "DocumentReference/$d->{id}";
        if (exists $a->{url}) { push @bad, "$where: url $a->{url}"; next; }
        if (!defined $a->{data}) { push @bad, "$where: no data"; next; }
        my $bytes = decode_base64($a->{data});
        push @bad, "$where: data is not canonical base64"
            if encode_base64($bytes, '') ne $a->{data};
        push @bad, "$where: no contentType" unless ($a->{contentType} // '') eq 'text/plain';
        push @bad, "$where: size $a->{size} for " . length($bytes) . ' bytes'
            unless defined $a->{size} && $a->{size} == length($bytes);
        push @bad, "$where: hash does not match"
            unless ($a->{hash} // '') eq encode_base64(sha1($bytes), '');
        push @bad, "$where: empty note" unless length $bytes;
    }
}
cmp_ok($attachments, '>=', scalar(@$docs), 'every DocumentReference has an attachment');
ok(!@bad, 'every attachment is inline data with contentType, size and a matching SHA-1 hash')
    or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
is($t->psql("SELECT count(*) FROM resource WHERE res_type = 'DocumentReference' "
            . "AND body LIKE '%notes.example.org%'"), 0, 'no attachment points at notes.example.org');

$t->finish;
done_testing;
