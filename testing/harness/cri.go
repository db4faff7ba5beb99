package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CRIHandler is the CRI runtime handler (RuntimeClass handler) that runs pods
// under palisade; "runc" runs them under the stock runc shim.
const CRIHandler = "palisade"

// CRIHandlerNoOptions runs pods under palisade with no runtime options: the
// shim's default admin config (the environment's). Pods with their own user
// namespace need it: containerd then sends runc's options type (IoUid/IoGid).
const CRIHandlerNoOptions = "palisade-no-options"

// criConfig is the top-level part of containerd's config about CRI: without
// the CRI option, its plugins are disabled, and the tests drive containerd
// through its own API.
func (e *Env) criConfig() string {
	if e.cri {
		return ""
	}
	return `# No CRI here: these tests drive containerd through its own API.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox"]`
}

// criTables configures the CRI plugin as contrib/containerd/palisade-runtime.toml
// does on a node: a "palisade" handler whose options name the admin config and
// which passes palisade.dev/* annotations, plus the stock "runc" handler for
// comparison. The sandbox image is the locally built pause image; pods get
// their network from Debian's CNI plugins (ptp: a veth per pod, nothing left
// on the host when the pod's netns goes), with network namespaces pinned
// under containerd's state directory; restrict_oom_score_adj because this VM
// lacks CAP_SYS_RESOURCE.
func (e *Env) criTables() string {
	if !e.cri {
		return ""
	}
	return fmt.Sprintf(`
[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q
%s[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = %q
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        Root = %q
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s]
      runtime_type = %q
      pod_annotations = ['palisade.dev/*']
      container_annotations = ['palisade.dev/*']
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s.options]
        ConfigPath = %q
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s]
      runtime_type = %q
      pod_annotations = ['palisade.dev/*']
      container_annotations = ['palisade.dev/*']
`, PauseRef, e.registryConfig(), CNIBinDir, filepath.Join(e.Dir, "cni", "conf"),
		filepath.Join(e.Dir, "runc-cri"), CRIHandler, Runtime, CRIHandler, e.AdminConfig, CRIHandlerNoOptions, Runtime)
}

// registryConfig points CRI's pulls at the hosts.toml files of
// Options.RegistryHosts, when set.
func (e *Env) registryConfig() string {
	if e.registryHosts == "" {
		return ""
	}
	return fmt.Sprintf("  [plugins.'io.containerd.cri.v1.images'.registry]\n    config_path = %q\n", e.registryHosts)
}

// CNIBinDir holds the CNI plugins of Debian's containernetworking-plugins.
const CNIBinDir = "/usr/lib/cni"

// cniConfig is the pods' network: point-to-point veths with addresses from a
// /24 picked by the test process's PID, so that parallel environments rarely
// meet, IPAM state kept in the environment, and hostPort mappings (portmap,
// iptables rules only for pods that ask for a host port).
func (e *Env) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "palisade-test",
  "plugins": [
    {"type": "ptp", "ipMasq": false, "ipam": {"type": "host-local", "subnet": "10.199.%d.0/24", "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`, os.Getpid()%250, filepath.Join(e.Dir, "cni", "ipam"))
}

// prepareCRI checks CRI's tools and writes the CNI config, before containerd
// starts.
func (e *Env) prepareCRI() error {
	// a pod's user namespace (hostUsers: false) must reach its rootfs
	// below the environment: traversable, not listable, as /run/containerd is
	if err := os.Chmod(e.Dir, 0o711); err != nil {
		return err
	}
	for _, p := range []string{e.tools.Crictl, filepath.Join(CNIBinDir, "ptp")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("harness: %s is missing: run testing/setup.sh (make deps) first", p)
		}
	}
	conf := filepath.Join(e.Dir, "cni", "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(conf, "10-palisade-test.conflist"), []byte(e.cniConfig()), 0o644)
}

// startCRI imports the pause image and waits until the CRI plugin answers.
func (e *Env) startCRI() error {
	if r := e.Ctr("images", "import", e.build.PauseImage); r.Err != nil {
		return fmt.Errorf("harness: import pause image: %s", r)
	}
	deadline := time.Now().Add(20 * time.Second)
	var r Result
	for time.Now().Before(deadline) {
		if r = e.Crictl("version"); r.Err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("harness: CRI did not answer within 20s: %s", r)
}

// Crictl runs crictl against the private containerd's CRI service; the
// command gets at most two minutes.
func (e *Env) Crictl(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	endpoint := "unix://" + e.Address
	return e.runTool(ctx, "crictl", e.tools.Crictl, append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "60s"}, args...))
}

// removePods stops and removes every pod sandbox through CRI, so that CRI's
// own state (sandbox mounts, shims) goes before containerd stops.
func (e *Env) removePods() {
	if e.cri {
		e.Crictl("rmp", "--all", "--force")
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// Build returns what the environment runs (binaries, images, the shim's
// default config).
func (e *Env) Build() *Build { return e.build }
