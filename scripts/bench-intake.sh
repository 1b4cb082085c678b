#!/usr/bin/env bash
# Measures the HTTP intake next to the SDK's direct publish to NATS and this
# machine's JetStream publish limit, in one run:
#   1. nats bench js pub async --dedup: JetStream's publish rate for
#      messages of an event's size, each with a message id as every event
#      has (the limit)
#   2. BenchmarkSDKPublish: the Go SDK publishing events straight to
#      JetStream (PublishAsync, then Flush)
#   3. BenchmarkIntake: NDJSON batches of 100 events posted to POST /v1/events
#      (validation, the personal-data guard, publish, wait for the acks),
#      with 1 and 4 clients at once
# and prints events/s with the ratio to the limit. Needs Go; installs the
# nats CLI and nats-server when missing.
#
#   scripts/bench-intake.sh                 # 2 s per benchmark
#   BENCHTIME=5s scripts/bench-intake.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHTIME="${BENCHTIME:-2s}"
EVENTS="${EVENTS:-200000}"
GOBIN="$(go env GOPATH)/bin"
work="$(mktemp -d /tmp/sessionmon-bench-intake.XXXXXX)"
nats_port="${NATS_PORT:-24223}"
nats_url="nats://127.0.0.1:${nats_port}"
nats_pid=""
cleanup() {
  [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> tools" >&2
[ -x "$GOBIN/nats" ] || go install github.com/nats-io/natscli/nats@v0.5.0
[ -x "$GOBIN/nats-server" ] || go install github.com/nats-io/nats-server/v2@v2.15.2

echo "==> go test -bench (intake, SDK direct publish)" >&2
go test -run '^$' -bench 'BenchmarkIntake$|BenchmarkSDKPublish$' -benchtime "$BENCHTIME" -cpu 1,4 ./intake/ | tee "$work/go.txt" >&2
rate() { awk -v name="$1" '$1 == name { for (i = 1; i < NF; i++) if ($(i+1) == "events/s") print $i }' "$work/go.txt" | head -1; }
intake1=$(rate BenchmarkIntake)
intake4=$(rate BenchmarkIntake-4)
sdk1=$(rate BenchmarkSDKPublish)
size=$(awk '$1 == "BenchmarkSDKPublish" { for (i = 1; i < NF; i++) if ($(i+1) == "bytes/event") print $i }' "$work/go.txt" | head -1)
size="$(printf '%.0f' "${size:-400}")"

echo "==> nats bench js pub async: $EVENTS messages of $size B" >&2
"$GOBIN/nats-server" -js -a 127.0.0.1 -p "$nats_port" -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 50); do "$GOBIN/nats" -s "$nats_url" server check connection >/dev/null 2>&1 && break; sleep 0.2; done
"$GOBIN/nats" -s "$nats_url" bench js pub async natsbench.events --create --msgs "$EVENTS" --size "$size" --stream natsbench --purge --dedup --no-progress >"$work/natspub.txt" 2>&1
cat "$work/natspub.txt" >&2
limit=$(grep -Eo '[0-9,]+ msgs/sec' "$work/natspub.txt" | head -1 | tr -d ', ' | sed 's/msgs\/sec//')

ratio() { awk -v a="$1" -v b="$limit" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "## Intake benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, events of ${size} B"
echo
echo "| measure | events/s | ratio to the limit |"
echo "| --- | ---: | ---: |"
echo "| nats bench js pub async --dedup (limit) | $limit | 1.00 |"
echo "| Go SDK, PublishAsync straight to JetStream | $sdk1 | $(ratio "$sdk1") |"
echo "| HTTP intake, 100-event batches, 1 client | $intake1 | $(ratio "$intake1") |"
echo "| HTTP intake, 100-event batches, 4 clients | $intake4 | $(ratio "$intake4") |"
