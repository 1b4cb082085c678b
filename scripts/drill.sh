#!/usr/bin/env bash
# Runs the full fault drill (test/drill, build tag drill): kill -9 of
# sessionmon, a NATS restart, a ClickHouse restart, ClickHouse refusing
# inserts, hanging webhooks, a full JetStream and clock skew, one scenario
# at a time, each against the real binary under steady SDK load. Prints the
# results table (published, refused, stored, dead-lettered, alerts expected
# and delivered, outcome) as text and as Markdown for docs/drill.md.
#
#   scripts/drill.sh                      # every scenario
#   scripts/drill.sh -run TestDrillKill9  # extra go test flags
#
# Needs a ClickHouse server: CLICKHOUSE_TEST_DSN (default
# clickhouse://127.0.0.1:19000; `CH_TCP_PORT=19000 CH_HTTP_PORT=18123 bash
# scripts/clickhouse.sh start DIR` starts one) and clickhouse-server and
# clickhouse-client on PATH for the restart and refusal scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."

export CLICKHOUSE_TEST_DSN="${CLICKHOUSE_TEST_DSN:-clickhouse://127.0.0.1:19000}"
results="$(mktemp /tmp/sessionmon-drill.XXXXXX.jsonl)"
trap 'rm -f "$results"' EXIT

rc=0
DRILL_RESULTS="$results" go test -tags drill -count=1 -timeout 30m -v -run '^TestDrill' "$@" ./test/drill/ || rc=$?

echo
echo "Results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')):"
echo
echo "| scenario | published | refused | stored | dead-lettered | alerts expected | alerts delivered | time | outcome | notes |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
jq -r '"| \(.scenario) | \(.published) | \(.refused) | \(.stored) | \(.dead_lettered) | \(.alerts_expected) | \(.alerts_delivered) | \(.duration / 1e9 | floor)s | \(.outcome) | \(.note // "") |"' "$results"
exit "$rc"
