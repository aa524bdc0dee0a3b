#!/usr/bin/env bash
# The outside services that some tests use: a throwaway PostgreSQL cluster, headless
# Chromium, and Prometheus with promtool. Installs them from Debian's packages where it can (as root with apt-get) and prints
# the exports for the tests; where it cannot, it says which tests will be skipped and why.
# Usage: eval "$(bash .ci/services.sh)"
# LABELWISE_REQUIRE_SERVICES=1 (set by .ci/run) turns a missing service into a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

missing() {
    echo "warning: $1: the tests that need it will be skipped" >&2
    if [ "${LABELWISE_REQUIRE_SERVICES:-0}" = 1 ]; then exit 1; fi
}

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

if postgres=$(bash .ci/postgres.sh); then
    echo "$postgres"
else
    missing "no PostgreSQL (install Debian's postgresql package, or set LABELWISE_TEST_POSTGRES_URL)"
fi

if ! command -v chromium >/dev/null && can_install; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1
fi
command -v chromium >/dev/null || missing "no chromium on PATH (install Debian's chromium package)"

if ! command -v promtool >/dev/null && can_install; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
        >/dev/null 2>&1
fi
command -v promtool >/dev/null || missing "no prometheus/promtool on PATH (install Debian's prometheus package)"
exit 0
