package FhirBulk::Auth;

# SMART Backend Services for the t/ tests: real key pairs (CryptX), real signed assertions
# (Crypt::JWT), clients registered with `fhir-bulk client add`, tokens from the server's token
# endpoint. Used with a FhirBulk::Test whose nginx runs default_http_conf(auth => 1).

use strict;
use warnings;

use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use Crypt::PK::RSA;
use Exporter 'import';
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(time);

our @EXPORT_OK = qw(write_token_key new_key jwks_of register_client assertion token_request
                    get_token form_encode bearer);

my $JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
my $jti_seq = 0;

# The server's token signing key, where default_http_conf(auth => 1) expects it.
sub write_token_key {
    my ($t) = @_;
    my $secret = join '', map { sprintf '%02x', int(rand(256)) } 1 .. 32;
    open(my $fh, '>', $t->dir . '/token.key') or die "token.key: $!";
    print $fh "k1 $secret\n";
    close $fh;
    return $t->dir . '/token.key';
}

# A fresh key pair: { alg, kid, pk (private Crypt::PK object), jwk (public, hash) }.
sub new_key {
    my ($alg, $kid) = @_;
    $kid //= lc($alg) . '-' . int(rand(1e9));
    my $pk;
    if ($alg eq 'ES384') {
        $pk = Crypt::PK::ECC->new;
        $pk->generate_key('secp384r1');
    } else {
        $pk = Crypt::PK::RSA->new;
        $pk->generate_key(256, 65537);    # 2048 bits
    }
    my $jwk = decode_json($pk->export_key_jwk('public'));
    $jwk->{kid} = $kid;
    return { alg => $alg, kid => $kid, pk => $pk, jwk => $jwk };
}

sub jwks_of { return encode_json({ keys => [ map { $_->{jwk} } @_ ] }); }

# Registers a client: by value (jwks => JSON) or by URL (jwks_url => URL); returns client_id.
# operator => 1 registers an operator client (give it scope => 'operator/...').
sub register_client {
    my ($t, %o) = @_;
    my @args = ('client', 'add', '--name', $o{name} // 'test client',
                '--scope', $o{scope} // 'system/*.read');
    if (defined $o{jwks}) {
        my $file = $t->dir . '/jwks-' . int(rand(1e9)) . '.json';
        open(my $fh, '>', $file) or die "$file: $!";
        print $fh $o{jwks};
        close $fh;
        push @args, '--jwks', $file;
    } else {
        push @args, '--jwks-url', $o{jwks_url}, '--allow-http';
    }
    push @args, map { ('--group', $_) } @{ $o{groups} || [] };
    push @args, '--operator' if $o{operator};    # an operator client (operator/ scopes)
    open(my $fh, '-|', $FhirBulk::Test::BIN, @args, '--db', $t->conninfo) or die "client add: $!";
    my $id = <$fh>;
    close $fh or die "fhir-bulk client add failed\n";
    chomp $id;
    return $id;
}

# A signed client assertion. claims/headers override the defaults (undef deletes a claim).
sub assertion {
    my ($t, $client_id, $key, %o) = @_;
    my %claims = (iss => $client_id, sub => $client_id, aud => $t->base_url . '/auth/token',
                  exp => int(time) + 240, jti => "jti-$$-" . ++$jti_seq . '-' . rand());
    while (my ($k, $v) = each %{ $o{claims} || {} }) {
        if (defined $v) { $claims{$k} = $v } else { delete $claims{$k} }
    }
    my %headers = (kid => $key->{kid}, typ => 'JWT', %{ $o{headers} || {} });
    delete $headers{$_} for grep { !defined $headers{$_} } keys %headers;
    return encode_jwt(payload => \%claims, key => $o{sign_key} // $key->{pk},
                      alg => $o{alg} // $key->{alg}, extra_headers => \%headers);
}

sub form_encode {
    my (%f) = @_;
    my $enc = sub { my $s = shift; $s =~ s/([^A-Za-z0-9\-_.~])/sprintf('%%%02X', ord $1)/ge; $s };
    return join '&', map { $enc->($_) . '=' . $enc->($f{$_}) } sort keys %f;
}

# POSTs a token request (fields override the defaults; undef removes one).
sub token_request {
    my ($t, $assertion, %o) = @_;
    my %form = (grant_type => 'client_credentials', client_assertion_type => $JWT_BEARER,
                client_assertion => $assertion, scope => 'system/*.read');
    while (my ($k, $v) = each %{ $o{form} || {} }) {
        if (defined $v) { $form{$k} = $v } else { delete $form{$k} }
    }
    my $ct = $o{content_type} // 'application/x-www-form-urlencoded';
    return $t->request('POST', '/fhir/auth/token', { 'Content-Type' => $ct }, form_encode(%form));
}

# An access token (dies unless the endpoint grants one).
sub get_token {
    my ($t, $client_id, $key, $scope) = @_;
    my $res = token_request($t, assertion($t, $client_id, $key),
                            form => { scope => $scope // 'system/*.read' });
    die "token request failed: $res->{status} $res->{content}\n" unless $res->{status} == 200;
    return $res->{json}{access_token};
}

sub bearer { return { Authorization => "Bearer $_[0]" }; }

1;
