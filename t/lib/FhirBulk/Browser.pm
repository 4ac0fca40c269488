package FhirBulk::Browser;

# Runs a browser script of t/browser/ (Python, Debian's python3-selenium driving headless
# Chromium through chromedriver; see t/browser/harness.py) against the stack a test file
# started with FhirBulk::Test, and turns its results into Test::More results.
#
#   use FhirBulk::Browser qw(browser_missing run_script);
#   plan skip_all => $why if my $why = browser_missing();
#   ... $t->start_pg; $t->load(...); $t->write_conf(...)->start_nginx; $t->start_worker;
#   run_script($t, 'export_app.py',
#              handlers => { register => sub { my ($args) = @_; ...; return { client_id => $id } } },
#              env => { EXTRA => 'x' }, timeout => 120);
#
# The script's 'ok'/'not ok' lines become ok() results, '# ' lines diag (after a failure) or
# note, 'call NAME JSON' runs handlers->{NAME}->(decoded JSON) and writes its (JSON) answer to
# the script's stdin (a handler that dies answers {"error": message}). A script that does not
# end with 'done' (crashed, timed out) fails the file, with the tail of its stderr.
# Screenshots go to <test dir>/screenshots and, when FHIRBULK_SCREENSHOTS=DIR is set, to DIR
# too (e.g. FHIRBULK_SCREENSHOTS=docs/screenshots make test).

use strict;
use warnings;

use Cwd qw(abs_path getcwd);
use Exporter 'import';
use IPC::Open2 qw(open2);
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(browser_missing run_script);

our $PYTHON = $ENV{FHIRBULK_PYTHON} || '/usr/bin/python3';
our $CHROMIUM = $ENV{FHIRBULK_CHROMIUM} || '/usr/bin/chromium';
our $CHROMEDRIVER = $ENV{FHIRBULK_CHROMEDRIVER} || '/usr/bin/chromedriver';

# Why browser tests cannot run here (undef when they can): only a missing Chromium,
# chromedriver or selenium is a reason (scripts/deps.sh installs all three).
sub browser_missing {
    return "no $CHROMIUM (Debian package chromium)" unless -x $CHROMIUM;
    return "no $CHROMEDRIVER (Debian package chromium-driver)" unless -x $CHROMEDRIVER;
    return "no $PYTHON" unless -x $PYTHON;
    system($PYTHON, '-c', 'import selenium') == 0
        or return "$PYTHON cannot import selenium (Debian package python3-selenium)";
    return undef;
}

sub run_script {
    my ($t, $script, %opt) = @_;
    my $dir = $t->dir;
    my $shots = "$dir/screenshots";
    mkdir $shots;
    my $path = $script =~ m{/} ? $script : "$FhirBulk::Test::REPO/t/browser/$script";
    my %env = (
        FHIRBULK_BASE_URL => $t->base_url,
        FHIRBULK_ORIGIN => 'http://127.0.0.1:' . $t->port,
        FHIRBULK_SCREENSHOT_DIR => $shots,
        PYTHONDONTWRITEBYTECODE => 1,
        PYTHONPATH => "$FhirBulk::Test::REPO/t/browser",
        %{ $opt{env} || {} },
    );
    if (my $copy = $ENV{FHIRBULK_SCREENSHOTS}) {
        $copy = getcwd() . "/$copy" unless $copy =~ m{^/};
        $env{FHIRBULK_SCREENSHOTS} = $copy;
    }
    local @ENV{ keys %env } = values %env;

    # The child's stderr goes to a file (selenium and Chromium are chatty).
    my $errfile = "$dir/browser-" . ($script =~ s{.*/}{}r) . '.stderr';
    open(my $saved, '>&', \*STDERR) or die "dup stderr: $!";
    open(STDERR, '>', $errfile) or die "$errfile: $!";
    my ($out, $in);
    my $pid = eval { open2($out, $in, $PYTHON, '-u', $path) };
    my $err = $@;
    open(STDERR, '>&', $saved) or die "restore stderr: $!";
    die "cannot run $PYTHON $path: $err" unless $pid;
    $in->autoflush(1);

    my $timeout = $opt{timeout} // 180;
    my ($done, $failed_last) = (0, 0);
    my $timed_out = 0;
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $timeout;
        while (my $line = <$out>) {
            chomp $line;
            if ($line =~ /^ok (.*)$/) {
                ok(1, $1);
                $failed_last = 0;
            } elsif ($line =~ /^not ok (.*)$/) {
                ok(0, $1);
                $failed_last = 1;
            } elsif ($line =~ /^# ?(.*)$/) {
                $failed_last ? diag($1) : note($1);
            } elsif ($line =~ /^call (\w+) (.*)$/) {
                my ($name, $json) = ($1, $2);
                my $reply = eval {
                    my $h = $opt{handlers}{$name} or die "no handler '$name'\n";
                    $h->(JSON::PP->new->decode($json));
                };
                $reply = { error => ($@ =~ s/\s+$//r) } if $@;
                print $in JSON::PP->new->canonical->encode($reply), "\n";
            } elsif ($line eq 'done') {
                $done = 1;
            } else {
                note("browser: $line");
            }
        }
        alarm 0;
        1;
    } or do {
        alarm 0;
        $timed_out = 1 if ($@ // '') eq "timeout\n";
        die $@ unless $timed_out;
    };
    close $in;
    if ($timed_out) {
        kill 'TERM', $pid;
        my $deadline = time + 10;
        sleep 0.1 while waitpid($pid, WNOHANG) == 0 && time < $deadline;
        kill 'KILL', $pid if kill 0, $pid;
    }
    waitpid($pid, 0);
    my $status = $?;
    ok($done && !$timed_out && $status == 0,
       "browser script $script ran to the end")
        or diag(($timed_out ? "timed out after ${timeout}s; " : '')
                . "exit status $status; stderr (tail):\n" . tail($errfile, 40));
    return $done && $status == 0;
}

sub tail {
    my ($file, $n) = @_;
    open(my $fh, '<', $file) or return '';
    my @lines = <$fh>;
    close $fh;
    splice(@lines, 0, @lines - $n) if @lines > $n;
    return join '', @lines;
}

1;
