// Package caps names Linux capabilities: it parses and canonicalises names
// ("net_bind_service", "CAP_NET_BIND_SERVICE" -> "CAP_NET_BIND_SERVICE"),
// knows the host kernel's last capability, and holds the set container
// runtimes grant by default. Names come from moby/sys/capability.
package caps

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
)

// RuntimeDefault is the set containerd, Docker and CRI give every container
// unless told otherwise. palisade clamps these to the profile silently (with
// an audit record); any other capability a spec asks for must be allowed.
var RuntimeDefault = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
	"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

var known = sync.OnceValue(func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
})

// Canonical returns the CAP_-prefixed upper-case name of a capability, or an
// error when the name is not a Linux capability.
func Canonical(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	if _, ok := known()[n]; !ok {
		return "", fmt.Errorf("unknown capability %q", name)
	}
	return n, nil
}

// Supported reports whether the running kernel has the capability; a name
// newer than the kernel cannot be granted.
func Supported(canonical string) bool {
	c, ok := known()[canonical]
	if !ok {
		return false
	}
	last, err := capability.LastCap()
	return err == nil && c <= last
}

// All is every capability the running kernel has, canonical, sorted.
func All() []string {
	last, err := capability.LastCap()
	var out []string
	for name, c := range known() {
		if err != nil || c <= last {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Host is the bounding set of the calling process, canonical and sorted. In
// the shim that is the host's full set: what `--privileged` hands out (which
// may be less than All, e.g. in a VM without CAP_SYS_RESOURCE).
var Host = sync.OnceValues(func() ([]string, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return nil, err
	}
	if err := c.Load(); err != nil {
		return nil, err
	}
	var out []string
	for name, cp := range known() {
		if c.Get(capability.BOUNDING, cp) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
})

// Set is a sorted list of canonical names without duplicates.
func Set(names ...[]string) []string {
	var out []string
	for _, l := range names {
		out = append(out, l...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Short lists capabilities for people: without the CAP_ prefix, comma
// separated, "none" for an empty list.
func Short(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	out := make([]string, len(l))
	for i, c := range l {
		out[i] = strings.TrimPrefix(c, "CAP_")
	}
	return strings.Join(out, ", ")
}
