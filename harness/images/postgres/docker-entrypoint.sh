#!/bin/bash
# Entry point with the official postgres image's contract, written for Debian's postgresql-15:
# - root: fix ownership of PGDATA and the socket dir, then re-exec as user postgres (setpriv);
# - empty PGDATA: initdb (superuser POSTGRES_USER, password from a file via --pwfile, never on a
#   command line), scram-sha-256 for every TCP connection, listen on all interfaces, create
#   POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sh|*.sql on a socket-only temporary server;
# - finally exec postgres as the main process, so `docker stop` (SIGINT) shuts it down cleanly.
set -Eeuo pipefail

# file_env VAR [DEFAULT]: VAR or VAR_FILE (Docker secrets), like the official image.
file_env() {
  local var="$1" file_var="${1}_FILE" def="${2:-}" val
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    echo >&2 "error: both $var and $file_var are set (but are exclusive)"; exit 1
  fi
  val="$def"
  if [[ -n "${!var:-}" ]]; then val="${!var}"; elif [[ -n "${!file_var:-}" ]]; then val="$(<"${!file_var}")"; fi
  export "$var"="$val"
  unset "$file_var"
}

as_postgres_if_root() {
  # Re-run this script as postgres once the directories belong to it.
  if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA"
    chown postgres:postgres /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 2777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
}

init_database_dir() {
  if [[ -z "${POSTGRES_PASSWORD:-}" && "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]]; then
    cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
MSG
    exit 1
  fi
  local pwdir
  pwdir="$(mktemp -d)"
  # umask: the password file is readable by postgres only and deleted right after initdb.
  (umask 077; printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwdir/pw")
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list, as in the official image
  initdb --username="$POSTGRES_USER" --pwfile="$pwdir/pw" \
    --auth-local=trust --auth-host="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" \
    --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -rf "$pwdir"
  # initdb's pg_hba.conf covers 127.0.0.1/::1 only; containers on the network connect from
  # elsewhere. Same rule as the official image: any host, password (scram) required.
  printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
}

run_init_scripts() {
  # Temporary server on the socket only: nothing on the network sees a half-initialised DB.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  local psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
  if [[ "$POSTGRES_DB" != postgres ]]; then
    # :"db" quotes the name as an identifier, so any name is safe.
    "${psql[@]}" -q --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "$0: running $f"; if [[ -x "$f" ]]; then "$f"; else . "$f"; fi ;;
      *.sql) echo "$0: running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
}

main() {
  # `docker run image -c foo=bar` means `postgres -c foo=bar`, as with the official image.
  if [[ "${1:-}" == -* ]]; then set -- postgres "$@"; fi
  if [[ "${1:-}" != postgres ]]; then exec "$@"; fi

  as_postgres_if_root "$@"
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    init_database_dir
    run_init_scripts
    echo "PostgreSQL init process complete; ready for start up."
  fi
  # The password stays out of the server's environment (child processes, /proc/*/environ).
  unset POSTGRES_PASSWORD
  exec "$@"
}

main "$@"
