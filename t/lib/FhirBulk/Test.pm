package FhirBulk::Test;

# A private nginx with the module and a private PostgreSQL per test file, on free loopback
# ports, in a temporary directory. Core Perl only (plus Debian's perl packages).
#
#   my $t = FhirBulk::Test->new;           # temp dir, no services yet
#   $t->start_pg;                          # initdb + start + migrate (scripts/pg-cluster.sh)
#   $t->write_conf(<<'EOF');               # the http{} body; %%PORT%% %%BASE_URL%%
#       server { ... }                     #   %%CONNINFO_FILE%% %%TESTDIR%% are expanded
#   EOF
#   $t->start_nginx;
#   my $res = $t->get('/fhir/metadata');   # HTTP::Tiny response hash (+ ->{json})
#   $t->finish;                            # stops everything, checks the error log
#
# Every nginx started here is checked for crashes when its test file ends: an nginx worker
# that exited on a signal fails the file, whether or not the test calls finish (an END block
# scans the error logs of unfinished test servers). signal_exits returns the findings.
#
# Deployment modes (issue 11, row 6): as root, nginx workers run as nobody:nogroup and the
# export directory is root:nogroup 2750, the export worker's tree, which nginx's user may read
# (files 0640, directories 0750 with the group inherited) but not write; cancels write their
# markers into <export dir>/.cancels, which the nginx master creates for nginx's user.
#
# TEST_LEAVE=1 keeps the directory; TEST_VERBOSE_LOG=1 prints nginx's error log at finish.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

our $REPO = abs_path(dirname(__FILE__) . '/../../..');
our $NGINX = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
our $BUILD = $ENV{FHIR_BULK_BUILD} || "$REPO/build";
our $MODULE = $ENV{FHIR_BULK_MODULE} || "$BUILD/nginx/ngx_http_fhir_bulk_module.so";
our $BIN = $ENV{FHIR_BULK_BIN} || "$BUILD/bin/fhir-bulk";

