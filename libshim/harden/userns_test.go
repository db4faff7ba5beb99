package harden

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/policy"
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

// In a user namespace, secret files belong to the process's mapped host
// ids, so that the container's user can read them; a user outside the
// mappings is refused.
func TestSecretsOwnedByTheMappedUser(t *testing.T) {
	ann := map[string]string{policy.AnnotationSecrets: "db"}
	req := withSecrets(t, request(t, "", nil), ann)
	s := ctrSpec()
	s.Annotations = ann
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000000, Size: 65536}}
	s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	plan, _, err := Harden(req, s)
	if err != nil {
		t.Fatal(err)
	}
	u := plan.Spec.Process.User
	if plan.Secrets == nil || plan.Secrets.UID != 1000000+u.UID || plan.Secrets.GID != 1000000+u.GID {
		t.Fatalf("secrets plan %+v for user %d:%d, want the mapped ids", plan.Secrets, u.UID, u.GID)
	}
	s = ctrSpec()
	s.Annotations = ann
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	small := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000000, Size: 1}}
	s.Linux.UIDMappings, s.Linux.GIDMappings = small, small
	refusal(t, harden(t, req, s), "secrets", "outside the container's user namespace mappings")
}

// withSecrets gives req an empty secret store, a secrets directory and the
// policy of annotations ann (which request secrets).
func withSecrets(t *testing.T, req *Request, ann map[string]string) *Request {
	t.Helper()
	req.Config.Secrets.Store = t.TempDir()
	pol, err := policy.Resolve(req.Container(), req.Config, ann)
	if err != nil {
		t.Fatal(err)
	}
	req.Policy, req.SecretsDir = pol, filepath.Join(t.TempDir(), "secrets")
	return req
}

// A namespace pinned by a bind mount (CNI's /run/netns/NAME) is recognised
// by its type: its descriptor's link is only its path.
func TestPinnedNamespaceKind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pinning a namespace needs a bind mount: run as root (make test does)")
	}
	if f, err := os.Open("/proc/self/ns/net"); err == nil {
		_, ierr := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
		f.Close()
		if ierr != nil {
			t.Skipf("NS_GET_NSTYPE does not work here (%v: qemu-user does not pass it through); a real kernel has it", ierr)
		}
	}
	pin := filepath.Join(t.TempDir(), "net")
	if err := os.WriteFile(pin, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/proc/self/ns/net", pin, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Unmount(pin, unix.MNT_DETACH) }()
	want, err := nsIdentity("/proc/self/ns/net", specs.NetworkNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nsIdentity(pin, specs.NetworkNamespace); err != nil || got != want {
		t.Errorf("pinned net namespace: %v %v, want %v", got, err, want)
	}
	if _, err := nsIdentity(pin, specs.PIDNamespace); err == nil {
		t.Error("a pinned net namespace passed as a pid namespace")
	}
}

// A mapping reaches host root when it starts there or runs past the last
// id and wraps around to 0.
func TestMapsHostRoot(t *testing.T) {
	for _, c := range []struct {
		m    specs.LinuxIDMapping
		want bool
	}{
		{specs.LinuxIDMapping{HostID: 0, Size: 1}, true},
		{specs.LinuxIDMapping{HostID: 1000000, Size: 65536}, false},
		{specs.LinuxIDMapping{HostID: 0xffffffff, Size: 2}, true},
		{specs.LinuxIDMapping{HostID: 0xffff0000, Size: 0x10000}, false},
		{specs.LinuxIDMapping{HostID: 0xffff0000, Size: 0x10001}, true},
	} {
		if got := mapsHostRoot(c.m); got != c.want {
			t.Errorf("%+v: %v, want %v", c.m, got, c.want)
		}
	}
}
