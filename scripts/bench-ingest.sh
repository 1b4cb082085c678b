#!/usr/bin/env bash
# Measures ingest end to end next to this machine's limits, in one run:
#   1. nats bench: JetStream consume rate (the NATS side's ceiling)
#   2. clickhouse-client: a Native-format insert of the same rows (ClickHouse's ceiling)
#   3. sessionmon bench ingest, one event per message (--single-event)
#   4. sessionmon bench ingest with batched messages (the SDK's default),
#      RUNS times (default 3), each right after a measure of step 1, so
#      that a busy or throttled host slows both alike; the table gives the
#      medians, and every pair is printed
#   5. sessionmon bench ingest --sequential: the SDK publishing alone, then
#      ingest draining the full stream alone
#   6. sessionmon publish --file of a demo traffic file of about as many
#      events, next to the SDK's rate of step 5
#   7. with TELEGRAF set, for comparison: Telegraf (inputs.nats_consumer,
#      outputs.sql with the clickhouse driver) moving the events of that
#      file, one event per message, from a full stream into a ClickHouse
#      table, timed from Telegraf's start until the table holds every event;
#      once for each metric_batch_size in TELEGRAF_BATCH_SIZES, keeping the
#      fastest
# and prints the numbers and their ratios as a Markdown table. Each
# sessionmon run gets a fresh nats-server. Needs Go; installs the nats CLI,
# nats-server and ClickHouse (Debian packages) when missing.
#
#   scripts/bench-ingest.sh              # 1,000,000 events
#   EVENTS=200000 scripts/bench-ingest.sh
#   RUNS=5 scripts/bench-ingest.sh
#   TELEGRAF=/usr/bin/telegraf scripts/bench-ingest.sh
#   TELEGRAF=build scripts/bench-ingest.sh
#
# TELEGRAF names a telegraf binary (1.37 or later; it needs the plugins
# inputs.nats_consumer, parsers.json and outputs.sql), or is "build": the
# script then builds Telegraf v1.37.2 with just those plugins into its work
# directory, which takes several minutes. TELEGRAF_BATCH_SIZES defaults to
# "10000 50000".
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-1000000}"
RUNS="${RUNS:-3}"
GOBIN="$(go env GOPATH)/bin"
work="$(mktemp -d /tmp/sessionmon-bench.XXXXXX)"
export CH_TCP_PORT="${CH_TCP_PORT:-29000}" CH_HTTP_PORT="${CH_HTTP_PORT:-28123}"
nats_port="${NATS_PORT:-24222}"
nats_url="nats://127.0.0.1:${nats_port}"
nats_pid=""
telegraf_pid=""
cleanup() {
  if [ -n "$telegraf_pid" ]; then
    kill "$telegraf_pid" 2>/dev/null || true
    wait "$telegraf_pid" 2>/dev/null || true
  fi
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
telegraf="${TELEGRAF:-}"
if [ "$telegraf" = build ]; then
  echo "==> building Telegraf v1.37.2 with inputs.nats_consumer, parsers.json and outputs.sql (takes several minutes)" >&2
  # Outside any module, so that this repository's go.mod stays as it is.
  src=$(cd "$work" && go mod download -json github.com/influxdata/telegraf@v1.37.2 | awk -F'"' '$2 == "Dir" {print $4}')
  (cd "$src" && go build -tags custom,inputs.nats_consumer,outputs.sql,parsers.json,serializers.influx -o "$work/telegraf" ./cmd/telegraf)
  telegraf="$work/telegraf"
fi
if [ -n "$telegraf" ] && ! { [ -f "$telegraf" ] && [ -x "$telegraf" ]; }; then
  echo "TELEGRAF=$telegraf is not an executable file" >&2
  exit 1
fi

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
# median N...: the middle value (the lower one of an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

bench single --single-event
bench sequential --sequential
size=$(awk '/average event size/ {print $4}' "$work/single.txt")
e2e_single=$(awk '/^end to end/ {print $(NF-1)}' "$work/single.txt")
sdk_alone=$(awk '/^published/ {print $(NF-5)}' "$work/sequential.txt")
drain=$(awk '/^ingest alone/ {print $(NF-1)}' "$work/sequential.txt")

consumes=() batched=() pairs=""
for run in $(seq "$RUNS"); do
  start_nats "limits-$run"
  echo "==> nats bench: JetStream publish, then consume, $EVENTS messages of ${size} B (run $run of $RUNS)" >&2
  "$GOBIN/nats" -s "$nats_url" bench js pub async natsbench.events --create --msgs "$EVENTS" --size "$size" --stream natsbench --purge --no-progress >"$work/natspub.txt" 2>&1
  "$GOBIN/nats" -s "$nats_url" bench js consume --msgs "$EVENTS" --stream natsbench --no-progress >"$work/natsconsume.txt" 2>&1
  cat "$work/natsconsume.txt" >&2
  c=$(grep -Eo '[0-9,]+ msgs/sec' "$work/natsconsume.txt" | head -1 | tr -d ', ' | sed 's/msgs\/sec//')
  bench "batched-$run"
  b=$(awk '/^end to end/ {print $(NF-1)}' "$work/batched-$run.txt")
  consumes+=("$c")
  batched+=("$b")
  pairs="${pairs:+$pairs; }run $run: limit $c, end to end $b ($(awk -v a="$b" -v b="$c" 'BEGIN {printf "%.2f", a / b}'))"
done
consume=$(median "${consumes[@]}")
e2e_batched=$(median "${batched[@]}")
per_msg=$(awk '/events per message/ {print $(NF-3)}' "$work/batched-1.txt")

start_nats both
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

if [ -n "$telegraf" ]; then
  echo "==> Telegraf: inputs.nats_consumer -> outputs.sql (clickhouse), the $lines events of the demo file, one a message" >&2
  start_nats telegraf
  "$GOBIN/nats" -s "$nats_url" stream add telegraf --subjects 'sessionmon.events.>' --defaults >/dev/null
  # One event a message. These are plain NATS publishes, which the server
  # may still be storing when the command ends: wait for the count.
  "$GOBIN/nats" -s "$nats_url" pub sessionmon.events.demo --send-on newline --force-stdin --no-templates -q <"$work/events.ndjson" >/dev/null
  for _ in $(seq 60); do
    info=$("$GOBIN/nats" -s "$nats_url" stream info telegraf -j)
    stored=$(grep '"messages"' <<<"$info" | head -n 1 | tr -dc 0-9)
    [ "$stored" = "$lines" ] && break
    sleep 1
  done
  if [ "$stored" != "$lines" ]; then
    echo "the telegraf stream holds $stored messages, not $lines" >&2
    exit 1
  fi
  # The table holds the event's fields as Telegraf's json parser flattens
  # them: client.city becomes client_city, token.claims token_claims_0 to
  # _3. JSON numbers arrive as floats and booleans as UInt8; the String and
  # UInt8 columns are the parser's json_string_fields (it drops other
  # strings and booleans). The event's time becomes the timestamp column.
  # The table is made here because Telegraf cannot make it: its default
  # CREATE TABLE for ClickHouse has no ENGINE clause, which ClickHouse 18.16
  # rejects, orders by the tag columns, of which there are none here, and
  # takes its columns from the first event alone, while events of other
  # types carry other fields.
  tg_columns=(
    "id String" "type String" "app String" "subject String" "session String"
    "previous_session String" "reason String" "schema_version Float64"
    "client_device String" "client_ip_prefix String" "client_ip_hash String"
    "client_asn Float64" "client_country String" "client_city String"
    "client_lat Float64" "client_lon Float64" "client_accuracy_km Float64"
    "client_user_agent String"
    "auth_method String" "auth_mfa UInt8" "auth_last_auth_at String"
    "token_id String" "token_kind String" "token_family String" "token_parent String"
    "token_kid String" "token_alg String" "token_issued_at String" "token_expires_at String"
    "token_claims_0 String" "token_claims_1 String" "token_claims_2 String" "token_claims_3 String"
    "action_name String" "action_sensitive UInt8"
    "cookie_name String" "cookie_same_site String" "cookie_secure UInt8" "cookie_http_only UInt8"
    "policy_idle_timeout_s Float64" "policy_absolute_timeout_s Float64" "policy_reauth_window_s Float64"
    "key_kid String"
  )
  tg_ddl=$(printf ', %s' "${tg_columns[@]}")
  tg_strings=$(printf '%s\n' "${tg_columns[@]}" | awk '$2 != "Float64" {printf "%s\"%s\"", (n++ ? ", " : ""), $1}')
  ch --query "CREATE DATABASE IF NOT EXISTS telegraf_bench"
  telegraf_rate=0
  telegraf_batch=""
  telegraf_runs=""
  for batch in ${TELEGRAF_BATCH_SIZES:-10000 50000}; do
    undelivered=$(( 2 * batch ))
    table="events_$batch"
    ch --query "DROP TABLE IF EXISTS telegraf_bench.$table"
    ch --query "CREATE TABLE telegraf_bench.$table (time DateTime('UTC')$tg_ddl) ENGINE = MergeTree PARTITION BY toYYYYMM(time) ORDER BY (app, subject, time)"
    # Telegraf binds to the durable consumer named like its queue_group
    # when there is one. Made here so that its max_ack_pending, the
    # server's default of 1,000 otherwise, matches max_undelivered_messages:
    # at 1,000, no batch of more than 1,000 events ever fills.
    "$GOBIN/nats" -s "$nats_url" consumer add telegraf "telegraf_$batch" --target "telegraf_$batch.deliver" \
      --deliver-group "telegraf_$batch" --filter 'sessionmon.events.>' --ack explicit --deliver all \
      --replay instant --max-pending "$undelivered" --defaults >/dev/null
    # max_undelivered_messages: two batches, so that one fills while the
    # other is written; metric_buffer_limit above it, so that no event is
    # dropped unwritten. subjects = [] turns off the plugin's default
    # plain subscription; tagexclude drops the tag the plugin adds with the
    # NATS subject, named "subject" like the event's field.
    cat >"$work/telegraf-$batch.conf" <<EOF
[agent]
  interval = "10s"
  flush_interval = "1s"
  flush_jitter = "0s"
  metric_batch_size = $batch
  metric_buffer_limit = $(( 2 * undelivered ))
  omit_hostname = true

[[inputs.nats_consumer]]
  servers = ["$nats_url"]
  subjects = []
  jetstream_subjects = ["sessionmon.events.>"]
  queue_group = "telegraf_$batch"
  max_undelivered_messages = $undelivered
  name_override = "$table"
  tagexclude = ["subject"]
  data_format = "json"
  json_time_key = "time"
  json_time_format = "2006-01-02T15:04:05Z07:00"
  json_string_fields = [$tg_strings]

[[outputs.sql]]
  driver = "clickhouse"
  data_source_name = "clickhouse://127.0.0.1:${CH_TCP_PORT}/telegraf_bench"
  timestamp_column = "time"
  batch_transactions = true
EOF
    echo "==> telegraf, metric_batch_size $batch" >&2
    t0=$(date +%s.%N)
    "$telegraf" --config "$work/telegraf-$batch.conf" >"$work/telegraf-$batch.log" 2>&1 &
    telegraf_pid=$!
    last=0
    still=0
    while rows=$(ch --query "SELECT count() FROM telegraf_bench.$table"); [ "$rows" -lt "$lines" ]; do
      if ! kill -0 "$telegraf_pid" 2>/dev/null; then
        echo "telegraf exited with $rows of $lines rows written: $work/telegraf-$batch.log" >&2
        tail -n 20 "$work/telegraf-$batch.log" >&2
        exit 1
      fi
      if [ "$rows" = "$last" ]; then still=$(( still + 1 )); else still=0 last=$rows; fi
      if [ "$still" -ge 240 ]; then
        echo "telegraf wrote nothing for 2 minutes, $rows of $lines rows: $work/telegraf-$batch.log" >&2
        grep -E ' [EW]! ' "$work/telegraf-$batch.log" | tail -n 20 >&2
        exit 1
      fi
      sleep 0.5
    done
    t1=$(date +%s.%N)
    kill "$telegraf_pid"
    wait "$telegraf_pid" || true
    telegraf_pid=""
    rows=$(ch --query "SELECT count() FROM telegraf_bench.$table")
    if [ "$rows" != "$lines" ]; then
      echo "telegraf, metric_batch_size $batch: $rows rows for $lines events" >&2
    fi
    # Dropped now, which waits for its merges, so that they do not run
    # during the next run.
    ch --query "DROP TABLE telegraf_bench.$table"
    rate=$(awk -v n="$lines" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
    echo "$rate events/s" >&2
    telegraf_runs="${telegraf_runs:+$telegraf_runs, }metric_batch_size $batch: $rate events/s ($rows rows)"
    if [ "$rate" -gt "$telegraf_rate" ]; then
      telegraf_rate=$rate
      telegraf_batch=$batch
    fi
  done
  ch --query "DROP DATABASE telegraf_bench"
  stop_nats
fi

slower=$(( consume < native ? consume : native ))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "## Ingest benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, ClickHouse $(ch --query 'SELECT version()'), $EVENTS events of ${size} B"
echo
echo "| measure | events/s | ratio to the slower limit |"
echo "| --- | ---: | ---: |"
echo "| nats bench js consume (limit, median of $RUNS) | $consume | $(ratio "$consume" "$slower") |"
echo "| clickhouse-client Native insert (limit) | $native | $(ratio "$native" "$slower") |"
echo "| nats bench js pub + consume at once (context) | $both | $(ratio "$both" "$slower") |"
echo "| sessionmon end to end, one event per message | $e2e_single | $(ratio "$e2e_single" "$slower") |"
echo "| **sessionmon end to end, batched messages** (median of $RUNS; $per_msg events per message) | **$e2e_batched** | **$(ratio "$e2e_batched" "$slower")** |"
echo "| SDK publishing alone, batched (stage) | $sdk_alone | $(ratio "$sdk_alone" "$slower") |"
echo "| ingest draining a full stream alone, batched (stage) | $drain | $(ratio "$drain" "$slower") |"
if [ -n "$telegraf" ]; then
  echo "| telegraf nats_consumer -> sql(clickhouse), one event per message (metric_batch_size $telegraf_batch) | $telegraf_rate | $(ratio "$telegraf_rate" "$slower") |"
fi
echo
echo "Each run, the limit and then end to end with batched messages: $pairs."
echo
echo "sessionmon publish --file, $lines lines: $file_rate events/s, $(ratio "$file_rate" "$sdk_alone") of the SDK publishing alone ($(cat "$work/publish.txt"))"
if [ -n "$telegraf" ]; then
  echo
  echo "$("$telegraf" --version) ($telegraf), $lines events from a full stream: ${telegraf_runs}; each with max_undelivered_messages and the consumer's max_ack_pending at twice the batch, metric_buffer_limit at four times, flush_interval 1s, outputs.sql batch_transactions on"
fi
