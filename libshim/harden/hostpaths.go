package harden

import (
	"path/filepath"
	"strings"

	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/seccompagent"
)

// ProtectedPath is a host path no bind mount may expose, and why.
type ProtectedPath struct {
	Path string
	Why  string
}

// CRI annotations that place a container in a pod.
const (
	annotationSandboxID  = "io.kubernetes.cri.sandbox-id"
	annotationSandboxUID = "io.kubernetes.cri.sandbox-uid"
)

// criDir is containerd's CRI plugin directory below its root and state.
const criDir = "io.containerd.grpc.v1.cri"

// taskDir is the directory of containerd's task bundles below its state:
// STATE/io.containerd.runtime.v2.task/NAMESPACE/ID.
const taskDir = "io.containerd.runtime.v2.task"

// ContainerdState derives containerd's state directory from a bundle path,
// or "" when the bundle is not laid out by containerd.
func ContainerdState(bundle string) string {
	if bundle == "" {
		return ""
	}
	dir := filepath.Dir(filepath.Dir(filepath.Clean(bundle)))
	if filepath.Base(dir) != taskDir {
		return ""
	}
	return filepath.Dir(dir)
}

// ProtectedPaths are the host paths no bind mount may expose on this node:
// the built-in list, then what this shim's own run reveals (containerd's
// sockets, root, state and shim socket directory; runc's root), palisade's
// own directories (admin configs, profiles, audit file, secret store and
// mounts), the kubelet's root, and the admin's additions.
func ProtectedPaths(cfg *config.Config, node Node) []ProtectedPath {
	out := make([]ProtectedPath, 0, len(sensitiveHostPaths)+16)
	for _, p := range sensitiveHostPaths {
		out = append(out, ProtectedPath{p, "a host system path or container runtime state"})
	}
	add := func(p, why string) {
		if filepath.IsAbs(p) && filepath.Clean(p) != "/" {
			out = append(out, ProtectedPath{filepath.Clean(p), why})
		}
	}
	for _, a := range node.Addresses {
		add(strings.TrimPrefix(a, "unix://"), "containerd's socket")
	}
	add(node.ContainerdRoot, "containerd's root directory (images, snapshots, metadata)")
	for _, r := range node.SnapshotterRoots {
		add(r, "a containerd snapshotter's directory")
	}
	for _, d := range node.ContainerdDirs {
		add(d, "a directory of one of containerd's plugins")
	}
	add(ContainerdState(node.Bundle), "containerd's state directory (bundles, shim sockets)")
	add(node.SocketDir, "the directory of the shim sockets")
	runcRoot := cfg.Runc.Root
	if runcRoot == "" {
		runcRoot = "/run/containerd/runc"
	}
	add(runcRoot, "runc's state directory")
	for _, d := range config.TrustedDirs() {
		add(d, "a directory of palisade admin configs")
	}
	add(cfg.ProfilesDir, "palisade's profiles directory")
	add(cfg.Audit.File, "palisade's audit file")
	add(cfg.Secrets.Store, "palisade's secret store")
	add(cfg.Secrets.MountRoot, "where palisade mounts containers' secrets")
	add(seccompagent.Dir, "the sockets of palisade's seccomp agents (alert mode)")
	add(cfg.Node.KubeletRoot, "the kubelet's root directory (pod volumes, service account tokens, credentials)")
	for _, p := range cfg.Node.ProtectedPaths {
		add(p, "protected by the node administrator (node.protected_paths)")
	}
	return out
}

// carveOuts are the directories below protected paths a container may
// bind-mount from: in a CRI namespace, its own pod's directory below the
// kubelet's root (volumes, termination log, etc-hosts) and its own sandbox's
// directories below containerd's CRI root and state (hosts, resolv.conf,
// hostname, /dev/shm) and its image volumes. Never another pod's.
func carveOuts(ns string, cfg *config.Config, node Node, annotations map[string]string) []string {
	if !contains(cfg.Node.CRINamespaces, ns) {
		return nil
	}
	var out []string
	if uid := annotations[annotationSandboxUID]; validComponent(uid) && cfg.Node.KubeletRoot != "" {
		out = append(out, filepath.Join(cfg.Node.KubeletRoot, "pods", uid))
	}
	if sid := annotations[annotationSandboxID]; validComponent(sid) {
		for _, base := range []string{node.ContainerdRoot, ContainerdState(node.Bundle)} {
			if base != "" {
				out = append(out, filepath.Join(base, criDir, "sandboxes", sid))
			}
		}
		// the pod's image volumes (Kubernetes ImageVolume): containerd mounts
		// each image read-only at <state>/…cri/image-volumes/<sandbox>/<image>
		if st := ContainerdState(node.Bundle); st != "" {
			out = append(out, filepath.Join(st, criDir, "image-volumes", sid))
		}
	}
	return out
}

// validComponent reports whether s can be one path component.
func validComponent(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00") && len(s) <= 255
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
