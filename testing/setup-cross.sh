#!/usr/bin/env bash
# Installs what `make release` and `make test-arm64` need on a fresh Debian 12
# machine, and nothing twice:
#   - the arm64 cross toolchain and libseccomp for both architectures (static
#     libraries: releases link libseccomp in), from Debian, after adding the
#     arm64 architecture to dpkg;
#   - with --qemu, qemu-aarch64 to run arm64 programs. Debian 12's
#     qemu-user-static is 7.2, which does not implement openat2 (syscall 437),
#     so palisade's admin-config loading fails under it with ENOSYS although a
#     real arm64 kernel has it; the qemu-user of bookworm-backports (a static
#     binary) does. It is fetched with apt-get download through a private
#     list of bookworm-backports (the system's sources stay as they are) and
#     cached by version in $PALISADE_CACHE/tools/qemu-VERSION.
# Prints nothing on stdout but, with --qemu, the emulator's path.
set -euo pipefail

cache=${PALISADE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade}
log() { echo "setup-cross: $*" >&2; }
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq "$@"; }
# shellcheck source=testing/packages.sh
. "$(cd "$(dirname "$0")" && pwd)/packages.sh"

updated=
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	log "adding the arm64 architecture to dpkg"
	dpkg --add-architecture arm64
	apt_get update
	updated=1
fi
install_missing ${updated:+--no-update} gcc libc6-dev libseccomp-dev crossbuild-essential-arm64 libseccomp-dev:arm64 libc6:arm64

[ "${1:-}" = "--qemu" ] || exit 0

# The newest cached qemu that runs, if any.
for q in $(ls -d "$cache"/tools/qemu-*/ 2>/dev/null | sort -rV); do
	if "$q/qemu-aarch64" --version >/dev/null 2>&1; then
		echo "$q/qemu-aarch64"
		exit 0
	fi
done
apt_dir="$cache/apt-backports"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
echo "deb http://deb.debian.org/debian bookworm-backports main" >"$apt_dir/sources.list"
opts=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir" -o APT::Architectures::=amd64)
log "fetching qemu-user from bookworm-backports"
apt_get "${opts[@]}" update
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt_get "${opts[@]}" download qemu-user 2>/dev/null)
deb=$(ls "$tmp"/qemu-user_*.deb)
version=$(dpkg-deb -f "$deb" Version | tr ':~+' '___')
dir="$cache/tools/qemu-$version"
mkdir -p "$tmp/x"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" ./usr/bin/qemu-aarch64
rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
mv "$tmp/x/usr/bin/qemu-aarch64" "$dir.tmp/"
"$dir.tmp/qemu-aarch64" --version | head -1 >&2
rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "$dir/qemu-aarch64"
