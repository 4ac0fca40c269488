#!/usr/bin/perl
# Metrics (issue 15): fhir_bulk_metrics answers in the Prometheus text format (checked by a
# strict parser below), its counters move with traffic exactly as much as the test sends
# (kick-offs by level and status, polls by answer incl. 429, downloads and their bytes, tokens
# granted and refused by reason, database errors, thread-pool tasks), summed over nginx's two
# worker processes (reuseport spreads the test's connections over both; the access log shows
# which served what) and kept across a reload; the database gauges agree with psql.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client assertion token_request
                      get_token bearer);

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(8);
write_token_key($t);
my $conf = FhirBulk::Test::default_http_conf(auth => 1, min_poll_interval => '5s',
                                             server_extra => <<'CONF');
        location = /metrics {
            allow 127.0.0.1;
            deny all;
            fhir_bulk_metrics;
        }
CONF
$conf =~ s/listen 127\.0\.0\.1:%%PORT%%;/listen 127.0.0.1:%%PORT%% reuseport;/ or die;
$t->write_conf($conf, access_log => "log_format withpid '\$pid \$status \$uri';\n"
                                    . "    access_log %%TESTDIR%%/access.log withpid;");
$t->start_nginx;
# The worker starts after the kick-offs (below), so that a poll is surely throttled.

# --- a strict reader of the text format 0.0.4 -------------------------------------------------
my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"/;
my $VALUE = qr/[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|Inf)|NaN/;

