#!/usr/bin/env bash
# Measures ingest end to end next to this machine's limits, in one run:
#   1. nats bench: JetStream consume rate (the NATS side's ceiling)
#   2. clickhouse-client: a Native-format insert of the same rows (ClickHouse's ceiling)
#   3. sessionmon bench ingest, one event per message (--single-event)
#   4. sessionmon bench ingest with batched messages (the SDK's default)
#   5. sessionmon bench ingest --sequential: the SDK publishing alone, then
#      ingest draining the full stream alone
#   6. sessionmon publish --file of a demo traffic file of about as many
#      events, next to the SDK's rate of step 5
# and prints the numbers and their ratios as a Markdown table. Each
# sessionmon run gets a fresh nats-server. Needs Go; installs the nats CLI,
# nats-server and ClickHouse (Debian packages) when missing.
#
#   scripts/bench-ingest.sh              # 1,000,000 events
#   EVENTS=200000 scripts/bench-ingest.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-1000000}"
GOBIN="$(go env GOPATH)/bin"
work="$(mktemp -d /tmp/sessionmon-bench.XXXXXX)"
export CH_TCP_PORT="${CH_TCP_PORT:-29000}" CH_HTTP_PORT="${CH_HTTP_PORT:-28123}"
nats_port="${NATS_PORT:-24222}"
nats_url="nats://127.0.0.1:${nats_port}"
nats_pid=""
cleanup() {
  stop_nats
  bash scripts/clickhouse.sh stop "$work/ch" >/dev/null 2>&1 || true
  rm -rf "$work"
}
stop_nats() {
  if [ -n "$nats_pid" ]; then
    kill "$nats_pid" 2>/dev/null || true
    wait "$nats_pid" 2>/dev/null || true
    nats_pid=""
  fi
}
# start_nats NAME: a fresh nats-server with JetStream in $work/nats-NAME.
start_nats() {
  stop_nats
  "$GOBIN/nats-server" -js -a 127.0.0.1 -p "$nats_port" -sd "$work/nats-$1" >"$work/nats-$1.log" 2>&1 &
  nats_pid=$!
  for _ in $(seq 50); do "$GOBIN/nats" -s "$nats_url" server check connection >/dev/null 2>&1 && return; sleep 0.2; done
  echo "nats-server did not start: $work/nats-$1.log" >&2
  exit 1
}
trap cleanup EXIT

echo "==> tools" >&2
[ -x "$GOBIN/nats" ] || go install github.com/nats-io/natscli/nats@v0.5.0
[ -x "$GOBIN/nats-server" ] || go install github.com/nats-io/nats-server/v2@v2.15.2
bash scripts/clickhouse.sh install
go build -o "$work/sessionmon" ./cmd/sessionmon

echo "==> servers" >&2
bash scripts/clickhouse.sh start "$work/ch" >/dev/null
dsn="clickhouse://127.0.0.1:${CH_TCP_PORT}"

# bench NAME [flags]: one sessionmon bench ingest run on a fresh nats-server.
bench() {
  local name=$1
  shift
  start_nats "$name"
  echo "==> sessionmon bench ingest $* ($EVENTS events)" >&2
  "$work/sessionmon" bench ingest --events "$EVENTS" --nats-url "$nats_url" --clickhouse-dsn "$dsn" "$@" | tee "$work/$name.txt" >&2
}
bench single --single-event
bench batched
bench sequential --sequential
size=$(awk '/average event size/ {print $4}' "$work/batched.txt")
e2e_single=$(awk '/^end to end/ {print $(NF-1)}' "$work/single.txt")
e2e_batched=$(awk '/^end to end/ {print $(NF-1)}' "$work/batched.txt")
per_msg=$(awk '/events per message/ {print $(NF-3)}' "$work/batched.txt")
sdk_alone=$(awk '/^published/ {print $(NF-5)}' "$work/sequential.txt")
drain=$(awk '/^ingest alone/ {print $(NF-1)}' "$work/sequential.txt")

