#!/usr/bin/perl
# Workers reading export units from a hot standby (issue 17): the same export read from the
# primary and from a streaming standby gives the same resources, byte for byte, while the
# loader updates, deletes and creates resources during both exports.
#
# Two system exports are kicked off with no worker running and no write in between, so both
# must return the data as of (practically) the same instant. Export A runs on a worker that
# reads from the primary only, while export B is held back (its job row locked, which the
# planner skips); then B runs on a worker with --read-db. A writer rewrites the data
# throughout. Each type's NDJSON lines, sorted, must be identical (the order of lines within
# a file follows the heap, which the concurrent writes reshuffle: the design guarantees the
# set and each line's bytes, not their order).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(50);
my $standby = $t->start_standby('standby');
ok($t->wait_until(sub { $t->psql_at($standby, 'SELECT pg_is_in_recovery()') eq 't' }),
   'the standby is in recovery (streaming from the primary)');
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

# What the writer rewrites: Observations and Patients (updated every round), resources it
# deletes (a few per round), and new Observations it creates.
my @update_bodies = split /\n/, $t->psql(
    "(SELECT body FROM resource WHERE res_type = 'Observation' AND NOT deleted "
    . "ORDER BY res_id LIMIT 150) UNION ALL (SELECT body FROM resource "
    . "WHERE res_type = 'Patient' AND NOT deleted ORDER BY res_id LIMIT 20)");
my @deletable = split /\n/, $t->psql(
    "SELECT res_type || '/' || res_id FROM resource WHERE NOT deleted "
    . "AND res_type IN ('Condition', 'Encounter', 'Observation') ORDER BY md5(res_id) "
    . "OFFSET 200 LIMIT 400");
cmp_ok(scalar @update_bodies, '>=', 100, 'resources to rewrite');

# The writer: rounds of updates, deletions and creations until the stop file appears; each
# round appends a line to rounds.log.
my $stop_file = $t->dir . '/writer.stop';
my $rounds_log = $t->dir . '/rounds.log';
my $writer = fork;
die "fork: $!" unless defined $writer;
if ($writer == 0) {
    my $json = JSON::PP->new->utf8->canonical;
    my @bodies = map { decode_json($_) } @update_bodies;
    my $round = 0;
    sleep 0.05 until -e $rounds_log;  # created after both kick-offs
    while (!-e $stop_file) {
        $round++;
        my $path = $t->dir . "/round$round.ndjson";
        open(my $fh, '>', $path) or POSIX::_exit(1);
        for my $r (@bodies) {
            $r->{language} = "x-round-$round";
            print $fh $json->encode($r), "\n";
        }
        for my $i (1 .. 5) {
            my $new = { %{ $bodies[0] } };
            $new->{id} = "rep-new-$round-$i";
            print $fh $json->encode($new), "\n";
        }
        close $fh;
        $t->run_tool('load', '--quiet', $path);
        my @del = splice(@deletable, 0, 4);
        $t->run_tool('load', '--quiet', map { ('--delete', $_) } @del) if @del;
        unlink $path;
        open(my $lf, '>>', $rounds_log) or POSIX::_exit(1);
        printf $lf "%d %.3f\n", $round, time;
        close $lf;
    }
    POSIX::_exit(0);
}
sub rounds {
    open(my $fh, '<', $rounds_log) or return 0;
    my @l = <$fh>;
    close $fh;
    return scalar @l;
}

# Lines per type (from the downloads), and how often a resource occurs.
sub collect {
    my ($res) = @_;
    my %seen;
    my %lines = %{ $t->download_lines($res->{json}{output}) };
    my $dupes = 0;
    for my $type (keys %lines) {
        $dupes += grep { $seen{$_}++ } FhirBulk::Test::resource_keys(@{ $lines{$type} });
        $lines{$type} = [ sort @{ $lines{$type} } ];
    }
    return (\%lines, $dupes);
}

# Small units: the big types are split into page ranges, read by several statements at
# different moments (several snapshots), on the primary and on the standby. A resource
# replaced between two of them was lost before sql/0019 (found by this test).
my @worker_args = ('--threads', 2, '--target-unit-resources', 1500, '--lease-seconds', 10);

