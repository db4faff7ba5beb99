package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
)

// resolvePolicy resolves the policy a container with the flags'
// annotations would get.
func resolvePolicy(f *policyFlags, _ *specs.Spec) (*policy.Policy, *config.Config, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	ann, err := f.annotationMap(nil)
	if err != nil {
		return nil, nil, err
	}
	pol, err := policy.Resolve("palisade-cli/explain", cfg, ann)
	if err != nil {
		return nil, nil, refusalOrFailure(err)
	}
	return pol, cfg, nil
}

type renderFlags struct {
	policyFlags
	lsmHost               lsmHostFlag
	namespace, id, rootfs string
	diff, apparmor        bool
}

// hardenInput runs the shim's pipeline on a spec, exactly as Create would
// (without touching a bundle or mounting anything).
func (f *renderFlags) harden(spec *specs.Spec, bundleDir string) (*harden.Request, *harden.Plan, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	if spec.Annotations, err = f.annotationMap(spec.Annotations); err != nil {
		return nil, nil, err
	}
	host, err := f.lsmHost.host()
	if err != nil {
		return nil, nil, err
	}
	// A preview: no MCS pair is reserved and no AppArmor profile loaded.
	node := harden.Node{Bundle: bundleDir, LandlockABI: execguard.LandlockABI, LSM: &lsm.Env{Host: host, Preview: true}}
	root := f.rootfs
	if root == "" && bundleDir != "" && spec.Root != nil {
		root = spec.Root.Path
		if !filepath.IsAbs(root) {
			root = filepath.Join(bundleDir, root)
		}
	}
	if root != "" {
		if _, err := os.Stat(root); err == nil {
			node.Rootfs = func(fn func(string) error) error { return fn(root) }
		}
	}
	req, err := harden.Prepare(f.namespace, f.id, cfg, spec, node)
	if err != nil {
		return nil, nil, refusalOrFailure(err)
	}
	plan, _, err := harden.Harden(req, spec)
	if err != nil {
		return req, nil, refusalOrFailure(err)
	}
	return req, plan, nil
}

func (f *renderFlags) add(cmd *cobra.Command) {
	f.policyFlags.add(cmd)
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "containerd namespace the container would be in")
	cmd.Flags().StringVar(&f.id, "id", "render", "container id")
	cmd.Flags().StringVar(&f.rootfs, "rootfs", "", "root filesystem to resolve commands in (default: the bundle's)")
	f.lsmHost.add(cmd)
}

func renderCmd(g *globals) *cobra.Command {
	var f renderFlags
	cmd := &cobra.Command{
		Use:   "render [flags] (BUNDLE_DIR | config.json | -)",
		Short: "Print the spec the shim would hand to runc, or what it would change and why",
		Long: `render runs the shim's own hardening pipeline on an OCI spec and prints the result.
A refusal prints the message the shim would give and exits 3. --diff also shows the
SELinux labels and AppArmor profile the container gets; --apparmor prints that profile.
LSM labels depend on the node: --lsm-host previews another kind of node.`,
		Example: `  ctr oci spec > config.json
  palisade render --profile restricted config.json
  palisade render --diff --annotation palisade.dev/cap-add=NET_BIND_SERVICE config.json
  palisade render --profile locked --rootfs ./rootfs - < config.json
  palisade render --apparmor --lsm-host apparmor config.json   # the generated AppArmor profile`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, bundleDir := args[0], ""
			if st, err := os.Stat(in); err == nil && st.IsDir() {
				bundleDir, in = in, filepath.Join(in, bundle.ConfigName)
			}
			data, err := readInput(cmd, in)
			if err != nil {
				return &exitError{ExitFailed, err}
			}
			spec, err := bundle.DecodeSpec(in, data)
			if err != nil {
				return &exitError{ExitFailed, err}
			}
			req, plan, err := f.harden(spec, bundleDir)
			if err != nil {
				return err
			}
			changes := plan.Changes
			out := cmd.OutOrStdout()
			switch {
			case f.apparmor:
				if plan.Labels == nil || plan.Labels.AppArmorText == "" {
					return &exitError{ExitFailed, fmt.Errorf("no AppArmor profile is generated: apparmor.mode is %q in %s", req.Config.AppArmor.Mode, req.Config.Source)}
				}
				_, err := fmt.Fprint(out, plan.Labels.AppArmorText)
				return err
			case f.diff && g.output == "json":
				return g.json(out, map[string]any{"profile": req.Policy.Profile.Name, "changes": changes, "labels": plan.Labels})
			case f.diff:
				if err := changeTable(out, req.Policy.Profile.Name, changes); err != nil {
					return err
				}
				labelLines(out, req, plan.Labels)
				return nil
			default:
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(plan.Spec)
			}
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&f.diff, "diff", false, "show what changed, rule by rule, and the LSM labels, instead of the spec")
	cmd.Flags().BoolVar(&f.apparmor, "apparmor", false, "print the AppArmor profile generated for the container instead of the spec")
	return cmd
}

func changeTable(w interface{ Write([]byte) (int, error) }, profile string, changes []audit.Change) error {
	fmt.Fprintf(w, "profile %s: %d change(s)\n", profile, len(changes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tBEFORE\tAFTER")
	for _, c := range changes {
		before := fmt.Sprint(c.Before)
		if c.Before == nil {
			before = "-"
		}
		after := fmt.Sprint(c.After)
		if c.Note {
			before, after = "(note)", fmt.Sprint(c.After)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Rule, before, after)
	}
	return tw.Flush()
}
