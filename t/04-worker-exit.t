#!/usr/bin/perl
# An exiting nginx worker waits for its thread-pool threads to be gone before exit() runs its
# handlers. nginx's pool shutdown returns while each thread is still in pthread_exit, running
# its thread-local destructors (ours closes the thread's PostgreSQL connection with PQfinish,
# and the thread-exit hooks of libpq's libraries follow); exit handlers and library finalizers
# racing them made an exiting worker abort now and then (SIGABRT, t/24 under load).
#
# Made deterministic here: an LD_PRELOAD shim makes PQfinish on a pool thread take 1 s and
# report when it returns. Every such report must come before the worker's "exit" line.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use FhirBulk::Test;

my $cc = `sh -c 'command -v cc'`;
plan skip_all => 'no C compiler for the LD_PRELOAD shim' unless $cc;

my $t = FhirBulk::Test->new;
my $shim = $t->dir . '/slow-pqfinish.so';
{
    open(my $fh, '>', $t->dir . '/shim.c') or die;
    print $fh <<'C';
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

/* PQfinish, 1 s slower on any thread but a process's main thread */
void PQfinish(void *conn)
{
    static void (*real)(void *);
    int pool = syscall(SYS_gettid) != getpid();

    if (real == NULL) {
        real = (void (*)(void *)) dlsym(RTLD_NEXT, "PQfinish");
    }
    if (pool) {
        usleep(1000000);
    }
    real(conn);
    if (pool) {
        fprintf(stderr, "shim: %d: a pool thread's PQfinish returned\n", (int) getpid());
    }
}
C
    close $fh;
    system('cc', '-shared', '-fPIC', '-O1', '-o', $shim, $t->dir . '/shim.c', '-ldl') == 0
        or BAIL_OUT('cannot build the shim');
}

$t->start_pg;
$t->write_conf(FhirBulk::Test::default_http_conf());
{
    local $ENV{LD_PRELOAD} = $shim;  # nginx only; the workers the master forks inherit it
    $t->start_nginx;
}

# Polls of unknown jobs go to the thread pool (the database says 404), on fresh connections
# so that both workers' pool threads open a database connection.
my $seen = 0;
for my $i (1 .. 24) {
    my $job = sprintf('00000000-0000-4000-8000-%012d', $i);
    my $res = $t->request('GET', "/fhir/\$export-status/$job",
                          { Accept => 'application/json', Connection => 'close' });
    $seen++ if $res->{status} == 404;
}
is($seen, 24, 'polls of unknown jobs answered 404 through the thread pool');

my @old = $t->reload_nginx;  # returns once the workers from before have exited
ok(@old, 'the reload ended ' . scalar(@old) . ' workers');

my (%exit_line, %last_shim_line, $n);
open(my $fh, '<', $t->dir . '/error.log') or die;
while (my $line = <$fh>) {
    $n++;
    $last_shim_line{$1} = $n if $line =~ /^shim: (\d+): a pool thread's PQfinish returned/;
    $exit_line{$1} = $n if $line =~ /\[notice\] (\d+)#\d+: exit$/;
}
close $fh;
my @checked = grep { $last_shim_line{$_} } @old;
# Without the wait the process is gone before a slowed thread can report (or reports after
# the worker's "exit" line, while exit handlers run).
ok(@checked, 'pool threads of the exiting workers finished closing their connections '
   . '(reported by pids ' . join(', ', @checked) . ')');
for my $pid (@checked) {
    ok($exit_line{$pid} && $last_shim_line{$pid} < $exit_line{$pid},
       "worker $pid: its pool threads finished before it began to exit");
}

$t->finish;
done_testing;
