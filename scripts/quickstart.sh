#!/usr/bin/env bash
# The main job: on a fresh Debian/Ubuntu machine with Go, installs what is
# missing (ClickHouse from the distribution's packages), starts a local
# ClickHouse server with its data in ./data/clickhouse, builds
# ./bin/sessionmon and runs the whole pipeline on embedded defaults with demo
# traffic. Ctrl-C stops sessionmon; ClickHouse keeps running
# (scripts/clickhouse.sh stop data/clickhouse stops it).
#
#   scripts/quickstart.sh [extra 'sessionmon serve' options]
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "quickstart: Go is not installed (https://go.dev/doc/install)" >&2; exit 1; }

echo "==> ClickHouse"
bash scripts/clickhouse.sh install
bash scripts/clickhouse.sh start "$PWD/data/clickhouse"

echo "==> building bin/sessionmon"
mkdir -p bin
go build -o bin/sessionmon ./cmd/sessionmon

echo "==> sessionmon serve --demo (Ctrl-C to stop)"
exec ./bin/sessionmon serve --demo --data-dir ./data "$@"