# Returns ({ "name{labels}" => value }, [problems]).
sub parse_exposition {
    my ($text) = @_;
    my (%samples, %help, %type, %sampled, @problems);
    push @problems, 'does not end with a newline' unless $text =~ /\n\z/;
    my $n = 0;
    for my $line (split /\n/, $text) {
        $n++;
        if ($line =~ /^# HELP ($NAME) (.*)$/) {
            push @problems, "line $n: second HELP for $1" if $help{$1}++;
            push @problems, "line $n: HELP after samples of $1" if $sampled{$1};
        } elsif ($line =~ /^# TYPE ($NAME) (counter|gauge|histogram|summary|untyped)$/) {
            push @problems, "line $n: second TYPE for $1" if $type{$1};
            push @problems, "line $n: TYPE after samples of $1" if $sampled{$1};
            $type{$1} = $2;
        } elsif ($line =~ /^($NAME)(\{$LABEL(?:,$LABEL)*\})? ($VALUE)$/) {
            my ($name, $labels, $value) = ($1, $2 // '', $3);
            my $family = $name;
            if ($name =~ /^(.*)_(?:bucket|sum|count)$/ && ($type{$1} // '') eq 'histogram') {
                $family = $1;
            }
            push @problems, "line $n: $name has no TYPE" unless $type{$family};
            push @problems, "line $n: duplicate $name$labels" if exists $samples{"$name$labels"};
            $sampled{$family} = 1;
            $samples{"$name$labels"} = $value =~ /Inf/ ? 9e99 : $value + 0;
        } else {
            push @problems, "line $n: not HELP, TYPE or a sample: $line";
        }
    }
    return (\%samples, \@problems);
}

sub scrape {
    my $res = $t->get('/metrics');
    die "GET /metrics: $res->{status}\n" unless $res->{status} == 200;
    my ($s, $problems) = parse_exposition($res->{content});
    die "bad exposition: @$problems\n" if @$problems;
    return ($s, $res);
}

# The parser itself rejects what it must.
{
    my (undef, $p) = parse_exposition("# TYPE a gauge\na{x=\"1\"\"} 1\n");
    ok(@$p, 'the parser rejects a bad label');
    (undef, $p) = parse_exposition("a 1\n");
    ok(@$p, 'the parser rejects a sample without TYPE');
    (undef, $p) = parse_exposition("# TYPE a gauge\na 1\n# TYPE a gauge\n");
    ok(@$p, 'the parser rejects a second TYPE');
}

my ($before, $res) = scrape();
is($res->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   '/metrics: the Prometheus text format');
ok(exists $before->{'fhir_bulk_requests_total{route="kickoff",level="group",code="202"}'},
   'every route and status class is present from the start');
is($before->{fhir_bulk_database_up}, 1, 'database up');
is($t->request('POST', '/metrics', {}, 'x')->{status}, 405, 'POST /metrics: 405');

# --- traffic ------------------------------------------------------------------------------------
my %sent;    # "route [level] code" => count
my %tokens;  # outcome => count
my $key = new_key('ES384');
my $client = register_client($t, jwks => jwks_of($key), scope => 'system/*.read');
my $token;
for (1 .. 3) {
    $token = get_token($t, $client, $key);
    $sent{'token 200'}++;
    $tokens{granted}++;
}
my $r = token_request($t, assertion($t, 'no-such-client', $key));
is($r->{json}{error}, 'invalid_client', 'unknown client: invalid_client') or diag($r->{content});
$sent{"token $r->{status}"}++;
$tokens{invalid_client}++;
$r = token_request($t, assertion($t, $client, $key), form => { scope => 'system/*.write' });
is($r->{json}{error}, 'invalid_scope', 'a scope the client may not have: invalid_scope');
$sent{"token $r->{status}"}++;
$tokens{invalid_scope}++;
$r = token_request($t, assertion($t, $client, $key), form => { grant_type => 'password' });
is($r->{json}{error}, 'unsupported_grant_type', 'another grant type: unsupported_grant_type');
$sent{"token $r->{status}"}++;
$tokens{unsupported_grant_type}++;
$r = token_request($t, assertion($t, $client, $key), content_type => 'text/plain');
is($r->{json}{error}, 'invalid_request', 'not a form: invalid_request');
$sent{"token $r->{status}"}++;
$tokens{invalid_request}++;

my $auth = bearer($token);
my $k1 = $t->kickoff('/fhir/$export', headers => $auth);
is($k1->{status}, 202, 'system kick-off');
$sent{'kickoff system 202'}++;
my $k2 = $t->kickoff('/fhir/Patient/$export', headers => $auth);
is($k2->{status}, 202, 'patient kick-off');
$sent{'kickoff patient 202'}++;
my $g = $t->kickoff('/fhir/Group/nope/$export', headers => $auth);
is($g->{status}, 404, 'group kick-off of an unknown group: 404');
$sent{"kickoff group $g->{status}"}++;
my $noauth = $t->kickoff('/fhir/$export');
is($noauth->{status}, 401, 'kick-off without a token: 401');
$sent{"kickoff system $noauth->{status}"}++;

# A job not yet planned, polled twice within 5 s: 202, then 429 (deterministic: no worker runs
# yet). Then the worker, and polls until complete.
for my $want (202, 429) {
    my $p = $t->request('GET', $k1->{headers}{'content-location'},
                        { Accept => 'application/json', %$auth });
    is($p->{status}, $want, "a poll of a job waiting for a worker: $want");
    $sent{"poll $p->{status}"}++;
}
$t->start_worker;
my %manifest;
for my $k ($k1, $k2) {
    my $url = $k->{headers}{'content-location'};
    for (1 .. 600) {
        my $p = $t->request('GET', $url, { Accept => 'application/json', %$auth });
        $sent{"poll $p->{status}"}++;
        if ($p->{status} == 200) { $manifest{$url} = $p->{json}; last; }
        die "poll: $p->{status}\n" unless $p->{status} == 202 || $p->{status} == 429;
        sleep 0.2;
    }
}
is(scalar(keys %manifest), 2, 'both exports complete');
ok($sent{'poll 429'}, 'some polls were throttled (429)');

my $bytes = 0;
for my $m (values %manifest) {
    for my $item (@{ $m->{output} }) {
        my $d = $t->request('GET', $item->{url}, $auth);
        $sent{"download $d->{status}"}++;
        $bytes += length($d->{content} // '');
    }
}
ok($sent{'download 200'}, 'files downloaded');
my $bad = $t->request('GET', '/fhir/$export-files/not-a-job/Patient.ndjson', $auth);
$sent{"download $bad->{status}"}++;
$bytes += length($bad->{content} // '');  # body bytes of every answer, as $body_bytes_sent
is($bad->{status}, 404, 'a download of no file: 404');
$t->request('GET', '/fhir/metadata');
$sent{'other 200'}++;
$t->request('GET', '/fhir/nope');
$sent{'other 404'}++;

# --- the counters moved by exactly that much ----------------------------------------------------
sub key_of {
    my ($what) = @_;
    my ($route, @rest) = split / /, $what;
    my $code = pop @rest;
    my $level = @rest ? qq{,level="$rest[0]"} : '';
    my $class = $code =~ /^(200|202|304|400|401|403|404|429|503)$/ ? $code
              : substr($code, 0, 1) . 'xx';
    return qq{fhir_bulk_requests_total{route="$route"$level,code="$class"}};
}

sub check_counters {
    my ($after, $label) = @_;
    my %expect;
    $expect{ key_of($_) } += $sent{$_} for keys %sent;
    for my $k (sort keys %expect) {
        is($after->{$k} - $before->{$k}, $expect{$k}, "$label: $k moved by $expect{$k}");
    }
    my $all = 0;
    for my $k (grep { /^fhir_bulk_requests_total\{/ } keys %$after) {
        $all += $after->{$k} - ($before->{$k} // 0);
    }
    my $total = 0;
    $total += $_ for values %sent;
    is($all, $total, "$label: and nothing else moved ($total responses)");
    for my $o (sort keys %tokens) {
        my $m = qq{fhir_bulk_token_requests_total{outcome="$o"}};
        is($after->{$m} - $before->{$m}, $tokens{$o}, "$label: tokens $o moved by $tokens{$o}");
    }
    is($after->{fhir_bulk_download_bytes_total} - $before->{fhir_bulk_download_bytes_total},
       $bytes, "$label: download bytes ($bytes)");
}

my ($after) = scrape();
check_counters($after, 'counters');
cmp_ok($after->{fhir_bulk_thread_pool_tasks_total} - $before->{fhir_bulk_thread_pool_tasks_total},
       '>=', 3 + 2 + 2 + 1, 'thread-pool tasks counted (tokens, kick-offs, ...)');
is($after->{fhir_bulk_thread_pool_queued}, 0, 'nothing queued at rest');
is($after->{fhir_bulk_thread_pool_running}, 0, 'nothing running at rest');
is($after->{fhir_bulk_database_errors_total}, 0, 'no database errors yet');

# which nginx workers served the test: both, so the sums above span processes
open(my $log, '<', $t->dir . '/access.log') or die "access.log: $!";
my %pids;
while (<$log>) { $pids{$1}++ if /^(\d+) \d+ \/fhir\//; }
close $log;
is(scalar(keys %pids), 2, 'the requests were served by both nginx worker processes')
    or diag(join ' ', %pids);

# --- database gauges against psql ---------------------------------------------------------------
sleep 1.2;  # past the gauges' one-second cache
($after) = scrape();
for my $state (qw(accepted running completed failed cancelled)) {
    is($after->{qq{fhir_bulk_jobs{state="$state"}}},
       $t->psql("SELECT count(*) FROM export_job WHERE state = '$state'"), "jobs $state");
}
is($after->{fhir_bulk_exported_resources},
   $t->psql('SELECT sum(resources_written) FROM export_job'), 'resources exported');
cmp_ok($after->{fhir_bulk_exported_resources}, '>', 0, '... some');
is($after->{fhir_bulk_export_duration_seconds_count}, 2, 'two durations');
is($after->{'fhir_bulk_export_duration_seconds_bucket{le="+Inf"}'}, 2, '... the +Inf bucket');
my $slower = $t->psql("SELECT count(*) FROM export_job WHERE state = 'completed'"
                      . " AND finished_at - created_at > interval '60 seconds'");
is($after->{'fhir_bulk_export_duration_seconds_bucket{le="60"}'}, 2 - $slower,
   '... the 60 s bucket');
is($after->{fhir_bulk_workers_live}, 1, 'one live worker');
my ($wid) = grep { /^fhir_bulk_worker_heartbeat_age_seconds\{/ } keys %$after;
my $db_wid = $t->psql('SELECT worker_id FROM worker_heartbeat');
like($wid // '', qr/worker="\Q$db_wid\E"/, '... named as in worker_heartbeat');
cmp_ok($after->{$wid // ''} // 99, '<', 15, '... with a fresh heartbeat');
is($after->{'fhir_bulk_units{state="running"}'}, 0, 'no unit in flight');
is($after->{fhir_bulk_oldest_queued_job_age_seconds}, 0, 'nothing queued');
is($after->{fhir_bulk_schema_version}, $t->psql('SELECT max(version) FROM schema_version'),
   'schema version');

# a queued job (no worker): the queue gauges move
$t->stop_worker;
my $k3 = $t->kickoff('/fhir/$export', headers => $auth);
$sent{"kickoff system $k3->{status}"}++;
$t->psql("UPDATE export_job SET created_at = now() - interval '90 seconds'"
         . " WHERE state = 'accepted'");
sleep 1.2;
($after) = scrape();
is($after->{'fhir_bulk_jobs{state="accepted"}'}, 1, 'a queued job');
cmp_ok($after->{fhir_bulk_oldest_queued_job_age_seconds}, '>=', 90, '... its age');
is($after->{fhir_bulk_workers_live}, 0, 'no live worker');

# --- across a reload: same zone, same counters ---------------------------------------------------
my ($pre) = scrape();
$t->reload_nginx;
my ($post) = scrape();
my @moved = grep { /^fhir_bulk_requests_total/ && $post->{$_} != $pre->{$_} } keys %$pre;
is(scalar(@moved), 0, 'a reload keeps every counter') or diag("@moved");
check_counters($post, 'after the reload');

# --- database errors -------------------------------------------------------------------------------
$t->stop_pg;
my $down = $t->kickoff('/fhir/$export', headers => $auth);
is($down->{status}, 503, 'kick-off with the database down: 503');
sleep 1.2;
my ($dead) = scrape();
cmp_ok($dead->{fhir_bulk_database_errors_total}, '>=', 1, 'a database error is counted');
is($dead->{fhir_bulk_database_up}, 0, 'database_up 0');
ok(!exists $dead->{'fhir_bulk_jobs{state="accepted"}'}, '... and no database gauges');
is($dead->{'fhir_bulk_requests_total{route="kickoff",level="system",code="503"}'}
   - $before->{'fhir_bulk_requests_total{route="kickoff",level="system",code="503"}'}, 1,
   '... and the 503 under its route');
$t->start_pg;

$t->finish;
done_testing;
