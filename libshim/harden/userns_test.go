package harden

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// An id-mapped mount is allowed only when it maps exactly as the
// container's own user namespace (CRI's hostUsers: false pods); any other
// mapping, or one without a user namespace, is refused.
func TestIDMappedMountsFollowTheUserNamespace(t *testing.T) {
	own := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000000, Size: 65536}}
	other := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
	spec := func(userns bool, m []specs.LinuxIDMapping) *specs.Spec {
		s := ctrSpec()
		if userns {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings, s.Linux.GIDMappings = own, own
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: t.TempDir(),
			Options: []string{"rbind", "ro"}, UIDMappings: m, GIDMappings: m})
		return s
	}
	if err := harden(t, request(t, "", nil), spec(true, own)); err != nil {
		t.Errorf("a mount mapped as the container's user namespace: %v", err)
	}
	refusal(t, harden(t, request(t, "", nil), spec(true, other)), "mounts", "mount at /data is id-mapped")
	refusal(t, harden(t, request(t, "", nil), spec(false, own)), "mounts", "mount at /data is id-mapped")
}
