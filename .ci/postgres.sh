#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages if needed, starts a throwaway cluster on a loopback
# port, and prints the SQLAlchemy URL of an empty database for the tests.
# Usage: eval "$(bash .ci/postgres.sh)"   (exports LABELWISE_TEST_POSTGRES_URL)
set -euo pipefail
PORT=${LABELWISE_TEST_POSTGRES_PORT:-54329}
DATA=${LABELWISE_TEST_POSTGRES_DIR:-/tmp/labelwise-pg}

if [ -n "${LABELWISE_TEST_POSTGRES_URL:-}" ]; then  # a server of the user's own
    echo "export LABELWISE_TEST_POSTGRES_URL=$LABELWISE_TEST_POSTGRES_URL"
    exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || exit 1
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2
fi
BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); fi

if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres "$DATA"
    "${RUN_AS[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust >/dev/null
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
        -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on" start >&2
fi
"${RUN_AS[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'labelwise_test'" | grep -q 1 \
    || "${RUN_AS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres labelwise_test
echo "export LABELWISE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/labelwise_test"
