#!/usr/bin/perl
# The files location on a kernel without openat2() (before 5.6), where the module opens export
# files one path component at a time, as nginx's disable_symlinks does: the same guarantees.
# t/53-files-cancel-logs.t runs again with nginx under a seccomp filter that answers openat2()
# with ENOSYS (t/lib/no_openat2.c): downloads, planted links refused, cancels honoured, logs
# clean; and it checks that the fallback's notice is in the error log (without the filter, it
# checks that the notice is not: the fast path was taken).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use FhirBulk::Test;

my $dir = tempdir('fhir-bulk-no-openat2.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $launcher = "$dir/no_openat2";
plan skip_all => 'cannot compile t/lib/no_openat2.c (cc and the Linux headers)'
    if system('cc', '-O1', '-Wall', '-Werror', '-o', $launcher,
              "$FindBin::Bin/lib/no_openat2.c") != 0;
plan skip_all => 'seccomp filters cannot be installed here'
    if system($launcher, 'true') >> 8 == 2;

my $nginx = "$dir/nginx";
open(my $fh, '>', $nginx) or die "$nginx: $!";
print $fh "#!/bin/sh\nexec '$launcher' '$FhirBulk::Test::NGINX' \"\$@\"\n";
close $fh;
chmod 0755, $nginx or die;
chmod 0755, $dir or die;  # nginx's workers run as nobody when the tests run as root

$ENV{TEST_NGINX_IMAGE} = $FhirBulk::Test::NGINX;  # for gdb, should nginx crash
$ENV{TEST_NGINX_BINARY} = $nginx;
$ENV{FHIRBULK_EXPECT_NO_OPENAT2} = 1;
# Its TAP is this test's; system, not exec, so that the launcher's directory is removed.
my $status = system($^X, "$FindBin::Bin/53-files-cancel-logs.t");
exit($status == -1 ? 255 : $status >> 8);
