#!/usr/bin/perl
# The Debian packages (issue 15): built by `make deb` (reused when newer than what goes into
# them), installed with dpkg, configured as README's "Production deployment" says, an export
# run with the installed binaries (the worker started as fhir-bulk-worker.service's ExecStart
# starts it, as the fhir-bulk user; nginx from its own prefix on a free loopback port, with
# the installed module and its modules-enabled snippet), then everything purged.
#
# Root only; the machine's nginx is not started, reloaded or reconfigured beyond what
# installing the packages does (policy-rc.d denies service actions during dpkg), and the
# END block purges the packages and removes the user whatever happened.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Basename qw(basename);
use File::Find;
use IO::Socket::UNIX;
use POSIX ();
use Socket qw(SOCK_DGRAM);
use Time::HiRes qw(sleep time);

my $REPO = "$FindBin::Bin/..";
my @PACKAGES = qw(libnginx-mod-http-fhir-bulk fhir-bulk);
my $MODULE = '/usr/lib/nginx/modules/ngx_http_fhir_bulk_module.so';
my $SNIPPET = '/etc/nginx/modules-enabled/50-mod-http-fhir-bulk.conf';

plan skip_all => 'not root: installing Debian packages needs root' if $> != 0;
plan skip_all => 'dpkg-buildpackage is missing (make deps)'
    unless system('command -v dpkg-buildpackage >/dev/null') == 0;
plan skip_all => 'nginx is not installed (make deps)' unless -x '/usr/sbin/nginx';
plan skip_all => 'setpriv is missing (util-linux)'
    unless system('command -v setpriv >/dev/null') == 0;
for my $p (@PACKAGES) {
    my $status = `dpkg-query -W -f='\${Status}' $p 2>/dev/null`;
    plan skip_all => "$p is installed on this machine; this test would purge it"
        if $status =~ /installed|config-files|half/;
}
plan skip_all => 'a user fhir-bulk exists on this machine; this test would remove it'
    if defined getpwnam('fhir-bulk');

my $BUILD = $ENV{FHIR_BULK_BUILD} || "$REPO/build";
my $DEB_DIR = "$BUILD/deb";

# --- cleanup, whatever happens below ------------------------------------------------------
my ($own_policy, @pids, $installed, $t) = (0);
my $policy = '/usr/sbin/policy-rc.d';
sub cleanup {
    for my $pid (@pids) {
        kill('TERM', $pid);
        my $deadline = time + 20;
        sleep 0.05 while kill(0, $pid) && waitpid($pid, POSIX::WNOHANG()) != $pid
                         && time < $deadline;
        kill('KILL', $pid) if kill(0, $pid);
    }
    @pids = ();
    if ($t) {
        eval { $t->stop_nginx if $t->{nginx_started} };
        eval { $t->stop_pg if $t->{pg_started} };
    }
    if ($installed) {
        system('dpkg', '--purge', @PACKAGES) == 0 or diag('dpkg --purge failed');
        $installed = 0;
    }
    if (defined getpwnam('fhir-bulk')) {
        system('deluser --system --quiet fhir-bulk >/dev/null 2>&1');
    }
    if (defined getgrnam('fhir-bulk')) {
        system('delgroup --system --quiet fhir-bulk >/dev/null 2>&1');
    }
    system('rm', '-rf', '/run/fhir-bulk');
    if ($own_policy) {
        unlink $policy;
        $own_policy = 0;
    }
}
END {
    my $status = $?;
    cleanup();
    $? = $status;
}

# --- build --------------------------------------------------------------------------------
# Reused when every package is newer than everything that goes into it.
sub newest_input {
    my $newest = 0;
    my @inputs = ("$BUILD/bin/fhir-bulk", glob("$BUILD/nginx/*.so"), "$REPO/README.md",
                  "$REPO/scripts/gen-man.pl", "$REPO/scripts/build-deb.sh",
                  glob("$REPO/conf.d/*"));
    find(sub { push @inputs, $File::Find::name if -f }, "$REPO/debian");
    for (@inputs) {
        my $m = (stat $_)[9] // return time;
        $newest = $m if $m > $newest;
    }
    return $newest;
}
my @debs = map { glob("$DEB_DIR/${_}_*.deb") } @PACKAGES;
my $oldest_deb = 0;
$oldest_deb = $oldest_deb && $oldest_deb < $_ ? $oldest_deb : $_ for map { (stat $_)[9] } @debs;
if (@debs != 2 || $oldest_deb <= newest_input()) {
    my $start = time;
    my $out = `make -C $REPO deb BUILD=$BUILD 2>&1`;
    is($?, 0, sprintf('make deb (%.0f s)', time - $start)) or diag($out);
    diag($_) for grep { /^build-deb:/ } split /\n/, $out;
    @debs = map { glob("$DEB_DIR/${_}_*.deb") } @PACKAGES;
} else {
    pass('make deb: the packages in ' . $DEB_DIR . ' are up to date');
}
is(scalar @debs, 2, 'two packages') or BAIL_OUT('no packages');

