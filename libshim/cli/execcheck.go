package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/profiles"
)

func execCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "exec", Short: "Exec allow-lists"}
	var f policyFlags
	var rootfs string
	var env []string
	check := &cobra.Command{
		Use:   "check --rootfs DIR [--profile P] COMMAND",
		Short: "Would this command be allowed to run? Shows how it resolves inside the root filesystem",
		Long:  "Exit code 0 when allowed, 3 when the allow-list would refuse it.",
		Example: `  palisade exec check --profile locked-web --rootfs ./rootfs /usr/bin/python3
  palisade exec check --rootfs ./rootfs --annotation palisade.dev/exec-allow=/bin/busybox sh`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rootfs == "" {
				return &exitError{ExitUsage, fmt.Errorf("--rootfs is required")}
			}
			pol, _, err := resolvePolicy(&f, nil)
			if err != nil {
				return err
			}
			res, err := execguard.Resolve(rootfs, args[0], env, "/")
			if err != nil {
				return &exitError{ExitFailed, err}
			}
			type answer struct {
				Command  string   `json:"command"`
				Resolved string   `json:"resolved"`
				Via      []string `json:"via,omitempty"`
				Mode     string   `json:"mode"`
				Allow    []string `json:"allow,omitempty"`
				Allowed  bool     `json:"allowed"`
			}
			a := answer{Command: args[0], Resolved: res.Path, Via: res.Via, Mode: "none", Allowed: true}
			if pol.Exec != nil {
				a.Mode, a.Allow = pol.Exec.Mode, pol.Exec.Allow
				switch pol.Exec.Mode {
				case profiles.ExecEntrypointOnly:
					a.Allowed = false // only the entrypoint, which is not this command's business
				default:
					a.Allowed = execguard.Allowed(res.Path, pol.Exec.Allow) || pol.Exec.Mode == profiles.ExecAudit
				}
			}
			if g.output == "json" {
				if err := g.json(cmd.OutOrStdout(), a); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%s resolves to %s", a.Command, a.Resolved)
				if len(a.Via) > 0 {
					fmt.Fprintf(w, " (via %s)", strings.Join(a.Via, ", "))
				}
				fmt.Fprintln(w)
				switch {
				case pol.Exec == nil:
					fmt.Fprintf(w, "allowed: profile %s has no exec allow-list\n", pol.Profile.Name)
				case pol.Exec.Mode == profiles.ExecEntrypointOnly:
					fmt.Fprintf(w, "refused unless it is the container's entrypoint: profile %s allows only the entrypoint\n", pol.Profile.Name)
				case a.Allowed && pol.Exec.Mode == profiles.ExecAudit && !execguard.Allowed(res.Path, pol.Exec.Allow):
					fmt.Fprintf(w, "allowed, but recorded: not on the list (%s), audit mode\n", strings.Join(a.Allow, ", "))
				case a.Allowed:
					fmt.Fprintf(w, "allowed: on the list (%s)\n", strings.Join(a.Allow, ", "))
				default:
					fmt.Fprintf(w, "refused: not on the list (%s)\n", strings.Join(a.Allow, ", "))
				}
			}
			if !a.Allowed {
				return &exitError{ExitRefused, fmt.Errorf("%s (%s) is not allowed to run", a.Command, a.Resolved)}
			}
			return nil
		},
	}
	f.add(check)
	check.Flags().StringVar(&rootfs, "rootfs", "", "the container's root filesystem")
	check.Flags().StringArrayVar(&env, "env", nil, "environment (PATH=...) used for the lookup")
	cmd.AddCommand(check)
	return cmd
}
