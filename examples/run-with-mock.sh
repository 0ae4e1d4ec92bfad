#!/bin/sh
# Runs a command against a fresh orbt-mock on a free loopback port, then stops
# the mock. The command gets ORBT_BASE_URL, ORBT_API_KEY, ORBT_CLIENT_ID and
# ORBT_SECRET in its environment. Usage: run-with-mock.sh COMMAND [ARGS...]
# It runs from any directory: orbt-mock is found next to the script
# (../build/orbt-mock), or at $ORBT_MOCK.
set -eu

mock=${ORBT_MOCK:-$(dirname "$0")/../build/orbt-mock}
workdir=$(mktemp -d)
mock_pid=""

stop_mock() {
    if [ -n "$mock_pid" ] && kill -0 "$mock_pid" 2>/dev/null; then
        kill -TERM "$mock_pid"
        wait "$mock_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap stop_mock EXIT INT TERM

# Demo credentials: the mock accepts exactly these.
export ORBT_API_KEY="demo-api-key"
export ORBT_CLIENT_ID="3f1c2a9e-8b7d-4e6f-9a01-23456789abcd"
export ORBT_SECRET="demo-secret-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

ORBT_MOCK_SECRET="$ORBT_SECRET" "$mock" --port 0 --lifetime 600 \
    --api-key "$ORBT_API_KEY" --client-id "$ORBT_CLIENT_ID" --balance 1000.00 \
    >"$workdir/out" 2>"$workdir/log" &
mock_pid=$!

# The mock's first line names its port.
tries=0
until grep -q '^listening on ' "$workdir/out" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ] || ! kill -0 "$mock_pid" 2>/dev/null; then
        echo "orbt-mock did not start:" >&2
        cat "$workdir/log" >&2
        exit 1
    fi
    sleep 0.05
done
ORBT_BASE_URL=$(sed -n 's/^listening on //p' "$workdir/out" | head -n 1)
export ORBT_BASE_URL
echo "orbt-mock listening on $ORBT_BASE_URL"

status=0
"$@" || status=$?
exit "$status"