my ($mod_deb) = grep { basename($_) =~ /^libnginx-mod/ } @debs;
my $depends = `dpkg-deb -f $mod_deb Depends`;
my ($abi) = `dpkg-query -W -f='\${Provides}' nginx` =~ /(nginx-abi-[\w.~+-]+)/;
ok($abi && $depends =~ /\Q$abi\E/, "the module depends on the nginx ABI it was built for ($abi)")
    or diag("Depends: $depends");

# --- install ------------------------------------------------------------------------------
unless (-e $policy) {
    open(my $fh, '>', $policy) or die "$policy: $!";
    print $fh "#!/bin/sh\nexit 101\n";
    close $fh;
    chmod 0755, $policy;
    $own_policy = 1;
}
$installed = 1;
my $out = `dpkg -i @debs 2>&1`;
is($?, 0, 'dpkg -i') or diag($out);

ok(-f $MODULE, "the module: $MODULE");
ok(-l $SNIPPET && readlink($SNIPPET) eq '/usr/share/nginx/modules-available/mod-http-fhir-bulk.conf',
   'enabled as Debian\'s module packages do: modules-enabled -> modules-available');
ok(-x '/usr/bin/fhir-bulk', 'the tool');
ok(-f "/lib/systemd/system/$_", "unit $_") for qw(fhir-bulk-worker.service fhir-bulk-worker@.service);
ok(-f '/etc/logrotate.d/fhir-bulk', 'logrotate configuration');
ok(-f '/usr/share/man/man1/fhir-bulk.1.gz' && -f '/usr/share/man/man5/fhir-bulk-nginx.5.gz',
   'man pages fhir-bulk(1) and fhir-bulk-nginx(5)');
