package service

import (
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"os"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/seccomp"
)

// criSpec is shaped like what containerd's CRI plugin sends for a pod
// container: the default capabilities, Docker's seccomp profile, kubelet
// volumes, CRI's hosts/resolv.conf/hostname/shm, pod annotations.
func criSpec(b testing.TB) *specs.Spec {
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		b.Fatal(err)
	}
	docker, err := seccomp.Validate("docker", "moby", mobyseccomp.DefaultProfile())
	if err != nil {
		b.Fatal(err)
	}
	sc, err := seccomp.Resolve(docker, "amd64", caps.RuntimeDefault, seccomp.WithCompat)
	if err != nil {
		b.Fatal(err)
	}
	pod := "/var/lib/kubelet/pods/0b7e2f9c-5d1a-4c1e-9f0e-3a9c0d1e2f3a"
	sandbox := "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/5f1e"
	bind := func(dst, src string, ro bool) specs.Mount {
		opts := []string{"rbind", "rprivate", "rw"}
		if ro {
			opts[2] = "ro"
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	}
	def := caps.RuntimeDefault
	return &specs.Spec{
		Version: "1.3.0",
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args:         []string{"/usr/sbin/nginx", "-g", "daemon off;"},
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "KUBERNETES_SERVICE_HOST=10.96.0.1", "NGINX_VERSION=1.27.0"},
			Cwd:          "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: def, Effective: def, Permitted: def},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile.Max, Soft: nofile.Max}}, // as high as this node allows
			OOMScoreAdj:  new(int),
		},
		Hostname: "web-0",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			bind("/etc/hosts", pod+"/etc-hosts", false),
			bind("/dev/termination-log", pod+"/containers/nginx/3c2b", false),
			bind("/etc/hostname", sandbox+"/hostname", false),
			bind("/etc/resolv.conf", sandbox+"/resolv.conf", false),
			bind("/dev/shm", sandbox+"/shm", false),
			bind("/var/run/secrets/kubernetes.io/serviceaccount", pod+"/volumes/kubernetes.io~projected/kube-api-access-x7k2p", true),
			bind("/usr/share/nginx/html", pod+"/volumes/kubernetes.io~empty-dir/html", false),
		},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type":    "container",
			"io.kubernetes.cri.container-name":    "nginx",
			"io.kubernetes.cri.image-name":        "docker.io/library/nginx:1.27",
			"io.kubernetes.cri.sandbox-id":        "5f1e",
			"io.kubernetes.cri.sandbox-name":      "web-0",
			"io.kubernetes.cri.sandbox-namespace": "shop",
			"io.kubernetes.cri.sandbox-uid":       "0b7e2f9c-5d1a-4c1e-9f0e-3a9c0d1e2f3a",
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: new(int64)},
				CPU:     &specs.LinuxCPU{Shares: new(uint64)},
			},
			CgroupsPath: "/kubepods/burstable/pod0b7e2f9c/3c2b",
			Namespaces: []specs.LinuxNamespace{
				{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"},
			},
			MaskedPaths:   []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Seccomp:       sc,
		},
	}
}

// BenchmarkCreateRewrite is the whole of palisade's work in Create except
// runc itself: read config.json, load the admin config and profiles, resolve
// the policy, run the pipeline (seccomp included) and the verification,
// write config.json atomically, and append the audit record. The bundle is
// on tmpfs, as containerd's state directory (/run/containerd) is on a node;
// the audit file and admin config are on disk.
func BenchmarkCreateRewrite(b *testing.B) {
	// setup trusts and writes the admin config (audit file on disk).
	ctx, _, cfgPath, _ := setup(b, "")
	dir := b.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "palisade-bench-"); err == nil {
		dir = shm
		b.Cleanup(func() { os.RemoveAll(shm) })
	} else {
		b.Logf("no tmpfs at /dev/shm (%v): the bundle is on %s", err, dir)
	}
	spec := criSpec(b)
	inner := &recorder{}
	s := New(inner)
	// a CRI container on a node whose containerd root is the default
	ctx = namespaces.WithNamespace(ctx, "k8s.io")
	s.node = layout{known: true, root: "/var/lib/containerd"}
	opts := options(b, cfgPath)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := bundle.WriteSpec(dir, spec); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: dir, Options: opts}); err != nil {
			b.Fatal(err)
		}
	}
}
