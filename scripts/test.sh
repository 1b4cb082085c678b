#!/usr/bin/env bash
# Runs every test of sessionmon on a fresh Debian/Ubuntu machine with Go:
# installs ClickHouse (and chromium, for the dashboard's browser test) from
# the distribution's packages if missing, starts a throw-away ClickHouse
# server for the tests, then runs go vet, gofmt, scripts/security.sh
# (staticcheck, govulncheck), the long integration tests, the race-enabled
# test suite, the cluster test (scripts/cluster-test.sh) and every fuzz
# target for FUZZTIME. .ci/run calls this script.
#
#   scripts/test.sh [go test flags...]     e.g. scripts/test.sh -run TestIngest ./ingest/
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests that skip themselves under -short; test.sh runs them separately.
LONG_TESTS='^(TestIngest100kExactlyOnce|TestClickHouseOutage|TestPublishToAlertLatency|TestServiceClickHouseOutage|TestScaleOut|TestDetectRestartKeepsStateOfDaysAgo|TestBrowserTriage|TestDrillKill9|TestDrillWebhookHang|TestDrillClockSkew)$'

export CH_TCP_PORT="${CH_TCP_PORT:-19000}"
export CH_HTTP_PORT="${CH_HTTP_PORT:-18123}"
chdir="$(mktemp -d /tmp/sessionmon-test-ch.XXXXXX)"

bash scripts/clickhouse.sh install
# The dashboard's browser test drives Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing chromium (dashboard browser test)"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { $sudo_ apt-get update -q >/dev/null && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
# The JavaScript and Python SDKs' tests need Node.js (20+, with npm) and
# Python 3 (3.9+, standard library only).
pkgs=()
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
if [ "${#pkgs[@]}" -gt 0 ]; then
  echo "==> installing ${pkgs[*]} (SDK tests)"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null \
    || { $sudo_ apt-get update -q >/dev/null && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null; }
fi
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

echo "==> go vet ./... (and the Go SDK, its own module)"
go vet ./...
(cd sdk && go vet ./...)
echo "==> gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
if [ "$#" -gt 0 ]; then
  go test -race -count=1 "$@"
  exit $?
fi
bash scripts/security.sh
# The SDKs first: each is tested against the shared vectors
# (schemas/testdata/vectors.json); their end-to-end tests against a real
# intake run from TestSDKsThroughTheIntake below.
echo "==> Go SDK module: go test -race ./..."
(cd sdk && go test -race -count=1 ./...)
echo "==> JavaScript SDK: node --test"
(cd sdk/js && npm ci --no-audit --no-fund --loglevel=error && node --test test/)
echo "==> Python SDK: python3 -m unittest"
python3 -m unittest discover -s sdk/python/tests -t sdk/python
# The long integration tests (100k events, ClickHouse outages, the latency
# measurement) run first, without -short and without the race detector,
# which would make them several times slower without finding more.
echo "==> go test (long integration tests)"
# One package at a time (-p 1): the latency test reports its figures
# (it asserts no bound on them), and they should not be those of cores
# shared with the drill's processes.
go test -count=1 -p 1 -timeout 20m -run "$LONG_TESTS" ./...
echo "==> go test -race -short ./... (every other test)"
# One package at a time here too: the pipeline tests (serve with demo
# traffic) starve on two cores shared with eight race-instrumented packages.
go test -race -count=1 -short -p 1 -timeout 20m ./...

# Scale-out on real clusters: three NATS nodes, ZooKeeper and four
# ClickHouse servers (two shards of two replicas), with a NATS node, a
# ClickHouse replica and a detect process killed under load
# (scripts/cluster-test.sh, here with 45 s of traffic; CLUSTER_TEST=0 skips
# it).
if [ "${CLUSTER_TEST:-1}" != 0 ]; then
  echo "==> cluster test (scripts/cluster-test.sh)"
  CLUSTER_SECONDS="${CLUSTER_SECONDS:-45}" bash scripts/cluster-test.sh
fi

# Every fuzz target at the trust boundaries, each for a bounded time
# (FUZZTIME=0 skips them). A crash writes its input to the package's
# testdata/fuzz/<target>/, which makes it a regression test from then on.
#
# Go 1.26's fuzzing coordinator can end a run that found nothing with a bare
# "context deadline exceeded" at the -fuzztime boundary on a busy machine
# (golang/go#75804, fixed in Go 1.27). fuzz_one fails on a written crasher
# or any other failure; that one message with no new crasher is run again,
# once.
# fuzz_run runs one target, in the Go SDK's own module when it is there.
fuzz_run() {
  local pkg="$1" target="$2"
  case "$pkg" in
    ./sdk | ./sdk/*) (cd sdk && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" ".${pkg#./sdk}") ;;
    *) go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" ;;
  esac
}
fuzz_one() {
  local pkg="$1" target="$2" corpus="$1/testdata/fuzz/$2" before after out attempt
  for attempt in 1 2; do
    before="$(ls "$corpus" 2>/dev/null | sort || true)"
    if out="$(fuzz_run "$pkg" "$target" 2>&1)"; then
      echo "$out"; return 0
    fi
    echo "$out"
    after="$(ls "$corpus" 2>/dev/null | sort || true)"
    if [ "$attempt" = 1 ] && [ "$before" = "$after" ] &&
      [ "$(echo "$out" | grep -c -- '--- FAIL')" = 1 ] && echo "$out" | grep -q '^    context deadline exceeded$'; then
      echo "==> fuzz $pkg $target: Go's fuzzing coordinator stopped at the deadline without a crasher (golang/go#75804); running it again"
      continue
    fi
    return 1
  done
}
FUZZTIME="${FUZZTIME:-10s}"
if [ "$FUZZTIME" != 0 ]; then
  grep -rl --include='*_test.go' --exclude-dir=node_modules '^func Fuzz' . | sort | while read -r file; do
    pkg="./$(dirname "${file#./}")"
    for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
      echo "==> fuzz $pkg $target ($FUZZTIME)"
      fuzz_one "$pkg" "$target"
    done
  done
fi
