#!/usr/bin/env bash
# Runs every test of sessionmon on a fresh Debian/Ubuntu machine with Go:
# installs ClickHouse from the distribution's packages if missing, starts a
# throw-away server for the tests, then runs go vet and the race-enabled
# test suite. .ci/run calls this script.
#
#   scripts/test.sh [go test flags...]     e.g. scripts/test.sh -run TestIngest ./ingest/
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests that skip themselves under -short; test.sh runs them separately.
LONG_TESTS='^(TestIngest100kExactlyOnce|TestClickHouseOutage|TestPublishToAlertLatency|TestServiceClickHouseOutage)$'

export CH_TCP_PORT="${CH_TCP_PORT:-19000}"
export CH_HTTP_PORT="${CH_HTTP_PORT:-18123}"
chdir="$(mktemp -d /tmp/sessionmon-test-ch.XXXXXX)"

bash scripts/clickhouse.sh install
started=0
if bash scripts/clickhouse.sh start "$chdir"; then
  started=1
fi
cleanup() {
  if [ "$started" = 1 ]; then bash scripts/clickhouse.sh stop "$chdir" >/dev/null 2>&1 || true; fi
  rm -rf "$chdir"
}
trap cleanup EXIT
export CLICKHOUSE_TEST_DSN="clickhouse://127.0.0.1:${CH_TCP_PORT}"

echo "==> go vet ./..."
go vet ./...
echo "==> gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
if [ "$#" -gt 0 ]; then
  go test -race -count=1 "$@"
  exit $?
fi
# The long integration tests (100k events, ClickHouse outages, the latency
# measurement) run first, without -short and without the race detector,
# which would make them several times slower without finding more.
echo "==> go test (long integration tests)"
go test -count=1 -timeout 20m -run "$LONG_TESTS" ./...
echo "==> go test -race -short ./... (every other test)"
go test -race -count=1 -short -timeout 20m ./...
