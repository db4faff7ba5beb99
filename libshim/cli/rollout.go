package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/profiles"
)

// readAuditFile reads the records of an audit file. Lines that are not
// records (a line cut short by a crash) are counted, not fatal.
func readAuditFile(path string) (recs []audit.Record, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		var r audit.Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			skipped++
			continue
		}
		recs = append(recs, r)
	}
	return recs, skipped, sc.Err()
}

// readAuditWarn reads an audit file for a command, saying on stderr how
// many lines were not records.
func readAuditWarn(cmd *cobra.Command, path string) ([]audit.Record, error) {
	recs, skipped, err := readAuditFile(path)
	if err != nil {
		return nil, &exitError{ExitFailed, err}
	}
	if skipped > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "palisade: %s: %d line(s) are not audit records and were left out\n", path, skipped)
	}
	return recs, nil
}

// workload names a record's workload: the pod's container under Kubernetes,
// else the containerd namespace and container.
func workload(r audit.Record) string {
	if r.Pod != "" {
		return r.PodNamespace + "/" + r.Pod + "/" + r.ContainerName
	}
	return r.Namespace + "/" + r.Container
}

// finding is one kind of would-be (or actual) refusal of a workload.
type finding struct {
	Rule    string `json:"rule"`
	Subject string `json:"subject,omitempty"`
	Value   string `json:"value,omitempty"`
	Reason  string `json:"reason"`
	Count   int    `json:"count"`
}

// summary is a workload's evidence.
type summary struct {
	Workload    string    `json:"workload"`
	Profile     string    `json:"profile,omitempty"`
	Mode        string    `json:"mode"`
	Allowed     int       `json:"allowed"`
	Refused     []finding `json:"refused,omitempty"`
	WouldRefuse []finding `json:"would_refuse,omitempty"`
}

func summarize(recs []audit.Record) []summary {
	by := map[string]*summary{}
	add := func(l []finding, f finding) []finding {
		for i := range l {
			if l[i].Rule == f.Rule && l[i].Subject == f.Subject && l[i].Value == f.Value && l[i].Reason == f.Reason {
				l[i].Count++
				return l
			}
		}
		f.Count = 1
		return append(l, f)
	}
	for _, r := range recs {
		if r.Event == audit.EventDelete {
			continue
		}
		k := workload(r)
		s := by[k]
		if s == nil {
			s = &summary{Workload: k, Mode: profiles.ModeEnforce}
			by[k] = s
		}
		if r.Profile != "" {
			s.Profile = r.Profile
		}
		if r.Mode != "" {
			s.Mode = r.Mode
		}
		switch r.Result {
		case audit.ResultAllowed:
			s.Allowed++
		case audit.ResultRefused:
			s.Refused = add(s.Refused, finding{Rule: refusedRule(r.Reason), Reason: r.Reason})
		}
		for _, c := range r.Changes {
			if w := c.WouldRefuse; w != nil {
				s.WouldRefuse = add(s.WouldRefuse, finding{Rule: c.Rule, Subject: w.Subject, Value: w.Value, Reason: w.Reason})
			}
		}
	}
	out := make([]summary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out
}

// refusedRule reads the rule out of a refusal's message ("[rule NAME…]").
func refusedRule(reason string) string {
	_, after, ok := strings.Cut(reason, "[rule ")
	if !ok {
		return "?"
	}
	rule, _, _ := strings.Cut(after, "]")
	rule, _, _ = strings.Cut(rule, ",")
	return rule
}

func reportCmd(g *globals) *cobra.Command {
	var f policyFlags
	var file string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Summarize the audit file per workload: what was refused, and what alert mode would have refused",
		Long: `report reads palisade's audit file and prints, per workload, how many operations were
allowed, what was refused, and — for workloads in alert mode — what enforce mode would have
refused: the evidence to review before switching a profile to enforce (docs/rollout.md).`,
		Example: "  palisade report\n  palisade report --audit /var/log/palisade/audit.jsonl -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				cfg, err := f.load()
				if err != nil {
					return err
				}
				file = cfg.Audit.File
			}
			recs, err := readAuditWarn(cmd, file)
			if err != nil {
				return err
			}
			sums := summarize(recs)
			if g.output == "json" {
				return g.json(cmd.OutOrStdout(), sums)
			}
			return reportTable(cmd.OutOrStdout(), sums)
		},
	}
	cmd.Flags().StringVar(&file, "audit", "", "audit file (default: the admin config's audit.file)")
	cmd.Flags().StringVar(&f.config, "config", "", "admin config naming the audit file")
	return cmd
}

func reportTable(w io.Writer, sums []summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\tprofile %s, %s mode\t%d allowed, %d refused, %d would be refused\n", s.Workload, s.Profile, s.Mode, s.Allowed, count(s.Refused), count(s.WouldRefuse))
		for _, f := range s.Refused {
			fmt.Fprintf(tw, "  refused\t%s\t%dx %s\n", f.Rule, f.Count, f.Reason)
		}
		for _, f := range s.WouldRefuse {
			fmt.Fprintf(tw, "  would refuse\t%s %s %s\t%dx %s\n", f.Rule, f.Subject, f.Value, f.Count, f.Reason)
		}
	}
	return tw.Flush()
}

