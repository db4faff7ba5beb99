package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/profiles"
)

// lsmHostFlag says which LSMs a command assumes the host enforces:
// "detect" (this host), or a simulated node ("none", "selinux", "apparmor",
// "selinux,apparmor") to preview what the shim would do there.
type lsmHostFlag struct{ value string }

func (f *lsmHostFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.value, "lsm-host", "detect", `LSMs the node enforces: "detect" (this host), or preview another node: none, selinux, apparmor, "selinux,apparmor"`)
}

func (f *lsmHostFlag) host() (lsm.Host, error) {
	if f.value == "" || f.value == "detect" {
		return lsm.Detect(), nil
	}
	var h lsm.Host
	for _, v := range strings.Split(f.value, ",") {
		switch strings.TrimSpace(v) {
		case "none":
		case "selinux":
			h.SELinux = true
		case "apparmor":
			h.AppArmor = true
		default:
			return h, &exitError{ExitUsage, fmt.Errorf("--lsm-host %q: want detect, none, selinux, apparmor or selinux,apparmor", f.value)}
		}
	}
	return h, nil
}

// lsmSection says which LSM mode applies and why, for explain.
func lsmSection(cfg *config.Config, host lsm.Host) Section {
	return Section{Title: "Linux security modules", Lines: []string{
		"SELinux: " + lsm.Why("SELinux", "selinux.mode", cfg.SELinux.Mode, host.SELinux) +
			fmt.Sprintf(" (type %s, a unique MCS category pair per container or pod).", cfg.SELinux.Type),
		"AppArmor: " + lsm.Why("AppArmor", "apparmor.mode", cfg.AppArmor.Mode, host.AppArmor) +
			" (a profile generated from the palisade profile: palisade apparmor show PROFILE).",
	}}
}

// labelLines describe the labels a rendered container gets.
func labelLines(w io.Writer, req *harden.Request, l *lsm.Labels) {
	if l == nil {
		return
	}
	fmt.Fprintln(w, "labels:")
	switch {
	case l.SELinuxProcess != "":
		fmt.Fprintf(w, "  selinux   process %s, mount %s\n", l.SELinuxProcess, l.SELinuxMount)
	default:
		fmt.Fprintf(w, "  selinux   none (%s)\n", lsm.Why("SELinux", "selinux.mode", req.Config.SELinux.Mode, req.LSM.Host.SELinux))
	}
	switch {
	case l.AppArmorProfile != "":
		fmt.Fprintf(w, "  apparmor  %s (palisade render --apparmor shows it)\n", l.AppArmorProfile)
	case l.AppArmorName != "":
		fmt.Fprintf(w, "  apparmor  none: %s; generated %s (palisade render --apparmor shows it)\n",
			lsm.Why("AppArmor", "apparmor.mode", req.Config.AppArmor.Mode, req.LSM.Host.AppArmor), l.AppArmorName)
	default:
		fmt.Fprintf(w, "  apparmor  none (%s)\n", lsm.Why("AppArmor", "apparmor.mode", req.Config.AppArmor.Mode, req.LSM.Host.AppArmor))
	}
}

func apparmorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apparmor",
		Short: "AppArmor profiles generated from palisade profiles",
	}
	var f policyFlags
	var entrypoint string
	show := &cobra.Command{
		Use:   "show PROFILE",
		Short: "Print the AppArmor profile palisade generates for a palisade profile",
		Long: `show prints the AppArmor profile that a container of PROFILE gets when it has no
volumes (each writable volume adds a rule, and so a profile of its own: palisade render
--apparmor shows a given container's). Its name, palisade-PROFILE-HASH, changes with its text.`,
		Example: `  palisade apparmor show restricted
  palisade apparmor show locked --entrypoint /app/server
  palisade apparmor show restricted | apparmor_parser -Q -K`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.profile = args[0]
			pol, _, err := resolvePolicy(&f, nil)
			if err != nil {
				return err
			}
			in, err := harden.AppArmorForProfile(pol.Profile, entrypoint)
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			if pol.Exec != nil && pol.Profile.Exec.Mode == profiles.ExecEnforce {
				in.Exec = slices.Clone(pol.Exec.Allow) // narrowed by --annotation palisade.dev/exec-allow
			}
			name, text, err := lsm.RenderAppArmor(in)
			if err != nil {
				return &exitError{ExitFailed, err}
			}
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), map[string]string{"name": name, "profile": text})
			}
			_, err = io.WriteString(cmd.OutOrStdout(), text)
			return err
		},
	}
	f.add(show)
	show.Flags().StringVar(&entrypoint, "entrypoint", "", "the container's entrypoint, for profiles that allow only it (exec mode entrypoint-only)")
	cmd.AddCommand(show)
	return cmd
}

// lintAppArmor renders a profile's AppArmor profile and parses it with
// apparmor_parser when one is installed.
func lintAppArmor(file string, p *profiles.Profile) []Finding {
	in, err := harden.AppArmorForProfile(p, "/entrypoint")
	if err != nil {
		return []Finding{{File: file, Field: "exec", Severity: "error", Message: "AppArmor: " + err.Error()}}
	}
	_, text, err := lsm.RenderAppArmor(in)
	if err != nil {
		return []Finding{{File: file, Severity: "error", Message: "AppArmor: " + err.Error()}}
	}
	if err := (&lsm.Env{}).ValidateAppArmor(text); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return []Finding{{File: file, Severity: "error", Message: "AppArmor: the generated profile does not parse: " + err.Error()}}
	}
	return nil
}
