package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/seccomp"
)

// dockerDefault names Docker's default profile as a reference to compare with.
const dockerDefault = "docker-default"

func seccompCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "seccomp",
		Short: "Ask what a seccomp profile does, on amd64 and arm64, without a kernel",
		Long: `Seccomp profiles are compiled with libseccomp for the chosen architecture and the
resulting BPF program is run in an interpreter, as the kernel would run it.

A profile is "palisade-default", "docker-default" (Docker's, for comparison), or a
path to a Docker/Kubernetes JSON profile.

Filters cover the architecture's native ABI only, as palisade installs them unless a
profile sets seccomp.compat_abi = true: a system call made through a compat ABI
(32-bit x86 or x32 on amd64, AArch32 on arm64) kills the thread. --compat-abi
resolves the filter as such a profile gets it; check shows both ABIs.`,
	}
	cmd.AddCommand(seccompCheckCmd(g), seccompDiffCmd(g))
	return cmd
}

type seccompFlags struct {
	arches []string
	caps   []string
	compat bool
}

func (f *seccompFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.arches, "arch", []string{"amd64", "arm64"}, "architectures: amd64, arm64")
	cmd.Flags().StringSliceVar(&f.caps, "cap", nil, "capabilities the container holds (for capability-conditional rules)")
	cmd.Flags().BoolVar(&f.compat, "compat-abi", false, "admit the compat ABIs the profile lists, as under a profile with seccomp.compat_abi = true")
}

func (f *seccompFlags) abis() seccomp.ABIs {
	if f.compat {
		return seccomp.WithCompat
	}
	return seccomp.NativeOnly
}

// setup checks the seccomp flags and returns the bounding set.
func (f *seccompFlags) setup(*globals) ([]string, error) {
	var out []string
	for _, c := range f.caps {
		canon, err := caps.Canonical(c)
		if err != nil {
			return nil, &exitError{ExitUsage, err}
		}
		out = append(out, canon)
	}
	for _, a := range f.arches {
		if _, ok := seccomp.Arches[a]; !ok {
			return nil, &exitError{ExitUsage, fmt.Errorf("--arch %q: palisade supports amd64 and arm64", a)}
		}
	}
	return out, nil
}

// loadSeccompProfile finds a profile by name or path.
func loadSeccompProfile(name string) (*seccomp.Loaded, error) {
	switch {
	case name == seccomp.DefaultName:
		return seccomp.Default()
	case name == dockerDefault:
		return seccomp.Validate(dockerDefault, "moby/profiles", mobyseccomp.DefaultProfile())
	case strings.Contains(name, "/") || strings.HasSuffix(name, ".json"):
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		return seccomp.Parse(name, name, data)
	}
	return nil, fmt.Errorf("unknown seccomp profile %q: use %s, %s or a path to a JSON profile", name, seccomp.DefaultName, dockerDefault)
}

func compileFor(l *seccomp.Loaded, arch string, bounding []string, abis seccomp.ABIs) (*seccomp.Filter, error) {
	return compileWith(l, nil, arch, bounding, abis)
}

// compileWith compiles l's filter combined with a workload's own filter, as
// the shim combines them (seccomp.Intersect); workload may be nil.
func compileWith(l *seccomp.Loaded, workload *specs.LinuxSeccomp, arch string, bounding []string, abis seccomp.ABIs) (*seccomp.Filter, error) {
	sc, err := seccomp.Resolve(l, arch, bounding, abis)
	if err != nil {
		return nil, err
	}
	if workload != nil {
		sc = seccomp.Intersect(sc, workload, seccomp.Arches[arch].Arch)
	}
	return seccomp.Compile(sc, arch)
}

// loadWorkloadFilter reads a pod's own profile the way containerd does for
// a Localhost profile: the JSON file as the spec's linux.seccomp.
func loadWorkloadFilter(path string) (*specs.LinuxSeccomp, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("workload seccomp profile %s: %w", path, err)
	}
	// the shim refuses what it cannot read as runc would: so does check
	if err := seccomp.CheckClient(&sc); err != nil {
		return nil, fmt.Errorf("workload seccomp profile %s: %w", path, err)
	}
	return &sc, nil
}

// parseCall reads "NAME" or "NAME:ARG0,ARG1" (numbers in Go syntax: 0x.., 0o..).
func parseCall(s string) (string, []uint64, error) {
	name, rest, found := strings.Cut(s, ":")
	if !found {
		return name, nil, nil
	}
	var args []uint64
	for _, a := range strings.Split(rest, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(a), 0, 64)
		if err != nil {
			return "", nil, fmt.Errorf("%q: argument %q is not a number", s, a)
		}
		args = append(args, v)
	}
	return name, args, nil
}

