// Package cli implements the palisade command line: the commands, their
// flags and their output (tables for people, --output json for machines).
// The logic they present lives in the other libshim packages.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"palisade.dev/palisade"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/hostinfo"
)

// Exit codes, documented in `palisade --help`.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the command ran and found a problem (or failed)
	ExitUsage   = 2 // bad flags or arguments
	ExitRefused = 3 // palisade refused the container or profile
)

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

type globals struct {
	output string
}

// Execute runs the CLI with args and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	g := &globals{}
	root := &cobra.Command{
		Use:   "palisade",
		Short: "Hardened container launcher: inspect, test and explain palisade policies",
		Long: `palisade is the command line of the palisade containerd shim
(runtime type io.containerd.palisade.v2).

Exit codes: 0 success, 1 failure or problem found, 2 usage error, 3 refused by policy.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// One check of the global flags for every command.
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.validate() },
	}
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(versionCmd(g), doctorCmd(g), seccompCmd(g), profileCmd(g), renderCmd(g), explainCmd(g), execCmd(g), runCmd(g), apparmorCmd(g), reportCmd(g))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var silent *exitError
	if errors.As(err, &silent) && silent.err == nil {
		return silent.code // e.g. the exit code of a container: nothing to add
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "palisade:") {
		msg = "palisade: " + msg
	}
	fmt.Fprintln(stderr, msg)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitUsage // cobra's own errors are about flags and arguments
}

func (g *globals) validate() error {
	if g.output != "table" && g.output != "json" {
		return &exitError{ExitUsage, fmt.Errorf("--output must be table or json, not %q", g.output)}
	}
	return nil
}

func (g *globals) json(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print palisade's version",
		Example: "  palisade version\n  palisade version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), map[string]string{"version": palisade.Version, "commit": palisade.Commit})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "palisade", palisade.Full())
			return nil
		},
	}
}

func doctorCmd(g *globals) *cobra.Command {
	var address, configPath string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Report what this host supports: cgroups, seccomp, Landlock, SELinux, AppArmor, runtimes, containerd",
		Example: `  palisade doctor
  palisade doctor --address /run/containerd/containerd.sock -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := hostinfo.Options{ContainerdAddress: address}
			var cfgErr error
			if cfg, err := config.Resolve(configPath); err == nil {
				opts.SELinuxMode, opts.AppArmorMode = cfg.SELinux.Mode, cfg.AppArmor.Mode
			} else {
				cfgErr = err
			}
			checks := hostinfo.Probe(cmd.Context(), opts)
			if cfgErr != nil {
				checks = append(checks, hostinfo.Check{Name: "config", Status: hostinfo.Warn, Detail: cfgErr.Error() + " (LSM modes shown are the defaults)"})
			}
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), checks)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
			for _, c := range checks {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Status, c.Detail)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&address, "address", "/run/containerd/containerd.sock", "containerd socket to check (\"\" to skip)")
	cmd.Flags().StringVar(&configPath, "config", "", "admin config whose LSM modes to report (default: "+config.DefaultPath+" if it exists)")
	return cmd
}
