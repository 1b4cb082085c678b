#!/usr/bin/env bash
# Soak run: `sessionmon serve` (embedded NATS, ingest, detect) fed by
# `sessionmon demo` at a steady SOAK_RATE for SOAK_DURATION, sampled every
# SOAK_INTERVAL: RSS of serve, ingest consumer lag, error counters, events
# ingested. At the end it checks that memory is flat (the last third's
# average RSS within SOAK_RSS_TOLERANCE % of the middle third's), that lag
# stays bounded (never above SOAK_MAX_LAG_S seconds of traffic in the last
# two thirds, and drained at the end), that no error counter grows after
# the first third, and that every event is stored once. It writes the
# table and verdict to SOAK_OUT (default docs/soak.md) and exits non-zero
# when a check fails.
#
#   scripts/soak.sh                                    # 30m at 20000 events/s
#   SOAK_DURATION=4m SOAK_RATE=5000 SOAK_OUT=/tmp/soak.md scripts/soak.sh
#
# With SOAK_PPROF_DIR set, serve runs with --pprof-addr and a heap profile
# is saved there at every sample (heap-<t>.pb.gz), with the Go runtime's
# memory figures (go_memstats_*) beside RSS, to tell a leak from warm-up:
#   go tool pprof -top -sample_index=inuse_space -diff_base DIR/heap-60.pb.gz DIR/heap-240.pb.gz
#
# The default rate is half of the end-to-end capacity measured on the
# 2-core reference machine (docs/performance.md: ~40k events/s). Needs a
# ClickHouse server at SOAK_CLICKHOUSE (default 127.0.0.1:19000); the run
# uses its own database, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_DURATION="${SOAK_DURATION:-30m}"
SOAK_RATE="${SOAK_RATE:-20000}"
SOAK_INTERVAL="${SOAK_INTERVAL:-30}"
SOAK_RSS_TOLERANCE="${SOAK_RSS_TOLERANCE:-15}"
SOAK_MAX_LAG_S="${SOAK_MAX_LAG_S:-10}"
SOAK_CLICKHOUSE="${SOAK_CLICKHOUSE:-127.0.0.1:19000}"
SOAK_OUT="${SOAK_OUT:-docs/soak.md}"
SOAK_PPROF_DIR="${SOAK_PPROF_DIR:-}"

ch_host="${SOAK_CLICKHOUSE%:*}"
ch_port="${SOAK_CLICKHOUSE##*:}"
db="sessionmon_soak_$$"
work="$(mktemp -d /tmp/sessionmon-soak.XXXXXX)"
serve_pid="" demo_pid=""
cleanup() {
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null || true
  if [ -n "$serve_pid" ]; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  clickhouse-client --host "$ch_host" --port "$ch_port" --query "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
seconds() { # 30m, 2h, 90s, 45 -> seconds
  case "$1" in
    *h) echo $(( ${1%h} * 3600 )) ;; *m) echo $(( ${1%m} * 60 )) ;; *s) echo "${1%s}" ;; *) echo "$1" ;;
  esac
}
# metric NAME: the sum of a metric family's samples on serve's /metrics.
metric() {
  awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f", s }' "$work/metrics"
}

duration_s="$(seconds "$SOAK_DURATION")"
nats_port="$(free_port)"
http_port="$(free_port)"
dashboard_port="$(free_port)"
pprof_args=()
if [ -n "$SOAK_PPROF_DIR" ]; then
  mkdir -p "$SOAK_PPROF_DIR"
  pprof_port="$(free_port)"
  pprof_args=(--pprof-addr "127.0.0.1:$pprof_port")
fi
echo "==> build" >&2
go build -o "$work/sessionmon" ./cmd/sessionmon

echo "==> sessionmon serve (NATS 127.0.0.1:$nats_port, metrics 127.0.0.1:$http_port, dashboard 127.0.0.1:$dashboard_port, database $db)" >&2
"$work/sessionmon" serve --data-dir "$work/data" --nats-listen "127.0.0.1:$nats_port" \
  --metrics-addr "127.0.0.1:$http_port" --dashboard-addr "127.0.0.1:$dashboard_port" --clickhouse-dsn "clickhouse://$ch_host:$ch_port/$db" \
  --log-format json --log-level warn "${pprof_args[@]}" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; echo "soak: serve exited" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null || { echo "soak: serve not ready after 60 s" >&2; exit 1; }

echo "==> demo traffic: $SOAK_RATE events/s for $SOAK_DURATION" >&2
"$work/sessionmon" demo --nats-url "nats://127.0.0.1:$nats_port" --nats-creds "$work/data/nats/admin.creds" --demo-rate "$SOAK_RATE" \
  --demo-duration "$SOAK_DURATION" --demo-users 20000 >"$work/demo.log" 2>&1 &
demo_pid=$!

