package harden

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsFile is the /proc/PID/ns entry of each OCI namespace type.
var nsFile = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc",
	specs.UTSNamespace: "uts", specs.MountNamespace: "mnt", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// namespaces requires private pid, network, ipc, uts and mount namespaces
// (a missing entry means "share the host's"; a path to the host's own
// namespace means the same; both are refused unless the profile allows
// it), and decides every namespace path a spec asks to join: only the
// namespaces of the container's own pod sandbox (what CRI gives a pod's
// containers), the network namespaces CNI pins for pods, and the
// directories the profile lists. Joining another container's namespaces
// would put the container next to that container's processes, mounts and
// secrets (/proc/1/root of a shared PID namespace).
func namespaces(r *run, s *specs.Spec) error {
	allowed := r.req.Policy.Profile.Namespaces.HostAllowed
	for _, typ := range requiredNamespaces {
		i := slices.IndexFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return string(n.Type) == typ })
		if i < 0 && !slices.Contains(allowed, typ) {
			return r.refuse(fmt.Sprintf("the container would share the host's %s namespace", typ), hostNamespaceFix(typ))
		}
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		if _, ok := nsFile[n.Type]; !ok {
			return r.refuse(fmt.Sprintf("namespace type %q is unknown", n.Type), "use the OCI namespace types")
		}
		if seen[n.Type] {
			return r.refuse(fmt.Sprintf("the %s namespace is listed twice", n.Type), "list each namespace once")
		}
		seen[n.Type] = true
		if n.Path == "" {
			continue
		}
		if why, fix := r.req.joinProblem(n, s.Annotations); why != "" {
			return r.refuse(why, fix)
		}
	}
	return nil
}

func hostNamespaceFix(typ string) string {
	return fmt.Sprintf("run it in its own %s namespace (no --net-host/--pid-host style option; Kubernetes: hostNetwork, hostPID, hostIPC false), or select a profile whose namespaces.host_allowed lists %q", typ, typ)
}

// joinProblem says why the container may not join the namespace at n.Path,
// and what to do, or "".
func (req *Request) joinProblem(n specs.LinuxNamespace, annotations map[string]string) (string, string) {
	target, err := nsIdentity(n.Path, n.Type)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Sprintf("there is no %s namespace at %s", n.Type, n.Path), "give a namespace path that exists"
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Sprintf("joining the %s namespace at %s is not allowed: even the shim may not open it (%v), so it belongs to no container of this node", n.Type, n.Path, err),
				"let the container have its own " + string(n.Type) + " namespace (no --with-ns)"
		}
		return fmt.Sprintf("%s is not a %s namespace palisade can inspect: %v", n.Path, n.Type, err), "give the path of a namespace file (/proc/PID/ns/TYPE or a pinned nsfs file)"
	}
	host, err := nsIdentity("/proc/self/ns/"+nsFile[n.Type], n.Type)
	if err == nil && host == target {
		if slices.Contains(req.Policy.Profile.Namespaces.HostAllowed, string(n.Type)) {
			return "", ""
		}
		return fmt.Sprintf("the container would join the host's %s namespace (%s)", n.Type, n.Path), hostNamespaceFix(string(n.Type))
	}
	if req.Joinable != nil {
		for _, p := range req.Joinable(n.Type) {
			if id, err := nsIdentity(p, n.Type); err == nil && id == target {
				return "", ""
			}
		}
	}
	dirs := slices.Clone(req.Policy.Profile.Namespaces.JoinAllowed)
	if n.Type == specs.NetworkNamespace {
		dirs = append(dirs, req.Config.Node.NetnsDirs...)
		// containerd's CRI plugin pins them in its own state directory
		// with netns_mounts_under_state_dir.
		if st := ContainerdState(req.Bundle); st != "" {
			dirs = append(dirs, filepath.Join(st, criDir, "netns"))
		}
	}
	if pinnedIn(n.Path, dirs) {
		return "", ""
	}
	if own := req.sandboxPinned(annotations); own != "" && pinnedIn(n.Path, []string{own}) {
		return "", ""
	}
	return fmt.Sprintf("joining the %s namespace at %s is not allowed: a container may join only its own pod sandbox's namespaces, and for network the namespaces pinned in %v", n.Type, n.Path, dirs),
		"let the container have its own " + string(n.Type) + " namespace (no --with-ns), or ask the node administrator for a profile whose namespaces.join_allowed lists the directory"
}

