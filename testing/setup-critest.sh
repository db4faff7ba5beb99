#!/usr/bin/env bash
# Builds critest, the CRI conformance suite of sigs.k8s.io/cri-tools, for
# `make critest` (not needed by `make test`): `go test -c` of its cmd/critest
# at the version in harness/tools.txt, from the Go module proxy, cached by
# version in $PALISADE_CACHE/tools/critest-VERSION like setup.sh's tools.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${PALISADE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade}
version=$(awk '$1 == "critest" { print $2 }' "$here/harness/tools.txt")
dir="$cache/tools/critest-$version"
if [ -x "$dir/critest" ]; then
	exit 0
fi
echo "setup: building critest $version into $dir" >&2
src=$(cd / && GOFLAGS= go mod download -json "sigs.k8s.io/cri-tools@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "setup: cannot download sigs.k8s.io/cri-tools@$version" >&2; exit 1; }
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
(cd "$src" && GOFLAGS= go test -c -o "$dir.tmp/critest" ./cmd/critest)
rm -rf "$dir"
mv "$dir.tmp" "$dir"