my @pw = getpwnam('fhir-bulk');
ok(@pw, 'system user fhir-bulk');
my ($uid, $gid) = @pw[2, 3];
ok((grep { $_ eq 'www-data' } split / /, (getgrnam('fhir-bulk'))[3] // ''),
   'www-data is a member of the group fhir-bulk');

sub mode_of {
    my ($path) = @_;
    my @st = lstat($path) or return 'missing';
    return sprintf('%04o %s:%s', $st[2] & 07777, scalar getpwuid($st[4]), scalar getgrgid($st[5]));
}
is(mode_of('/var/lib/fhir-bulk/exports'), '2750 fhir-bulk:fhir-bulk', 'export directory');
is(mode_of('/etc/fhir-bulk/conninfo'), '0640 root:fhir-bulk', 'connection file');
is(mode_of('/var/log/fhir-bulk'), '2750 fhir-bulk:adm', 'log directory');

# --- configure, as README's "Production deployment" says ----------------------------------
$ENV{FHIR_BULK_BIN} = '/usr/bin/fhir-bulk';
$ENV{FHIR_BULK_MODULE} = $MODULE;
require FhirBulk::Test;
$t = FhirBulk::Test->new;
my $dir = $t->dir;
$t->start_pg;    # migrated by the installed fhir-bulk
my $conninfo = $t->conninfo;

# The worker's connection file, password inline (the test cluster's passfile is root's):
# written in place, keeping its owner and mode.
open(my $fh, '<', $t->conninfo_file) or die "nginx-conninfo: $!";
my $worker_conninfo = do { local $/; <$fh> };
close $fh;
open($fh, '>', '/etc/fhir-bulk/conninfo') or die "conninfo: $!";
print $fh $worker_conninfo;
close $fh;
is(mode_of('/etc/fhir-bulk/conninfo'), '0640 root:fhir-bulk', 'connection file mode kept');

# nginx: its own prefix (the machine's nginx is left alone), the installed modules-enabled
# snippet, the server part from the installed template.
my $port = $t->port;
my $base = "http://127.0.0.1:$port/fhir";
system("umask 077; echo \"k1 \$(openssl rand -hex 32)\" >$dir/token.key") == 0 or die;
my $template = '/usr/share/doc/libnginx-mod-http-fhir-bulk/examples/fhir-bulk.conf.template';
ok(-f $template, 'the server template is installed');
# Rendered by the installed tool, as the production guide says (plain HTTP on loopback: the
# certificate lines are dropped by their empty values).
is(system('/usr/bin/fhir-bulk', 'config', 'render', '--template', $template,
          '--out', "$dir/fhir-bulk.conf", '--set', "LISTEN=127.0.0.1:$port",
          '--set', 'SSL_CERTIFICATE=', '--set', 'SSL_CERTIFICATE_KEY=',
          '--set', "BASE_URL=$base", '--set', 'BASE_PATH=/fhir',
          '--set', 'CONNINFO_FILE=' . $t->conninfo_file,
          '--set', 'EXPORT_DIR=/var/lib/fhir-bulk/exports',
          '--set', "TOKEN_KEY_FILE=$dir/token.key",
          '--set', "ACCESS_LOG=$dir/access.log fhir_bulk",
          '--set', 'APP_DIR=/usr/share/fhir-bulk/app'), 0,
   'fhir-bulk config render writes the server part from the installed template');
open($fh, '>', "$dir/nginx.conf") or die;
print $fh <<"EOF";
include $SNIPPET;
user www-data;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/fhir-bulk.conf;
}
EOF
close $fh;
# The snippet loads "modules/<file>.so" relative to nginx's prefix, as Debian's module snippets
# do (Debian's prefix /usr/share/nginx has modules -> /usr/lib/nginx/modules).
symlink('/usr/lib/nginx/modules', "$dir/modules") or die "modules link: $!";
$t->start_nginx;
is($t->get('/fhir/metadata')->{status}, 200, 'nginx serves /fhir/metadata with the installed module');
{
    my $app = $t->get('/fhir/_app/');
    ok($app->{status} == 200 && ($app->{content} // '') =~ /FHIR Bulk Data export/
       && ($app->{headers}{'content-security-policy'} // '') =~ /script-src 'self'/,
       'the export app is served from /usr/share/fhir-bulk/app, with its CSP');
}
ok(-d '/var/lib/fhir-bulk/exports/.cancels'
   && mode_of('/var/lib/fhir-bulk/exports/.cancels') =~ /^0700 www-data:/,
   'the nginx master prepared .cancels for www-data');

# The worker: fhir-bulk-worker.service's ExecStart, as User=/Group=/UMask=/RuntimeDirectory=
# say, with systemd's readiness socket.
open($fh, '<', '/lib/systemd/system/fhir-bulk-worker.service') or die;
my ($exec) = do { local $/; <$fh> } =~ /^ExecStart=(.*)$/m;
close $fh;
ok($exec, "ExecStart=$exec");
system('install', '-d', '-o', 'fhir-bulk', '-g', 'fhir-bulk', '-m', '0755', '/run/fhir-bulk') == 0
    or die;
my $notify_path = "$dir/notify.sock";
my $notify = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $notify_path) or die "notify: $!";
chmod 0666, $notify_path;
my $worker = fork;
die "fork: $!" unless defined $worker;
if ($worker == 0) {
    $ENV{NOTIFY_SOCKET} = $notify_path;
    umask 027;
    open(STDOUT, '>>', "$dir/worker.stderr");
    open(STDERR, '>&', \*STDOUT);
    { exec('setpriv', '--reuid=fhir-bulk', '--regid=fhir-bulk', '--init-groups', '--',
           split(' ', $exec)); }
    POSIX::_exit(127);
}
push @pids, $worker;
my $ready = '';
{
    my $rin = '';
    vec($rin, fileno($notify), 1) = 1;
    $notify->recv($ready, 256) if select(my $rout = $rin, undef, undef, 20) > 0;
}
is($ready, 'READY=1', 'the worker reported READY=1')
    or diag(`cat $dir/worker.stderr /var/log/fhir-bulk/worker.log 2>&1`);
ok($t->wait_until(sub { -s '/run/fhir-bulk/worker.pid' }, 10), 'pid file /run/fhir-bulk/worker.pid');

# --- an export with the installed binaries ------------------------------------------------
# Runs the installed fhir-bulk; returns (exit status, stdout and stderr).
sub tool {
    my @args = @_;
    my $pid = open(my $ph, '-|') // die "fork: $!";
    if ($pid == 0) {
        open(STDERR, '>&', \*STDOUT);
        # A bound, so that a worker that cannot work fails the test instead of hanging it.
        { exec('timeout', '300', '/usr/bin/fhir-bulk', @args); }
        POSIX::_exit(127);
    }
    my $out = do { local $/; <$ph> } // '';
    close $ph;
    return ($? >> 8, $out);
}
my ($st, $o) = tool('synth', '--patients', 3, '--load', '--quiet', '--db', $conninfo);
is($st, 0, 'fhir-bulk synth --load') or diag($o);
($st, $o) = tool('client', 'keygen', '--alg', 'ES384', '--private', "$dir/me.pem",
                 '--jwks-out', "$dir/me.jwks.json");
is($st, 0, 'fhir-bulk client keygen') or diag($o);
($st, $o) = tool('client', 'add', '--name', 'deb-test', '--jwks', "$dir/me.jwks.json",
                 '--scope', 'system/*.read', '--db', $conninfo);
is($st, 0, 'fhir-bulk client add') or diag($o);
my ($client_id) = $o =~ /^(\S+)\s*$/m;
($st, $o) = tool('export', '--fhir-url', $base, '--client-id', $client_id, '--key', "$dir/me.pem",
                 '--type', 'Patient', '--out', "$dir/out", '--quiet');
is($st, 0, 'fhir-bulk export against the installed module and worker')
    or diag($o, `tail -20 $dir/error.log /var/log/fhir-bulk/worker.log 2>&1`);
my $lines = 0;
for my $f (glob("$dir/out/*Patient*.ndjson")) {
    open(my $in, '<', $f) or next;
    $lines++ while <$in>;
    close $in;
}
is($lines, 3, '3 patients exported');

# What the worker wrote: job directories 02750 and files 0640, group fhir-bulk.
my @entries;
find(sub { push @entries, $File::Find::name unless $_ eq '.cancels' || $File::Find::dir =~ /\.cancels/ },
     glob('/var/lib/fhir-bulk/exports/*'));
my @wrong = grep {
    my $m = mode_of($_);
    -d $_ ? $m ne '2750 fhir-bulk:fhir-bulk' : $m ne '0640 fhir-bulk:fhir-bulk'
} @entries;
ok(@entries && !@wrong, scalar(@entries) . ' export entries with the modes nginx needs')
    or diag(join("\n", map { "$_ " . mode_of($_) } @wrong));

# logrotate as installed: the rotated log is reopened by the worker (SIGHUP).
SKIP: {
    skip 'logrotate is not installed', 2 unless -x '/usr/sbin/logrotate';
    $out = `/usr/sbin/logrotate -f -s $dir/logrotate.state /etc/logrotate.d/fhir-bulk 2>&1`;
    is($?, 0, 'logrotate -f /etc/logrotate.d/fhir-bulk') or diag($out);
    ok($t->wait_until(sub { `cat /var/log/fhir-bulk/worker.log` =~ /log reopened/ }, 10),
       'the worker reopened its log after rotation');
}
ok(kill(0, $worker), 'the worker is running');

# --- stop and purge -----------------------------------------------------------------------
kill('TERM', $worker);
ok($t->wait_until(sub { waitpid($worker, POSIX::WNOHANG()) == $worker }, 20, 0.05),
   'SIGTERM stops the worker');
is($?, 0, 'exit status 0');
@pids = ();
ok(!-e '/run/fhir-bulk/worker.pid', 'pid file removed');
$t->finish;    # stops nginx and PostgreSQL, checks nginx's error log

$out = `dpkg --purge @PACKAGES 2>&1`;
is($?, 0, 'dpkg --purge') or diag($out);
$installed = 0;
ok(!-e $_, "$_ removed") for ($MODULE, $SNIPPET, '/usr/bin/fhir-bulk', '/etc/fhir-bulk',
                              '/var/lib/fhir-bulk', '/var/log/fhir-bulk');
cleanup();
ok(!defined getpwnam('fhir-bulk') && !defined getgrnam('fhir-bulk'), 'user and group removed');
done_testing;