// nsID identifies a namespace: the nsfs inode.
type nsID struct{ dev, ino uint64 }

// nsIdentity opens a namespace file, checks that it is a namespace of the
// given type, and returns its identity.
func nsIdentity(path string, typ specs.LinuxNamespaceType) (nsID, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nsID{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() { _ = unix.Close(fd) }()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return nsID{}, err
	}
	if fs.Type != unix.NSFS_MAGIC {
		return nsID{}, fmt.Errorf("not a namespace file")
	}
	if kind, err := nsKind(fd); err != nil {
		return nsID{}, err
	} else if kind != nsFile[typ] {
		return nsID{}, fmt.Errorf("not a %s namespace", typ)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsID{}, err
	}
	return nsID{st.Dev, st.Ino}, nil
}

// pinnedIn reports whether path is a namespace file directly in one of
// dirs, both resolved as the kernel will resolve them.
func pinnedIn(path string, dirs []string) bool {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(dirs, func(d string) bool {
		rd, err := filepath.EvalSymlinks(d)
		return err == nil && filepath.Dir(resolved) == rd
	})
}

func verifyNamespaces(req *Request, _ *Decisions, s *specs.Spec) string {
	for _, typ := range requiredNamespaces {
		if slices.Contains(req.Policy.Profile.Namespaces.HostAllowed, typ) {
			continue
		}
		if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return string(n.Type) == typ }) {
			return "no private " + typ + " namespace"
		}
	}
	for _, n := range s.Linux.Namespaces {
		if n.Path != "" {
			if why, _ := req.joinProblem(n, s.Annotations); why != "" {
				return why
			}
		}
	}
	return ""
}

// sandboxPinned is where containerd's CRI plugin pins the namespaces of the
// container's own pod sandbox (a pod's user namespace, hostUsers: false):
// <state>/io.containerd.grpc.v1.cri/sandboxes/<sandbox-id>/pinned-namespaces,
// only in a CRI namespace and only for the sandbox the container belongs to.
func (req *Request) sandboxPinned(annotations map[string]string) string {
	sid := annotations[annotationSandboxID]
	st := ContainerdState(req.Bundle)
	if st == "" || !validComponent(sid) || !contains(req.Config.Node.CRINamespaces, req.Namespace) {
		return ""
	}
	return filepath.Join(st, criDir, "sandboxes", sid, "pinned-namespaces")
}

// nsCloneFlag is the kernel's type of each namespace (NS_GET_NSTYPE).
var nsCloneFlag = map[int]string{
	unix.CLONE_NEWPID: "pid", unix.CLONE_NEWNET: "net", unix.CLONE_NEWIPC: "ipc", unix.CLONE_NEWUTS: "uts",
	unix.CLONE_NEWNS: "mnt", unix.CLONE_NEWUSER: "user", unix.CLONE_NEWCGROUP: "cgroup", unix.CLONE_NEWTIME: "time",
}

// nsKind names the type of the namespace fd refers to, as nsFile does. The
// kernel says it (NS_GET_NSTYPE) whichever path reached the namespace: a
// /proc/PID/ns file or a pinned bind mount (CNI's /run/netns/NAME), whose
// descriptor link is only its path. qemu-user does not pass the ioctl
// through; there the descriptor's link ("net:[4026531840]") is read, which
// names the type for /proc/PID/ns files.
func nsKind(fd int) (string, error) {
	if t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err == nil {
		return nsCloneFlag[t], nil
	}
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	kind, _, _ := strings.Cut(link, ":")
	return kind, nil
}
