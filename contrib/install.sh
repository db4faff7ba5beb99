#!/usr/bin/env bash
# Install a palisade release on a containerd node, check that containerd picks
# the runtime up, or remove it again. Run as root. docs/release.md has details.
#
#   install.sh [OPTIONS] palisade-VERSION-linux-ARCH.tar.gz   install, restart containerd, check
#   install.sh [OPTIONS] --check                              check an installation only
#   install.sh [OPTIONS] --uninstall                          remove binaries and drop-in, restart containerd
#
# Options (defaults are a standard node's):
#   --prefix DIR             binaries go to DIR/bin                 (/usr/local)
#   --config-dir DIR         palisade's admin config directory     (/etc/palisade)
#   --containerd-config F    containerd's main config              (/etc/containerd/config.toml)
#   --dropin-dir DIR         containerd's imported drop-ins         (/etc/containerd/conf.d)
#   --address SOCK           containerd's socket, for the checks    (/run/containerd/containerd.sock)
#   --image REF              also start a test container from REF (already pulled) under palisade
#   --namespace NS           containerd namespace of --image        (default)
#   --no-restart             do not restart containerd (do it yourself before --check)
#   --purge                  with --uninstall, also remove the admin config
#
# The tarball is verified against SHA256SUMS when that file lies beside it.
# An existing admin config is never overwritten.
set -euo pipefail

prefix=/usr/local
config_dir=/etc/palisade
containerd_config=/etc/containerd/config.toml
dropin_dir=/etc/containerd/conf.d
address=/run/containerd/containerd.sock
image=
namespace=default
restart=1
purge=
mode=install
tarball=

log() { echo "palisade install: $*" >&2; }
die() {
	echo "palisade install: error: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--prefix) prefix=$2; shift ;;
	--config-dir) config_dir=$2; shift ;;
	--containerd-config) containerd_config=$2; shift ;;
	--dropin-dir) dropin_dir=$2; shift ;;
	--address) address=$2; shift ;;
	--image) image=$2; shift ;;
	--namespace) namespace=$2; shift ;;
	--no-restart) restart= ;;
	--purge) purge=1 ;;
	--check) mode=check ;;
	--uninstall) mode=uninstall ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) [ -z "$tarball" ] || die "one tarball only"; tarball=$1 ;;
	esac
	shift
done

binaries=(containerd-shim-palisade-v2 palisade palisade-init)
dropin=$dropin_dir/palisade.toml

restart_containerd() {
	[ -n "$restart" ] || { log "not restarting containerd (--no-restart): restart it, then run --check"; return; }
	command -v systemctl >/dev/null || die "no systemctl: restart containerd yourself, then run $0 --check"
	log "restarting containerd"
	systemctl restart containerd
}

# containerd reads drop-ins only from the directories its main config imports.
check_imports() {
	[ -f "$containerd_config" ] || return 0
	if ! grep -Eq "^[[:space:]]*imports[[:space:]]*=.*${dropin_dir}" "$containerd_config"; then
		log "warning: $containerd_config does not import $dropin_dir/*.toml; add"
		log "  imports = [\"$dropin_dir/*.toml\"]"
		log "at its top (containerd's built-in default does this only when there is no config.toml)"
	fi
}

install_release() {
	[ -n "$tarball" ] || die "which release? give palisade-VERSION-linux-ARCH.tar.gz (see --help)"
	[ -f "$tarball" ] || die "$tarball: no such file"
	local name arch machine sums
	name=$(basename "$tarball" .tar.gz)
	arch=${name##*-linux-}
	machine=$(uname -m)
	case "$arch:$machine" in
	amd64:x86_64 | arm64:aarch64) ;;
	*) die "$name is for $arch, this node is $machine: take the matching tarball" ;;
	esac
	sums=$(dirname "$tarball")/SHA256SUMS
	if [ -f "$sums" ]; then
		(cd "$(dirname "$tarball")" && grep " $(basename "$tarball")\$" SHA256SUMS | sha256sum -c --quiet -) ||
			die "$tarball does not match $sums: download it again"
		log "verified $(basename "$tarball") against SHA256SUMS"
	else
		log "warning: no SHA256SUMS beside $tarball: the tarball is not verified"
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	tar -xzf "$tarball" -C "$tmp" --no-same-owner
	local root=$tmp/$name
	[ -d "$root/bin" ] || die "$tarball holds no $name/bin: not a palisade release"
	"$root/bin/palisade" version >/dev/null 2>&1 || die "$root/bin/palisade does not run on this node"

	install -d -m 0755 "$prefix/bin"
	for b in "${binaries[@]}"; do
		install -m 0755 "$root/bin/$b" "$prefix/bin/$b.new"
		mv -f "$prefix/bin/$b.new" "$prefix/bin/$b"
	done
	log "installed ${binaries[*]} into $prefix/bin"

	install -d -m 0755 "$config_dir"
	if [ -e "$config_dir/config.toml" ]; then
		log "kept the existing $config_dir/config.toml"
	else
		install -m 0644 "$root/contrib/config.toml" "$config_dir/config.toml"
		log "installed the admin config $config_dir/config.toml (docs/config.md)"
	fi

	install -d -m 0755 "$dropin_dir"
	# The drop-in names this admin config, and the shim's path when the prefix
	# is not one containerd searches.
	sed -e "s|ConfigPath = '/etc/palisade/config.toml'|ConfigPath = '$config_dir/config.toml'|" \
		"$root/contrib/containerd/palisade-runtime.toml" >"$tmp/palisade.toml"
	case $prefix in
	/usr | /usr/local) ;;
	*) sed -i "s|^  runtime_type = 'io.containerd.palisade.v2'|&\n  runtime_path = '$prefix/bin/containerd-shim-palisade-v2'|" "$tmp/palisade.toml" ;;
	esac
	install -m 0644 "$tmp/palisade.toml" "$dropin"
	log "installed the containerd drop-in $dropin"
	check_imports
	restart_containerd
	[ -z "$restart" ] || check
}