func count(l []finding) int {
	n := 0
	for _, f := range l {
		n += f.Count
	}
	return n
}

func profileLearnCmd(*globals) *cobra.Command {
	var f policyFlags
	var file, container, parent, name, out string
	cmd := &cobra.Command{
		Use:   "learn",
		Short: "Write a profile that admits exactly what a workload did in alert mode",
		Long: `learn reads the audit file, takes what alert mode would have refused for one workload
(capabilities, executables, images, sysctls, devices), and writes a profile: the parent profile plus
exactly those allowances, each with a comment saying where it came from, in enforce mode. Review it
(palisade profile lint --strict), install it in the admin's profiles directory, and select it.`,
		Example: `  palisade profile learn --from-audit /var/log/palisade/audit.jsonl --container default/web \
      --parent restricted --name web > /etc/palisade/profiles/web.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" || container == "" || parent == "" || name == "" {
				return &exitError{ExitUsage, fmt.Errorf("--from-audit, --container, --parent and --name are required")}
			}
			cfg, err := f.load()
			if err != nil {
				return err
			}
			set, err := loadProfiles(cfg)
			if err != nil {
				return err
			}
			base, ok := set[parent]
			if !ok {
				return &exitError{ExitFailed, fmt.Errorf("no profile %q (known: %s)", parent, strings.Join(set.Names(), ", "))}
			}
			recs, err := readAuditWarn(cmd, file)
			if err != nil {
				return err
			}
			text, err := learn(base, name, container, file, recs)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" {
				return os.WriteFile(out, []byte(text), 0o644)
			}
			_, err = io.WriteString(w, text)
			return err
		},
	}
	cmd.Flags().StringVar(&file, "from-audit", "", "audit file to learn from")
	cmd.Flags().StringVar(&container, "container", "", "the workload: NAMESPACE/CONTAINER, or K8S-NAMESPACE/POD/CONTAINER")
	cmd.Flags().StringVar(&parent, "parent", "", "the profile to start from")
	cmd.Flags().StringVar(&name, "name", "", "the new profile's name")
	cmd.Flags().StringVar(&out, "out", "", "write the profile here instead of standard output")
	cmd.Flags().StringVar(&f.config, "config", "", "admin config (for its profiles directory)")
	return cmd
}

// learn derives a profile from parent and the workload's would-be refusals.
func learn(parent *profiles.Profile, name, wl, source string, recs []audit.Record) (string, error) {
	p := parent.Clone()
	p.Name, p.Mode, p.Source = name, profiles.ModeEnforce, ""
	p.Description = fmt.Sprintf("learned from %s for %s, based on %s", source, wl, parent.Name)
	var notes []string
	seen := map[string]bool{}
	for _, r := range recs {
		if workload(r) != wl {
			continue
		}
		for _, c := range r.Changes {
			w := c.WouldRefuse
			if w == nil || seen[w.Subject+" "+w.Value] {
				continue
			}
			seen[w.Subject+" "+w.Value] = true
			where := fmt.Sprintf("%s %s at %s", r.Event, r.Container, r.Time.Format(time.RFC3339))
			switch w.Subject {
			case audit.SubjectCapability:
				p.Capabilities.Allowed = append(p.Capabilities.Allowed, w.Value)
			case audit.SubjectExecutable:
				if p.Exec.Mode == profiles.ExecOff || p.Exec.Mode == profiles.ExecEntrypointOnly {
					p.Exec.Mode = profiles.ExecEnforce
				}
				p.Exec.Allow = append(p.Exec.Allow, w.Value)
			case audit.SubjectImage:
				if len(p.Images.Allowed) > 0 {
					p.Images.Allowed = append(p.Images.Allowed, imageRepository(w.Value))
				}
			case audit.SubjectSysctl:
				p.Sysctls.Allowed = append(p.Sysctls.Allowed, w.Value)
			case audit.SubjectDevice:
				p.Devices.Allowed = append(p.Devices.Allowed, w.Value)
			default:
				notes = append(notes, fmt.Sprintf("#   not learned (%s %s): %s — decide by hand", w.Subject, w.Value, w.Reason))
				continue
			}
			notes = append(notes, fmt.Sprintf("#   %s %s: would have been refused on %s (%s)", w.Subject, w.Value, where, c.Rule))
		}
	}
	if len(seen) == 0 {
		return "", &exitError{ExitFailed, fmt.Errorf("the audit file has no alert-mode findings for %s: run it in alert mode first (docs/rollout.md)", wl)}
	}
	slices.Sort(p.Exec.Allow)
	p.Exec.Allow = slices.Compact(p.Exec.Allow)
	if err := p.Normalize(); err != nil {
		return "", &exitError{ExitFailed, err}
	}
	data, err := toml.Marshal(p)
	if err != nil {
		return "", &exitError{ExitFailed, err}
	}
	head := fmt.Sprintf("# Profile %s, learned by `palisade profile learn` from %s for %s.\n# Parent: %s. Added to the parent, and why:\n%s\n# Review it (palisade profile lint --strict), then install and select it.\n\n",
		name, source, wl, parent.Name, strings.Join(notes, "\n"))
	return head + string(data), nil
}

// imageRepository is an image reference without its tag or digest.
func imageRepository(ref string) string {
	if i := strings.IndexAny(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}
