package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/profiles"
	"palisade.dev/palisade/seccomp"
)

func explainCmd(g *globals) *cobra.Command {
	var f policyFlags
	var lsmHost lsmHostFlag
	var container, namespace, address string
	cmd := &cobra.Command{
		Use:   "explain (PROFILE | --container ID)",
		Short: "Say in plain words what a profile allows and denies, or what palisade decided for a container",
		Example: `  palisade explain restricted
  palisade explain locked --annotation palisade.dev/exec-allow=/app/server
  palisade explain --container web-1 -n default
  palisade explain --container 3f2a... -n k8s.io --address /run/containerd/containerd.sock`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if container != "" {
				return explainContainer(cmd, g, &f, container, namespace, address)
			}
			if len(args) != 1 {
				return &exitError{ExitUsage, fmt.Errorf("name a profile, or a container with --container")}
			}
			f.profile = args[0]
			pol, cfg, err := resolvePolicy(&f, nil)
			if err != nil {
				return err
			}
			host, err := lsmHost.host()
			if err != nil {
				return err
			}
			sections := append(explainProfile(pol), lsmSection(cfg, host))
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), sections)
			}
			for _, s := range sections {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", s.Title)
				for _, l := range s.Lines {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", l)
				}
			}
			return nil
		},
	}
	f.add(cmd)
	lsmHost.add(cmd)
	cmd.Flags().StringVar(&container, "container", "", "explain the decisions recorded for this container")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the container's containerd namespace")
	cmd.Flags().StringVar(&address, "address", "", "containerd socket: find the container's admin config (and so its audit file) through containerd")
	return cmd
}

// Section is one part of a profile's explanation.
type Section struct {
	Title string   `json:"title"`
	Lines []string `json:"lines"`
}

