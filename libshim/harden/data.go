package harden

import "slices"

// The fixed data the pipeline and the verification pass share. Profiles add
// to these lists; nothing removes from them.

// requiredNamespaces must be private unless the profile lets the container
// share the host's (mount never can).
var requiredNamespaces = []string{"pid", "network", "ipc", "uts", "mount"}

// minimumMaskedPaths are always masked: containerd's defaults (kernel memory,
// keyrings, timers, scheduler and firmware data) — a spec that drops them
// (e.g. --security-opt systempaths=unconfined) gets them back.
var minimumMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
	"/sys/devices/virtual/powercap", "/sys/firmware",
}

// minimumReadonlyPaths are always read-only: containerd's defaults, so that
// /proc/sys and friends cannot reconfigure the host kernel.
var minimumReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// sensitiveHostPaths may not be bind-mounted into a container, nor may any
// path below them (but see bindCarveOuts) or above them (a bind of / or
// /var exposes them too): the host's kernel interfaces and configuration,
// and the container runtimes' sockets and state, through which a container
// could take over the node.
var sensitiveHostPaths = []string{
	"/proc", "/sys", "/dev", "/etc", "/boot", "/root", "/lib/modules",
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/run/systemd", "/var/run/systemd", "/run/dbus", "/var/run/dbus", "/var/spool/cron",
	"/run/containerd", "/var/run/containerd", "/var/lib/containerd",
	"/run/docker.sock", "/var/run/docker.sock", "/run/docker", "/var/run/docker", "/var/lib/docker",
	"/run/crio", "/var/run/crio", "/var/lib/containers", "/run/runc",
	"/var/lib/kubelet", "/etc/kubernetes", "/var/lib/etcd", "/run/palisade", "/etc/palisade", "/var/log/palisade",
	// Root-equivalent elsewhere: CNI plugins containerd runs as root for every
	// pod, other pods' logs, other runtimes' and user services' sockets.
	"/opt/cni", "/var/lib/cni", "/var/log/pods", "/var/log/containers",
	"/run/podman", "/var/run/podman", "/run/buildkit", "/var/run/buildkit", "/run/libvirt", "/var/run/libvirt",
	"/run/user", "/var/run/user", "/run/snapd.socket", "/run/lxd", "/var/lib/lxd", "/var/snap/lxd",
	"/run/k3s", "/var/lib/rancher",
}

// kernelMountTypes are the filesystems a container spec may mount besides
// bind mounts: the pseudo filesystems every container has, and tmpfs.
var kernelMountTypes = []string{"proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2"}

// kernelMountPlace is where each pseudo filesystem may be mounted: a second
// procfs or sysfs elsewhere would escape the masked and read-only paths.
var kernelMountPlace = map[string]string{
	"proc": "/proc", "sysfs": "/sys", "devpts": "/dev/pts", "mqueue": "/dev/mqueue",
	"cgroup": "/sys/fs/cgroup", "cgroup2": "/sys/fs/cgroup",
}

// safeSysctls are namespaced and safe to set per container (Kubernetes' safe
// set); others need the profile's allow-list.
var safeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ping_group_range", "net.ipv4.tcp_syncookies",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
}

// standardDevices are the device nodes every container may use: runc's
// default set (null, zero, full, random, urandom, tty, console, ptmx, pts).
var standardDevices = []deviceRule{
	{'c', 1, 3, "null"}, {'c', 1, 5, "zero"}, {'c', 1, 7, "full"}, {'c', 1, 8, "random"}, {'c', 1, 9, "urandom"},
	{'c', 5, 0, "tty"}, {'c', 5, 1, "console"}, {'c', 5, 2, "ptmx"}, {'c', 136, -1, "pts"},
}

type deviceRule struct {
	typ          byte
	major, minor int64 // -1: any
	name         string
}

// Facts are the fixed rules every container gets whatever its profile, for
// `palisade explain` and the docs: read from the data above, never
// restated in prose.
type Facts struct {
	MaskedPaths, ReadonlyPaths, Namespaces, Devices, SafeSysctls, ProtectedPaths []string
}

// FixedFacts returns the fixed rules.
func FixedFacts() Facts {
	f := Facts{
		MaskedPaths: slices.Clone(minimumMaskedPaths), ReadonlyPaths: slices.Clone(minimumReadonlyPaths),
		Namespaces: slices.Clone(requiredNamespaces), SafeSysctls: slices.Clone(safeSysctls), ProtectedPaths: slices.Clone(sensitiveHostPaths),
	}
	for _, d := range standardDevices {
		f.Devices = append(f.Devices, d.name)
	}
	return f
}
