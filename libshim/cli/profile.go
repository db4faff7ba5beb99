package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/tomlfile"
	"palisade.dev/palisade/profiles"
	"palisade.dev/palisade/seccomp"
)

func profileCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "List, show and lint palisade profiles"}
	cmd.AddCommand(profileListCmd(g), profileShowCmd(g), profileLintCmd(g), profileLearnCmd(g), profileDiffCmd(g))
	return cmd
}

func profileListCmd(g *globals) *cobra.Command {
	var f policyFlags
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the profiles available on this node (built-in and the admin's)",
		Example: "  palisade profile list\n  palisade profile list --config ./config.toml -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load()
			if err != nil {
				return err
			}
			set, err := loadProfiles(cfg)
			if err != nil {
				return err
			}
			type row struct{ Name, Source, Description string }
			var rows []row
			for _, n := range set.Names() {
				rows = append(rows, row{n, set[n].Source, set[n].Description})
			}
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSOURCE\tDESCRIPTION")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Source, r.Description)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func profileShowCmd(g *globals) *cobra.Command {
	var f policyFlags
	cmd := &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a profile as this node applies it (with the admin's overrides)",
		Example: "  palisade profile show restricted\n  palisade profile show baseline -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.profile = args[0]
			pol, _, err := resolvePolicy(&f, nil)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), pol.Profile)
			}
			out, err := toml.Marshal(pol.Profile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# %s\n%s", pol.Profile.Source, out)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

// Finding is one lint result.
type Finding struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Field    string `json:"field,omitempty"`
	Severity string `json:"severity"` // error or warning
	Message  string `json:"message"`
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.File)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
	}
	fmt.Fprintf(&b, ": %s", f.Severity)
	if f.Field != "" {
		fmt.Fprintf(&b, ": field %q", f.Field)
	}
	return b.String() + ": " + f.Message
}

func profileLintCmd(g *globals) *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "lint FILE...",
		Short: "Check profiles (.toml) and seccomp profiles (.json): schema, names on amd64 and arm64, conflicts, AppArmor rendering",
		Long: `Lint checks palisade profiles (*.toml) and seccomp profiles (*.json) the way the shim
loads them, and adds warnings for settings that are legal but probably wrong. The AppArmor
profile generated from each palisade profile is rendered and, when apparmor_parser is
installed, parsed and compiled (apparmor_parser -Q -K).
Exit code 1 when any file has an error (or, with --strict, a warning).`,
		Example: "  palisade profile lint /etc/palisade/profiles/*.toml\n  palisade profile lint --strict web.toml seccomp/web.json -o json",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []Finding
			for _, file := range args {
				all = append(all, lintFile(file)...)
			}
			failed := false
			for _, f := range all {
				failed = failed || f.Severity == "error" || strict
			}
			if g.output == "json" {
				if all == nil {
					all = []Finding{}
				}
				if err := g.json(cmd.OutOrStdout(), all); err != nil {
					return err
				}
			} else {
				for _, f := range all {
					fmt.Fprintln(cmd.OutOrStdout(), f)
				}
				if len(all) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%d file(s): no problems\n", len(args))
				}
			}
			if failed {
				return &exitError{ExitFailed, fmt.Errorf("lint found problems in %d finding(s)", len(all))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "treat warnings as errors")
	return cmd
}

func lintFile(file string) []Finding {
	data, err := os.ReadFile(file)
	if err != nil {
		return []Finding{{File: file, Severity: "error", Message: err.Error()}}
	}
	if strings.HasSuffix(file, ".json") {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		l, err := seccomp.Parse(name, file, data)
		if err != nil {
			return []Finding{{File: file, Severity: "error", Message: err.Error()}}
		}
		var out []Finding
		for _, n := range l.Notes {
			out = append(out, Finding{File: file, Severity: "warning", Message: n})
		}
		return out
	}
	p, err := profiles.Parse(file, data)
	if err != nil {
		var te *tomlfile.Error
		if errors.As(err, &te) {
			return []Finding{{File: file, Line: te.Line, Field: te.Field, Severity: "error", Message: te.Msg}}
		}
		return []Finding{{File: file, Severity: "error", Message: err.Error()}}
	}
	out := lintAppArmor(file, p)
	for _, w := range profiles.Lint(p) {
		out = append(out, Finding{File: file, Field: w.Field, Severity: "warning", Message: w.Msg})
	}
	return out
}