func explainProfile(pol *policy.Policy) []Section {
	p := pol.Profile
	var out []Section
	add := func(title string, lines ...string) { out = append(out, Section{title, lines}) }
	add(fmt.Sprintf("Profile %q (%s)", p.Name, p.Source), p.Description)

	if p.User.AllowRoot {
		add("User", "Processes may run as root (uid 0).")
	} else {
		add("User", fmt.Sprintf("A process that would run as root runs as %d:%d instead; group 0 is removed from its groups.", p.User.UID, p.User.GID))
	}
	capLines := []string{"Allowed: " + caps.Short(p.Capabilities.Allowed) + "."}
	var dropped []string
	for _, c := range caps.RuntimeDefault {
		if !contains(p.Capabilities.Allowed, c) {
			dropped = append(dropped, c)
		}
	}
	capLines = append(capLines,
		"Of the runtime's default set, these are dropped (and audited): "+caps.Short(dropped)+".",
		"Any other capability a container asks for refuses it. Extra allowed ones can be requested with "+policy.AnnotationCapAdd+".",
		"no_new_privs is always set: setuid programs and file capabilities grant nothing.",
		"--privileged is always refused.")
	add("Capabilities", capLines...)

	fs := []string{}
	if p.Filesystem.WritableRootfs {
		fs = append(fs, "The root filesystem is writable.")
	} else {
		fs = append(fs, "The root filesystem is read-only.")
	}
	for _, t := range p.Filesystem.Tmpfs {
		exec := "noexec"
		if t.Exec {
			exec = "exec allowed"
		}
		fs = append(fs, fmt.Sprintf("%s is a %s tmpfs (mode %s, nosuid, nodev, %s).", t.Path, t.Size, t.Mode, exec))
	}
	facts := harden.FixedFacts()
	fs = append(fs,
		"Bind mounts of host system paths ("+strings.Join(facts.ProtectedPaths, ", ")+"), of container runtime sockets and state, and of palisade's own directories are refused; other bind mounts get nosuid,nodev.",
		"/sys is read-only; always masked: "+strings.Join(facts.MaskedPaths, ", ")+"; always read-only: "+strings.Join(facts.ReadonlyPaths, ", ")+".")
	if len(p.Paths.Masked) > 0 {
		fs = append(fs, "Also masked: "+strings.Join(p.Paths.Masked, ", ")+".")
	}
	if len(p.Paths.Readonly) > 0 {
		fs = append(fs, "Also read-only: "+strings.Join(p.Paths.Readonly, ", ")+".")
	}
	add("Filesystem", fs...)

	add("Limits", fmt.Sprintf("At most %d processes and threads (PID cgroup); a workload may ask for fewer with %s.", pol.PidsLimit, policy.AnnotationPidsLimit))
	ns := "The container gets its own " + strings.Join(facts.Namespaces, ", ") + " namespaces; sharing the host's is refused."
	if len(p.Namespaces.HostAllowed) > 0 {
		ns = "The container may share these host namespaces: " + strings.Join(p.Namespaces.HostAllowed, ", ") + "; the others are its own."
	}
	add("Namespaces", ns)
	dev := []string{"Only the standard devices (" + strings.Join(facts.Devices, ", ") + ") are accessible."}
	if len(p.Devices.Allowed) > 0 {
		dev = append(dev, "Also allowed: "+strings.Join(p.Devices.Allowed, ", ")+".")
	}
	add("Devices", dev...)
	sys := "Only Kubernetes' safe namespaced sysctls (" + strings.Join(facts.SafeSysctls, ", ") + ") may be set."
	if len(p.Sysctls.Allowed) > 0 {
		sys += " Also: " + strings.Join(p.Sysctls.Allowed, ", ") + "."
	}
	add("Sysctls", sys)

	if pol.Seccomp == nil {
		add("Seccomp", "No seccomp filter (unconfined, allowed by the node administrator).")
	} else {
		lines := []string{fmt.Sprintf("Profile %s: syscalls outside its allow-list fail with EPERM.", pol.SeccompName)}
		if pol.SeccompName == seccomp.DefaultName {
			lines = append(lines, "Denied whatever the capabilities:")
			for _, d := range seccomp.Deviations {
				lines = append(lines, fmt.Sprintf("  %s: %s", strings.Join(d.Names, ", "), d.Why))
			}
			lines = append(lines, "clone with namespace flags is denied; clone3 answers ENOSYS so that libc falls back to clone.")
		}
		if p.Seccomp.CompatABI {
			lines = append(lines, "Compat ABIs admitted (seccomp.compat_abi = true): 32-bit programs (x86 and x32 on amd64, AArch32 on arm64) run, their system calls under the same rules.")
		} else {
			lines = append(lines, "Native ABI only: a system call made through a compat ABI (32-bit x86 or x32 on amd64, AArch32 on arm64) kills the calling thread (SIGSYS); 32-bit programs cannot run. seccomp.compat_abi = true admits them.")
		}
		if len(p.Seccomp.Selectable) > 0 {
			lines = append(lines, "A workload may select instead: "+strings.Join(p.Seccomp.Selectable, ", ")+".")
		}
		add("Seccomp", lines...)
	}

	switch {
	case pol.Exec == nil:
		add("Executables", "No allow-list: any program in the image may run.")
	case pol.Exec.Mode == profiles.ExecEntrypointOnly:
		add("Executables", "Only the container's own entrypoint may be executed, by any process in it (enforced by the kernel with Landlock).")
	case pol.Exec.Mode == profiles.ExecAudit:
		add("Executables", "Audit mode: programs outside "+strings.Join(pol.Exec.Allow, ", ")+" are recorded, not blocked.")
	default:
		add("Executables", "Only these may be executed, by any process in the container (enforced by the kernel with Landlock): "+strings.Join(pol.Exec.Allow, ", ")+".")
	}
	add("Secrets", fmt.Sprintf("Secrets appear as read-only files in %s (tmpfs, never in the environment). Secret-looking environment variables: %s.", p.Secrets.Target, p.Secrets.Env))
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// explainContainer prints the audit receipt of a container: every decision
// recorded for it.
func explainContainer(cmd *cobra.Command, g *globals, f *policyFlags, id, ns, address string) error {
	cfgPath := f.config
	if address != "" {
		p, err := configPathFromContainerd(cmd.Context(), address, ns, id)
		if err != nil {
			return &exitError{ExitFailed, err}
		}
		if p != "" {
			cfgPath = p
		}
	}
	cfg, err := config.Resolve(cfgPath)
	if err != nil {
		return &exitError{ExitFailed, err}
	}
	if cfg.Audit.File == "" {
		return &exitError{ExitFailed, fmt.Errorf("the admin config %s keeps no audit file (audit.file is empty); see the shim log", cfg.Source)}
	}
	recs, err := readAudit(cfg.Audit.File, ns, id)
	if err != nil {
		return &exitError{ExitFailed, err}
	}
	if len(recs) == 0 {
		return &exitError{ExitFailed, fmt.Errorf("no audit record for container %s/%s in %s", ns, id, cfg.Audit.File)}
	}
	if g.output == "json" {
		return g.json(cmd.OutOrStdout(), recs)
	}
	w := cmd.OutOrStdout()
	set, _ := profiles.Load(cfg.ProfilesDir) // without profiles the hint names fewer directories
	if hint := readOnlyRootHint(recs, set); hint != "" {
		fmt.Fprintln(w, hint)
	}
	for _, r := range recs {
		fmt.Fprintf(w, "%s %s %s/%s", r.Time.Format("2006-01-02T15:04:05Z07:00"), r.Event, r.Namespace, r.Container)
		if r.ExecID != "" {
			fmt.Fprintf(w, " exec %s", r.ExecID)
		}
		fmt.Fprintf(w, ": %s", r.Result)
		if r.Profile != "" {
			fmt.Fprintf(w, " under profile %s", r.Profile)
		}
		if r.Exit != nil {
			fmt.Fprintf(w, "; it had exited with status %d at %s", r.Exit.Status, r.Exit.At.Format("2006-01-02T15:04:05Z07:00"))
		}
		fmt.Fprintln(w)
		if r.Reason != "" {
			fmt.Fprintf(w, "  reason: %s\n", r.Reason)
		}
		for _, c := range r.Syscalls {
			fmt.Fprintf(w, "  system call %s (%s) the profile would deny: %d times, %s to %s\n", c.Name, c.Arch, c.Count, c.First.Format(time.TimeOnly), c.Last.Format(time.TimeOnly))
		}
		for _, x := range r.Executables {
			fmt.Fprintf(w, "  program %s", commentLine(x.Path)) // as the workload named it
			if x.Resolved != "" && x.Resolved != x.Path {
				fmt.Fprintf(w, " (%s)", commentLine(x.Resolved))
			}
			fmt.Fprintf(w, " not on the exec allow-list: %d times, %s to %s\n", x.Count, x.First.Format(time.TimeOnly), x.Last.Format(time.TimeOnly))
		}
		if r.Dropped > 0 {
			fmt.Fprintf(w, "  %d more calls not attributed (the record's table was full)\n", r.Dropped)
		}
		if len(r.Changes) > 0 {
			if err := changeTable(indentWriter{w}, r.Profile, r.Changes); err != nil {
				return err
			}
		}
	}
	return nil
}

type indentWriter struct{ w io.Writer }

func (i indentWriter) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		if _, err := io.WriteString(i.w, "  "+l); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func readAudit(path, ns, id string) ([]audit.Record, error) {
	all, _, err := readAuditFile(path)
	return slices.DeleteFunc(all, func(r audit.Record) bool { return r.Namespace != ns || r.Container != id }), err
}

// configPathFromContainerd finds the admin config a container was created
// with: its runtime options' ConfigPath, as containerd stores them.
func configPathFromContainerd(ctx context.Context, address, ns, id string) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := containerd.New(address, containerd.WithDefaultNamespace(ns))
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		return "", fmt.Errorf("container %s/%s: %w", ns, id, err)
	}
	info, err := ctr.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Runtime.Options == nil {
		return "", nil
	}
	v, err := typeurl.UnmarshalAny(info.Runtime.Options)
	if err != nil {
		return "", nil
	}
	if o, ok := v.(*runtimeoptions.Options); ok {
		return o.ConfigPath, nil
	}
	return "", nil
}
