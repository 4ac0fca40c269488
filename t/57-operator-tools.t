#!/usr/bin/perl
# The operator tools of issue 15 against a real stack (authorization on): `fhir-bulk token`
# (its token used by curl), `jobs list|show|cancel` over every client's jobs, `audit` as a
# table, CSV and JSON with its filters, `client set-keys` (same client_id; the old key stops
# working), and each command's --help.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key);

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(20);
write_token_key($t);
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1));
$t->start_nginx;
$t->start_worker('--janitor-interval-seconds', 1);
my $BIN = $FhirBulk::Test::BIN;
my $dir = $t->dir;
my $base = $t->base_url;
my $db = $t->conninfo;

# Runs the tool; returns (exit status, stdout). stderr goes to $dir/tool.err.
sub tool {
    my (@args) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open(STDERR, '>', "$dir/tool.err");
        exec($BIN, @args) or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return ($? >> 8, $out);
}
sub tool_db { my ($cmd, @args) = @_; return tool($cmd, @args, '--db', $db); }
sub stderr_text { open(my $fh, '<', "$dir/tool.err") or return ''; local $/; <$fh> // '' }

for my $cmd (qw(jobs audit token config grants client)) {
    my ($st, $out) = tool($cmd, '--help');
    is($st, 0, "$cmd --help exits 0");
    like($out, qr/usage|fhir-bulk $cmd/i, "$cmd --help prints usage");
}
my ($st, $out) = tool('--help');
like($out, qr/^\s+jobs\s.*\n(?:.*\n)*\s+audit\s.*\n\s+token\s.*\n\s+config\s.*\n\s+grants\s/m,
     'fhir-bulk --help lists the new commands');

# --- two clients, keys made by the tool ---------------------------------------------------
my %client;
for my $name (qw(alice bob)) {
    ($st, my $kid) = tool('client', 'keygen', '--alg', 'ES384', '--private', "$dir/$name.pem",
                          '--jwks-out', "$dir/$name.jwks");
    is($st, 0, "keygen for $name");
    chomp $kid;
    ($st, my $id) = tool_db('client', 'add', '--name', $name, '--jwks', "$dir/$name.jwks");
    is($st, 0, "client add $name");
    chomp $id;
    $client{$name} = { id => $id, kid => $kid };
}

# --- token, used by curl ----------------------------------------------------------------------
sub token_for {
    my ($name, $key) = @_;
    return tool('token', '--fhir-url', $base, '--client-id', $client{$name}{id},
                '--key', $key // "$dir/$name.pem", '--kid', $client{$name}{kid});
}
($st, my $token) = token_for('alice');
is($st, 0, 'fhir-bulk token exits 0');
chomp $token;
like($token, qr/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'prints one JWT and nothing else');
unlike(stderr_text(), qr/\Q$token\E/, 'the token is not on stderr');
my $curl = `curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" -H 'Accept: application/fhir+json' -H 'Prefer: respond-async' -D $dir/kick.h '$base/\$export?_type=Patient,Observation'`;
is($curl, '202', 'curl kicks off an export with the printed token');
open(my $hfh, '<', "$dir/kick.h") or die;
my ($alice_loc) = do { local $/; <$hfh> } =~ /^content-location:\s*(\S+)/mi;
ok($alice_loc, 'Content-Location');
my ($alice_job) = $alice_loc =~ m{([0-9a-f-]{36})$};
$curl = `curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/fhir+json' '$base/\$export'`;
is($curl, '401', 'without the token: 401');
($st) = tool('token', '--token-url', "$base/auth/token", '--client-id', $client{alice}{id},
             '--key', "$dir/bob.pem");
is($st, 3, 'a key the client does not own: exit 3 (refused)');
($st) = tool('token', '--fhir-url', $base, '--client-id', $client{alice}{id});
is($st, 2, 'no --key: exit 2');

($st, my $bob_token) = token_for('bob');
chomp $bob_token;
my $res = $t->kickoff('/fhir/$export?_type=Condition', headers => { Authorization => "Bearer $bob_token" });
is($res->{status}, 202, 'bob kicks off too');
my $bob_loc = $res->{headers}{'content-location'};
my ($bob_job) = $bob_loc =~ m{([0-9a-f-]{36})$};
for my $loc ($alice_loc, $bob_loc) {
    my $tok = $loc eq $alice_loc ? $token : $bob_token;
    ok($t->wait_until(sub {
           $t->request('GET', $loc, { Authorization => "Bearer $tok" })->{status} == 200 }, 120),
       'export completed');
}

# --- jobs list / show -------------------------------------------------------------------------
($st, $out) = tool_db('jobs', 'list', '--format', 'json');
is($st, 0, 'jobs list');
my %jobs = map { $_->{job_id} => $_ } @{ decode_json($out) };
ok($jobs{$alice_job} && $jobs{$bob_job}, 'lists both clients\' jobs');
is($jobs{$alice_job}{client_id}, $client{alice}{id}, 'with the client');
is($jobs{$alice_job}{state}, 'completed', 'and the state');
is($jobs{$alice_job}{types}, 'Patient,Observation', 'and the types');
($st, $out) = tool_db('jobs', 'list', '--client', $client{bob}{id}, '--format', 'json');
is_deeply([ map { $_->{job_id} } @{ decode_json($out) } ], [$bob_job], '--client filters');
($st, $out) = tool_db('jobs', 'list', '--state', 'running', '--format', 'json');
is_deeply(decode_json($out), [], '--state filters');
($st, $out) = tool_db('jobs', 'list');
like($out, qr/^job_id\s+client_id\s+state\s/, 'table header');
like($out, qr/^\Q$alice_job\E\s+\Q$client{alice}{id}\E\s+completed\s/m, 'table row');
($st, $out) = tool_db('jobs', 'list', '--format', 'csv');
like($out, qr/^job_id,client_id,state,level,group_id,types,/, 'CSV header');
like($out, qr/^\Q$bob_job\E,\Q$client{bob}{id}\E,completed,system,,Condition,/m, 'CSV row');
($st) = tool_db('jobs', 'list', '--state', 'bogus');
is($st, 2, 'an unknown state: exit 2');

($st, $out) = tool_db('jobs', 'show', $alice_job, '--format', 'json');
is($st, 0, 'jobs show');
my $show = decode_json($out);
is($show->{job}{state}, 'completed', 'show: state');
is($show->{job}{progress_percent}, 100, 'show: progress');
ok(@{ $show->{units} } >= 2, 'show: units');
my $manifest = $t->request('GET', $alice_loc, { Authorization => "Bearer $token" })->{json};
is(scalar(grep { $_->{kind} eq 'output' } @{ $show->{files} }), scalar(@{ $manifest->{output} }),
   'show: the manifest\'s files');
($st, $out) = tool_db('jobs', 'show', $alice_job);
like($out, qr/^units:\n/m, 'show as text: units');
like($out, qr/^files:\n/m, 'show as text: files');
($st) = tool_db('jobs', 'show', '00000000-0000-0000-0000-000000000000');
is($st, 1, 'show of an unknown job: exit 1');
($st) = tool_db('jobs', 'show', 'not-a-job');
is($st, 2, 'show of a malformed id: exit 2');

# --- jobs cancel: as the API's DELETE ---------------------------------------------------------
my $file_url = $manifest->{output}[0]{url};
is($t->request('GET', $file_url, { Authorization => "Bearer $token" })->{status}, 200,
   'a file downloads before the cancel');
($st, $out) = tool_db('jobs', 'cancel', $alice_job, '--export-dir', $t->export_dir);
is($st, 0, 'jobs cancel') or diag(stderr_text());
like($out, qr/\Q$alice_job\E cancelled \(client \Q$client{alice}{id}\E\)/, 'says whose job');
ok(-e $t->export_dir . "/.cancels/$alice_job", 'the cancel marker is written');
is($t->request('GET', $file_url, { Authorization => "Bearer $token" })->{status}, 404,
   'its files are no longer served');
sleep 1.2;    # nginx's status cache
is($t->request('GET', $alice_loc, { Authorization => "Bearer $token" })->{status}, 404,
   'its status is gone for the client');
ok($t->wait_until(sub { !-e $t->export_dir . "/$alice_job" }, 30),
   'the janitor deletes the files');
($st) = tool_db('jobs', 'cancel', $alice_job);
is($st, 1, 'cancelling it again: exit 1');
($st, $out) = tool_db('jobs', 'list', '--history', '--client', $client{alice}{id}, '--format', 'json');
is(decode_json($out)->[0]{job_id}, $alice_job, 'the cancelled job is in the history');

# --- audit ------------------------------------------------------------------------------------
($st, $out) = tool_db('audit', '--client', $client{alice}{id}, '--format', 'json');
is($st, 0, 'audit --format json');
my @events = @{ decode_json($out) };
ok(@events >= 3, 'alice has events');
is(scalar(grep { $_->{client_id} ne $client{alice}{id} } @events), 0, 'only alice\'s');
ok((grep { $_->{action} eq 'token' && $_->{result} == 200 } @events), 'her token');
ok((grep { $_->{action} eq 'kickoff' && $_->{result} == 202 } @events), 'her kick-off');
ok((grep { $_->{action} eq 'cancel' && ($_->{detail} // '') =~ /operator/ } @events),
   'the operator\'s cancel');
ok((grep { $_->{action} eq 'token' && $_->{result} == 400 } @events), 'the refused token (bob\'s key)');
($st, $out) = tool_db('audit', '--action', 'kickoff', '--format', 'json');
my @kick = @{ decode_json($out) };
is(scalar(grep { $_->{result} == 202 } @kick), 2, '--action kickoff: both accepted kick-offs');
is(scalar(grep { $_->{action} ne 'kickoff' } @kick), 0, 'and nothing else');
($st, $out) = tool_db('audit', '--action', 'kickoff', '--result', 202, '--format', 'csv');
my @lines = split /\r\n/, $out;
is($lines[0], 'event_id,at,client_id,action,target,result,detail,remote_addr', 'CSV header');
is(scalar(@lines), 3, 'CSV: header + 2 rows');
like($lines[1], qr/^\d+,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,[^,]+,kickoff,[0-9a-f-]{36},202,/, 'CSV row');
($st, $out) = tool_db('audit', '--client', $client{bob}{id});
like($out, qr/^event_id\s+at\s+client_id\s+action\s+target\s+result/, 'table header');
like($out, qr/\Q$client{bob}{id}\E\s+kickoff\s+\Q$bob_job\E\s+202/, 'table row');
($st, $out) = tool_db('audit', '--since', '2999-01-01', '--format', 'json');
is_deeply(decode_json($out), [], '--since in the future: nothing');
($st, $out) = tool_db('audit', '--until', '2000-01-01', '--format', 'json');
is_deeply(decode_json($out), [], '--until in the past: nothing');
my $first = $events[0]{at};
($st, $out) = tool_db('audit', '--client', $client{alice}{id}, '--since', $first, '--limit', 2,
                      '--format', 'json');
is(scalar(@{ decode_json($out) }), 2, '--limit');
($st) = tool_db('audit', '--since', 'yesterday-ish');
is($st, 2, 'a time PostgreSQL cannot read: exit 2');
($st) = tool_db('audit', '--format', 'xml');
is($st, 2, 'an unknown format: exit 2');

# --- client set-keys --------------------------------------------------------------------------
($st, my $new_kid) = tool('client', 'keygen', '--alg', 'RS384', '--private', "$dir/alice2.pem",
                          '--jwks-out', "$dir/alice2.jwks");
chomp $new_kid;
($st, $out) = tool_db('client', 'set-keys', $client{alice}{id}, '--jwks', "$dir/alice2.jwks");
is($st, 0, 'client set-keys') or diag(stderr_text());
($st, $out) = tool_db('client', 'list');
my @ids = $out =~ /^(\S+)\s+enabled/mg;
is_deeply([ sort @ids ], [ sort map { $_->{id} } values %client ], 'the same two client_ids');
($st) = token_for('alice');
is($st, 3, 'the old key is refused at once');
($st, my $new_token) = tool('token', '--fhir-url', $base, '--client-id', $client{alice}{id},
                            '--key', "$dir/alice2.pem", '--kid', $new_kid);
is($st, 0, 'the new key gets a token for the same client_id');
chomp $new_token;
$res = $t->kickoff('/fhir/$export?_type=Patient', headers => { Authorization => "Bearer $new_token" });
is($res->{status}, 202, 'and exports with it');
is($t->request('GET', $bob_loc, { Authorization => "Bearer $new_token" })->{status}, 404,
   'still not bob');
($st) = tool_db('client', 'set-keys', 'no-such-client', '--jwks', "$dir/alice2.jwks");
is($st, 1, 'set-keys of an unknown client: exit 1');
open(my $bad, '>', "$dir/bad.jwks") or die;
print $bad '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}';
close $bad;
($st) = tool_db('client', 'set-keys', $client{bob}{id}, '--jwks', "$dir/bad.jwks");
is($st, 2, 'a JWKS that is not usable public keys: exit 2');
($st) = token_for('bob');
is($st, 0, 'bob\'s keys unchanged');
($st) = tool_db('client', 'set-keys', $client{bob}{id});
is($st, 2, 'set-keys without --jwks: exit 2');
($st, my $url_client) = tool_db('client', 'add', '--name', 'by-url', '--jwks-url',
                                'https://keys.example.org/jwks.json');
chomp $url_client;
($st) = tool_db('client', 'set-keys', $url_client, '--jwks', "$dir/alice2.jwks");
is($st, 2, 'set-keys of a client registered by URL: exit 2');
like(stderr_text(), qr/JWKS URL/, 'says why');

$t->finish;
done_testing;
