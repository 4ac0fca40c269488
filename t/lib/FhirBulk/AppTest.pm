package FhirBulk::AppTest;

# What the export app's browser tests (t/67, t/68) share beside FhirBulk::Browser: nginx
# configured from the deployment template with the app, and the manifest read by the test
# itself (to compare with what the browser shows).

use strict;
use warnings;

use Exporter 'import';
use FhirBulk::Test;

our @EXPORT_OK = qw(app_conf read_manifest);

# The http{} body for write_conf: conf.d/fhir-bulk.conf.template rendered by
# `fhir-bulk config render`, as deployed (authorization on, the export app at /fhir/_app/ from
# the checkout's app/), for plain HTTP on the test's port. Needs
# FhirBulk::Auth::write_token_key($t) and write_conf's main => 'thread_pool fhir_bulk ...'.
sub app_conf {
    my ($t) = @_;
    my $dir = $t->dir;
    my $out = "$dir/fhir-bulk.conf";
    my @set = (LISTEN => '127.0.0.1:' . $t->port, SSL_CERTIFICATE => '', SSL_CERTIFICATE_KEY => '',
               BASE_URL => $t->base_url, BASE_PATH => '/fhir', CONNINFO_FILE => $t->conninfo_file,
               EXPORT_DIR => $t->export_dir, TOKEN_KEY_FILE => "$dir/token.key",
               ACCESS_LOG => "$dir/access.log fhir_bulk", APP_DIR => "$FhirBulk::Test::REPO/app");
    my @args;
    while (my ($k, $v) = splice(@set, 0, 2)) { push @args, '--set', "$k=$v"; }
    system($FhirBulk::Test::BIN, 'config', 'render', '--template',
           "$FhirBulk::Test::REPO/conf.d/fhir-bulk.conf.template", '--out', $out, @args) == 0
        or die "fhir-bulk config render failed\n";
    open(my $fh, '<', $out) or die "$out: $!";
    local $/;
    my $conf = <$fh>;
    close $fh;
    return $conf;
}

# A completed export's manifest as the test reads it itself (every page, outputs gathered),
# with the access token given; dies unless each page answers 200.
sub read_manifest {
    my ($t, $url, $token) = @_;
    my %m = (output => []);
    while ($url) {
        my $r = $t->request('GET', $url, { Accept => 'application/json',
                                           Authorization => "Bearer $token" });
        die "manifest $url: $r->{status}\n" unless $r->{status} == 200 && $r->{json};
        push @{ $m{output} }, @{ $r->{json}{output} || [] };
        ($url) = map { $_->{url} } grep { $_->{relation} eq 'next' } @{ $r->{json}{link} || [] };
    }
    return \%m;
}

1;
