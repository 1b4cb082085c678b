#!/usr/bin/env bash
# Measures the dashboard against the issue's target (10 million events and
# 100k alerts; overview, alert list and subject page under 200 ms at p95):
# seeds the database sessionmon_bench_dashboard server-side, then times
# 50 requests of each page, first the store queries alone, then the real
# dashboard's HTML pages over HTTP (signed in through the sign-in form).
#
#   scripts/bench-dashboard.sh                           # a throw-away ClickHouse on port 29000
#   CLICKHOUSE_DSN=clickhouse://127.0.0.1:19000 scripts/bench-dashboard.sh
#   EVENTS=1000000 ALERTS=10000 scripts/bench-dashboard.sh
#   REUSE=1 CLICKHOUSE_DSN=... scripts/bench-dashboard.sh  # measure again, no new seed
#
# The seeded database is left in place for a look; drop it with
#   clickhouse-client --query "DROP DATABASE sessionmon_bench_dashboard"
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-10000000}"
export SESSIONMON_BENCH_ALERTS="${ALERTS:-$((EVENTS / 100))}"
[ -n "${REUSE:-}" ] && export SESSIONMON_BENCH_REUSE=1
work="$(mktemp -d /tmp/sessionmon-bench-dashboard.XXXXXX)"
started=""
cleanup() {
  [ -n "$started" ] && bash scripts/clickhouse.sh stop "$work/ch" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

dsn="${CLICKHOUSE_DSN:-}"
if [ -z "$dsn" ]; then
  export CH_TCP_PORT="${CH_TCP_PORT:-29000}" CH_HTTP_PORT="${CH_HTTP_PORT:-28123}"
  bash scripts/clickhouse.sh install
  bash scripts/clickhouse.sh start "$work/ch" >/dev/null
  started=1
  dsn="clickhouse://127.0.0.1:${CH_TCP_PORT}"
fi
go build -o "$work/sessionmon" ./cmd/sessionmon

hostport="${dsn#clickhouse://}"; hostport="${hostport%%/*}"; hostport="${hostport%%\?*}"
version=$(clickhouse-client --host "${hostport%:*}" --port "${hostport##*:}" --query 'SELECT version()' 2>/dev/null || echo unknown)
echo "## Dashboard benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ClickHouse $version, $EVENTS events, $SESSIONMON_BENCH_ALERTS alerts"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/sessionmon" bench dashboard --events "$EVENTS" --clickhouse-dsn "$dsn" --log-level warn
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
