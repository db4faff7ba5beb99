package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/profiles"
)

// policyFlags are the flags every command that applies a policy shares.
type policyFlags struct {
	config      string
	profile     string
	annotations []string
}

func (f *policyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "admin config (default: "+config.DefaultPath+" if it exists, else built-in defaults)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "profile to apply (default: the admin config's default_profile)")
	cmd.Flags().StringArrayVar(&f.annotations, "annotation", nil, "workload annotation KEY=VALUE, as a container would carry it (repeatable)")
}

// load reads the admin config; --profile makes that profile the default,
// as a node administrator would.
func (f *policyFlags) load() (*config.Config, error) {
	cfg, err := config.Resolve(f.config)
	if err != nil {
		return nil, &exitError{ExitFailed, err}
	}
	if f.profile != "" {
		cfg.DefaultProfile = f.profile
	}
	return cfg, nil
}

// annotationMap merges --annotation flags into a spec's annotations.
func (f *policyFlags) annotationMap(into map[string]string) (map[string]string, error) {
	if into == nil {
		into = map[string]string{}
	}
	for _, a := range f.annotations {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, &exitError{ExitUsage, fmt.Errorf("--annotation %q: want KEY=VALUE", a)}
		}
		into[k] = v
	}
	return into, nil
}

// refusalOrFailure gives a pipeline error its exit code: 3 for a refusal
// (the same message the shim gives), 1 for anything else.
func refusalOrFailure(err error) error {
	var r *policy.Refusal
	if errors.As(err, &r) {
		return &exitError{ExitRefused, err}
	}
	return &exitError{ExitFailed, err}
}

// loadProfiles returns the built-ins plus the admin's directory.
func loadProfiles(cfg *config.Config) (profiles.Set, error) {
	set, err := profiles.Load(cfg.ProfilesDir)
	if err != nil {
		return nil, &exitError{ExitFailed, err}
	}
	return set, nil
}

// readInput reads a file, or standard input for "-".
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), 8<<20))
	}
	return os.ReadFile(name)
}
