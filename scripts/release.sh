#!/usr/bin/env bash
# Builds release binaries of sessionmon: static (CGO off), reproducible
# (-trimpath, no build ids), for linux/amd64, linux/arm64 and darwin/arm64,
# into dist/, with SHA256SUMS. The version is the git tag on HEAD (or
# `git describe`), the commit HEAD's hash; VERSION and REVISION override.
#
#   scripts/release.sh            # or: make release
#   VERSION=v1.2.3 scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
REVISION="${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
TARGETS="${TARGETS:-linux/amd64 linux/arm64 darwin/arm64}"
out=dist
rm -rf "$out"
mkdir -p "$out"
for target in $TARGETS; do
  os="${target%/*}" arch="${target#*/}"
  bin="$out/sessionmon-${VERSION}-${os}-${arch}"
  echo "==> $bin" >&2
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.revision=${REVISION}" \
    -o "$bin" ./cmd/sessionmon
done
(cd "$out" && sha256sum sessionmon-* >SHA256SUMS)
cat "$out/SHA256SUMS"
