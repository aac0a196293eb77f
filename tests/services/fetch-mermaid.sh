#!/usr/bin/env bash
# Fetches Mermaid's browser bundle (dist/mermaid.min.js of the npm package, pinned by version
# and SHA-256) into DIR, for the test that renders `hpcflow graph -o mermaid` with the real
# Mermaid in headless Chromium (tests/e2e/test_mermaid_render.py). Nothing of it is vendored
# into the repository; it is fetched from the npm registry once per state directory.
# Usage: fetch-mermaid.sh DIR   (prints the bundle's path)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
DIR=${1:?usage: fetch-mermaid.sh DIR}
VERSION=11.17.2
SHA256=581ed7d74bd9048d0e3a91363927d72ef22942d7722546b27f7cc29e35390eb8
TARGET="$DIR/mermaid-$VERSION.min.js"
if [ -f "$TARGET" ] && echo "$SHA256  $TARGET" | sha256sum -c --quiet - 2>/dev/null; then
  echo "$TARGET"; exit 0
fi
command -v npm >/dev/null || apt_install npm >&2
mkdir -p "$DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# npm pack checks the tarball against the registry's integrity hash
( cd "$work" && npm pack --silent "mermaid@$VERSION" >/dev/null \
  && tar xzf "mermaid-$VERSION.tgz" package/dist/mermaid.min.js package/LICENSE )
echo "$SHA256  $work/package/dist/mermaid.min.js" | sha256sum -c --quiet - >&2 \
  || { echo "fetch-mermaid.sh: mermaid@$VERSION's bundle is not the one pinned" >&2; exit 1; }
cp "$work/package/LICENSE" "$DIR/mermaid-$VERSION.LICENSE"
mv "$work/package/dist/mermaid.min.js" "$TARGET"
echo "$TARGET"
