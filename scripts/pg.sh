#!/usr/bin/env bash
# pg.sh start DIR PORT | stop DIR | restart DIR - a private PostgreSQL 15 cluster in DIR, reached over a unix
# socket in DIR (and on 127.0.0.1:PORT). initdb refuses to run as root, so as root the cluster
# belongs to Debian's `postgres` user and is driven through runuser.
# `start` prints the DATABASE_URL on stdout; PG_SERVER_OPTS adds server options (`-c name=value ...`).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pg.sh start DIR PORT | stop DIR | restart DIR}
dir=${2:?usage: pg.sh start DIR PORT | stop DIR | restart DIR}
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
start)
  port=${3:?port}
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    # The socket directory must be reachable by postgres through every parent.
    chmod 755 "$dir"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$PGBIN/initdb" -D "$dir/data" -U dealsync --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if ! as_owner "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on} -c max_connections=200 ${PG_SERVER_OPTS:-}" start >/dev/null \
      || { tail -n 30 "$dir/postgres.log" >&2; exit 1; }
  fi
  for _ in $(seq 1 100); do
    "$PGBIN/pg_isready" -h "$dir" -p "$port" -q && break
    sleep 0.1
  done
  if ! "$PGBIN/psql" -h "$dir" -p "$port" -U dealsync -d postgres -Atqc "select 1 from pg_database where datname='dealsync'" | grep -q 1; then
    "$PGBIN/createdb" -h "$dir" -p "$port" -U dealsync dealsync
  fi
  echo "postgresql://dealsync@127.0.0.1:$port/dealsync"
  ;;
restart)
  # As after a crash (immediate: no checkpoint, WAL replayed at start); the chaos run uses it.
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -m immediate -w -t 60 restart >/dev/null \
    || { tail -n 30 "$dir/postgres.log" >&2; exit 1; }
  ;;
stop)
  if [ -f "$dir/data/PG_VERSION" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  ;;
*)
  echo "usage: pg.sh start DIR PORT | stop DIR | restart DIR" >&2
  exit 2
  ;;
esac
