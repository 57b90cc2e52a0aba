#!/bin/sh
# Like the official redis image: `docker run image --port 7000` means redis-server --port 7000;
# redis-server started as root runs as user redis, owning /data. Any other command runs as
# given (e.g. sh -c '... exec redis-server /tmp/auth.conf'), as in the official image.
set -e
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
# Lets Redis create files (RDB, AOF) that only its user can read.
umask 0077
exec "$@"