func seccompCheckCmd(g *globals) *cobra.Command {
	var f seccompFlags
	var profile, workloadPath string
	cmd := &cobra.Command{
		Use:   "check [--profile P] [--workload-profile FILE] [--arch A] [--cap C] SYSCALL[:ARG0,ARG1,...]...",
		Short: "Is a syscall allowed by a seccomp profile, and with which action?",
		Example: `  palisade seccomp check mount clone:0x10000000 read
  palisade seccomp check --arch arm64 --profile ./my-profile.json open openat
  palisade seccomp check --arch amd64 --compat-abi getpid setsockopt
  palisade seccomp check --cap CAP_SYS_ADMIN --profile docker-default mount -o json
  palisade seccomp check --workload-profile ./pod-localhost.json mkdir read`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bounding, err := f.setup(g)
			if err != nil {
				return err
			}
			l, err := loadSeccompProfile(profile)
			if err != nil {
				return &exitError{ExitFailed, err}
			}
			workload, err := loadWorkloadFilter(workloadPath)
			if err != nil {
				return &exitError{ExitFailed, err}
			}
			name := l.Name
			if workload != nil {
				name += " ∩ " + workloadPath
			}
			var verdicts []seccomp.Verdict
			for _, arch := range f.arches {
				filter, err := compileWith(l, workload, arch, bounding, f.abis())
				if err != nil {
					return &exitError{ExitFailed, err}
				}
				for _, a := range args {
					name, callArgs, err := parseCall(a)
					if err != nil {
						return &exitError{ExitUsage, err}
					}
					v, err := filter.Check(name, callArgs...)
					if err != nil {
						return &exitError{ExitUsage, err}
					}
					compat, err := filter.CheckCompat(name, callArgs...)
					if err != nil {
						return &exitError{ExitUsage, err}
					}
					verdicts = append(append(verdicts, v), compat...)
				}
			}
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), verdicts)
			}
			return verdictTable(cmd.OutOrStdout(), name, verdicts)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&profile, "profile", seccomp.DefaultName, "seccomp profile: palisade-default, docker-default or a JSON file")
	cmd.Flags().StringVar(&workloadPath, "workload-profile", "", "a pod's own seccomp profile (JSON, as a Localhost profile), combined with --profile as the shim combines them: the stricter verdict wins")
	return cmd
}

func verdictTable(w io.Writer, profile string, vs []seccomp.Verdict) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PROFILE\tARCH\tABI\tSYSCALL\tARGS\tACTION\n")
	for _, v := range vs {
		args := "-"
		if len(v.Args) > 0 {
			parts := make([]string, len(v.Args))
			for i, a := range v.Args {
				parts[i] = fmt.Sprintf("%#x", a)
			}
			args = strings.Join(parts, ",")
		}
		abi := "native"
		if v.ABI != "" {
			abi = v.ABI
		}
		action := v.Action
		switch {
		case v.Absent:
			action = "absent (no such syscall in this ABI)"
		case v.ABI != "" && strings.HasPrefix(action, "kill"):
			action += " (compat ABI not in the filter)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", profile, v.Arch, abi, v.Syscall, args, action)
	}
	return tw.Flush()
}

// Difference is one syscall two profiles treat differently.
type Difference struct {
	Arch    string `json:"arch"`
	Syscall string `json:"syscall"`
	A       string `json:"a"`
	B       string `json:"b"`
}

func seccompDiffCmd(g *globals) *cobra.Command {
	var f seccompFlags
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Which syscalls two seccomp profiles treat differently (called with zero arguments)",
		Example: `  palisade seccomp diff docker-default palisade-default
  palisade seccomp diff --cap CAP_SYS_ADMIN --arch arm64 docker-default palisade-default`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bounding, err := f.setup(g)
			if err != nil {
				return err
			}
			var loaded [2]*seccomp.Loaded
			names := map[string]bool{}
			for i, a := range args {
				if loaded[i], err = loadSeccompProfile(a); err != nil {
					return &exitError{ExitFailed, err}
				}
				for _, r := range loaded[i].Profile.Syscalls {
					for _, n := range r.Names {
						names[n] = true
					}
				}
			}
			sorted := make([]string, 0, len(names))
			for n := range names {
				sorted = append(sorted, n)
			}
			slices.Sort(sorted)
			var diffs []Difference
			for _, arch := range f.arches {
				var filters [2]*seccomp.Filter
				for i := range loaded {
					if filters[i], err = compileFor(loaded[i], arch, bounding, f.abis()); err != nil {
						return &exitError{ExitFailed, err}
					}
				}
				for _, n := range sorted {
					va, errA := filters[0].Check(n)
					vb, errB := filters[1].Check(n)
					if errA != nil || errB != nil || va.Absent || va.Action == vb.Action {
						continue
					}
					diffs = append(diffs, Difference{Arch: arch, Syscall: n, A: va.Action, B: vb.Action})
				}
			}
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), diffs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "ARCH\tSYSCALL\t%s\t%s\n", strings.ToUpper(args[0]), strings.ToUpper(args[1]))
			for _, d := range diffs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Arch, d.Syscall, d.A, d.B)
			}
			if len(diffs) == 0 {
				fmt.Fprintln(tw, "(no difference)")
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}
