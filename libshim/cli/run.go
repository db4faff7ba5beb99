package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/localrun"
)

func runCmd(g *globals) *cobra.Command {
	var f policyFlags
	var rootfs string
	var env, secretFlags []string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "run --rootfs DIR [flags] -- COMMAND [ARGS...]",
		Short: "Run a container locally through runc, with the same pipeline as the shim (needs root)",
		Long: `run starts one container from a root filesystem directory with runc directly (no containerd),
hardened by the shim's own pipeline: policy, profile, seccomp, exec allow-list, secrets.
It streams the container's output and exits with its exit code (3 if palisade refused it).
Everything it creates (bundle, runc state, cgroup, secrets tmpfs) is removed afterwards, also on Ctrl-C.`,
		Example: `  sudo palisade run --rootfs ./rootfs -- /bin/sh -c 'id; touch /x'
  sudo palisade run --profile locked --rootfs ./rootfs -- /app/server
  sudo palisade run --rootfs ./rootfs --secret db-password=./db.txt --env DB_PASSWORD=palisade-secret:db-password -- /app/server`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rootfs == "" {
				return &exitError{ExitUsage, fmt.Errorf("--rootfs is required")}
			}
			cfg, err := f.load()
			if err != nil {
				return err
			}
			ann, err := f.annotationMap(nil)
			if err != nil {
				return err
			}
			secrets := map[string]string{}
			for _, s := range secretFlags {
				name, file, ok := strings.Cut(s, "=")
				if !ok || name == "" || file == "" {
					return &exitError{ExitUsage, fmt.Errorf("--secret %q: want NAME=FILE", s)}
				}
				secrets[name] = file
			}
			code, err := localrun.Run(cmd.Context(), localrun.Options{
				Config: cfg, Rootfs: rootfs, Args: args, Env: env, Annotations: ann, Secrets: secrets,
				Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
				Changes: func(profile string, changes []audit.Change) {
					if verbose {
						_ = changeTable(cmd.ErrOrStderr(), profile, changes)
					}
				},
			})
			if err != nil {
				return refusalOrFailure(err)
			}
			if code != 0 {
				return &exitError{code: code} // the container's own exit code, silently
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&rootfs, "rootfs", "", "the container's root filesystem directory")
	cmd.Flags().StringArrayVar(&env, "env", nil, "environment variable K=V (repeatable)")
	cmd.Flags().StringArrayVar(&secretFlags, "secret", nil, "secret NAME=FILE, delivered at /run/secrets/NAME (repeatable)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print what the pipeline changed before starting")
	return cmd
}
