#!/usr/bin/env bash
# pg-cluster.sh: a private PostgreSQL 15 cluster in a directory, touching no system service.
#
#   pg-cluster.sh start DIR    initdb on first use, start on a free loopback port, create the
#                              database, write DIR/env (PG_CONNINFO=...), DIR/pgpass and
#                              DIR/nginx-conninfo (conninfo with the password inline, 0600, for
#                              the nginx master to read at configuration time). Idempotent.
#   pg-cluster.sh stop DIR     fast shutdown (by the cluster's own pid file)
#   pg-cluster.sh status DIR   exit 0 when running
#   pg-cluster.sh standby PRIMARY_DIR DIR
#                              a hot standby of the running cluster in PRIMARY_DIR, streaming
#                              from it (pg_basebackup -R, hot_standby_feedback on) on a free
#                              loopback port; DIR/env as for start (PG_CONNINFO: the standby's).
#                              Idempotent.
#   pg-cluster.sh run CMD...   a throw-away cluster for one command: starts it in a temporary
#                              directory, exports PG_CONNINFO, runs CMD, stops and removes it.
#
# PostgreSQL refuses to run as root: as root, the cluster runs as the 'postgres' system user
# (created by Debian's postgresql-common package); as anyone else, as that user.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DB_NAME=fhirbulk
DB_USER=fhirbulk

die() { echo "pg-cluster: $*" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    perl -MIO::Socket::INET -e \
        'my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0,
                                       Proto => "tcp") or die "no free port: $!";
         print $s->sockport, "\n";'
}

cmd_start() {
    local dir=$1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 is not installed ($PG_BIN/initdb); run 'make deps'"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' user to run PostgreSQL as; run 'make deps'"
        chmod 755 "$dir"
        runuser -u postgres -- test -x "$dir" ||
            die "$dir is not reachable by the postgres user (a parent directory is private); use a checkout under a world-traversable directory"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir/data" "$dir/run"
        mkdir -p "$dir/data" "$dir/run"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir/data" "$dir/run"
        local pw
        pw=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        umask 077
        printf '%s\n' "$pw" > "$dir/superuser.pw"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir/superuser.pw"
        as_owner "$PG_BIN/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$dir/superuser.pw" \
            --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        umask 022
    fi
    if cmd_status "$dir"; then
        return 0
    fi
    # Keep the port of the first start: clients (nginx, workers) hold it in their conninfo,
    # so a restarted database must come back where they look for it.
    local port
    if [ -f "$dir/port" ]; then port=$(cat "$dir/port"); else port=$(free_port); fi
    echo "$port" >"$dir/port"
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/run/postgresql.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/run -c fsync=${PG_FSYNC:-on} -c max_connections=200 -c shared_buffers=256MB" \
        start >/dev/null || { tail -20 "$dir/run/postgresql.log" >&2; die "PostgreSQL did not start"; }
    local pw
    pw=$(cat "$dir/superuser.pw")
    umask 077
    printf '127.0.0.1:%s:*:%s:%s\n' "$port" "$DB_USER" "$pw" > "$dir/pgpass"
    printf 'host=127.0.0.1 port=%s dbname=%s user=%s password=%s\n' "$port" "$DB_NAME" "$DB_USER" "$pw" \
        > "$dir/nginx-conninfo"
    printf 'PG_CONNINFO=%q\nexport PG_CONNINFO\nPG_PORT=%s\nPG_LOG=%q\n' \
        "host=127.0.0.1 port=$port dbname=$DB_NAME user=$DB_USER passfile=$dir/pgpass" "$port" \
        "$dir/run/postgresql.log" > "$dir/env"
    umask 022
    local admin="host=127.0.0.1 port=$port dbname=postgres user=$DB_USER passfile=$dir/pgpass"
    if [ "$(psql "$admin" -Atc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'")" != 1 ]; then
        psql "$admin" -q -c "CREATE DATABASE $DB_NAME" >/dev/null
    fi
}

cmd_standby() {
    local primary=$1 dir=$2
    primary=$(cd "$primary" && pwd)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    cmd_status "$primary" || die "the primary in $primary is not running"
    [ "$(id -u)" = 0 ] && chmod 755 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir/data" "$dir/run"
        mkdir -p "$dir/data" "$dir/run"
        chmod 700 "$dir/data"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir/data" "$dir/run"
        install -m 600 "$primary/superuser.pw" "$dir/superuser.pw"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir/superuser.pw"
        # -R: standby.signal and primary_conninfo (with the password, in the 0600 data dir).
        as_owner env PGPASSWORD="$(cat "$primary/superuser.pw")" "$PG_BIN/pg_basebackup"             -h 127.0.0.1 -p "$(cat "$primary/port")" -U "$DB_USER" -D "$dir/data" -R -X stream             -c fast >"$dir/basebackup.log" 2>&1 ||
            { cat "$dir/basebackup.log" >&2; die "pg_basebackup failed"; }
    fi
    if cmd_status "$dir"; then
        return 0
    fi
    local port
    if [ -f "$dir/port" ]; then port=$(cat "$dir/port"); else port=$(free_port); fi
    echo "$port" >"$dir/port"
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/run/postgresql.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/run -c fsync=${PG_FSYNC:-on} -c max_connections=200 -c shared_buffers=256MB -c hot_standby_feedback=on" \
        start >/dev/null || { tail -20 "$dir/run/postgresql.log" >&2; die "the standby did not start"; }
    local pw
    pw=$(cat "$dir/superuser.pw")
    umask 077
    printf '127.0.0.1:%s:*:%s:%s\n' "$port" "$DB_USER" "$pw" > "$dir/pgpass"
    printf 'PG_CONNINFO=%q\nexport PG_CONNINFO\nPG_PORT=%s\nPG_LOG=%q\n' \
        "host=127.0.0.1 port=$port dbname=$DB_NAME user=$DB_USER passfile=$dir/pgpass" "$port" \
        "$dir/run/postgresql.log" > "$dir/env"
    umask 022
}

cmd_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

cmd_status() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

cmd_run() {
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fhir-bulk-pg.XXXXXX")
    trap 'cmd_stop "$RUN_DIR"; rm -rf "$RUN_DIR"' EXIT
    PG_FSYNC=off cmd_start "$RUN_DIR"
    # shellcheck disable=SC1091
    . "$RUN_DIR/env"
    export PG_CONNINFO PG_CLUSTER_DIR="$RUN_DIR"
    "$@"
}

case "${1:-}" in
    start) [ $# = 2 ] || die "usage: $0 start DIR"; cmd_start "$2" ;;
    stop) [ $# = 2 ] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
    status) [ $# = 2 ] || die "usage: $0 status DIR"; cmd_status "$2" ;;
    standby) [ $# = 3 ] || die "usage: $0 standby PRIMARY_DIR DIR"; cmd_standby "$2" "$3" ;;
    run) shift; [ $# -ge 1 ] || die "usage: $0 run CMD..."; cmd_run "$@" ;;
    *) die "usage: $0 start|stop|status DIR | standby PRIMARY_DIR DIR | run CMD..." ;;
esac