my $url_a = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
my $url_b = $t->kickoff('/fhir/$export')->{headers}{'content-location'};
ok($url_a && $url_b, 'two system exports kicked off');
my ($job_a, $job_b) = ($t->job_id_of($url_a), $t->job_id_of($url_b));
my $held = $t->hold_lock("SELECT 1 FROM export_job WHERE job_id = '$job_b' FOR UPDATE");

sleep 0.2;
# The data as of both transactionTimes: nothing has written since the kick-offs.
my %count_at_t = map { split /\|/ } split /\n/, $t->psql(
    "SELECT res_type || '|' || count(*) FROM resource WHERE NOT deleted GROUP BY res_type");
open(my $touch, '>', $rounds_log) or die;  # the writer starts after both kick-offs
close $touch;
$t->wait_until(sub { rounds() >= 1 }, 30);

# A: read from the primary, writes going on
my $wp = $t->start_worker(@worker_args);
my $rounds_before = rounds();
my $res_a = $t->poll($url_a, 120);
is($res_a->{status}, 200, 'export A (primary) completes') or diag($res_a->{content});
$t->stop_worker($wp);
cmp_ok(rounds(), '>', $rounds_before, 'the writer ran during export A');

# B: read from the standby, writes going on
$t->release_lock($held);
my $wr = $t->start_worker(@worker_args, '--read-db', $standby);
$rounds_before = rounds();
my $res_b = $t->poll($url_b, 120);
is($res_b->{status}, 200, 'export B (standby) completes') or diag($res_b->{content});
cmp_ok(rounds(), '>', $rounds_before, 'the writer ran during export B');
open(my $stop, '>', $stop_file) or die;
close $stop;
waitpid($writer, 0);
$t->stop_worker($wr);

is($t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job_a' "
            . "AND read_from IS DISTINCT FROM 'primary'"), 0, 'every unit of A read from the primary');
my $units_b = $t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job_b'");
cmp_ok($units_b, '>', 5, "B has several units ($units_b)");
is($t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job_b' "
            . "AND read_from LIKE 'replica 127.0.0.1:%'"), $units_b,
   'every unit of B read from the standby (export_unit.read_from)');
my $log = $t->worker_log;
like($log, qr/job \Q$job_b\E unit \d+ .*read from replica 127\.0\.0\.1:\d+/,
     'the worker log names the standby a unit read from');

my ($lines_a, $dupes_a) = collect($res_a);
my ($lines_b, $dupes_b) = collect($res_b);
is($dupes_a + $dupes_b, 0, 'no resource twice in either export');
is_deeply([ sort keys %$lines_b ], [ sort keys %$lines_a ], 'the same types');
my $total = 0;
for my $type (sort keys %$lines_a) {
    my ($a, $b) = ($lines_a->{$type}, $lines_b->{$type} || []);
    $total += @$a;
    my $same = @$a == @$b && !grep { $a->[$_] ne $b->[$_] } 0 .. $#$a;
    ok($same, "$type: the same " . scalar(@$a) . ' lines, byte for byte')
        or diag("primary " . scalar(@$a) . " lines, standby " . scalar(@$b));
    is(scalar(@$a), $count_at_t{$type} // 0, "$type: every resource stored at transactionTime");
}
cmp_ok($t->psql("SELECT count(*) FROM export_unit WHERE job_id = '$job_b' AND page_lo IS NOT NULL"),
       '>', 0, 'some type was split into page ranges (several snapshots per type)');
my $counted = 0;
$counted += $_->{count} for @{ $res_a->{json}{output} || [] };
is($total, $counted, "the manifest counts add up ($total resources)");
my $changed = $t->psql("SELECT count(*) FROM resource WHERE body LIKE '%x-round-%'");
cmp_ok($changed, '>', 0, 'the data changed meanwhile');
ok(!grep(/x-round-/, map { @$_ } values %$lines_b), 'no change after transactionTime is exported');

$t->finish;
done_testing;
