#!/usr/bin/env bash
# Installs what palisade's end-to-end tests, demo and benchmarks need on a
# fresh machine, and nothing twice: Debian packages only when missing, and the
# container tools built from the Go module proxy into a cache keyed by version
# ($PALISADE_CACHE, default ~/.cache/palisade), so a second run costs nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${PALISADE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade}
version() { awk -v n="$1" '$1 == n { print $2 }' "$here/harness/tools.txt"; }
containerd_version=$(version containerd)
runc_version=$(version runc)
golangci_version=$(version golangci-lint)
crictl_version=$(version crictl)

log() { echo "setup: $*" >&2; }
# shellcheck source=testing/packages.sh
. "$here/packages.sh"

# Debian packages: libseccomp for runc's and palisade's seccomp support,
# busybox-static for the test image, apparmor for apparmor_parser, which
# checks palisade's generated AppArmor profiles (-Q -K) even where the
# kernel has no AppArmor, containernetworking-plugins for the CRI tests' pod
# network.
install_missing gcc libc6-dev libseccomp-dev busybox-static pkg-config apparmor containernetworking-plugins

# install_go DIR CHECK -- GO-INSTALL-ARGS: build into DIR.tmp, move into place
# only when complete, so an interrupted build is never mistaken for a cache hit.
install_go() {
	local dir=$1 check=$2
	shift 3
	if [ -x "$dir/$check" ]; then
		return
	fi
	log "building $* into $dir"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	GOBIN="$dir.tmp" go install "$@"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

ctd="$cache/tools/containerd-$containerd_version"
install_go "$ctd" containerd-shim-runc-v2 -- \
	"github.com/containerd/containerd/v2/cmd/containerd@$containerd_version" \
	"github.com/containerd/containerd/v2/cmd/ctr@$containerd_version" \
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$containerd_version"

runc="$cache/tools/runc-$runc_version"
install_go "$runc" runc -- -tags seccomp "github.com/opencontainers/runc@$runc_version"
if ! "$runc/runc" --version | grep -q '^libseccomp:'; then
	log "$runc/runc was built without seccomp support; remove $runc and run again"
	exit 1
fi
lint="$cache/tools/golangci-lint-$golangci_version"
install_go "$lint" golangci-lint -- "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$golangci_version"

# crictl drives the CRI end-to-end tests (testing/cri) like a kubelet would.
crictl="$cache/tools/crictl-$crictl_version"
install_go "$crictl" crictl -- "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"

log "ready: containerd $containerd_version, runc $runc_version, golangci-lint $golangci_version, crictl $crictl_version in $cache/tools"
