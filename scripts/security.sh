#!/usr/bin/env bash
# Static security checks: staticcheck and govulncheck over every package.
#
# govulncheck normally reads vuln.go.dev. Where only the Go module proxy is
# reachable (our CI), it reads a local copy of the same database instead,
# built from the golang.org/x/vulndb module (the Go vulnerability database's
# source, OSV files) with that module's own indexer. VULNDB_VERSION pins the
# snapshot: bump it to pick up newer reports. Set VULNDB_ONLINE=1 to use
# vuln.go.dev instead.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
GOVULNCHECK_VERSION="${GOVULNCHECK_VERSION:-v1.9.0}"
VULNDB_VERSION="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"

echo "==> staticcheck $STATICCHECK_VERSION"
go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
# The Go SDK is its own module (sdk/go.mod).
(cd sdk && go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...)

echo "==> govulncheck $GOVULNCHECK_VERSION"
db=()
if [ "${VULNDB_ONLINE:-0}" != 1 ]; then
  dbdir="${VULNDB_DIR:-$(go env GOCACHE)/sessionmon-vulndb-$VULNDB_VERSION}"
  if [ ! -f "$dbdir/index/db.json" ]; then
    src="$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    rm -rf "$dbdir.tmp"
    go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$dbdir.tmp"
    mv "$dbdir.tmp" "$dbdir"
  fi
  echo "    database: golang.org/x/vulndb@$VULNDB_VERSION ($(ls "$dbdir/ID" | wc -l) reports)"
  db=(-db "file://$dbdir")
fi
# Every call path to a known vulnerability must be fixed or explained in
# docs/security/govulncheck-allow.txt (vulnallow fails on anything else).
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" "${db[@]}" -json ./... >"$out"
go run ./internal/vulnallow -allow docs/security/govulncheck-allow.txt <"$out"
(cd sdk && go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" "${db[@]}" -json ./...) >"$out"
go run ./internal/vulnallow -allow docs/security/govulncheck-allow.txt <"$out"
