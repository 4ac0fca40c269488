#!/usr/bin/perl
# The browser test harness (t/browser/harness.py + FhirBulk::Browser): headless Debian
# Chromium through chromedriver against a real nginx with the module; results, calls back
# into the test file and screenshots. Skipped only when Chromium, chromedriver or
# python3-selenium are missing (scripts/deps.sh installs them).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;
use FhirBulk::Browser qw(browser_missing run_script);

if (my $why = browser_missing()) { plan skip_all => $why; }

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;

my @calls;
run_script($t, 'harness_check.py', timeout => 120, handlers => {
    echo => sub { push @calls, $_[0]; return { echoed => $_[0] }; },
});
is(scalar @calls, 1, 'the handler ran once');
ok(-s $t->dir . '/screenshots/harness-metadata.png', 'the screenshot is in the test directory');

$t->finish;
done_testing;
