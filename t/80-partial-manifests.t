#!/usr/bin/perl
# allowPartialManifests (IG 3.0.0, issue 13): while an export runs, polls answer 202 with a
# manifest of the files already complete; manifests are paged with `link` (relation next),
# a page once returned never changes (on either of two nginx nodes), completed exports are
# paged too, and `fhir-bulk export --allow-partial-manifests` downloads everything.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
my $conf = FhirBulk::Test::default_http_conf(location_extra => 'fhir_bulk_manifest_page_size 3;');
$t->write_conf($conf)->start_nginx;
my $node_b = $t->add_node($conf);
$node_b->start_nginx;

my $job_re = qr{/\$export-status/([0-9a-f-]{36})$};

# The files a manifest lists (host dropped, so both nodes' manifests compare), by section.
sub files_of {
    my ($m) = @_;
    my %f;
    for my $section (qw(output deleted error)) {
        $f{$section} = [ map { my $u = $_->{url}; $u =~ s{^https?://[^/]+}{}; "$_->{type} $u" }
                         @{ $m->{$section} || [] } ];
    }
    return \%f;
}
sub next_link {
    my ($m) = @_;
    my @l = grep { ($_->{relation} // '') eq 'next' } @{ $m->{link} || [] };
    return @l ? $l[0]{url} : undef;
}

# --- parameter parsing ---------------------------------------------------------------------

my $res = $t->kickoff('/fhir/$export?allowPartialManifests=maybe');
$t->is_outcome($res, 400, 'invalid', 'allowPartialManifests=maybe: 400');
like($res->{json}{issue}[0]{diagnostics} // '', qr/^allowPartialManifests/, 'naming the parameter');
$res = $t->kickoff('/fhir/$export', body => encode_json({ resourceType => 'Parameters',
    parameter => [ { name => 'allowPartialManifests', valueString => 'true' } ] }));
$t->is_outcome($res, 400, 'invalid', 'POST allowPartialManifests as valueString: 400');

# --- a running export: partial manifests ------------------------------------------------------

# One thread and small units: the export takes a while, file after file.
my @worker_args = ('--threads', 1, '--target-unit-resources', 400, '--max-file-resources', 300,
                   '--janitor-interval-seconds', 1);
$res = $t->kickoff('/fhir/$export', body => encode_json({ resourceType => 'Parameters',
    parameter => [ { name => 'allowPartialManifests', valueBoolean => JSON::PP::true } ] }));
is($res->{status}, 202, 'POST kick-off with allowPartialManifests valueBoolean true');
my $url = $res->{headers}{'content-location'};
my ($job) = $url =~ $job_re;
$res = $t->get($url);
is($res->{status}, 202, 'before any file: 202');
is($res->{content}, '', 'without a manifest');
my $worker = $t->start_worker(@worker_args);

my $partial = $t->wait_until(sub {
    my $r = $t->get($url);
    return undef unless $r->{status} == 202 && ($r->{headers}{'content-type'} // '') =~ m{json};
    return $r;
}, 120, 0.05);
ok($partial, 'a poll of the running export answers 202 with a manifest') or BAIL_OUT('no partial');
# Freeze the export where it is: units finish their rows but cannot record their files.
my $lock = $t->hold_lock('LOCK TABLE export_file IN EXCLUSIVE MODE');
my $p1 = decode_json($partial->{content});
is($partial->{headers}{'content-type'}, 'application/json', 'Content-Type application/json');
like($partial->{headers}{'x-progress'} // '', qr/\S/, 'X-Progress is still sent');
ok(defined $partial->{headers}{'retry-after'}, 'and Retry-After');
my $p1_files = files_of($p1);
cmp_ok(scalar @{ $p1_files->{output} }, '>=', 1, 'it lists a file or more');
cmp_ok(scalar @{ $p1_files->{output} }, '<=', 3, 'at most the page size (3)');
isnt($t->psql("SELECT state FROM export_job WHERE job_id = '$job'"), 'completed',
     'while the export is still running');
is($p1->{transactionTime} && $p1->{request} && exists $p1->{requiresAccessToken} ? 1 : 0, 1,
   'with transactionTime, request and requiresAccessToken');

# Every listed file is complete: it downloads whole, with the manifest's count.
my $dl = $t->download_keys($p1->{output});
is_deeply($dl->{errors}, [], 'the listed files download with their manifest counts');

# The same page from node B, and again from A: the same files.
my $url_b = $node_b->on_node($url);
$res = $node_b->get($url_b);
is($res->{status}, 202, 'node B: 202 too');
is_deeply(files_of(decode_json($res->{content}))->{output}, $p1_files->{output},
          'node B lists the same files on the first page');
$res = $t->get($url);
is_deeply(files_of(decode_json($res->{content})), $p1_files, 'node A again: the same page');

# Pages are recorded once: what a page lists does not depend on which node answered.
my @pages = ([ $url, $p1 ]);
$t->release_lock($lock);

# Follow the pages to the end, alternating nodes, recording each page as first seen.
my %first_seen = ($url => $p1_files);
my $deadline = time + 180;
my ($cur, $node_i, $complete) = ($url, 0, 0);
while (time < $deadline) {
    my $node = $node_i++ % 2 ? $node_b : $t;
    my $r = $node->get($node == $t ? $cur : $node_b->on_node($cur));
    if ($r->{status} == 202 && ($r->{content} // '') eq '') { sleep 0.05; next; }
    unless ($r->{status} == 200 || $r->{status} == 202) {
        fail("page $cur: status $r->{status}");
        diag($r->{content});
        last;
    }
    my $m = decode_json($r->{content});
    my $f = files_of($m);
    if (my $seen = $first_seen{$cur}) {
        is_deeply($f, $seen, "page $cur unchanged");
    } else {
        $first_seen{$cur} = $f;
        push @pages, [ $cur, $m ];
    }
    my $next = next_link($m);
    if ($next) {
        like($next, qr{^https?://[^/]+/fhir/\$export-status/\Q$job\E\?page=\d+$},
             'the next link is under the status URL') if @pages <= 2;
        ($cur = $next) =~ s{^https?://[^/]+}{$t->base_url =~ m{^(https?://[^/]+)} ? $1 : ''}e;
        next;
    }
    if ($r->{status} == 200) { $complete = 1; last; }
    sleep 0.05;
}
ok($complete, 'the pages end with the completed export (200, no link)');
cmp_ok(scalar @pages, '>', 1, scalar(@pages) . ' pages');

# Every page as first returned is what it is now (from node B), and the pages together list
# every file exactly once.
my (%count, $bad);
for my $p (@pages) {
    my ($purl, $m) = @$p;
    my $now = decode_json($node_b->get($node_b->on_node($purl))->{content});
    $bad++ unless JSON::PP->new->canonical->encode(files_of($now))
                  eq JSON::PP->new->canonical->encode($first_seen{$purl});
    cmp_ok(scalar @{ files_of($now)->{output} } + scalar @{ files_of($now)->{deleted} }, '<=', 3,
           "page $purl: at most 3 files") unless $bad;
    $count{$_}++ for @{ files_of($now)->{output} };
    is_deeply(files_of($now)->{error}, files_of($pages[0][1])->{error},
              'error is the same on every page') if $p == $pages[-1];
}
ok(!$bad, 'no page changed after it was first returned');
is(scalar(grep { $_ > 1 } values %count), 0, 'no file is on two pages');
is(scalar keys %count,
   $t->psql("SELECT count(*) FROM export_file WHERE job_id = '$job' AND kind = 'output'"),
   'the pages list every output file');
my $all = $t->download_keys([ map { @{ $_->[1]{output} } } @pages ]);
is_deeply($all->{errors}, [], 'every file of every page downloads');
is_deeply($all->{types}, $t->db_counts, 'every stored resource is exported, per type');

# Bad page URLs: 404.
$t->is_outcome($t->get("$url?page=abc"), 404, 'not-found', '?page=abc: 404');
$t->is_outcome($t->get("$url?page=0"), 404, 'not-found', '?page=0: 404');
$t->is_outcome($t->get("$url?page=" . (@pages + 5)), 404, 'not-found', 'a page beyond the last: 404');

# --- a completed export is paged too ----------------------------------------------------------

$res = $t->kickoff('/fhir/$export?allowPartialManifests=true&_type=Observation,Condition,Encounter');
is($res->{status}, 202, 'GET kick-off with allowPartialManifests=true');
my $url2 = $res->{headers}{'content-location'};
my ($job2) = $url2 =~ $job_re;
ok($t->wait_until(sub {
       $t->psql("SELECT state FROM export_job WHERE job_id = '$job2'") eq 'completed' }, 180),
   'it completes before it is polled');
my $n2 = $t->psql("SELECT count(*) FROM export_file WHERE job_id = '$job2' AND kind = 'output'");
cmp_ok($n2, '>', 3, "it has more files ($n2) than a page holds");
my ($p, @bodies, %seen2) = ($url2);
while ($p) {
    my $r = $t->get($p);
    is($r->{status}, 200, "completed export, page $p: 200") or last;
    my $m = decode_json($r->{content});
    push @bodies, [ $p, files_of($m) ];
    $seen2{$_}++ for @{ files_of($m)->{output} };
    my $next = next_link($m);
    ok(@{ files_of($m)->{output} } == 3 || !$next, 'full pages but the last');
    $p = $next;
}
is(scalar keys %seen2, $n2, 'the pages list every file');
is(scalar(grep { $_ > 1 } values %seen2), 0, 'each once');
for my $b (@bodies) {
    is_deeply(files_of(decode_json($node_b->get($node_b->on_node($b->[0]))->{content})), $b->[1],
              "page $b->[0] from node B: the same files");
}

# Without the parameter: one manifest, no link, no pages.
$res = $t->kickoff('/fhir/$export?_type=Observation,Condition,Encounter');
my $url3 = $res->{headers}{'content-location'};
$res = $t->poll($url3, 180);
is($res->{status}, 200, 'an export without allowPartialManifests completes');
ok(!exists $res->{json}{link}, 'its manifest has no link');
is(scalar @{ $res->{json}{output} }, $n2, 'and lists every file');
$t->is_outcome($t->get("$url3?page=2"), 404, 'not-found', 'it has no page 2');

# --- the client -------------------------------------------------------------------------------

my $c = FhirBulk::ClientTest->new($t);
my $r = $c->run('--system', '--type', 'Observation,Condition,Encounter,Patient',
                '--allow-partial-manifests', '--parallel', 2);
is($r->{exit}, 0, 'fhir-bulk export --allow-partial-manifests: exit 0')
    or diag("stderr:\n$r->{stderr}\nstdout:\n$r->{stdout}");
my $s = $c->summary($r->{out});
my %want = %{ $t->db_counts };
is_deeply($s->{resources},
          { map { $_ => $want{$_} } grep { $want{$_} } qw(Observation Condition Encounter Patient) },
          'it downloaded every resource of the requested types');
ok($s->{complete}, 'summary: complete');
like($r->{stderr}, qr/manifest page 2: /, 'it followed the manifest pages');
ok(-s "$r->{out}/manifest.json", 'manifest.json (the first page) is kept');

$t->stop_worker($worker);
done_testing;
