#!/usr/bin/perl
# `fhir-bulk` subcommands read "--" as the end of the options: what follows is an argument
# even when it starts with '-'. Client ids of older databases may (one in 64 did before ids
# stopped starting with '-'); `fhir-bulk client disable -- <id>` must reach that client, and
# without the "--" the id is refused as an unknown option rather than misread.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;

# Runs the tool; returns (exit status, stdout and stderr).
sub tool {
    my (@args) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open(STDERR, '>&', \*STDOUT);
        exec($FhirBulk::Test::BIN, @args) or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

my $id = '-0ldClientIdStartingWithADash';
$t->psql("INSERT INTO auth_client (client_id, name, jwks, allowed_scopes) "
         . "VALUES ('$id', 'old', '{\"keys\":[]}', 'system/*.read')");
my $enabled = sub { $t->psql("SELECT enabled FROM auth_client WHERE client_id = '$id'") };
my @db = ('--db', $t->conninfo);

my ($rc, $out) = tool('client', 'disable', @db, $id);
is($rc, 2, 'without "--" an id starting with "-" is a usage error');
like($out, qr/unknown option '\Q$id\E'/, '... naming it as an unknown option');
is($enabled->(), 't', '... and nothing changed');

($rc, $out) = tool('client', 'disable', @db, '--', $id);
is($rc, 0, 'client disable --db ... -- <id>') or diag($out);
like($out, qr/^\Q$id\E disabled$/m, '... says so');
is($enabled->(), 'f', '... and the client is disabled');

{
    local $ENV{PG_CONNINFO} = $t->conninfo;
    ($rc, $out) = tool('client', 'enable', '--', $id);
    is($rc, 0, 'client enable -- <id> (database from $PG_CONNINFO)') or diag($out);
    is($enabled->(), 't', '... and the client is enabled again');
}

($rc, $out) = tool('client', 'disable', '--', @db, $id);
is($rc, 2, 'after "--" even --db is an argument');
like($out, qr/takes one client_id/, '... so disable sees three of them');

($rc, $out) = tool('client', 'remove', @db, '--', $id);
is($rc, 0, 'client remove --db ... -- <id>') or diag($out);
is($t->psql("SELECT count(*) FROM auth_client WHERE client_id = '$id'"), 0, '... and it is gone');

($rc, $out) = tool('client', '--help');
like($out, qr/client disable .*-- -/, 'client --help shows the "--" form');

($rc, $out) = tool('export', '--fhir-url', 'http://127.0.0.1:1/fhir', '--out', $t->dir . '/x', '--',
                   '--system');
is($rc, 2, 'export: an argument after "--" is an unexpected argument, not an option');
like($out, qr/unexpected argument/, '... saying so');

$t->finish;
done_testing;
