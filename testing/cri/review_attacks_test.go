package cri

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
	"palisade.dev/palisade/testing/image"
)

// Attacks a pod author can make through the pod spec: seccomp Localhost
// profiles, palisade.dev/ annotations, CRI annotations, user-namespace
// mappings and sysctls. Each test holds what palisade must keep.

// localhostProfile writes a seccomp profile for a pod's Localhost
// reference and returns the security context asking for it.
func localhostProfile(t *testing.T, profile string) obj {
	t.Helper()
	p := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(p, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	return obj{"seccomp": obj{"profile_type": 2, "localhost_ref": p}}
}

// hardenedSpec is the config.json runc got for container id.
func hardenedSpec(t *testing.T, e *harness.Env, id string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Dir, "state", "io.containerd.runtime.v2.task", e.Namespace, id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// tryOK runs `probe try ARGS` in the container and reports whether the
// action succeeded.
func tryOK(t *testing.T, e *harness.Env, id string, args ...string) bool {
	t.Helper()
	r := e.Crictl(append([]string{"exec", id, "/usr/bin/probe", "try"}, args...)...)
	var o struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &o); err != nil {
		t.Fatalf("probe try %v: %v\n%s", args, err, r)
	}
	return o.OK
}

// A pod's Localhost profile can only tighten palisade's filter. A profile
// that allows everything, hands mkdir to a listener of its choice
// (SCMP_ACT_NOTIFY with listenerPath), turns the Spectre mitigation off
// (SECCOMP_FILTER_FLAG_SPEC_ALLOW) and names an architecture the node
// does not admit gets palisade's filter: mount and unshare stay denied,
// mkdir is refused with EPERM (no listener is ever called), runc gets
// neither the listener nor the flags, and 32-bit calls stay killed.
func TestPodSeccompCannotLoosen(t *testing.T) {
	e := needEnv(t)
	listener := filepath.Join(t.TempDir(), "listener.sock")
	l, err := net.Listen("unix", listener)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	called := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			_ = c.Close()
			called <- struct{}{}
		}
	}()
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	sc := localhostProfile(t, `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],`+
		`"listenerPath":`+jsonString(listener)+`,"listenerMetadata":"pod",`+
		`"flags":["SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_LOG"],`+
		`"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"},{"names":["mount","unshare","bpf"],"action":"SCMP_ACT_ALLOW"}]}`)
	ctr := writeJSON(t, containerConfig("loose", sc, nil, "/usr/bin/probe", "sleep", "300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)

	for _, try := range [][]string{{"syscall", "mount"}, {"unshare"}, {"syscall", "bpf"}} {
		if tryOK(t, e, ctrID, try...) {
			t.Errorf("%v succeeded although palisade's filter denies it", try)
		}
	}
	if r := e.Crictl("exec", ctrID, "/bin/mkdir", "/tmp/made"); r.Err == nil || !strings.Contains(r.Stdout+r.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under a profile that notifies a listener: %s", r)
	}
	if r := e.Crictl("exec", ctrID, "/usr/bin/probe32", "report"); r.Err == nil {
		t.Errorf("a 32-bit program ran: %s", r)
	}
	select {
	case <-called:
		t.Error("the pod's seccomp listener was called")
	case <-time.After(100 * time.Millisecond):
	}
	sp := hardenedSpec(t, e, ctrID).Linux.Seccomp
	if sp == nil || sp.ListenerPath != "" || sp.ListenerMetadata != "" || len(sp.Flags) != 0 || sp.DefaultAction == specs.ActAllow {
		t.Errorf("runc got the pod's listener, flags or default: %+v", sp)
	}
	for _, a := range sp.Architectures {
		if a != specs.ArchX86_64 && a != specs.ArchAARCH64 {
			t.Errorf("runc's filter admits %s", a)
		}
	}

	// seccomp Unconfined in the pod spec: palisade's filter all the same
	unconfined := writeJSON(t, containerConfig("unconfined", obj{"seccomp": obj{"profile_type": 0}}, nil, "/usr/bin/probe", "sleep", "300"))
	ctrID = crictl(t, e, "create", podID, unconfined, pod)
	crictl(t, e, "start", ctrID)
	if tryOK(t, e, ctrID, "syscall", "mount") {
		t.Error("mount succeeded in a container whose pod asked for seccomp Unconfined")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A pod's profile that palisade cannot read as runc would (an unknown
// action, operator, argument index, architecture or flag, an errnoRet
// on an action without errno) is refused with palisade's message naming
// what is wrong, instead of being dropped in silence: runc would refuse it, and a pod that believes its rule holds
// must not run without it. A value of a megabyte is named only by its
// start, in the error and in the audit record.
func TestPodSeccompInvalidRefused(t *testing.T) {
	e := needEnv(t)
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	huge := strings.Repeat("X", 1<<20)
	for _, c := range []struct{ name, profile, want string }{
		{"action", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_DENY"}]}`, `action "SCMP_ACT_DENY"`},
		{"default", `{"defaultAction":"SCMP_ACT_` + huge + `"}`, `default action "SCMP_ACT_XXXX`},
		{"operator", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","args":[{"index":2,"value":448,"op":"SCMP_CMP_SOMETIMES"}]}]}`, `operator "SCMP_CMP_SOMETIMES"`},
		{"index", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":448,"op":"SCMP_CMP_EQ"}]}]}`, `argument index 9`},
		{"arch", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_Z80"]}`, `architecture "SCMP_ARCH_Z80"`},
		{"flag", `{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC_ALL"]}`, `flag "SECCOMP_FILTER_FLAG_TSYNC_ALL"`},
		{"errno", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}`, `errnoRet with action SCMP_ACT_ALLOW`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctr := writeJSON(t, containerConfig(c.name, localhostProfile(t, c.profile), nil, "/usr/bin/probe", "sleep", "300"))
			ctrID := crictl(t, e, "create", podID, ctr, pod)
			defer func() {
				e.Crictl("rm", "-f", ctrID)
				assertClean(t, e, ctrID)
			}()
			r := e.Crictl("start", ctrID)
			if r.Err == nil {
				t.Fatalf("a container with an invalid pod seccomp profile started")
			}
			msg := strings.ReplaceAll(r.Stderr, `\"`, `"`)
			if !strings.Contains(msg, "palisade: container k8s.io/"+ctrID) || !strings.Contains(msg, c.want) ||
				!strings.Contains(msg, "[rule seccomp, profile restricted]") || len(msg) > 4096 {
				t.Errorf("StartContainer error (%d bytes) does not name the pod profile's problem %q: %.3000s", len(msg), c.want, msg)
			}
			rec := harness.FindRecord(auditRecords(t, e, ctrID), audit.EventCreate)
			if rec == nil || rec.Result != audit.ResultRefused {
				t.Fatalf("create audit record = %+v, want refused", rec)
			}
			if b, _ := json.Marshal(rec); len(b) > 8192 {
				t.Errorf("the audit record is %d bytes", len(b))
			}
		})
	}
}

// Entries of palisade.dev/writable-paths that are not what the profile
// allows are refused at StartContainer with palisade's message, and leave
// nothing behind: a path climbing out with "..", a trailing slash, a
// relative path, an empty entry, a sibling that only shares a prefix with
// an allowed directory (/var/library), more directories than the bound,
// and a list longer than an annotation may be. Repeating an allowed
// directory is fine.
func TestWritablePathsOddEntries(t *testing.T) {
	e := needEnv(t)
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	many := make([]string, 9)
	for i := range many {
		many[i] = "/var/cache/d" + string(rune('a'+i))
	}
	huge := strings.Repeat("/var/cache/x,", 10000)
	for _, c := range []struct{ name, value, want string }{
		{"dotdot", "/var/lib/../../etc", `"/var/lib/../../etc" is not a clean absolute directory`},
		{"slash", "/var/log/", `"/var/log/" is not a clean absolute directory`},
		{"relative", "var/log", `"var/log" is not a clean absolute directory`},
		{"empty", "/var/log,,/var/cache", `"" is not a clean absolute directory`},
		{"prefix", "/var/library", "/var/library is not at or below a directory profile"},
		{"many", strings.Join(many, ","), "lists 9 directories, more than 8"},
		{"huge", huge, "is longer than 4096 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ann := map[string]string{"palisade.dev/writable-paths": c.value}
			ctr := writeJSON(t, containerConfig(c.name, nil, ann, "/usr/bin/probe", "sleep", "300"))
			ctrID := crictl(t, e, "create", podID, ctr, pod)
			defer func() {
				e.Crictl("rm", "-f", ctrID)
				assertClean(t, e, ctrID)
			}()
			r := e.Crictl("start", ctrID)
			msg := strings.ReplaceAll(r.Stderr, `\"`, `"`)
			if r.Err == nil || !strings.Contains(msg, "palisade: container k8s.io/"+ctrID) || !strings.Contains(msg, c.want) || len(msg) > 8192 {
				t.Errorf("writable-paths %.80q: want a refusal saying %q, got (%d bytes) %.2000s", c.value, c.want, len(msg), msg)
			}
		})
	}
	ann := map[string]string{"palisade.dev/writable-paths": "/var/log/app,/var/log/app, /var/log/app"}
	ctr := writeJSON(t, containerConfig("dup", nil, ann, "/bin/sh", "-c", "echo x > /var/log/app/x && exec /usr/bin/probe sleep 300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	if n := strings.Count(crictl(t, e, "exec", ctrID, "/bin/cat", "/proc/self/mounts"), " /var/log/app "); n != 1 {
		t.Errorf("a directory listed three times is mounted %d times", n)
	}
}

// linkedImage imports a variant of the test image whose given paths are
// symbolic links, and returns its reference.
func linkedImage(t *testing.T, e *harness.Env, ref string, links map[string]string) string {
	t.Helper()
	tarball := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.OpenFile(tarball, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string]image.File{}
	for p, target := range links {
		files[p] = image.File{Link: target}
	}
	o := image.Options{Busybox: "/bin/busybox", Programs: map[string]string{"/usr/bin/probe": e.Build().Probe}, Ref: ref, Files: files}
	if err := image.Build(f, o); err != nil {
		t.Fatal(err)
	}
	if r := e.Ctr("images", "import", tarball); r.Err != nil {
		t.Fatal(r)
	}
	return ref
}

// An image whose /var/lib or /tmp is a symbolic link to /etc cannot turn
// palisade.dev/writable-paths: /var/lib, or the profile's own /tmp, into a
// writable /etc: runc mounts a tmpfs where its path leads, outside every
// directory the profile lets a workload write. The container is refused
// once runc has mounted (before it starts), naming the link, and nothing
// is left; a link that stays inside an allowed directory, and /var/run
// leading to /run as in Debian's images, are fine.
func TestWritablePathsImageSymlink(t *testing.T) {
	e := needEnv(t)
	ref := linkedImage(t, e, "docker.io/palisade/test-links:latest",
		map[string]string{"/var/lib": "/etc", "/var/log": "../var/cache/log", "/var/cache/log/.keep": "/dev/null", "/var/run": "../run"})
	tmpRef := linkedImage(t, e, "docker.io/palisade/test-tmp-link:latest", map[string]string{"/tmp": "/etc"})
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)

	for _, c := range []struct{ name, ref, writable, want string }{
		{"lib", ref, "/var/lib", "tmpfs /var/lib leads to /etc in the container"},
		{"tmp", tmpRef, "", "tmpfs /tmp leads to /etc in the container"},
	} {
		ann := map[string]string{}
		if c.writable != "" {
			ann["palisade.dev/writable-paths"] = c.writable
		}
		cfg := containerConfig(c.name, nil, ann, "/bin/sh", "-c", "echo owned > /etc/passwd; exec /usr/bin/probe sleep 300")
		cfg["image"] = obj{"image": c.ref}
		ctrID := crictl(t, e, "create", podID, writeJSON(t, cfg), pod)
		r := e.Crictl("start", ctrID)
		if r.Err == nil {
			out := e.Crictl("exec", ctrID, "/bin/cat", "/etc/passwd")
			t.Errorf("%s: a tmpfs at a link to /etc was mounted; /etc/passwd inside: %q", c.name, out.Stdout)
		} else if msg := strings.ReplaceAll(r.Stderr, `\"`, `"`); !strings.Contains(msg, "palisade: container k8s.io/"+ctrID) ||
			!strings.Contains(msg, c.want) || !strings.Contains(msg, "[rule tmpfs, profile restricted]") {
			t.Errorf("%s: StartContainer error does not name the link: %s", c.name, msg)
		}
		crictl(t, e, "rm", "-f", ctrID)
		assertClean(t, e, ctrID)
	}

	cfg := containerConfig("log", nil, map[string]string{"palisade.dev/writable-paths": "/var/log"}, "/bin/sh", "-c", "echo ok > /var/log/x && echo $$ > /var/run/x.pid && exec /usr/bin/probe sleep 300")
	cfg["image"] = obj{"image": ref}
	ctrID := crictl(t, e, "create", podID, writeJSON(t, cfg), pod)
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/bin/cat", "/var/cache/log/x"); out != "ok" {
		t.Errorf("a link inside an allowed directory: /var/cache/log/x = %q", out)
	}

	// The same link planted in a volume (another container of the pod can
	// write one there at any time) is refused as well.
	vol := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(vol, "app")); err != nil {
		t.Fatal(err)
	}
	cfg = containerConfig("vol", nil, map[string]string{"palisade.dev/writable-paths": "/var/cache/app"}, "/usr/bin/probe", "sleep", "300")
	cfg["mounts"] = []obj{{"container_path": "/var/cache", "host_path": vol}}
	ctrID = crictl(t, e, "create", podID, writeJSON(t, cfg), pod)
	if r := e.Crictl("start", ctrID); r.Err == nil || !strings.Contains(r.Stderr, "writable path /var/cache/app lies inside the volume mounted at /var/cache") {
		t.Errorf("a writable path inside a volume: %s", r)
	}
	crictl(t, e, "rm", "-f", ctrID)
	assertClean(t, e, ctrID)
}

// A pod cannot forge the annotations containerd's CRI sets: with
// pod_annotations = ['palisade.dev/*'] only palisade's pass, so a pod
// claiming io.kubernetes.cri.sandbox-namespace: kube-system (the scope of
// secrets) or another container name, sandbox or image stays in its own
// namespace: its audit records name the real pod, namespace and container,
// and asking for a secret that only kube-system holds fails.
func TestPodCannotForgeCRIAnnotations(t *testing.T) {
	e := needEnv(t)
	dir := filepath.Join(e.SecretStore, "kubernetes", "kube-system")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const value = "kube-system-only-7d2e"
	if err := os.WriteFile(filepath.Join(dir, "forged-scope"), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	forged := map[string]string{
		"io.kubernetes.cri.sandbox-namespace": "kube-system", "io.kubernetes.cri.sandbox-name": "kube-apiserver",
		"io.kubernetes.cri.sandbox-id": "0000", "io.kubernetes.cri.sandbox-uid": "0000", "io.kubernetes.cri.container-name": "forged",
		"io.kubernetes.cri.image-name": "registry.k8s.io/kube-apiserver:v1", "io.kubernetes.cri.container-type": "sandbox",
	}
	podName := name(t, "pod")
	pod := writeJSON(t, podConfig(t, podName, forged, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	ann := map[string]string{"palisade.dev/secrets": "forged-scope"}
	for k, v := range forged {
		ann[k] = v
	}
	ctrID := crictl(t, e, "create", podID, writeJSON(t, containerConfig("main", nil, ann, "/usr/bin/probe", "sleep", "300")), pod)
	r := e.Crictl("start", ctrID)
	if r.Err == nil {
		out := e.Crictl("exec", ctrID, "/bin/cat", "/run/secrets/forged-scope")
		t.Fatalf("a pod with forged CRI annotations started and asked for kube-system's secret; inside: %q", out.Stdout)
	}
	if strings.Contains(r.Stderr, value) {
		t.Error("the refusal carries the secret's value")
	}
	if !strings.Contains(r.Stderr, "kubernetes/default") {
		t.Errorf("the secret was not looked up in the pod's own scope kubernetes/default: %s", r.Stderr)
	}
	for _, id := range []string{podID, ctrID} {
		rec := harness.FindRecord(auditRecords(t, e, id), audit.EventCreate)
		if rec == nil || rec.Pod != podName || rec.PodNamespace != "default" {
			t.Errorf("create audit record of %s = %+v, want pod %s in namespace default", id, rec, podName)
		}
	}
	if rec := harness.FindRecord(auditRecords(t, e, ctrID), audit.EventCreate); rec != nil && rec.ContainerName != "main" {
		t.Errorf("audit record names container %q, want main", rec.ContainerName)
	}
	if s := hardenedSpec(t, e, podID); s.Annotations["io.kubernetes.cri.sandbox-namespace"] != "default" || s.Annotations["io.kubernetes.cri.container-type"] != "sandbox" {
		t.Errorf("the sandbox's CRI annotations: %v", s.Annotations)
	}
}

// A CRI client cannot put a container into the PID namespace of another
// container (namespace mode TARGET, which the kubelet uses for debug
// containers): containerd's CRI refuses a target in another pod, and
// palisade refuses one in the same pod at StartContainer — a shared PID
// namespace would reach the target's root and secrets through
// /proc/PID/root — and nothing of it is left.
func TestContainerCannotTargetAnotherContainer(t *testing.T) {
	e := needEnv(t)
	// Kubernetes' default: each container has its own PID namespace
	podA := writeJSON(t, podConfig(t, name(t, "a"), nil, nsContainer))
	podAID := runPod(t, e, harness.CRIHandler, podA)
	own := obj{"namespace_options": obj{"pid": nsContainer}}
	victim := crictl(t, e, "create", podAID, writeJSON(t, containerConfig("victim", own, nil, "/usr/bin/probe", "sleep", "300")), podA)
	crictl(t, e, "start", victim)
	sc := obj{"namespace_options": obj{"pid": 3, "target_id": victim}} // TARGET

	podB := writeJSON(t, podConfig(t, name(t, "b"), nil, nsPod))
	podBID := runPod(t, e, harness.CRIHandler, podB)
	if r := e.Crictl("create", podBID, writeJSON(t, containerConfig("intruder", sc, nil, "/usr/bin/probe", "sleep", "300")), podB); r.Err == nil {
		t.Errorf("containerd created a container targeting another pod's: %s", r)
	}

	ctrID := crictl(t, e, "create", podAID, writeJSON(t, containerConfig("debug", sc, nil, "/usr/bin/probe", "sleep", "300")), podA)
	r := e.Crictl("start", ctrID)
	if r.Err == nil {
		out := e.Crictl("exec", ctrID, "/bin/ps")
		t.Fatalf("a container joined another container's PID namespace; ps inside:\n%s", out.Stdout)
	}
	if !strings.Contains(r.Stderr, "joining the pid namespace at /proc/") || !strings.Contains(r.Stderr, "rule namespaces") {
		t.Errorf("StartContainer error: %s", r.Stderr)
	}
	crictl(t, e, "rm", "-f", ctrID)
	assertClean(t, e, ctrID)
}

// Sysctls from the pod spec: a safe namespaced one reaches the pod; one
// outside Kubernetes' safe set (even a namespaced one) and a node-wide one
// refuse the pod at RunPodSandbox with palisade's message, leaving nothing.
func TestPodSysctls(t *testing.T) {
	e := needEnv(t)
	cfg := podConfig(t, name(t, "pod"), nil, nsPod)
	cfg["linux"].(obj)["sysctls"] = map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"}
	podID := runPod(t, e, harness.CRIHandler, writeJSON(t, cfg))
	ctrID := crictl(t, e, "create", podID, writeJSON(t, containerConfig("main", nil, nil, "/usr/bin/probe", "sleep", "300")), writeJSON(t, cfg))
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/bin/cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); out != "80" {
		t.Errorf("the pod's safe sysctl: %q", out)
	}
	for _, k := range []string{"kernel.msgmax", "kernel.core_pattern", "net.ipv4.ip_forward"} {
		podName := name(t, "bad")
		cfg := podConfig(t, podName, nil, nsPod)
		cfg["linux"].(obj)["sysctls"] = map[string]string{k: "1"}
		r := e.Crictl("runp", "--runtime", harness.CRIHandler, writeJSON(t, cfg))
		if r.Err == nil {
			e.Crictl("rmp", "-f", strings.TrimSpace(r.Stdout))
			t.Errorf("a pod with sysctl %s ran", k)
			continue
		}
		if !strings.Contains(r.Stderr, "sysctl "+k+" is not allowed") || !strings.Contains(r.Stderr, "rule sysctls") {
			t.Errorf("sysctl %s: %s", k, r.Stderr)
		}
		for _, id := range strings.Fields(crictl(t, e, "pods", "-q", "--name", podName)) {
			e.Crictl("rmp", "-f", id)
			assertClean(t, e, id)
		}
	}
}

// A user-namespace pod whose mapping reaches host root (host_id 0) is
// refused at RunPodSandbox with palisade's message, and leaves nothing.
func TestUserNamespaceHostRootRefused(t *testing.T) {
	e := needEnv(t)
	podName := name(t, "pod")
	cfg := podConfig(t, podName, nil, nsPod)
	idmap := []obj{{"host_id": 0, "container_id": 0, "length": 65536}}
	cfg["linux"].(obj)["security_context"].(obj)["namespace_options"].(obj)["userns_options"] = obj{"mode": nsPod, "uids": idmap, "gids": idmap}
	r := e.Crictl("runp", "--runtime", harness.CRIHandlerNoOptions, writeJSON(t, cfg))
	if r.Err == nil {
		e.Crictl("rmp", "-f", strings.TrimSpace(r.Stdout))
		t.Fatalf("a pod mapping host root ran")
	}
	if !strings.Contains(r.Stderr, "host id 0 (root)") || !strings.Contains(r.Stderr, "palisade: container k8s.io/") {
		t.Errorf("RunPodSandbox error: %s", r.Stderr)
	}
	for _, id := range strings.Fields(crictl(t, e, "pods", "-q", "--name", podName)) {
		e.Crictl("rmp", "-f", id)
		assertClean(t, e, id)
	}
}

// A pod's Localhost profile written for nodes of the other architecture
// (its list omits this node's) still applies here, as runc applies it:
// runc's filters always hold the native architecture. The pod runs and its
// denial of mkdir holds.
func TestPodSeccompProfileOtherArch(t *testing.T) {
	e := needEnv(t)
	other := `"SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"`
	if runtime.GOARCH == "arm64" {
		other = `"SCMP_ARCH_X86_64","SCMP_ARCH_X86"`
	}
	sc := localhostProfile(t, `{"defaultAction":"SCMP_ACT_ALLOW","architectures":[`+other+`],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`)
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	ctrID := crictl(t, e, "create", podID, writeJSON(t, containerConfig("main", sc, nil, "/usr/bin/probe", "sleep", "300")), pod)
	crictl(t, e, "start", ctrID)
	if r := e.Crictl("exec", ctrID, "/bin/mkdir", "/tmp/made"); r.Err == nil || !strings.Contains(r.Stdout+r.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under a pod profile that denies it: %s", r)
	}
}

// A pod that replaces the masked and read-only /proc paths with its own
// list (what procMount: Unmasked does) still gets palisade's minimum, and a
// pod asking for a host device (/dev/kmsg, the kernel log) is refused at
// StartContainer.
func TestPodProcUnmaskedAndHostDevice(t *testing.T) {
	e := needEnv(t)
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	sc := obj{"masked_paths": []string{"/proc/palisade-none"}, "readonly_paths": []string{"/proc/palisade-none"}}
	ctrID := crictl(t, e, "create", podID, writeJSON(t, containerConfig("unmasked", sc, nil, "/usr/bin/probe", "sleep", "300")), pod)
	crictl(t, e, "start", ctrID)
	mounts := crictl(t, e, "exec", ctrID, "/bin/cat", "/proc/self/mounts")
	for _, want := range []string{" /proc/keys ", " /proc/timer_list ", " /proc/sys proc ro,", " /proc/irq proc ro,"} {
		if !strings.Contains(mounts, want) {
			t.Errorf("no %q among the container's mounts: /proc is unmasked", want)
		}
	}

	dev := containerConfig("kmsg", nil, nil, "/usr/bin/probe", "sleep", "300")
	dev["devices"] = []obj{{"container_path": "/dev/kmsg", "host_path": "/dev/kmsg", "permissions": "rw"}}
	devID := crictl(t, e, "create", podID, writeJSON(t, dev), pod)
	r := e.Crictl("start", devID)
	if r.Err == nil {
		t.Errorf("a container with the host's /dev/kmsg started")
	} else if !strings.Contains(r.Stderr, "palisade: container k8s.io/"+devID) || !strings.Contains(r.Stderr, "rule devices") {
		t.Errorf("StartContainer error: %s", r.Stderr)
	}
	crictl(t, e, "rm", "-f", devID)
	assertClean(t, e, devID)
}

// A pod asking for RuntimeDefault (containerd's own filter, what most pods
// get) runs ordinary programs under the combined filter: a shell forks, a
// Go program starts threads; palisade's denials still hold.
func TestPodRuntimeDefaultSeccomp(t *testing.T) {
	e := needEnv(t)
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	sc := obj{"seccomp": obj{"profile_type": 1}} // RuntimeDefault
	ctrID := crictl(t, e, "create", podID, writeJSON(t, containerConfig("main", sc, nil, "/usr/bin/probe", "sleep", "300")), pod)
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/bin/sh", "-c", "echo $(echo forked) && mkdir /tmp/d && echo ok"); out != "forked\nok" {
		t.Errorf("a shell under RuntimeDefault ∩ palisade: %q", out)
	}
	if !tryOK(t, e, ctrID, "threads", "8") {
		t.Error("starting threads failed under RuntimeDefault ∩ palisade")
	}
	if tryOK(t, e, ctrID, "syscall", "mount") || tryOK(t, e, ctrID, "unshare") {
		t.Error("a call palisade denies succeeded")
	}
}

// A Localhost profile too large for palisade to read (its spec would pass
// the shim's 4 MiB bound) refuses the container with palisade's message
// naming the container, not a parser's, and nothing is left.
func TestPodSeccompProfileTooLarge(t *testing.T) {
	e := needEnv(t)
	var b strings.Builder
	b.WriteString(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[`)
	for i := range 60000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":` + strconv.Itoa(i+100) + `,"op":"SCMP_CMP_EQ"}]}`)
	}
	b.WriteString("]}")
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	ctrID := crictl(t, e, "create", podID, writeJSON(t, containerConfig("big", localhostProfile(t, b.String()), nil, "/usr/bin/probe", "sleep", "300")), pod)
	r := e.Crictl("start", ctrID)
	if r.Err == nil {
		t.Errorf("a container with a %d-byte pod seccomp profile started", b.Len())
	} else if !strings.Contains(r.Stderr, "palisade: container k8s.io/"+ctrID) || !strings.Contains(r.Stderr, "larger than 4194304 bytes") {
		t.Errorf("StartContainer error: %.2000s", r.Stderr)
	}
	crictl(t, e, "rm", "-f", ctrID)
	assertClean(t, e, ctrID)
}
