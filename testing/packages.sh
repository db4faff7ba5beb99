# Sourced by testing/setup.sh and testing/setup-cross.sh: one way to install
# Debian packages only when missing. Needs a log function.

# install_missing [--no-update] PACKAGE...: installs the packages dpkg does
# not have (apt-get update first unless --no-update), as root only.
install_missing() {
	local update=1
	if [ "${1:-}" = "--no-update" ]; then
		update=
		shift
	fi
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	if [ "$(id -u)" -ne 0 ]; then
		log "missing packages ${missing[*]}; run as root or install them"
		exit 1
	fi
	log "installing ${missing[*]}"
	[ -z "$update" ] || DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq update
	local start=$SECONDS
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq install -y --no-install-recommends "${missing[@]}" >/dev/null
	log "installed in $((SECONDS - start))s"
}