start_nats limits
echo "==> nats bench: JetStream publish, then consume, $EVENTS messages of ${size} B" >&2
"$GOBIN/nats" -s "$nats_url" bench js pub async natsbench.events --create --msgs "$EVENTS" --size "$size" --stream natsbench --purge --no-progress >"$work/natspub.txt" 2>&1
"$GOBIN/nats" -s "$nats_url" bench js consume --msgs "$EVENTS" --stream natsbench --no-progress >"$work/natsconsume.txt" 2>&1
cat "$work/natsconsume.txt" >&2
consume=$(grep -Eo '[0-9,]+ msgs/sec' "$work/natsconsume.txt" | head -1 | tr -d ', ' | sed 's/msgs\/sec//')

echo "==> nats bench: publish and consume at the same time (what the pipeline does), $EVENTS messages" >&2
"$GOBIN/nats" -s "$nats_url" stream add natsboth --subjects 'natsboth.>' --defaults >/dev/null
"$GOBIN/nats" -s "$nats_url" bench js consume --msgs "$EVENTS" --stream natsboth --no-progress >"$work/natsboth.txt" 2>&1 &
both_pid=$!
sleep 0.5
"$GOBIN/nats" -s "$nats_url" bench js pub async natsboth.events --msgs "$EVENTS" --size "$size" --stream natsboth --no-progress >/dev/null 2>&1
wait "$both_pid"
both=$(grep -Eo '[0-9,]+ msgs/sec' "$work/natsboth.txt" | head -1 | tr -d ', ' | sed 's/msgs\/sec//')

echo "==> clickhouse-client: Native insert of the same $EVENTS rows" >&2
ch() { clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" "$@"; }
cols=$(ch --query "SELECT arrayStringConcat(groupArray(name), ', ') FROM (SELECT name FROM system.columns WHERE database = 'sessionmon_bench' AND table = 'events' ORDER BY position)" 2>/dev/null \
  || ch --query "SELECT arrayStringConcat(groupArray(name), ', ') FROM system.columns WHERE database = 'sessionmon_bench' AND table = 'events'")
ch --query "SELECT ${cols} FROM sessionmon_bench.events FORMAT Native" >"$work/rows.native"
ch --query "CREATE TABLE sessionmon_bench.events_native AS sessionmon_bench.events"
t0=$(date +%s.%N)
ch --query "INSERT INTO sessionmon_bench.events_native (${cols}) FORMAT Native" <"$work/rows.native"
t1=$(date +%s.%N)
native=$(awk -v n="$EVENTS" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')

echo "==> sessionmon publish --file: a file of demo traffic, next to the SDK's own rate" >&2
start_nats publish
# A short bench run declares the events stream on the fresh server.
"$work/sessionmon" bench ingest --events 10000 --nats-url "$nats_url" --clickhouse-dsn "$dsn" >/dev/null
"$work/sessionmon" demo --output "$work/events.ndjson" --demo-users "$(( EVENTS / 25 ))" >/dev/null 2>&1
lines=$(wc -l <"$work/events.ndjson")
t0=$(date +%s.%N)
"$work/sessionmon" publish --file "$work/events.ndjson" --nats-url "$nats_url" | tee "$work/publish.txt" >&2
t1=$(date +%s.%N)
file_rate=$(awk -v n="$lines" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
stop_nats

slower=$(( consume < native ? consume : native ))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "## Ingest benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, ClickHouse $(ch --query 'SELECT version()'), $EVENTS events of ${size} B"
echo
echo "| measure | events/s | ratio to the slower limit |"
echo "| --- | ---: | ---: |"
echo "| nats bench js consume (limit) | $consume | $(ratio "$consume" "$slower") |"
echo "| clickhouse-client Native insert (limit) | $native | $(ratio "$native" "$slower") |"
echo "| nats bench js pub + consume at once (context) | $both | $(ratio "$both" "$slower") |"
echo "| sessionmon end to end, one event per message | $e2e_single | $(ratio "$e2e_single" "$slower") |"
echo "| **sessionmon end to end, batched messages** ($per_msg events per message) | **$e2e_batched** | **$(ratio "$e2e_batched" "$slower")** |"
echo "| SDK publishing alone, batched (stage) | $sdk_alone | $(ratio "$sdk_alone" "$slower") |"
echo "| ingest draining a full stream alone, batched (stage) | $drain | $(ratio "$drain" "$slower") |"
echo
echo "sessionmon publish --file, $lines lines: $file_rate events/s, $(ratio "$file_rate" "$sdk_alone") of the SDK publishing alone ($(cat "$work/publish.txt"))"
