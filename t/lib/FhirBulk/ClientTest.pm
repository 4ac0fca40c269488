package FhirBulk::ClientTest;

# Helpers for the export client's integration tests (t/30-client-*.t): run `fhir-bulk export`
# against the test server of FhirBulk::Test and read what it left behind. Core Perl only.
#
#   my $c = FhirBulk::ClientTest->new($t);          # $t: a started FhirBulk::Test
#   my $r = $c->run('--system', '--type', 'Patient');   # --fhir-url and --out added
#   $r->{exit}, $r->{stdout}, $r->{stderr}, $r->{out} (the output directory)
#   my $pid = $c->start(...); $c->wait_run($pid)    # the same in the background
#   $c->summary($r->{out}), $c->lines("$r->{out}/Patient.1.ndjson")

use strict;
use warnings;

use File::Path qw(remove_tree);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use FhirBulk::Test;

sub new {
    my ($class, $t) = @_;
    return bless { t => $t, n => 0 }, $class;
}

sub t { $_[0]{t} }

# A fresh output directory under the test directory.
sub new_out {
    my ($self) = @_;
    return $self->{t}->dir . '/out' . ++$self->{n};
}

# The arguments of one run: --fhir-url (unless --status or --fhir-url given) and --out
# (unless given) are added.
sub _args {
    my ($self, @args) = @_;
    my %has = map { $_ => 1 } grep { /^--/ } @args;
    my $out;
    for my $i (0 .. $#args - 1) { $out = $args[ $i + 1 ] if $args[$i] eq '--out'; }
    unless (defined $out) {
        $out = $self->new_out;
        push @args, '--out', $out;
    }
    unshift @args, '--fhir-url', $self->{t}->base_url unless $has{'--fhir-url'} || $has{'--status'};
    return ($out, 'export', @args);
}

# Starts the client in the background; returns its pid. stdout/stderr go to files.
sub start {
    my ($self, @args) = @_;
    my ($out, @argv) = $self->_args(@args);
    my $log = $self->{t}->dir . '/client' . ++$self->{runs};
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', "$log.out");
        open(STDERR, '>', "$log.err");
        { exec($FhirBulk::Test::BIN, @argv); }
        POSIX::_exit(127);
    }
    $self->{running}{$pid} = { log => $log, out => $out };
    return $pid;
}

# Waits for a started client (default timeout 180 s, then SIGKILL); returns the result hash.
sub wait_run {
    my ($self, $pid, $timeout) = @_;
    my $deadline = time + ($timeout // 180);
    my $status = delete $self->{reaped}{$pid};    # wait_for_log saw it end
    while (!defined $status) {
        if (waitpid($pid, WNOHANG) == $pid) { $status = $?; last; }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $status = -1;
            last;
        }
        sleep 0.05;
    }
    my $run = delete $self->{running}{$pid};
    my $r = {
        exit => $status == -1 ? 'timeout' : ($status & 127) ? 128 + ($status & 127) : $status >> 8,
        stdout => slurp("$run->{log}.out"),
        stderr => slurp("$run->{log}.err"),
        out => $run->{out},
    };
    return $r;
}

# Runs the client to the end; returns { exit, stdout, stderr, out }.
sub run {
    my ($self, @args) = @_;
    return $self->wait_run($self->start(@args));
}

# The output directory and the stderr so far of a started client.
sub out_of { my ($self, $pid) = @_; return $self->{running}{$pid}{out}; }
sub stderr_of { my ($self, $pid) = @_; return slurp($self->{running}{$pid}{log} . '.err'); }

# Waits until the client's stderr matches the pattern (true), or the client ends or the
# timeout passes (false).
sub wait_for_log {
    my ($self, $pid, $re, $timeout) = @_;
    my $log = $self->{running}{$pid}{log} . '.err';
    my $deadline = time + ($timeout // 60);
    while (time < $deadline) {
        return 1 if slurp($log) =~ $re;
        return 0 if exists $self->{reaped}{$pid};
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{reaped}{$pid} = $?;
            return slurp($log) =~ $re ? 1 : 0;
        }
        sleep 0.05;
    }
    return 0;
}

sub slurp {
    my ($path) = @_;
    open(my $fh, '<:raw', $path) or return '';
    local $/;
    my $data = <$fh>;
    close $fh;
    return $data // '';
}

sub json_file { my (undef, $path) = @_; return decode_json(slurp($path)); }
sub summary { my ($self, $out) = @_; return $self->json_file("$out/summary.json"); }
sub manifest { my ($self, $out) = @_; return $self->json_file("$out/manifest.json"); }

# The lines of an NDJSON file.
sub lines {
    my (undef, $path) = @_;
    return [ split /\n/, slurp($path) ];
}

# The file of a manifest url on the server's disk.
sub server_file {
    my ($self, $url) = @_;
    my ($job, $name) = $url =~ m{/([0-9a-f-]{36})/([^/?]+)(?:\?.*)?$} or die "odd url $url";
    return $self->{t}->export_dir . "/$job/$name";
}

# The local files the client wrote for the manifest's output section, in manifest order
# (<Type>.<n>.ndjson, n counting per type).
sub output_files {
    my ($self, $out, $section) = @_;
    $section //= 'output';
    my $m = $self->manifest($out);
    my %n;
    my $sub = $section eq 'output' ? '' : "$section/";
    return [ map { [ $_, "$out/$sub$_->{type}." . ++$n{ $_->{type} } . '.ndjson' ] }
             @{ $m->{$section} || [] } ];
}

# Lines of nginx's access log matching a pattern.
sub access_log {
    my ($self, $re) = @_;
    my @lines = split /\n/, slurp($self->{t}->dir . '/access.log');
    return defined $re ? [ grep { $_ =~ $re } @lines ] : \@lines;
}

1;
