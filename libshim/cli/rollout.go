package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/profiles"
	"palisade.dev/palisade/seccomp"
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
		if f.Count == 0 {
			f.Count = 1
		}
		for i := range l {
			if l[i].Rule == f.Rule && l[i].Subject == f.Subject && l[i].Value == f.Value && l[i].Reason == f.Reason {
				l[i].Count += f.Count
				return l
			}
		}
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
		switch {
		case r.Event == audit.EventSeccompWouldDeny || r.Event == audit.EventExecWouldRefuse:
			// what ran inside, counted below
		case r.Result == audit.ResultAllowed:
			s.Allowed++
		case r.Result == audit.ResultRefused:
			s.Refused = add(s.Refused, finding{Rule: refusedRule(r.Reason), Reason: r.Reason})
		}
		for _, c := range r.Changes {
			if w := c.WouldRefuse; w != nil {
				s.WouldRefuse = add(s.WouldRefuse, finding{Rule: c.Rule, Subject: w.Subject, Value: w.Value, Reason: w.Reason})
			}
		}
		for _, c := range r.Syscalls {
			s.WouldRefuse = add(s.WouldRefuse, finding{Rule: "seccomp", Subject: "syscall", Value: c.Name + " (" + c.Arch + ")",
				Reason: "denied by the seccomp profile, let through in alert mode", Count: int(c.Count)})
		}
		for _, x := range r.Executables {
			s.WouldRefuse = add(s.WouldRefuse, finding{Rule: "exec-allowlist", Subject: audit.SubjectExecutable, Value: x.Path + " -> " + x.Resolved,
				Reason: "run from inside the container, not on the exec allow-list", Count: int(x.Count)})
		}
		if r.Dropped > 0 {
			s.WouldRefuse = add(s.WouldRefuse, finding{Rule: string(r.Event), Subject: "dropped", Value: "not attributed",
				Reason: "alert mode's bounded table was full: more distinct calls or programs than it keeps", Count: int(r.Dropped)})
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
		// values and reasons quote what workloads named (program paths): one
		// line each, no terminal control sequences
		for _, f := range s.Refused {
			fmt.Fprintf(tw, "  refused\t%s\t%dx %s\n", f.Rule, f.Count, commentLine(f.Reason))
		}
		for _, f := range s.WouldRefuse {
			fmt.Fprintf(tw, "  would refuse\t%s %s %s\t%dx %s\n", f.Rule, f.Subject, commentLine(f.Value), f.Count, commentLine(f.Reason))
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
	var file, parent, name, out string
	var sel selectorFlags
	cmd := &cobra.Command{
		Use:   "learn",
		Short: "Write a profile that admits exactly what a workload did in alert mode",
		Long: `learn reads the audit file, takes what alert mode would have refused for one workload — one
container (--container), every container of a pod (--pod) or of an image (--image) — and writes a
profile: the parent profile plus exactly those allowances (capabilities, executables, images, sysctls,
devices, and the system calls the seccomp profile denied), each with a comment saying where it came
from, in enforce mode. Learned system calls go into a seccomp profile written beside the profile
(DIR/seccomp/NAME.json for --out DIR/NAME.toml). Review it (palisade profile lint --strict), install
it in the admin's profiles directory, and select it.`,
		Example: `  palisade profile learn --from-audit /var/log/palisade/audit.jsonl --container default/web \
      --parent restricted --name web --out /etc/palisade/profiles/web.toml
  palisade profile learn --from-audit audit.jsonl --pod shop/checkout-7d9f --parent restricted --name checkout --out checkout.toml
  palisade profile learn --from-audit audit.jsonl --image registry.example.com/shop/checkout --parent restricted --name checkout --out checkout.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			match, what, err := sel.selector()
			if err != nil {
				return err
			}
			if parent == "" || name == "" {
				return &exitError{ExitUsage, fmt.Errorf("--parent and --name are required")}
			}
			cfg, err := f.load()
			if err != nil {
				return err
			}
			if file == "" {
				file = cfg.Audit.File
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
			l, err := learn(base, name, what, file, filterRecords(recs, match))
			if err != nil {
				return err
			}
			if len(l.syscalls) > 0 {
				if out == "" {
					return &exitError{ExitUsage, fmt.Errorf("the workload made system calls its seccomp profile denies: give --out, the seccomp profile is written beside it (seccomp/%s.json)", name)}
				}
				if err := l.writeSeccomp(cfg, base, filepath.Join(filepath.Dir(out), "seccomp", name+".json")); err != nil {
					return err
				}
			}
			text, err := l.render()
			if err != nil {
				return err
			}
			if out != "" {
				return os.WriteFile(out, []byte(text), 0o644)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), text)
			return err
		},
	}
	cmd.Flags().StringVar(&file, "from-audit", "", "audit file to learn from (default: the admin config's audit.file)")
	sel.add(cmd)
	cmd.Flags().StringVar(&parent, "parent", "", "the profile to start from")
	cmd.Flags().StringVar(&name, "name", "", "the new profile's name")
	cmd.Flags().StringVar(&out, "out", "", "write the profile here instead of standard output (needed when system calls are learned)")
	cmd.Flags().StringVar(&f.config, "config", "", "admin config (for its profiles directory)")
	return cmd
}

// selectorFlags choose the workload to learn from: exactly one of them.
type selectorFlags struct{ container, pod, image string }

func (s *selectorFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.container, "container", "", "one container: NAMESPACE/CONTAINER, or K8S-NAMESPACE/POD/CONTAINER")
	cmd.Flags().StringVar(&s.pod, "pod", "", "every container of a Kubernetes pod: NAMESPACE/NAME")
	cmd.Flags().StringVar(&s.image, "image", "", "every container of an image: a reference, or a repository for all its tags and digests")
}

func (s *selectorFlags) selector() (func(audit.Record) bool, string, error) {
	n := 0
	for _, v := range []string{s.container, s.pod, s.image} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return nil, "", &exitError{ExitUsage, fmt.Errorf("give exactly one of --container, --pod and --image")}
	}
	switch {
	case s.container != "":
		return func(r audit.Record) bool { return workload(r) == s.container }, "container " + s.container, nil
	case s.pod != "":
		return func(r audit.Record) bool { return r.Pod != "" && r.PodNamespace+"/"+r.Pod == s.pod }, "pod " + s.pod, nil
	}
	return func(r audit.Record) bool {
		return r.Image != "" && (r.Image == s.image || imageRepository(r.Image) == s.image)
	}, "image " + s.image, nil
}

func filterRecords(recs []audit.Record, keep func(audit.Record) bool) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// learned is what learn derived: the profile, the notes saying where each
// allowance came from, and the system calls for its seccomp profile.
type learned struct {
	parent, profile *profiles.Profile
	name, what      string
	source          string
	notes           []string
	syscalls        map[string]*seenCall
}

type seenCall struct {
	count       uint64
	first, last time.Time
	containers  []string
}

// learn derives a profile from parent and the would-be refusals in recs
// (the selected workload's records).
func learn(parent *profiles.Profile, name, what, source string, recs []audit.Record) (*learned, error) {
	p := parent.Clone()
	p.Name, p.Mode, p.Source = name, profiles.ModeEnforce, ""
	p.Description = fmt.Sprintf("learned from %s for %s, based on %s", source, what, parent.Name)
	l := &learned{parent: parent, profile: p, name: name, what: what, source: source, syscalls: map[string]*seenCall{}}
	seen := map[string]bool{}
	execs := map[string]*seenCall{}
	var dropped uint64
	allowExec := func(path string) {
		if p.Exec.Mode == profiles.ExecOff || p.Exec.Mode == profiles.ExecEntrypointOnly {
			p.Exec.Mode = profiles.ExecEnforce
		}
		p.Exec.Allow = append(p.Exec.Allow, path)
	}
	for _, r := range recs {
		dropped += r.Dropped
		for _, s := range r.Syscalls {
			addSeen(l.syscalls, s.Name, s.Count, s.First, s.Last, r.Container)
		}
		for _, x := range r.Executables {
			if x.Resolved == "" || strings.HasPrefix(x.Path, "fd ") {
				// nothing a list can name: an unread path, a missing file,
				// a program run from a descriptor (a memfd, a deleted file)
				l.notes = append(l.notes, fmt.Sprintf("#   not learned (program %s, resolved %q): not a file in the container; decide by hand", x.Path, x.Resolved))
				continue
			}
			addSeen(execs, x.Resolved, x.Count, x.First, x.Last, r.Container)
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
				allowExec(w.Value)
			case audit.SubjectImage:
				if len(p.Images.Allowed) > 0 {
					p.Images.Allowed = append(p.Images.Allowed, imageRepository(w.Value))
				}
			case audit.SubjectSysctl:
				p.Sysctls.Allowed = append(p.Sysctls.Allowed, w.Value)
			case audit.SubjectDevice:
				p.Devices.Allowed = append(p.Devices.Allowed, w.Value)
			default:
				l.notes = append(l.notes, fmt.Sprintf("#   not learned (%s %s): %s — decide by hand", w.Subject, w.Value, w.Reason))
				continue
			}
			l.notes = append(l.notes, fmt.Sprintf("#   %s %s: would have been refused on %s (%s)", w.Subject, w.Value, where, c.Rule))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(execs)) {
		allowExec(path)
		l.notes = append(l.notes, "#   executable "+path+": run from inside "+execs[path].describe()+" (exec-would-refuse)")
	}
	for _, n := range slices.Sorted(maps.Keys(l.syscalls)) {
		l.notes = append(l.notes, "#   system call "+n+": denied by seccomp profile "+parent.Seccomp.Profile+", made "+l.syscalls[n].describe()+" (seccomp-would-deny)")
	}
	if dropped > 0 {
		l.notes = append(l.notes, fmt.Sprintf("#   %d call(s) were not attributed (alert mode's bounded table was full): the workload may need more than this", dropped))
	}
	if len(seen) == 0 && len(execs) == 0 && len(l.syscalls) == 0 {
		return nil, &exitError{ExitFailed, fmt.Errorf("the audit file has no alert-mode findings for %s: run it in alert mode first (docs/rollout.md)", what)}
	}
	slices.Sort(p.Exec.Allow)
	p.Exec.Allow = slices.Compact(p.Exec.Allow)
	if len(l.syscalls) > 0 {
		p.Seccomp.Profile = name
	}
	if err := p.Normalize(); err != nil {
		return nil, &exitError{ExitFailed, err}
	}
	return l, nil
}

func addSeen(m map[string]*seenCall, k string, n uint64, first, last time.Time, container string) {
	s := m[k]
	if s == nil {
		s = &seenCall{first: first, last: last}
		m[k] = s
	}
	s.count += n
	if first.Before(s.first) {
		s.first = first
	}
	if last.After(s.last) {
		s.last = last
	}
	if !slices.Contains(s.containers, container) {
		s.containers = append(s.containers, container)
	}
}

func (s *seenCall) describe() string {
	return fmt.Sprintf("%d time(s) by %s, %s to %s", s.count, strings.Join(s.containers, ", "), s.first.Format(time.RFC3339), s.last.Format(time.RFC3339))
}

// render writes the profile TOML with its header of notes.
func (l *learned) render() (string, error) {
	data, err := toml.Marshal(l.profile)
	if err != nil {
		return "", &exitError{ExitFailed, err}
	}
	notes := make([]string, len(l.notes))
	for i, n := range l.notes {
		notes[i] = commentLine(n)
	}
	head := fmt.Sprintf("# Profile %s, learned by `palisade profile learn` from %s for %s.\n# Parent: %s. Added to the parent, and why:\n%s\n# Review it (palisade profile lint --strict), then install and select it.\n\n",
		commentLine(l.name), commentLine(l.source), commentLine(l.what), commentLine(l.parent.Name), strings.Join(notes, "\n"))
	return head + string(data), nil
}

// commentLine keeps text in one TOML comment line (or one line of a
// report): the paths a note quotes are what a workload named (a file called
// "a\n[capabilities]…" would otherwise end the comment and write the
// profile; "\x1b]52;…" would drive the reader's terminal), so every byte
// that is not printable UTF-8 is written as its Go escape (\n, \x1b,
// \u2028), which TOML allows in a comment.
func commentLine(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || !unicode.IsPrint(r) {
			q := strconv.Quote(s[i : i+size])
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// writeSeccomp writes the learned seccomp profile: the parent's, with the
// learned system calls taken out of its deny rules and allowed by a rule
// of their own that says where they came from. It must load as any admin
// profile does.
func (l *learned) writeSeccomp(cfg *config.Config, parent *profiles.Profile, path string) error {
	dir := ""
	if cfg.ProfilesDir != "" {
		dir = filepath.Join(cfg.ProfilesDir, "seccomp")
	}
	base, err := seccomp.Load(parent.Seccomp.Profile, dir)
	if err != nil {
		return &exitError{ExitFailed, err}
	}
	names := slices.Sorted(maps.Keys(l.syscalls))
	p := *base.Profile
	p.Syscalls = nil
	for _, r := range base.Profile.Syscalls {
		rc := *r
		if len(r.Args) == 0 && r.Action != specs.ActAllow {
			rc.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(names, n) })
		}
		if len(rc.Names) > 0 {
			p.Syscalls = append(p.Syscalls, &rc)
		}
	}
	var where []string
	for _, n := range names {
		where = append(where, n+" ("+l.syscalls[n].describe()+")")
	}
	p.Syscalls = append(p.Syscalls, &mobyseccomp.Syscall{
		LinuxSyscall: specs.LinuxSyscall{Names: names, Action: specs.ActAllow},
		Comment:      fmt.Sprintf("learned by palisade profile learn from %s for %s: %s", l.source, l.what, strings.Join(where, "; ")),
	})
	data, err := json.MarshalIndent(&p, "", "\t")
	if err != nil {
		return &exitError{ExitFailed, err}
	}
	if _, err := seccomp.Parse(l.name, path, data); err != nil {
		return &exitError{ExitFailed, fmt.Errorf("the learned seccomp profile does not validate: %w", err)}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return &exitError{ExitFailed, err}
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
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
