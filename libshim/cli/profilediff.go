package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"palisade.dev/palisade/profiles"
)

// difference is one way profile B differs from profile A, in words.
type difference struct {
	Field  string `json:"field"`
	Change string `json:"change"`
	Looser bool   `json:"looser"` // B grants more than A here
}

// diffProfiles says, field by field, how b differs from a.
func diffProfiles(a, b *profiles.Profile) []difference {
	var out []difference
	add := func(field string, looser bool, format string, args ...any) {
		out = append(out, difference{field, fmt.Sprintf(format, args...), looser})
	}
	lists := []struct {
		field, what string
		a, b        []string
	}{
		{"capabilities.allowed", "capability", a.Capabilities.Allowed, b.Capabilities.Allowed},
		{"exec.allow", "executable", a.Exec.Allow, b.Exec.Allow},
		{"namespaces.host_allowed", "host namespace", a.Namespaces.HostAllowed, b.Namespaces.HostAllowed},
		{"namespaces.join_allowed", "joinable namespace directory", a.Namespaces.JoinAllowed, b.Namespaces.JoinAllowed},
		{"devices.allowed", "device", a.Devices.Allowed, b.Devices.Allowed},
		{"sysctls.allowed", "sysctl", a.Sysctls.Allowed, b.Sysctls.Allowed},
		{"seccomp.selectable", "selectable seccomp profile", a.Seccomp.Selectable, b.Seccomp.Selectable},
		{"paths.masked", "masked path", b.Paths.Masked, a.Paths.Masked}, // more masked paths is tighter
		{"paths.readonly", "read-only path", b.Paths.Readonly, a.Paths.Readonly},
	}
	for _, l := range lists {
		for _, x := range l.b {
			if !slices.Contains(l.a, x) {
				add(l.field, true, "%s %s: B allows it, A does not", l.what, x)
			}
		}
		for _, x := range l.a {
			if !slices.Contains(l.b, x) {
				add(l.field, false, "%s %s: A allows it, B does not", l.what, x)
			}
		}
	}
	if a.Images.Allowed != nil || b.Images.Allowed != nil {
		if !slices.Equal(a.Images.Allowed, b.Images.Allowed) {
			add("images.allowed", len(b.Images.Allowed) == 0 && len(a.Images.Allowed) > 0, "approved images: A %v, B %v", a.Images.Allowed, b.Images.Allowed)
		}
	}
	flag := func(field string, av, bv, looserWhenTrue bool, what string) {
		if av != bv {
			add(field, bv == looserWhenTrue, "%s: A %v, B %v", what, av, bv)
		}
	}
	flag("filesystem.writable_rootfs", a.Filesystem.WritableRootfs, b.Filesystem.WritableRootfs, true, "writable root filesystem")
	flag("user.allow_root", a.User.AllowRoot, b.User.AllowRoot, true, "processes may run as root")
	flag("seccomp.compat_abi", a.Seccomp.CompatABI, b.Seccomp.CompatABI, true, "32-bit compat system calls admitted")
	flag("images.require_digest", a.Images.RequireDigest, b.Images.RequireDigest, false, "images must be pinned by digest")
	if a.Pids.Limit != b.Pids.Limit {
		add("pids.limit", b.Pids.Limit > a.Pids.Limit, "PID limit: A %d, B %d", a.Pids.Limit, b.Pids.Limit)
	}
	strs := []struct{ field, a, b string }{
		{"mode", a.Mode, b.Mode}, {"exec.mode", a.Exec.Mode, b.Exec.Mode}, {"seccomp.profile", a.Seccomp.Profile, b.Seccomp.Profile},
		{"secrets.env", a.Secrets.Env, b.Secrets.Env}, {"secrets.target", a.Secrets.Target, b.Secrets.Target},
	}
	for _, s := range strs {
		if s.a != s.b {
			looser := (s.field == "mode" && s.b == profiles.ModeAlert) || (s.field == "exec.mode" && s.b == profiles.ExecOff) || s.field == "seccomp.profile"
			add(s.field, looser, "%s: A %q, B %q", s.field, s.a, s.b)
		}
	}
	if !slices.EqualFunc(a.Filesystem.Tmpfs, b.Filesystem.Tmpfs, func(x, y profiles.Tmpfs) bool { return x == y }) {
		add("filesystem.tmpfs", false, "scratch tmpfs: A %v, B %v", a.Filesystem.Tmpfs, b.Filesystem.Tmpfs)
	}
	return out
}

// loadProfileArg is a profile by name (as this node applies it) or a file.
func loadProfileArg(f *policyFlags, arg string) (*profiles.Profile, error) {
	if strings.HasSuffix(arg, ".toml") || strings.Contains(arg, "/") {
		data, err := os.ReadFile(arg)
		if err != nil {
			return nil, &exitError{ExitFailed, err}
		}
		p, err := profiles.Parse(arg, data)
		if err != nil {
			return nil, &exitError{ExitFailed, err}
		}
		return p, nil
	}
	g := *f
	g.profile = arg
	pol, _, err := resolvePolicy(&g, nil)
	if err != nil {
		return nil, err
	}
	return pol.Profile, nil
}

func profileDiffCmd(g *globals) *cobra.Command {
	var f policyFlags
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Say in words how profile B differs from profile A (names, or .toml files)",
		Long: `diff compares two profiles field by field and says what B allows that A does not, and the
reverse — for reviewing a learned or edited profile before it is enforced. Exit status 1 when B
grants anything A does not.`,
		Example: "  palisade profile diff restricted baseline\n  palisade profile diff webapp /etc/palisade/profiles/webapp-learned.toml",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := loadProfileArg(&f, args[0])
			if err != nil {
				return err
			}
			b, err := loadProfileArg(&f, args[1])
			if err != nil {
				return err
			}
			diffs := diffProfiles(a, b)
			if g.output == "json" {
				if err := g.json(cmd.OutOrStdout(), diffs); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				if len(diffs) == 0 {
					fmt.Fprintf(w, "%s and %s grant the same\n", a.Name, b.Name)
				}
				for _, d := range diffs {
					mark := "tighter"
					if d.Looser {
						mark = "LOOSER "
					}
					fmt.Fprintf(w, "%s  %-28s %s\n", mark, d.Field, d.Change)
				}
			}
			if slices.ContainsFunc(diffs, func(d difference) bool { return d.Looser }) {
				return &exitError{code: ExitFailed}
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
