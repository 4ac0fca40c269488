#!/usr/bin/perl
# Prefer: respond-async, separate-export-status (IG 3.0.0, issue 13): the kick-off echoes it
# in Preference-Applied; its polls answer 200 with the job's status in X-Export-Status
# (202 Accepted while it runs, 200 OK with the manifest, 500 with the OperationOutcome when it
# failed), while 404 and 429 stay about the status request itself. The client's
# --separate-export-status reads it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use FhirBulk::Test;
use FhirBulk::ClientTest;

my $t = FhirBulk::Test->new;
plan skip_all => 'the Synthea sample is not beside the checkout' unless -d $t->synthea_dir;
$t->start_pg;
$t->load($t->synthea_dir);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

my %sep = (headers => { Prefer => 'respond-async, separate-export-status' });

# A kick-off without it: no Preference-Applied, the usual 202 polls.
my $old_xact = $t->hold_lock('SELECT pg_current_xact_id()');  # holds planning back
my $res = $t->kickoff('/fhir/$export?_type=Patient');
is($res->{status}, 202, 'plain kick-off: 202');
ok(!exists $res->{headers}{'preference-applied'}, 'no Preference-Applied');
my $plain = $res->{headers}{'content-location'};
is($t->get($plain)->{status}, 202, 'its polls answer 202');
ok(!exists $t->get($plain)->{headers}{'x-export-status'}, 'without X-Export-Status');

$res = $t->kickoff('/fhir/$export?_type=Patient', %sep);
is($res->{status}, 202, 'kick-off with separate-export-status: 202');
like($res->{headers}{'preference-applied'} // '', qr/\brespond-async\b/,
     'Preference-Applied names respond-async');
like($res->{headers}{'preference-applied'} // '', qr/\bseparate-export-status\b/,
     'and separate-export-status');
my $url = $res->{headers}{'content-location'};
# Comma-joined or repeated Prefer headers, any case.
$res = $t->kickoff('/fhir/$export?_type=Patient',
                   headers => { Prefer => [ 'respond-async', 'Separate-Export-Status' ] });
like($res->{headers}{'preference-applied'} // '', qr/separate-export-status/,
     'a repeated Prefer header is read too');
my $url_rep = $res->{headers}{'content-location'};

$res = $t->get($url);
is($res->{status}, 200, 'running: the status request itself succeeds (200)');
is($res->{headers}{'x-export-status'}, '202 Accepted', 'X-Export-Status: 202 Accepted');
like($res->{headers}{'x-progress'} // '', qr/\S/, 'X-Progress still sent');
ok(defined $res->{headers}{'retry-after'}, 'and Retry-After');

$t->release_lock($old_xact);
my $worker = $t->start_worker('--threads', 2);
my $done = $t->wait_until(sub {
    my $r = $t->get($url);
    return ($r->{headers}{'x-export-status'} // '') eq '200 OK' ? $r : undef;
}, 120);
ok($done, 'completed: X-Export-Status: 200 OK');
is($done->{status}, 200, 'status 200');
is($done->{headers}{'content-type'}, 'application/json', 'with the manifest (application/json)');
ok($done->{json} && @{ $done->{json}{output} }, 'which lists the output files');
ok($done->{headers}{expires}, 'and Expires');
is($t->poll($plain, 120)->{status}, 200, 'the plain export completes with a plain 200');
ok(!exists $t->get($plain)->{headers}{'x-export-status'}, 'without X-Export-Status');

# A failed job: 200, X-Export-Status 500, the OperationOutcome.
my ($job) = $url_rep =~ m{/\$export-status/([0-9a-f-]{36})$};
ok($t->wait_until(sub {
       $t->psql("SELECT state FROM export_job WHERE job_id = '$job'") eq 'completed' }, 120),
   'the third export completes');
$t->psql("UPDATE export_job SET state = 'failed', error = "
         . q{'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"test failure"}]}'}
         . " WHERE job_id = '$job'");
sleep 1.2;  # past the status cache's second
$res = $t->get($url_rep);
is($res->{status}, 200, 'failed: the status request itself succeeds (200)');
like($res->{headers}{'x-export-status'} // '', qr/^500\b/, 'X-Export-Status: 500');
like($res->{headers}{'content-type'} // '', qr{^application/fhir\+json}, 'fhir+json body');
is($res->{json}{issue}[0]{diagnostics}, 'test failure', 'the job\'s OperationOutcome');

# Cancelled: 404 is about the status request, not the job.
is($t->request('DELETE', $url)->{status}, 202, 'cancel');
$t->is_outcome($t->get($url), 404, 'not-found', 'after a cancel: a plain 404');

# The client.
my $c = FhirBulk::ClientTest->new($t);
my $r = $c->run('--system', '--type', 'Patient,Condition', '--separate-export-status');
is($r->{exit}, 0, 'fhir-bulk export --separate-export-status: exit 0')
    or diag("stderr:\n$r->{stderr}\nstdout:\n$r->{stdout}");
my %want = %{ $t->db_counts };
is_deeply($c->summary($r->{out})->{resources},
          { map { $_ => $want{$_} } qw(Patient Condition) }, 'every resource downloaded');

$t->stop_worker($worker);
done_testing;