check() {
	local ok=1 ctr out
	for b in "${binaries[@]}"; do
		[ -x "$prefix/bin/$b" ] || { log "FAIL: $prefix/bin/$b is missing"; ok=; }
	done
	[ -n "$ok" ] || die "the installation is incomplete"
	log "$("$prefix/bin/palisade" version)"
	log "$("$prefix/bin/containerd-shim-palisade-v2" -v | tr -s ' \n' ' ')"
	local profile
	profile=$(sed -n 's/^default_profile *= *"\(.*\)".*/\1/p' "$config_dir/config.toml")
	out=$("$prefix/bin/palisade" explain --config "$config_dir/config.toml" "${profile:-restricted}" 2>&1 >/dev/null) ||
		die "palisade cannot use the admin config $config_dir/config.toml: $out"
	log "the admin config $config_dir/config.toml loads (default profile ${profile:-restricted})"

	command -v containerd >/dev/null || die "no containerd in PATH"
	if [ -f "$containerd_config" ]; then
		out=$(containerd --config "$containerd_config" config dump 2>&1) || die "containerd cannot read its config: $out"
		grep -q "runtimes.palisade\]" <<<"$out" && grep -q "runtime_type = ['\"]io.containerd.palisade.v2['\"]" <<<"$out" ||
			die "containerd's merged config has no palisade runtime: is $dropin imported by $containerd_config?"
		grep -q "ConfigPath = ['\"]$config_dir/config.toml['\"]" <<<"$out" ||
			die "containerd's palisade runtime does not use the admin config $config_dir/config.toml: another drop-in overrides $dropin"
		log "containerd's config registers the runtime io.containerd.palisade.v2 (CRI handler \"palisade\")"
	fi
	ctr=(ctr --address "$address")
	out=$("${ctr[@]}" plugins ls 2>&1) || die "containerd does not answer on $address: $out"
	if grep -q "io.containerd.cri.v1 .* runtime .* ok" <<<"$out"; then
		log "containerd is up; its CRI runtime plugin is ok"
	else
		log "containerd is up (CRI plugin not loaded: only ctr/nerdctl will use palisade)"
	fi
	if [ -n "$image" ]; then
		local id=palisade-install-check-$$
		local errf
		errf=$(mktemp)
		out=$("${ctr[@]}" -n "$namespace" run --rm --runtime io.containerd.palisade.v2 \
			--runtime-config-path "$config_dir/config.toml" "$image" "$id" id -u 2>"$errf") ||
			die "a test container under palisade failed: $out $(cat "$errf")"
		rm -f "$errf"
		[ "$out" = 65534 ] || die "the test container ran as uid $out, not as palisade's 65534: the shim did not harden it"
		log "a test container ran under palisade as uid 65534"
	fi
	log "ok"
}

uninstall() {
	for b in "${binaries[@]}"; do
		rm -f "$prefix/bin/$b"
	done
	rm -f "$dropin"
	log "removed ${binaries[*]} from $prefix/bin and $dropin"
	if [ -n "$purge" ]; then
		rm -f "$config_dir/config.toml"
		rmdir "$config_dir" 2>/dev/null || true
		log "removed $config_dir/config.toml"
	else
		log "kept $config_dir (--purge removes the admin config)"
	fi
	restart_containerd
}

[ "$(id -u)" -eq 0 ] || die "run as root"
case $mode in
install) install_release ;;
check) check ;;
uninstall) uninstall ;;
esac
