package harden

import (
	"fmt"
	"strings"

	"palisade.dev/palisade/libshim/caps"
)

// stepDocs says what each pipeline step does, in the words of
// docs/profiles.md, whose numbered list is generated from the pipeline's
// order and these texts (TestPipelineDocumented). Facts that live in data
// (paths, capability sets) are read from that data, not restated.
func stepDocs() map[string]string {
	code := func(l []string) string { return "`" + strings.Join(l, " ") + "`" }
	return map[string]string{
		"fields": "every field of the spec has a named rule ([threat-model.md](threat-model.md)): allowed as is, " +
			"handled by one of the steps below, decided here, or refused. A field with a value and no rule refuses the " +
			"container. Decided here: `linux.netDevices`, `linux.intelRdt`, the Windows/Solaris/VM/z/OS sections, " +
			"real-time CPU time, real-time or deadline scheduling and negative nice, the real-time I/O class, personality " +
			"flags and shared root propagation are refused; resource limits may not exceed the shim's own; `oomScoreAdj` " +
			"is raised to the shim's own when lower; cgroup v2 `unified` keys must belong to the " +
			strings.Join(unifiedPrefixes, " ") + " controllers; `cgroupsPath` must name a cgroup that does not exist yet; " +
			fmt.Sprintf("annotations are bounded to %d KiB. Exec processes get the process rules.", maxAnnotations>>10),
		"process-required": "a spec needs a process and a root. The root must be the bundle's own (relative paths stay " +
			"inside the bundle) or, when absolute (`ctr run --rootfs`, `palisade run`), not a host system path or runtime " +
			"state; user-namespace mappings onto host root are refused.",
		"rootfs-mounts": "the task's root filesystem mounts (Create's `Rootfs`) must be a snapshotter's: an overlay whose " +
			"layers are `SNAPSHOTTER/snapshots/ID/fs` (work directory `…/ID/work`) or a bind of one `…/ID/fs`, with only the " +
			"options snapshotters use and no comma inside a value; `SNAPSHOTTER` is one of containerd's snapshotter " +
			"directories, learned from containerd itself. A bind of `/` or any other host directory is refused.",
		"images": "only images the admin config's `images.allowed` and the profile's `images.allowed` approve (where set: " +
			"`REGISTRY/REPOSITORY`, `PREFIX/*` or `*`), pinned by digest where `require_digest` says so; the reference comes from " +
			"CRI's annotation in a CRI namespace, else from containerd's container record. Alert mode records instead.",
		"privileged": "a spec that grants every host capability or every device (`--privileged`, `privileged: true`) is " +
			"refused. No profile allows it.",
		"hooks": "OCI hooks run on the host as root; refused unless their path is in the admin's `allowed_hooks`.",
		"namespaces": "private " + strings.Join(requiredNamespaces, ", ") + " namespaces. A missing one (host networking, " +
			"host PID) or a path to the host's own namespace is refused unless the profile allows sharing it. Any other " +
			"namespace path is joined only if it is a namespace of the container's own pod sandbox (in a CRI namespace: its " +
			"process's, or one containerd pinned in that sandbox's `pinned-namespaces` directory, as for a pod's user " +
			"namespace), a " +
			"network namespace pinned by CNI (`node.netns_dirs`, containerd's CRI state `netns`), or in a directory of the " +
			"profile's `namespaces.join_allowed`; it must be a namespace file of that type.",
		"lsm-labels": "an AppArmor profile `unconfined` or an SELinux label of an unconfined type (`spc_t`, " +
			"`unconfined_t`, …) is refused, also for exec processes; the container gets its SELinux labels at a reserved " +
			"MCS level ([lsm.md](lsm.md)).",
		"user": "root becomes the profile's user unless the profile allows root; group 0 is removed from the " +
			"supplementary groups.",
		"capabilities": "the container keeps the capabilities of its spec that the profile allows, plus those asked for " +
			"with `palisade.dev/cap-add` (also checked against the profile). The runtime's usual default set (" +
			"`" + caps.Short(caps.RuntimeDefault) + "`) is clamped to the profile silently, with an audit record, when " +
			"the spec holds most of it (it came from that default, minus what the client dropped); a small set was chosen " +
			"by the client (Kubernetes `drop: [ALL]`, `add: [NET_RAW]`), and a capability in it that the profile does not " +
			"allow refuses the container instead of vanishing. Any other capability outside the profile refuses the " +
			"container. Bounding, effective and permitted are the same set. A non-root process gets the capabilities it " +
			"asked for with `palisade.dev/cap-add` as inheritable and ambient too, so it can use them after `execve`; " +
			"runtime defaults that were merely kept are not made ambient. Root gets no inheritable set.",
		"no-new-privileges": "always on.",
		"seccomp": "the profile's seccomp filter, resolved for the architecture (native ABI only unless " +
			"`seccomp.compat_abi = true`: 32-bit and x32 system calls are killed) and the final capability set; a filter " +
			"already in the spec (a pod's Localhost or RuntimeDefault profile) is combined with it, the stricter verdict " +
			"winning per system call ([seccomp.md](seccomp.md)). In alert mode, the calls the filter denies outright " +
			"are handed to the shim's seccomp agent, which records them per container and lets them run ([rollout.md](rollout.md)).",
		"secrets": "requested secrets are planned for a per-container tmpfs, `palisade-secret:` references and " +
			"`palisade.dev/secret-env` variables move out of the environment into files, other secret-looking variables " +
			"are audited or refused ([secrets.md](secrets.md)).",
		"readonly-rootfs": "the root filesystem is read-only unless the profile says otherwise.",
		"tmpfs": "the profile's tmpfs mounts. A bind mount (volume) the container already has at a tmpfs path is kept; " +
			"another mount there is replaced. They are placed before any mount below them, so they never hide a volume or " +
			"a secret. Once runc has mounted them, before the container starts, each must have landed at its own path, at another " +
			"of the profile's tmpfs paths (`/var/run` → `/run`) or, for `palisade.dev/writable-paths`, inside " +
			"`filesystem.writable_allowed`: an image whose `/tmp` or `/var/lib` links to `/etc` is refused. A writable path " +
			"inside a volume is refused.",
		"exec-allowlist": "when the profile (or `palisade.dev/exec-allow`) has a list: the entrypoint is resolved inside " +
			"the image and checked; the process starts through `palisade-init`, which confines it with Landlock, mounted " +
			"last so nothing can shadow it ([exec.md](exec.md)).",
		"mounts": "bind mounts of protected host paths are refused, and of any path that contains one (`/`, `/var`, " +
			"`/run`): " + code(sensitiveHostPaths) + ", and what the shim derives from the node it runs on: containerd's " +
			"sockets, root (and every plugin directory containerd reports), state (from the bundle's path), the shim socket " +
			"directory, runc's root, palisade's admin config directories, profiles directory, audit file, secret store and " +
			"secrets mounts, the kubelet's root, and the admin's `node.protected_paths`. Below the kubelet's root and " +
			"containerd's CRI directories a pod's container may bind only its own pod's directories (its sandbox's, its image " +
			"volumes'). Bind sources are " +
			"resolved once (symlinks on the host; a path whose last parts do not exist yet is judged where its existing part leads, and a symlink that leads nowhere is refused) and the mount uses the resolved path. Mount options are judged by their " +
			"effect as runc applies them: every bind mount and tmpfs ends up `nosuid,nodev` (options that would clear " +
			"them, `suid`, `dev`, `rsuid`, `rdev`, are removed), proc/sysfs/cgroup/mqueue also `noexec`, `/sys` and " +
			"cgroup filesystems read-only; `remount`, `shared`/`rshared` propagation and id-mapped mounts are refused (except a mount mapped exactly as the " +
			"container's own user namespace, as CRI mounts a `hostUsers: false` pod's files); " +
			code(kernelMountTypes) + " are the only other filesystems, each only at its usual place (a second procfs " +
			"elsewhere would escape the read-only `/proc/sys`).",
		"apparmor": "the container's AppArmor profile, generated from the final capabilities, writable mounts and exec " +
			"allow-list ([lsm.md](lsm.md)).",
		"masked-paths": "containerd's defaults are always masked (a spec that drops them gets them back): " +
			code(minimumMaskedPaths) + "; plus the profile's.",
		"readonly-paths": "containerd's defaults are always read-only: " + code(minimumReadonlyPaths) + "; plus the profile's.",
		"devices": "device nodes beyond the profile's list are refused, and an allowed one must carry the host node's " +
			"real type and numbers; the device cgroup denies everything but null, zero, full, random, urandom, tty, " +
			"console, ptmx and pts.",
		"sysctls": "only Kubernetes' safe namespaced set (" + code(safeSysctls) + ") and the profile's list.",
		"pids-limit": "the profile's limit, or the spec's or `palisade.dev/pids-limit`'s when lower; cgroup v2 `unified` " +
			"settings for the pids controller are refused (at create and update).",
	}
}

// PipelineDoc renders the pipeline as docs/profiles.md lists it.
func PipelineDoc() string {
	docs := stepDocs()
	var b strings.Builder
	var proc []string
	for i, st := range pipeline {
		fmt.Fprintf(&b, "%d. **%s** — %s\n", i+1, st.name, docs[st.name])
		if st.process != nil {
			proc = append(proc, "**"+st.name+"**")
		}
	}
	fmt.Fprintf(&b, "\nExec processes go through the steps that have a process part, with the decisions made when the "+
		"container was created: %s.\n", strings.Join(proc, ", "))
	return b.String()
}
