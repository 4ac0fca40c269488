#!/usr/bin/perl
# The per-process verified-token cache (auth/token_cache.h, issue 17) must not change any
# answer. One nginx worker process, so every request after the first hits the warm cache:
#  - another client's token gets 404 for a file and a status URL the owner has just used
#    (the owner's warm cache entry is never a match for someone else's token);
#  - a token that expires while cached is refused the second it expires: 401 for downloads
#    and polls;
#  - a narrower token of the owner is refused a file of a type it does not cover (403);
#  - after a cancel is answered (202) the file is gone (404) and so is the job (404), though
#    the owner's token and the job's status were both cached a moment before.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Crypt::JWT qw(encode_jwt);
use FhirBulk::Test;
use FhirBulk::Auth qw(write_token_key new_key jwks_of register_client get_token bearer);

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(5);
write_token_key($t);
$t->write_conf(FhirBulk::Test::default_http_conf(auth => 1), workers => 1)->start_nginx;
$t->start_worker('--threads', 2);

my ($ka, $kb) = (new_key('ES384'), new_key('ES384'));
my $a = register_client($t, name => 'A', jwks => jwks_of($ka));
my $b = register_client($t, name => 'B', jwks => jwks_of($kb));
my $ta = get_token($t, $a, $ka);
my $tb = get_token($t, $b, $kb);

sub poll_done {
    my ($token, $url) = @_;
    my $res;
    my $deadline = time + 60;
    do {
        sleep 0.1;
        $res = $t->request('GET', $url, bearer($token));
    } while ($res->{status} == 202 && time < $deadline);
    return $res;
}

sub export_as {
    my ($token) = @_;
    my $res = $t->kickoff('/fhir/$export?_type=Patient,Observation', headers => bearer($token));
    is($res->{status}, 202, 'kick-off') or diag($res->{content});
    my $url = $res->{headers}{'content-location'};
    $res = poll_done($token, $url);
    is($res->{status}, 200, '... completes') or diag($res->{content});
    my %files = map { $_->{type} => $_->{url} } @{ $res->{json}{output} || [] };
    ok($files{Patient} && $files{Observation}, '... with Patient and Observation files');
    return ($url, \%files);
}

# --- warm cache: ownership and scopes are still decided per request --------------------------
my ($status_a, $files_a) = export_as($ta);
is($t->request('GET', $files_a->{Patient}, bearer($ta))->{status}, 200, "A downloads its file ($_)")
    for 1 .. 3;
is($t->request('GET', $status_a, bearer($ta))->{status}, 200, 'A polls its job (warm)');
for (1 .. 2) {
    $t->is_outcome($t->request('GET', $files_a->{Patient}, bearer($tb)), 404, 'not-found',
                   "B downloads A's file after A's downloads: 404 ($_)");
    $t->is_outcome($t->request('GET', $status_a, bearer($tb)), 404, 'not-found',
                   "B polls A's job after A's polls: 404 ($_)");
}
my $ta_obs = get_token($t, $a, $ka, 'system/Observation.read');
is($t->request('GET', $files_a->{Observation}, bearer($ta_obs))->{status}, 200,
   "A's Observation-only token: the Observation file 200");
$t->is_outcome($t->request('GET', $files_a->{Patient}, bearer($ta_obs)), 403, 'forbidden',
               '... the Patient file 403, also once that token is cached');
is($t->request('GET', $files_a->{Patient}, bearer($ta))->{status}, 200,
   "... and A's full token still downloads it");

# --- a cached token expires on time ----------------------------------------------------------
{
    open(my $kf, '<', $t->dir . '/token.key') or die "token.key: $!";
    my ($kid, $secret) = split ' ', scalar <$kf>;
    close $kf;
    my $now = int(time);
    # 300 s lifetime (within the server's limit) issued 297 s ago: 3 s left
    my $short = encode_jwt(payload => { sub => $a, scope => 'system/*.read', iat => $now - 297,
                                        exp => $now + 3, jti => 'short-' . rand() },
                           key => $secret, alg => 'HS256',
                           extra_headers => { typ => 'at+jwt', kid => $kid });
    is($t->request('GET', $files_a->{Patient}, bearer($short))->{status}, 200,
       'a token with 3 s left downloads');
    is($t->request('GET', $status_a, bearer($short))->{status}, 200, '... and polls');
    sleep(0.25) while time < $now + 3.2;
    my $res = $t->request('GET', $files_a->{Patient}, bearer($short));
    $t->is_outcome($res, 401, 'login', 'the same token once expired: download 401');
    like($res->{content}, qr/expired/, '... saying it expired');
    $t->is_outcome($t->request('GET', $status_a, bearer($short)), 401, 'login', '... poll 401');
}

# --- cancel: no download and no status once the cancel is answered -----------------------------
my ($status_c, $files_c) = export_as($ta);
is($t->request('GET', $files_c->{Patient}, bearer($ta))->{status}, 200, 'download before the cancel');
is($t->request('GET', $status_c, bearer($ta))->{status}, 200, 'poll before the cancel (cached)');
my $res = $t->request('DELETE', $status_c, bearer($ta));
is($res->{status}, 202, 'A cancels its completed job') or diag($res->{content});
$t->is_outcome($t->request('GET', $files_c->{Patient}, bearer($ta)), 404, 'not-found',
               'the file right after the cancel: 404');
$t->is_outcome($t->request('GET', $files_c->{Observation}, bearer($ta)), 404, 'not-found',
               '... every file of the job');
$t->is_outcome($t->request('GET', $status_c, bearer($ta)), 404, 'not-found',
               '... and the status URL');
is($t->request('GET', $files_a->{Patient}, bearer($ta))->{status}, 200,
   'the other job of A is untouched');

$t->finish;
done_testing;