sub new {
    my ($class, %opt) = @_;
    for my $f ($NGINX, $MODULE, $BIN) {
        die "missing $f: build with 'make' first\n" unless -e $f;
    }
    my $dir = tempdir('fhir-bulk-t-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{TEST_LEAVE});
    chmod 0755, $dir;
    diag("test directory: $dir") if $ENV{TEST_LEAVE};
    my $self = bless {
        dir => $dir,
        port => free_port(),
        http => HTTP::Tiny->new(timeout => 30, max_redirect => 0, keep_alive => 0),
        owner_pid => $$,
        %opt,
    }, $class;
    $self->{base_url} = "http://127.0.0.1:$self->{port}/fhir";
    $self->watch_error_log;
    return $self;
}

# --- crashes ------------------------------------------------------------------------------

# error log => { finished => 0|1, expected => { pid => 1 } } for the END block below; per
# process (a forked client must not check its parent's servers).
my %WATCHED;

sub watch_error_log {
    my ($self) = @_;
    $WATCHED{"$self->{dir}/error.log"} //= { finished => 0, expected => {}, owner => $$ };
    return $self;
}

# A worker this test kills on purpose with a signal (so its exit is no finding).
sub expect_signal_exit {
    my ($self, $pid) = @_;
    $WATCHED{"$self->{dir}/error.log"}{expected}{$pid} = 1;
    return $self;
}

# The error-log lines saying an nginx process exited on a signal (e.g. "worker process 123
# exited on signal 11"), except those of processes passed to expect_signal_exit.
sub signal_exits {
    my ($self) = @_;
    return scan_signal_exits("$self->{dir}/error.log");
}

# signal_exits ignoring expect_signal_exit (for the harness's own test).
sub scan_signal_exits_unexpected {
    my ($self) = @_;
    my $log = "$self->{dir}/error.log";
    local $WATCHED{$log} = { expected => {} };
    return scan_signal_exits($log);
}

sub scan_signal_exits {
    my ($log) = @_;
    my $w = $WATCHED{$log} || { expected => {} };
    open(my $fh, '<', $log) or return ();
    my @found;
    while (my $line = <$fh>) {
        # nginx's own line (see scan_log_alerts), not client text quoted in another line
        next unless $line =~ m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[alert\] \d+#\d+: .*?\bprocess (\d+) exited on signal};
        next if $w->{expected}{$1};
        chomp $line;
        push @found, $line;
    }
    close $fh;
    return @found;
}

# A test file that ends (done_testing, die, exit) without finishing a test server still has
# its error log checked: runs before Test::More's own END block and File::Temp's cleanup.
END {
    for my $log (sort keys %WATCHED) {
        my $w = $WATCHED{$log};
        next if $w->{finished} || $w->{owner} != $$;
        my @crashes = scan_signal_exits($log);
        next unless @crashes;
        local $?;
        Test::More::ok(0, "no nginx worker exited on a signal ($log)");
        Test::More::diag(join("\n", @crashes, crash_report($log)));
    }
}

# For a server whose worker crashed: the error log's last lines (glibc and libstdc++ write
# their abort messages there) and the backtraces of every thread in each core dump, when gdb
# is installed. The cores are moved out of the test directory so they outlive its cleanup.
sub crash_report {
    my ($log) = @_;
    (my $d = $log) =~ s{/[^/]*$}{};
    my @out = ('--- the error log\'s last lines:');
    if (open(my $fh, '<', $log)) {
        my @lines = <$fh>;
        close $fh;
        my $from = @lines > 200 ? @lines - 200 : 0;
        push @out, map { chomp; $_ } grep { !/\[(?:info|notice|debug)\]/ } @lines[$from .. $#lines];
    }
    for my $core (glob("$d/cores/core*")) {
        my $kept = ($ENV{TMPDIR} || '/tmp') . '/fhir-bulk-core-' . time() . "-$$-" . int(rand(1e6));
        rename($core, $kept) or $kept = $core;
        push @out, "--- core dump $kept:";
        my $image = $ENV{TEST_NGINX_IMAGE} // $NGINX;  # the binary, when $NGINX is a wrapper
        push @out, `gdb -batch -nx -ex 'thread apply all bt 40' $image $kept 2>&1`
            if system('sh', '-c', 'command -v gdb >/dev/null') == 0;
    }
    return @out;
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }
sub base_url { $_[0]{base_url} }
sub conninfo { $_[0]{conninfo} }

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp') or die "no free port: $!";
    return $s->sockport;
}

# --- PostgreSQL ---------------------------------------------------------------------------

sub start_pg {
    my ($self) = @_;
    my $pgdir = "$self->{dir}/pg";
    local $ENV{PG_FSYNC} = 'off';
    system("$REPO/scripts/pg-cluster.sh", 'start', $pgdir) == 0
        or die "cannot start PostgreSQL in $pgdir\n";
    open(my $fh, '<', "$pgdir/env") or die "no $pgdir/env: $!";
    while (<$fh>) {
        $self->{conninfo} = $1 if /^PG_CONNINFO=(.*)$/;
    }
    close $fh;
    $self->{conninfo} =~ s/^'(.*)'$/$1/;
    $self->{conninfo} =~ s/\\ / /g;
    $self->{pg_started} = 1;
    unless ($self->{migrated}++) {
        $self->run_tool('migrate', '--quiet') == 0 or die "migrate failed\n";
    }
    return $self;
}

sub stop_pg {
    my ($self) = @_;
    system("$REPO/scripts/pg-cluster.sh", 'stop', "$self->{dir}/pg") == 0
        or die "cannot stop PostgreSQL\n";
    $self->{pg_started} = 0;
    return $self;
}

sub conninfo_file { "$_[0]{dir}/pg/nginx-conninfo" }

# A hot standby of the test cluster (scripts/pg-cluster.sh standby: pg_basebackup -R,
# streaming, hot_standby_feedback on) in <dir>/<name>; returns its conninfo. stop_standby
# stops it (fast shutdown; $mode 'immediate' or a signal name such as 'KILL' for the
# postmaster), start_standby again restarts it; finish stops what still runs.
sub start_standby {
    my ($self, $name) = @_;
    $name //= 'standby';
    my $sdir = "$self->{dir}/$name";
    local $ENV{PG_FSYNC} = 'off';
    system("$REPO/scripts/pg-cluster.sh", 'standby', "$self->{dir}/pg", $sdir) == 0
        or die "cannot start the standby in $sdir\n";
    open(my $fh, '<', "$sdir/env") or die "no $sdir/env: $!";
    my $ci;
    while (<$fh>) { $ci = $1 if /^PG_CONNINFO=(.*)$/; }
    close $fh;
    $ci =~ s/^'(.*)'$/$1/;
    $ci =~ s/\\ / /g;
    $self->{standbys}{$name} = $ci;
    return $ci;
}

sub stop_standby {
    my ($self, $name, $mode) = @_;
    $name //= 'standby';
    my $sdir = "$self->{dir}/$name";
    if (defined $mode && $mode =~ /^[A-Z]+$/) {
        open(my $fh, '<', "$sdir/data/postmaster.pid") or return $self;
        my $pid = <$fh>;
        close $fh;
        chomp $pid;
        kill($mode, $pid);
        $self->wait_until(sub { !kill(0, $pid) }, 30);
        return $self;
    }
    system("$REPO/scripts/pg-cluster.sh", 'stop', $sdir);
    return $self;
}

# psql against another server (a standby's conninfo).
sub psql_at {
    my ($self, $conninfo, $sql) = @_;
    local $self->{conninfo} = $conninfo;
    return $self->psql($sql);
}

# Runs `fhir-bulk ARGS --db <conninfo>`; returns the exit status (0 = success).
sub run_tool {
    my ($self, @args) = @_;
    my $status = system($BIN, @args, '--db', $self->{conninfo});
    return $status == -1 ? 255 : $status >> 8;
}

# Runs a SQL statement with psql; returns its trimmed output.
sub psql {
    my ($self, $sql) = @_;
    open(my $fh, '-|', 'psql', $self->{conninfo}, '-X', '-q', '-A', '-t', '-v',
         'ON_ERROR_STOP=1', '-c', $sql) or die "psql: $!";
    local $/;
    my $out = <$fh>;
    close $fh or die "psql failed: $sql\n";
    $out //= '';
    $out =~ s/\s+$//;
    return $out;
}

# Loads files or directories with `fhir-bulk load`; dies unless it succeeds.
sub load {
    my ($self, @paths) = @_;
    my $status = $self->run_tool('load', '--quiet', @paths);
    die "fhir-bulk load @paths failed ($status)\n" if $status != 0;
    return $self;
}

# The Synthea sample beside the checkout (CI has shared/ next to the clone).
sub synthea_dir { "$REPO/../shared/data/synthea-r4-100" }

# --- export worker ------------------------------------------------------------------------

# The export directory: the export worker's (root here), readable but not writable by nginx's
# workers (nobody:nogroup) through the group, which setgid passes on to job directories.
sub export_dir {
    my ($self) = @_;
    my $d = "$self->{dir}/exports";
    unless (-d $d) {
        mkdir $d or die "$d: $!";
        if ($> == 0) {
            my $gid = getgrnam('nogroup');
            chown 0, $gid, $d;
            chmod 02750, $d;
        }
    }
    return $d;
}

sub start_worker {
    my ($self, @args) = @_;
    my $log = "$self->{dir}/worker.log";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDOUT, '>>', $log);
        open(STDERR, '>&', \*STDOUT);
        { exec($BIN, 'worker', '--db', $self->{conninfo}, '--export-dir', $self->export_dir,
               @args); }
        POSIX::_exit(127);
    }
    push @{ $self->{workers} }, $pid;
    return $pid;
}

