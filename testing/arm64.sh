#!/usr/bin/env bash
# make test-arm64: palisade as arm64 code, on this amd64 machine, under
# qemu-user (testing/setup-cross.sh installs the cross toolchain and qemu).
#  1. every package's unit tests, cross-compiled for arm64 (cgo and
#     libseccomp included) and run under qemu through go test -exec;
#     testing/e2e and testing/cri are left out: they drive a containerd and
#     runc of this host's architecture, so under qemu they would test amd64
#     containers.
#  2. the arm64 binaries of the release tarball (make release) run the CLI's
#     main commands, and their output is checked for arm64 facts.
set -euo pipefail
cd "$(dirname "$0")/.."
qemu=$(bash testing/setup-cross.sh --qemu)
# on PATH too: a test that runs a child of its own binary runs it through
# the emulator (the kernel here has no binfmt entry for arm64)
PATH="$(dirname "$qemu"):$PATH"
export PATH
log() { echo "test-arm64: $*" >&2; }
fail() { echo "test-arm64: FAIL: $*" >&2; exit 1; }

log "unit tests as arm64 code under $("$qemu" --version | head -1)"
pkgs=$(go list ./... | grep -Ev '/testing/(e2e|cri)$')
# -timeout bounds each package's test binary: a hang fails that package with
# a goroutine dump instead of stalling CI.
CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc GOARCH=arm64 \
	go test -count=1 -timeout 5m -exec "$qemu" $pkgs

version=$(cat VERSION)
tarball=dist/palisade-$version-linux-arm64.tar.gz
[ -f "$tarball" ] || fail "$tarball is missing: run make release first"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp"
bin=$tmp/palisade-$version-linux-arm64/bin
commit=$(git rev-parse HEAD)
run() { "$qemu" "$bin/$1" "${@:2}"; }
expect() { # expect WHAT PATTERN OUTPUT
	grep -Eq -- "$2" <<<"$3" || fail "$1: output lacks /$2/:
$3"
	log "ok: $1"
}
printf 'profiles_dir = ""\nsecrets.store = "/etc/palisade/secrets"\n' >"$tmp/config.toml"

expect "palisade version" "^palisade $version \(commit [0-9a-f]{40}\)$" "$(run palisade version)"
expect "palisade-init version" "^palisade-init $version \(commit [0-9a-f]{40}\)$" "$(run palisade-init version)"
expect "shim -v" "$version" "$(run containerd-shim-palisade-v2 -v)"
expect "profile lint (built-in profiles)" "exit 0$" "$(run palisade profile lint profiles/*.toml >/dev/null 2>&1; echo "exit $?")"
render=$(run palisade render --config "$tmp/config.toml" --profile restricted libshim/cli/testdata/ctr-default-spec.json)
# Rendered on arm64, the filter admits the native ABI only (AArch32 calls are killed).
expect "render (an arm64 filter)" '"architectures":\["SCMP_ARCH_AARCH64"\]' "$(tr -d ' \n' <<<"$render")"
check=$(run palisade seccomp check --arch arm64 open read io_uring_setup)
expect "seccomp check --arch arm64" 'arm64 +native +open +- +absent' "$check"
expect "seccomp check, compat ABI" 'arm64 +arm +read +- +kill-thread' "$check"
expect "seccomp check read" 'arm64 +native +read +- +allow' "$(run palisade seccomp check --arch arm64 read)"
expect "explain" 'restricted' "$(run palisade explain --config "$tmp/config.toml" restricted)"
[ "$commit" = "$(run palisade version -o json | sed -n 's/.*"commit": *"\([0-9a-f]*\)".*/\1/p')" ] ||
	log "note: the tarball was built from another commit than HEAD ($commit)"
log "passed"