samples="$work/samples.tsv" # t_s rss_mib lag errors ingested heap_inuse_mib go_sys_mib heap_released_mib
start=$(date +%s)
next=$start
while :; do
  next=$(( next + SOAK_INTERVAL ))
  while [ "$(date +%s)" -lt "$next" ]; do sleep 1; done
  kill -0 "$serve_pid" 2>/dev/null || { tail -50 "$work/serve.log" >&2; echo "soak: serve died" >&2; exit 1; }
  curl -fsS "http://127.0.0.1:$http_port/metrics" >"$work/metrics" || : >"$work/metrics"
  rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$serve_pid/status")
  lag=$(metric sessionmon_ingest_consumer_pending)
  errors=$(( $(metric sessionmon_ingest_insert_errors_total) + $(metric sessionmon_ingest_rejected_total) \
    + $(metric sessionmon_detect_alert_publish_errors_total) + $(metric sessionmon_detect_store_errors_total) \
    + $(metric sessionmon_detect_invalid_events_total) ))
  ingested=$(metric sessionmon_ingest_events_total)
  heap=$(( $(metric go_memstats_heap_inuse_bytes) / 1048576 ))
  t=$(( $(date +%s) - start ))
  # Memory the Go runtime holds (heap, stacks, runtime; the embedded
  # nats-server's caches included), and what it gave back to the OS.
  gosys=$(( $(metric go_memstats_sys_bytes) / 1048576 ))
  released=$(( $(metric go_memstats_heap_released_bytes) / 1048576 ))
  printf '%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n' "$t" $(( rss_kib / 1024 )) "$lag" "$errors" "$ingested" "$heap" "$gosys" "$released" | tee -a "$samples" >&2
  if [ -n "$SOAK_PPROF_DIR" ]; then
    curl -fsS -o "$SOAK_PPROF_DIR/heap-$t.pb.gz" "http://127.0.0.1:$pprof_port/debug/pprof/heap" || true
  fi
  kill -0 "$demo_pid" 2>/dev/null || break
  [ "$t" -ge $(( duration_s + 60 )) ] && break
done
demo_rc=0
wait "$demo_pid" || demo_rc=$?
demo_pid=""
published=$(grep -o 'done: [0-9]* events accepted, [0-9]* stored' "$work/demo.log" | awk '{print $5}')
published="${published:-0}"

# Lag drains once the traffic stops.
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$http_port/metrics" >"$work/metrics" || : >"$work/metrics"
  [ "$(metric sessionmon_ingest_consumer_pending)" -eq 0 ] && [ "$(metric sessionmon_ingest_consumer_ack_pending)" -eq 0 ] && break
  sleep 1
done
final_lag=$(metric sessionmon_ingest_consumer_pending)
stored=0
for _ in $(seq 1 60); do
  stored=$(clickhouse-client --host "$ch_host" --port "$ch_port" --query "SELECT count() FROM $db.events FINAL")
  [ "$stored" -ge "$published" ] && break
  sleep 2
done

verdict="$(awk -F'\t' -v tol="$SOAK_RSS_TOLERANCE" -v maxlag=$(( SOAK_MAX_LAG_S * SOAK_RATE )) \
  -v final_lag="$final_lag" -v published="$published" -v stored="$stored" -v demo_rc="$demo_rc" '
  { t[NR]=$1; rss[NR]=$2; lag[NR]=$3; err[NR]=$4 }
  END {
    n=NR; a=int(n/3); b=int(2*n/3)
    if (n < 6) { print "FAIL: only " n " samples (run at least 6 intervals)"; exit }
    for (i=a+1; i<=b; i++) { mid += rss[i] }; mid /= (b-a)
    for (i=b+1; i<=n; i++) { last += rss[i] }; last /= (n-b)
    for (i=a+1; i<=n; i++) if (lag[i] > peak) peak = lag[i]
    growth = err[n] - err[a+1 > n ? n : a+1]
    drift = (last - mid) * 100 / mid
    ok = 1; why = ""
    if (drift > tol || drift < -tol) { ok=0; why = why sprintf(" memory drifted %.1f%%;", drift) }
    if (peak > maxlag) { ok=0; why = why sprintf(" lag peaked at %d events (> %d);", peak, maxlag) }
    if (final_lag > 0) { ok=0; why = why sprintf(" lag %d not drained;", final_lag) }
    if (growth > 0) { ok=0; why = why sprintf(" error counters grew by %d;", growth) }
    if (stored != published) { ok=0; why = why sprintf(" stored %d of %d published;", stored, published) }
    if (demo_rc != 0) { ok=0; why = why " the demo publisher failed;" }
    printf "%s|%.0f|%.0f|%.1f|%d|%d|%s\n", ok ? "pass" : "FAIL", mid, last, drift, peak, growth, why
  }' "$samples")"
IFS='|' read -r outcome mid_rss last_rss drift peak_lag err_growth why <<<"$verdict"

{
  echo "# Soak run"
  echo
  echo "Generated by \`scripts/soak.sh\` on $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "\`sessionmon serve\` (embedded NATS, ingest, detect) fed by \`sessionmon demo\` at $SOAK_RATE events/s for $SOAK_DURATION, sampled every ${SOAK_INTERVAL}s."
  echo
  echo "| check | result |"
  echo "| --- | --- |"
  echo "| events published (acknowledged) / stored once (FINAL) | $published / $stored |"
  echo "| RSS, middle third → last third (MiB) | $mid_rss → $last_rss ($drift %, tolerance ±$SOAK_RSS_TOLERANCE %) |"
  echo "| peak ingest lag after the first third (events) | $peak_lag (bound $(( SOAK_MAX_LAG_S * SOAK_RATE )): ${SOAK_MAX_LAG_S}s of traffic); $final_lag at the end |"
  echo "| error counters' growth after the first third | $err_growth |"
  echo "| outcome | **$outcome**${why:+:$why} |"
  echo
  echo "| t (s) | RSS (MiB) | Go heap in use (MiB) | Go runtime from OS (MiB) | of it released (MiB) | ingest lag (events) | errors (cumulative) | events ingested |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  awk -F'\t' '{ printf "| %d | %d | %d | %d | %d | %d | %d | %d |\n", $1, $2, $6, $7, $8, $3, $4, $5 }' "$samples"
} >"$SOAK_OUT"
echo "soak: $outcome$why (table in $SOAK_OUT)" >&2
[ "$outcome" = pass ]