# Stops one worker (default: all) with SIGTERM, or with the given signal.
sub stop_worker {
    my ($self, $pid, $signal) = @_;
    my @pids = defined $pid ? ($pid) : @{ $self->{workers} || [] };
    for my $p (@pids) {
        kill($signal // 'TERM', $p);
        my $deadline = time + 30;
        while (time < $deadline) {
            last if waitpid($p, WNOHANG) == $p;
            sleep 0.05;
        }
        kill('KILL', $p) if kill(0, $p);
        waitpid($p, 0);
    }
    my %gone = map { $_ => 1 } @pids;
    $self->{workers} = [ grep { !$gone{$_} } @{ $self->{workers} || [] } ];
    return $self;
}

# The text of <dir>/worker.log, where start_worker's workers write; '' when there is none.
sub worker_log {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/worker.log") or return '';
    local $/;
    my $log = <$fh>;
    close $fh;
    return $log // '';
}

# An export run by a worker of its own reading the primary only, e.g. the reference that an
# export read from a standby must equal: starts a worker (--threads 2), kicks off $path
# (default a system export), polls up to $timeout seconds (default 60) and stops the worker.
# Returns the last poll response (the caller checks its status is 200) and its export_lines
# ([] when it did not complete).
sub reference_export {
    my ($self, $path, $timeout) = @_;
    my $w = $self->start_worker('--threads', 2);
    my $res = $self->poll($self->kickoff($path // '/fhir/$export')->{headers}{'content-location'},
                          $timeout // 60);
    my $lines = $self->export_lines($res);
    $self->stop_worker($w);
    return ($res, $lines);
}

# --- nginx --------------------------------------------------------------------------------

sub expand {
    my ($self, $text) = @_;
    my %vars = (
        PORT => $self->{port},
        BASE_URL => $self->{base_url},
        CONNINFO_FILE => $self->conninfo_file,
        TESTDIR => $self->{dir},
        EXPORT_DIR => "$self->{dir}/exports",
        REPO => $REPO,
    );
    $text =~ s/%%(\w+)%%/exists $vars{$1} ? $vars{$1} : die "unknown %%$1%%\n"/ge;
    return $text;
}

# Writes nginx.conf: the globals (module, pid, logs, temp paths) around the given http{} body.
# main_extra goes to the main context (e.g. thread_pool lines).
sub write_conf {
    my ($self, $http_body, %opt) = @_;
    my $d = $self->{dir};
    mkdir "$d/temp";
    my $main_extra = $self->expand($opt{main} // '');
    my $user = $> == 0 ? 'user nobody nogroup;' : '';
    # A worker that crashes leaves a core here (the kernel's core_pattern "core" is relative
    # to the process's directory); crash_report prints its backtraces.
    mkdir "$d/cores";
    chmod 0777, "$d/cores";
    my $workers = $opt{workers} // 2;
    my $level = $opt{error_log_level} // 'info';
    my $access_log = $self->expand($opt{access_log} // "access_log $d/access.log;");
    $self->export_dir;
    my $conf = <<"EOF";
load_module $MODULE;
$user
worker_processes $workers;
pid $d/nginx.pid;
error_log $d/error.log $level;
working_directory $d/cores;
worker_rlimit_core 1g;
$main_extra
events { worker_connections 256; }
http {
    $access_log
    client_body_temp_path $d/temp/body;
    proxy_temp_path $d/temp/proxy;
    fastcgi_temp_path $d/temp/fastcgi;
    uwsgi_temp_path $d/temp/uwsgi;
    scgi_temp_path $d/temp/scgi;
EOF
    $conf .= $self->expand($http_body) . "}\n";
    open(my $fh, '>', "$d/nginx.conf") or die "$d/nginx.conf: $!";
    print $fh $conf;
    close $fh;
    return $self;
}

# The standard FHIR endpoint configuration. Authorization is off unless auth => 1 (then
# the token key is %%TESTDIR%%/token.key, see FhirBulk::Auth); server_extra goes to the
# server block, so both locations inherit it.
sub default_http_conf {
    my (%opt) = @_;
    my $extra = $opt{location_extra} // '';
    my $server_extra = $opt{server_extra} // '';
    my $auth = $opt{auth}
        ? "fhir_bulk_auth on;\n        fhir_bulk_token_key_file %%TESTDIR%%/token.key;\n"
          . "        fhir_bulk_jwks_allow_insecure on;\n"
          . "        fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%;"
        : 'fhir_bulk_auth off;';
    return <<"EOF";
    server {
        listen 127.0.0.1:%%PORT%%;
        $auth
        $server_extra
        location /fhir {
            fhir_bulk_api;
            fhir_bulk_base_url %%BASE_URL%%;
            fhir_bulk_pg_conninfo_file %%CONNINFO_FILE%%;
            fhir_bulk_retry_after 7;
            fhir_bulk_export_dir %%EXPORT_DIR%%;
            fhir_bulk_min_poll_interval ${\ ($opt{min_poll_interval} // 0) };
            $extra
        }
        location /fhir/\$export-files/ {
            fhir_bulk_files %%EXPORT_DIR%%;
        }
    }
EOF
}

# nginx -t on the current configuration: returns (exit status, combined output).
sub nginx_test {
    my ($self) = @_;
    my $d = $self->{dir};
    my $out = `$NGINX -t -p $d -c $d/nginx.conf -e $d/error-t.log 2>&1`;
    my $status = $?;
    return ($status, $out);
}

sub start_nginx {
    my ($self) = @_;
    my $d = $self->{dir};
    my ($status, $out) = $self->nginx_test;
    die "nginx -t failed:\n$out" if $status != 0;
    system($NGINX, '-p', $d, '-c', "$d/nginx.conf", '-e', "$d/error.log") == 0
        or die "nginx did not start\n";
    my $deadline = time + 10;
    while (time < $deadline) {
        if (-s "$d/nginx.pid") {
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
                                          Proto => 'tcp');
            if ($s) { close $s; $self->{nginx_started} = 1; return $self; }
        }
        sleep 0.05;
    }
    die "nginx is not listening on $self->{port}\n";
}

sub nginx_pid {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/nginx.pid") or return undef;
    my $pid = <$fh>;
    close $fh;
    chomp $pid;
    return $pid;
}

sub nginx_alive {
    my ($self) = @_;
    my $pid = $self->nginx_pid;
    return $pid && kill(0, $pid);
}

sub stop_nginx {
    my ($self) = @_;
    my $pid = $self->nginx_pid or return $self;
    kill 'QUIT', $pid;
    my $deadline = time + 30;
    while (kill(0, $pid) && time < $deadline) { sleep 0.05; }
    kill 'TERM', $pid if kill(0, $pid);
    $self->{nginx_started} = 0;
    return $self;
}

# --- HTTP ---------------------------------------------------------------------------------

# request(METHOD, PATH_OR_URL, {headers}, body): HTTP::Tiny's response, plus {json} when the
# body parses as JSON. Paths are relative to http://127.0.0.1:PORT.
sub request {
    my ($self, $method, $path, $headers, $body) = @_;
    my $url = $path =~ m{^https?://} ? $path : "http://127.0.0.1:$self->{port}$path";
    my %o = (headers => $headers // {});
    $o{content} = $body if defined $body;
    my $res = $self->{http}->request($method, $url, \%o);
    if (length($res->{content} // '')) {
        $res->{json} = eval { decode_json($res->{content}) };
    }
    return $res;
}

sub get { my ($self, $path, $h) = @_; return $self->request('GET', $path, $h); }

# A kick-off with the headers the spec asks for; extra headers and a POST body optional.
sub kickoff {
    my ($self, $path, %opt) = @_;
    my %h = (Accept => 'application/fhir+json', Prefer => 'respond-async',
             %{ $opt{headers} || {} });
    if (defined $opt{body}) {
        $h{'Content-Type'} //= 'application/fhir+json';
        return $self->request('POST', $path, \%h, $opt{body});
    }
    return $self->request('GET', $path, \%h);
}

# Polls a status URL until it stops answering 202 (or the timeout passes); returns the last
# response. Polls every 0.1 s (tests do not wait out Retry-After).
sub poll {
    my ($self, $url, $timeout) = @_;
    my $deadline = time + ($timeout // 60);
    my $res;
    while (1) {
        $res = $self->request('GET', $url, { Accept => 'application/json' });
        return $res if $res->{status} != 202 || time > $deadline;
        sleep 0.1;
    }
}

# Downloads every file of a manifest section; returns { type => [decoded resources] } and
# the raw lines per URL in $self->{downloaded}.
sub download_all {
    my ($self, $items) = @_;
    my %by_type;
    for my $item (@{ $items || [] }) {
        my $res = $self->request('GET', $item->{url});
        die "GET $item->{url}: $res->{status}\n" unless $res->{status} == 200;
        my @lines = split /\n/, $res->{content};
        $self->{downloaded}{ $item->{url} } = \@lines;
        push @{ $by_type{ $item->{type} } }, map { decode_json($_) } @lines;
    }
    return \%by_type;
}

# Downloads every file of a manifest section as it is (no JSON decoding, which costs seconds
# per 10,000 lines): { type => [ lines ] }.
sub download_lines {
    my ($self, $items) = @_;
    my %by_type;
    for my $item (@{ $items || [] }) {
        my $res = $self->request('GET', $item->{url});
        die "GET $item->{url}: $res->{status}\n" unless $res->{status} == 200;
        push @{ $by_type{ $item->{type} } }, split /\n/, $res->{content};
    }
    return \%by_type;
}

# The lines of every output file of a completed export (a poll response), sorted: a list to
# compare byte for byte with another export's, whatever the files and the order of their lines.
sub export_lines {
    my ($self, $res) = @_;
    return [ sort map { @$_ } values %{ $self->download_lines($res->{json}{output}) } ];
}

# The job id at the end of a kick-off's Content-Location (a status URL); undef when none.
sub job_id_of {
    my ($self, $url) = @_;
    return (($url // '') =~ m{([0-9a-f-]{36})$})[0];
}

# Checks that a response is an OperationOutcome with the given status (and issue code).
sub is_outcome {
    my ($self, $res, $status, $code, $name) = @_;
    $name //= "$status OperationOutcome";
    my $ok = $res->{status} == $status
        && ($res->{headers}{'content-type'} // '') =~ m{^application/fhir\+json}
        && ref $res->{json} eq 'HASH'
        && ($res->{json}{resourceType} // '') eq 'OperationOutcome'
        && ref $res->{json}{issue} eq 'ARRAY'
        && @{ $res->{json}{issue} } > 0
        && (!defined $code || $res->{json}{issue}[0]{code} eq $code);
    ok($ok, $name) or diag("got $res->{status}: " . ($res->{content} // ''));
    return $ok;
}

# --- more than one node, faults, load (t/2*.t) ---------------------------------------------

# Generates and loads a synthetic population (`fhir-bulk synth --patients N --load`).
sub synth {
    my ($self, $patients, @args) = @_;
    my $status = $self->run_tool('synth', '--patients', $patients, '--load', '--quiet', @args);
    die "fhir-bulk synth --patients $patients failed ($status)\n" if $status != 0;
    return $self;
}

# Calls $cond every $interval seconds (default 0.1) until it returns true or $timeout seconds
# (default 30) have passed; returns its last value.
sub wait_until {
    my ($self, $cond, $timeout, $interval) = @_;
    my $deadline = time + ($timeout // 30);
    while (1) {
        my $v = $cond->();
        return $v if $v || time > $deadline;
        sleep($interval // 0.1);
    }
}

# Another nginx node: its own port, directory, nginx.conf, pid and logs, sharing this object's
# PostgreSQL, connection file and export directory ($http_body as for write_conf, with the
# node's %%PORT%% and %%BASE_URL%%). The node has the HTTP and nginx methods (get, kickoff,
# poll, download_all, start_nginx, stop_nginx, reload_nginx, finish ...); start workers and
# PostgreSQL on $self, and finish the node before $self.
sub add_node {
    my ($self, $http_body, %opt) = @_;
    my $n = ++$self->{nodes_added};
    my $dir = "$self->{dir}/node$n";
    mkdir $dir or die "$dir: $!";
    chmod 0755, $dir;
    my $port = free_port();
    my $node = bless {
        dir => $dir,
        port => $port,
        base_url => "http://127.0.0.1:$port/fhir",
        conninfo => $self->{conninfo},
        http => HTTP::Tiny->new(timeout => 30, max_redirect => 0, keep_alive => 0),
        owner_pid => $$,
    }, ref $self;
    $node->watch_error_log;
    (my $body = $http_body) =~ s/%%PORT%%/$port/g;
    $body =~ s/%%BASE_URL%%/$node->{base_url}/g;
    # expanded by $self: the shared export directory and connection file
    $node->write_conf($self->expand($body), main => $self->expand($opt{main} // ''));
    return $node;
}

# A URL of one node as the same URL on another (base URLs differ only by port).
sub on_node {
    my ($self, $url) = @_;
    $url =~ s{^http://127\.0\.0\.1:\d+/}{http://127.0.0.1:$self->{port}/};
    return $url;
}

# The children of a process (from /proc), e.g. nginx's worker processes; zombies excluded.
sub children_of {
    my ($ppid) = @_;
    my @kids;
    opendir(my $d, '/proc') or return ();
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open(my $fh, '<', "/proc/$pid/stat") or next;
        my $stat = <$fh> // '';
        close $fh;
        # "pid (comm) state ppid ...": the last ')' ends comm, which may hold anything
        push @kids, $pid if $stat =~ /^.*\) (\S) (\d+) /s && $2 == $ppid && $1 ne 'Z';
    }
    closedir $d;
    return sort { $a <=> $b } @kids;
}

# True while the process exists and is not a zombie.
sub process_alive {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/stat") or return 0;
    my $stat = <$fh> // '';
    close $fh;
    return $stat =~ /^.*\) (\S) /s && $1 ne 'Z' ? 1 : 0;
}

sub nginx_worker_pids {
    my ($self) = @_;
    my $master = $self->nginx_pid or return ();
    return children_of($master);
}

# Reloads nginx (SIGHUP to the master) and waits until $count (default 2) worker processes
# started after the signal are running and, unless wait_old => 0, until the workers from
# before have exited (they finish their requests first), so no later request of the test
# reaches a worker with the old configuration. Returns the pids of the workers from before.
sub reload_nginx {
    my ($self, $count, %opt) = @_;
    $count //= 2;
    my $wait_old = $opt{wait_old} // 1;
    my $master = $self->nginx_pid or die "nginx is not running\n";
    my %old = map { $_ => 1 } $self->nginx_worker_pids;
    kill 'HUP', $master or die "cannot signal nginx: $!";
    my $ok = $self->wait_until(
        sub { (grep { !$old{$_} } $self->nginx_worker_pids) >= $count }, 30);
    die "nginx did not start new worker processes after a reload\n" unless $ok;
    if ($wait_old) {
        $self->wait_until(sub { !grep { process_alive($_) } keys %old }, $opt{timeout} // 60)
            or die "old nginx worker processes did not exit after a reload\n";
    }
    return sort { $a <=> $b } keys %old;
}

# VmRSS and VmHWM (peak RSS) of a process in kB; () when it is gone.
sub rss_kb {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/status") or return ();
    my ($rss, $hwm) = (0, 0);
    while (<$fh>) {
        $rss = $1 if /^VmRSS:\s+(\d+)/;
        $hwm = $1 if /^VmHWM:\s+(\d+)/;
    }
    close $fh;
    return ($rss, $hwm);
}

# Holds a lock in a psql session of its own until release_lock($handle), e.g.
# 'LOCK TABLE export_file IN EXCLUSIVE MODE' keeps every unit from completing. Returns once
# the lock is held.
sub hold_lock {
    my ($self, $lock_sql) = @_;
    my $name = 'fhir-bulk-test-lock-' . $$ . '-' . ++$self->{locks_held};
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDOUT, '>', '/dev/null');
        open(STDERR, '>', '/dev/null');
        $ENV{PGAPPNAME} = $name;
        { exec('psql', $self->{conninfo}, '-X', '-q', '-c',
               "BEGIN; $lock_sql; SELECT pg_sleep(3600); COMMIT;"); }
        POSIX::_exit(127);
    }
    my $held = $self->wait_until(sub {
        $self->psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '$name' "
                    . "AND wait_event = 'PgSleep'");
    }, 30);
    die "the lock ($lock_sql) was not taken\n" unless $held;
    return { name => $name, pid => $pid };
}

# Holds $table in ACCESS EXCLUSIVE mode on the primary (hold_lock) until the standby with
# $conninfo has replayed the lock (so a standby query reading $table waits there as well).
# Returns the lock for release_lock; undef (the lock released) when the standby has not
# replayed it within 30 s.
sub hold_lock_replayed {
    my ($self, $conninfo, $table) = @_;
    my $lock = $self->hold_lock("LOCK TABLE $table IN ACCESS EXCLUSIVE MODE");
    $self->psql('SELECT txid_current()');  # a commit flushes the WAL holding the lock record
    my $replayed = $self->wait_until(sub {
        $self->psql_at($conninfo, "SELECT count(*) FROM pg_locks "
                       . "WHERE mode = 'AccessExclusiveLock' AND relation = '$table'::regclass") > 0
    });
    return $lock if $replayed;
    $self->release_lock($lock);
    return undef;
}

# Ends a hold_lock session (its transaction rolls back); no-op for undef.
sub release_lock {
    my ($self, $lock) = @_;
    return $self unless $lock;
    $self->psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                . "WHERE application_name = '$lock->{name}'");
    waitpid($lock->{pid}, 0);
    return $self;
}

# Export units per worker process: { pid => units } over the units of $job_id (all jobs when
# undefined) in the given states (default: done). A thread's id ends in -<pid>-<hex>-t<n>.
sub units_by_worker_pid {
    my ($self, $job_id, @states) = @_;
    @states = ('done') unless @states;
    my $where = 'state IN (' . join(',', map { "'$_'" } @states) . ')';
    $where .= " AND job_id = '$job_id'" if defined $job_id;
    my %by;
    for (split /\n/, $self->psql("SELECT worker FROM export_unit WHERE $where")) {
        $by{ /-(\d+)-[0-9a-f]{4}-t\d+$/ ? $1 : $_ }++;
    }
    return \%by;
}

# "Type/id" of each NDJSON line. Lines as stored start {"resourceType":..,"id":..}; anything
# else (e.g. _elements output) is parsed.
sub resource_keys {
    my @keys;
    for (@_) {
        if (/^\{"resourceType":"([A-Za-z]+)","id":"([^"\\]+)"/) {
            push @keys, "$1/$2";
        } else {
            my $r = decode_json($_);
            push @keys, "$r->{resourceType}/$r->{id}";
        }
    }
    return @keys;
}

# Downloads every file of a manifest section without decoding it fully. Returns
# { keys => { "Type/id" => times seen }, types => { type => lines }, errors => [...] }: an
# error for a status other than 200, a line count other than the item's count, or a line of
# another type than the item's.
sub download_keys {
    my ($self, $items) = @_;
    my %out = (keys => {}, types => {}, errors => []);
    for my $item (@{ $items || [] }) {
        my $res = $self->request('GET', $item->{url});
        if ($res->{status} != 200) {
            push @{ $out{errors} }, "GET $item->{url}: $res->{status}";
            next;
        }
        my @keys = resource_keys(split /\n/, $res->{content});
        push @{ $out{errors} }, "$item->{url}: " . scalar(@keys) . " lines, count $item->{count}"
            if @keys != $item->{count};
        my @wrong = grep { !m{^\Q$item->{type}\E/} } @keys;
        push @{ $out{errors} }, "$item->{url}: $wrong[0] in a $item->{type} file" if @wrong;
        $out{keys}{$_}++ for @keys;
        $out{types}{ $item->{type} } += @keys;
    }
    return \%out;
}

# Stored resources per type (not deleted): { type => count }.
sub db_counts {
    my ($self) = @_;
    return { map { split /\|/ } split /\n/, $self->psql(
        "SELECT res_type || '|' || count(*) FROM resource WHERE NOT deleted GROUP BY res_type") };
}

# Files under a job's directory (names, sorted); () when there is no directory.
sub job_files {
    my ($self, $job_id) = @_;
    opendir(my $d, $self->export_dir . "/$job_id") or return ();
    my @names = sort grep { $_ ne '.' && $_ ne '..' } readdir $d;
    closedir $d;
    return @names;
}

# request() without HTTP::Tiny's silent retry of an idempotent request whose connection was
# closed before the response (RFC 2616 8.1.4): a request the server dropped is a 599 here.
sub request_once {
    my ($self, $method, $path, $headers, $body) = @_;
    my $url = $path =~ m{^https?://} ? $path : "http://127.0.0.1:$self->{port}$path";
    my %o = (headers => $headers // {});
    $o{content} = $body if defined $body;
    my $res = eval { $self->{http}->_request($method, $url, \%o) };
    if (my $e = $@) {
        $res = ref $e eq 'HASH' && exists $e->{status}
            ? $e
            : { url => $url, status => 599, reason => 'Internal Exception', content => "$e",
                headers => {} };
    }
    if (length($res->{content} // '')) {
        $res->{json} = eval { decode_json($res->{content}) };
    }
    return $res;
}

my @CLIENT_PIDS;  # [pid, owner]: stopped at exit if still running

# Client processes for concurrency tests: $n children, each calling $body->($i, $record) in a
# loop until stop_clients; $record->(what, status, detail) notes the result of one request.
sub start_clients {
    my ($self, $n, $body) = @_;
    my $stop = "$self->{dir}/clients.stop";
    unlink $stop;
    my $parent = $$;
    for my $i (1 .. $n) {
        my $log = "$self->{dir}/client-" . ++$self->{clients_started} . '.log';
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            srand($$ ^ int(time * 1000));
            open(my $fh, '>', $log) or POSIX::_exit(1);
            $fh->autoflush(1);
            my $record = sub {
                my ($what, $status, $detail) = @_;
                ($detail //= '') =~ s/\s+/ /g;
                printf $fh "%.3f\t%s\t%s\t%s\n", time, $what, $status, substr($detail, 0, 300);
            };
            while (!-e $stop && getppid() == $parent) {  # the test may die: stop then too
                eval { $body->($i, $record); 1 } or $record->('died', 0, $@);
            }
            close $fh;
            POSIX::_exit(0);
        }
        push @{ $self->{clients} }, [$pid, $log, $i];
        push @CLIENT_PIDS, [$pid, $$];
    }
    return $self;
}

# Stops the clients (each finishes its request) and returns every record they made:
# [time, what, status, detail, client number].
sub stop_clients {
    my ($self) = @_;
    open(my $fh, '>', "$self->{dir}/clients.stop") or die "clients.stop: $!";
    close $fh;
    my @records;
    for my $c (@{ $self->{clients} || [] }) {
        waitpid($c->[0], 0);
        @CLIENT_PIDS = grep { $_->[0] != $c->[0] } @CLIENT_PIDS;
        open(my $lf, '<', $c->[1]) or next;
        while (<$lf>) {
            chomp;
            push @records, [ (split /\t/, $_, 4), $c->[2] ];
        }
        close $lf;
    }
    $self->{clients} = [];
    return \@records;
}

# Mounts a tmpfs of $size (e.g. '6m') on the export directory, before anything writes there.
# Root only; false when it cannot. Unmounted by umount_export_dir or at exit.
my @MOUNTED;
sub mount_export_tmpfs {
    my ($self, $size) = @_;
    return 0 if $> != 0;
    my $d = $self->export_dir;
    my $gid = getgrnam('nogroup') // 0;
    system('mount', '-t', 'tmpfs', '-o', "size=$size,mode=2750,uid=0,gid=$gid",
           'fhir-bulk-test', $d) == 0 or return 0;
    push @MOUNTED, [$d, $$];
    return 1;
}

sub umount_export_dir {
    my ($self) = @_;
    my $d = $self->export_dir;
    for my $m (grep { $_->[0] eq $d } @MOUNTED) {
        system('umount', $d) == 0 or system('umount', '-l', $d);
    }
    @MOUNTED = grep { $_->[0] ne $d } @MOUNTED;
    return $self;
}

# Before File::Temp's own END block removes the test directory (END blocks run last first).
END {
    kill 'KILL', map { $_->[0] } grep { $_->[1] == $$ } @CLIENT_PIDS;
    for my $m (grep { $_->[1] == $$ } @MOUNTED) {
        system('umount', $m->[0]) == 0 or system('umount', '-l', $m->[0]);
    }
}

# The lines of an nginx error log (text) at level alert, emerg or crit, except signal exits of
# the pids in %$expected. The level is read where nginx writes it, after the line's time stamp
# ("2026/01/31 12:00:00 [crit] 123#0: ..."), not anywhere in the line: escaped client text
# quoted in a lower-level line may well contain "[emerg]".
sub scan_log_alerts {
    my ($log, $expected) = @_;
    $expected ||= {};
    return grep {
        m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?:alert|emerg|crit)\] }
            && !(/process (\d+) exited on signal/ && $expected->{$1})
    } split /\n/, $log;
}

# --- teardown -----------------------------------------------------------------------------

# Stops everything and checks the error log for crashes and alerts (one test).
sub finish {
    my ($self) = @_;
    $self->stop_worker if @{ $self->{workers} || [] };
    $self->stop_nginx if $self->{nginx_started};
    $self->stop_standby($_) for sort keys %{ $self->{standbys} || {} };
    $self->stop_pg if $self->{pg_started};
    my $log = '';
    if (open(my $fh, '<', "$self->{dir}/error.log")) { local $/; $log = <$fh>; close $fh; }
    diag($log) if $ENV{TEST_VERBOSE_LOG};
    my $w = $WATCHED{"$self->{dir}/error.log"};
    my %expected = %{ $w ? $w->{expected} : {} };
    my @bad = scan_log_alerts($log, \%expected);
    ok(!@bad, 'no alerts, crashes or emergencies in the nginx error log')
        or diag(join("\n", @bad));
    my @crashes = $self->signal_exits;
    ok(!@crashes, 'no nginx worker exited on a signal')
        or diag(join("\n", @crashes, crash_report("$self->{dir}/error.log")));
    $w->{finished} = 1 if $w;
    $self->{finished} = 1;
}

sub DESTROY {
    my ($self) = @_;
    # a forked child (a concurrent client in a test) must not stop the services
    return if $self->{finished} || $$ != $self->{owner_pid};
    local $?;
    eval { $self->stop_worker if @{ $self->{workers} || [] }; };
    eval { $self->stop_nginx if $self->{nginx_started}; };
    eval { $self->stop_standby($_) for sort keys %{ $self->{standbys} || {} }; };
    eval { $self->stop_pg if $self->{pg_started}; };
}

1;
