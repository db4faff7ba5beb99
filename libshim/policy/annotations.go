package policy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/names"
	"palisade.dev/palisade/libshim/secrets"
	"palisade.dev/palisade/profiles"
	"palisade.dev/palisade/seccomp"
)

// What a workload may set, in one table (gVisor's overrideAllowlist does
// the same for runsc's flags): each palisade.dev/ key next to the function
// that reads it into the policy, which also checks that it only tightens
// the profile or stays within what the administrator allowed. The docs'
// annotation table is generated from Value and Effect
// (TestAnnotationsDocumented).
type annotation struct {
	key    string
	Value  string // the value's form
	Effect string // what it does, and its bound
	apply  func(r *resolution, v string) error
}

// annotationTable is in the order the annotations are applied: the profile
// first, since every other annotation is judged against it.
var annotationTable = []annotation{
	{AnnotationProfile, "a profile name", "select it, if it is the default or listed in `selectable_profiles`", selectProfile},
	{AnnotationCapAdd, "comma-separated capability names", "add these, each must be allowed by the profile", addCapabilities},
	{AnnotationPidsLimit, "positive integer", "a lower PID limit (never higher)", lowerPidsLimit},
	{AnnotationSeccomp, "a seccomp profile name", "one of the profile's `seccomp.selectable` (or `unconfined` where the admin allows it)", selectSeccomp},
	{AnnotationExecAllow, "comma-separated paths", "a narrower exec allow-list (or one, when the profile has none)", narrowExec},
	{AnnotationSecrets, "`name[=/target],…`", "secrets from the container's scope, as files", requestSecrets},
	{AnnotationSecretEnv, "`VAR,…`", "move these variables' values into secret files", moveSecretEnv},
	{AnnotationWritable, "comma-separated paths", "a noexec tmpfs of the profile's `filesystem.writable_size` at each (at most 8), each at or below one of the profile's `filesystem.writable_allowed`", addWritable},
}

func lookupAnnotation(key string) *annotation {
	for i := range annotationTable {
		if annotationTable[i].key == key {
			return &annotationTable[i]
		}
	}
	return nil
}

// AnnotationKeys lists every annotation a workload may set.
func AnnotationKeys() []string {
	out := make([]string, len(annotationTable))
	for i, a := range annotationTable {
		out[i] = a.key
	}
	return out
}

// AnnotationDoc is one row of the annotation table, for docs and explain.
type AnnotationDoc struct{ Key, Value, Effect string }

// AnnotationDocs describes every annotation, in the table's order.
func AnnotationDocs() []AnnotationDoc {
	out := make([]AnnotationDoc, len(annotationTable))
	for i, a := range annotationTable {
		out[i] = AnnotationDoc{a.key, a.Value, a.Effect}
	}
	return out
}

// resolution is one Resolve in progress.
type resolution struct {
	container string
	cfg       *config.Config
	set       profiles.Set
	name      string // the selected profile
	pol       *Policy
	seccomp   string // the selected seccomp profile
	// scope is the namespace alert_namespaces name: the Kubernetes
	// namespace of a CRI container, else the containerd namespace.
	scope string
}

func (r *resolution) refuse(rule, reason, fix string) error {
	prof := ""
	if r.pol.Profile != nil {
		prof = r.pol.Profile.Name
	}
	return Invalid(r.container, rule, prof, reason, fix)
}

// profileDefaults fixes the selected profile (with the admin's overrides)
// and what follows from it before any other annotation is read.
func (r *resolution) profileDefaults() error {
	base, ok := r.set[r.name]
	if !ok {
		return config.Invalid(r.cfg.Source, "default_profile", fmt.Sprintf("profile %q does not exist (known: %s)", r.name, strings.Join(r.set.Names(), ", ")))
	}
	prof, err := applyOverride(r.cfg, base)
	if err != nil {
		return err
	}
	r.pol.Profile, r.pol.PidsLimit, r.seccomp = prof, prof.Pids.Limit, prof.Seccomp.Profile
	r.pol.Alert = prof.Mode == profiles.ModeAlert || slices.Contains(r.cfg.AlertNamespaces, r.scope)
	if prof.Exec.Mode != profiles.ExecOff {
		r.pol.Exec = &Exec{Mode: prof.Exec.Mode, Allow: slices.Clone(prof.Exec.Allow), Source: "profile " + prof.Name}
	}
	return nil
}

func selectProfile(r *resolution, want string) error {
	selectable := append([]string{r.cfg.DefaultProfile}, r.cfg.SelectableProfiles...)
	if _, exists := r.set[want]; !exists {
		return r.refuse("profile-selection", fmt.Sprintf("unknown profile %q requested with %s", want, AnnotationProfile),
			"choose one of the profiles this node allows: "+strings.Join(selectable, ", "))
	}
	if !slices.Contains(selectable, want) {
		return r.refuse("profile-selection", fmt.Sprintf("profile %q is not selectable on this node", want),
			"choose one of "+strings.Join(selectable, ", ")+", or ask the node administrator to add it to selectable_profiles in "+r.cfg.Source)
	}
	r.name = want
	return nil
}

func addCapabilities(r *resolution, v string) error {
	prof := r.pol.Profile
	for _, item := range strings.Split(v, ",") {
		c, err := caps.Canonical(item)
		if err != nil {
			return r.refuse("capabilities", fmt.Sprintf("%s: %v", AnnotationCapAdd, err), "use capability names such as NET_BIND_SERVICE")
		}
		if !slices.Contains(prof.Capabilities.Allowed, c) {
			reason := fmt.Sprintf("capability %s is not allowed by profile %q (allowed: %s)", c, prof.Name, caps.Short(prof.Capabilities.Allowed))
			fix := "remove it from " + AnnotationCapAdd + ", or select a profile that allows it"
			if r.pol.Alert {
				r.pol.WouldRefuse = append(r.pol.WouldRefuse, audit.Change{Rule: "capabilities", After: "alert mode, would refuse: " + reason, Note: true,
					WouldRefuse: &audit.WouldRefuse{Reason: reason, Fix: fix, Subject: audit.SubjectCapability, Value: c}})
				continue // recorded, and not granted
			}
			return r.refuse("capabilities", reason, fix)
		}
		if !caps.Supported(c) {
			return r.refuse("capabilities", fmt.Sprintf("capability %s is not supported by this kernel", c), "remove it from "+AnnotationCapAdd)
		}
		r.pol.CapAdd = append(r.pol.CapAdd, c)
	}
	r.pol.CapAdd = caps.Set(r.pol.CapAdd)
	return nil
}

func lowerPidsLimit(r *resolution, v string) error {
	limit := r.pol.Profile.Pids.Limit
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	switch {
	case err != nil || n <= 0:
		return r.refuse("pids-limit", fmt.Sprintf("%s=%q is not a positive number", AnnotationPidsLimit, v), "give a number of processes such as 64")
	case n > limit:
		return r.refuse("pids-limit", fmt.Sprintf("%s=%d is above the profile's limit of %d", AnnotationPidsLimit, n, limit),
			"a workload may only ask for a lower limit")
	}
	r.pol.PidsLimit = n
	return nil
}

// selectSeccomp chooses one of the profile's selectable seccomp profiles;
// "unconfined" needs the admin's override for this profile.
func selectSeccomp(r *resolution, want string) error {
	prof := r.pol.Profile
	choices := append([]string{prof.Seccomp.Profile}, prof.Seccomp.Selectable...)
	if r.unconfinedOK() {
		choices = append(choices, seccomp.Unconfined)
	}
	if want == seccomp.Unconfined && !r.unconfinedOK() {
		return r.refuse("seccomp", fmt.Sprintf("running without seccomp is not allowed for profile %q on this node", prof.Name), r.unconfinedFix())
	}
	if !slices.Contains(choices, want) {
		return r.refuse("seccomp", fmt.Sprintf("seccomp profile %q is not selectable under profile %q", want, prof.Name),
			"choose one of "+strings.Join(choices, ", "))
	}
	r.seccomp = want
	return nil
}

func (r *resolution) unconfinedOK() bool {
	return r.cfg.Overrides[r.pol.Profile.Name].SeccompUnconfined
}

func (r *resolution) unconfinedFix() string {
	return "use a seccomp profile, or ask the node administrator to set overrides." + r.pol.Profile.Name + ".seccomp_unconfined = true in " + r.cfg.Source
}

// loadSeccomp loads the selected seccomp profile (unconfined only where
// the admin allows it).
func (r *resolution) loadSeccomp() error {
	r.pol.SeccompName = r.seccomp
	if r.seccomp == seccomp.Unconfined {
		if !r.unconfinedOK() {
			return r.refuse("seccomp", fmt.Sprintf("running without seccomp is not allowed for profile %q on this node", r.pol.Profile.Name), r.unconfinedFix())
		}
		return nil
	}
	dir := ""
	if r.cfg.ProfilesDir != "" {
		dir = filepath.Join(r.cfg.ProfilesDir, "seccomp")
	}
	l, err := seccomp.Load(r.seccomp, dir)
	if err != nil {
		return r.refuse("seccomp", err.Error(), "fix or install the seccomp profile")
	}
	r.pol.Seccomp = l
	return nil
}

// narrowExec takes the profile's exec allow-list narrowed by the workload's
// list, or the workload's list when the profile has none.
func narrowExec(r *resolution, v string) error {
	prof := r.pol.Profile
	var list []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		clean := filepath.Clean(item)
		if strings.HasSuffix(item, "/") && clean != "/" {
			clean += "/"
		}
		if !filepath.IsAbs(item) || clean != item || item == "/" {
			return r.refuse("exec-allowlist", fmt.Sprintf("%s entry %q is not a clean absolute path", AnnotationExecAllow, item),
				"list absolute paths inside the container; end one with / to allow a directory tree")
		}
		list = append(list, item)
	}
	switch ex := r.pol.Exec; {
	case ex == nil:
		r.pol.Exec = &Exec{Mode: profiles.ExecEnforce, Allow: list, Source: AnnotationExecAllow}
	case ex.Mode == profiles.ExecEntrypointOnly:
		return r.refuse("exec-allowlist", fmt.Sprintf("profile %q already allows only the entrypoint; %s cannot narrow it further", prof.Name, AnnotationExecAllow),
			"remove the annotation")
	default:
		if err := execguard.Narrows(list, ex.Allow); err != nil {
			return r.refuse("exec-allowlist", fmt.Sprintf("%s does not narrow the profile's list: %v", AnnotationExecAllow, err),
				"a workload may only remove entries from the profile's exec allow-list")
		}
		ex.Allow, ex.Source = list, AnnotationExecAllow
	}
	return nil
}

// requestSecrets reads "name" or "name=/target/path", comma-separated.
func requestSecrets(r *resolution, v string) error {
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		name, target, _ := strings.Cut(strings.TrimSpace(item), "=")
		if err := secrets.ValidName(name); err != nil {
			return r.refuse("secrets", fmt.Sprintf("%s: %v", AnnotationSecrets, err), "name secrets by their file name in the store")
		}
		if target != "" {
			if err := secrets.ValidTarget(target); err != nil {
				return r.refuse("secrets", fmt.Sprintf("%s: %v", AnnotationSecrets, err), "give an absolute path outside /proc, /sys and /dev")
			}
		}
		if seen[name] {
			return r.refuse("secrets", fmt.Sprintf("%s names secret %q twice", AnnotationSecrets, name), "list each secret once")
		}
		seen[name] = true
		r.pol.Secrets = append(r.pol.Secrets, SecretRequest{Name: name, Target: target})
	}
	if r.cfg.Secrets.Store == "" {
		return r.refuse("secrets", "this node has no secret store (secrets.store is not set in "+r.cfg.Source+")", "ask the node administrator to configure one")
	}
	return nil
}

// envName and envNameRest spell ^[A-Za-z_][A-Za-z0-9_]{0,127}$.
var envName, envNameRest = names.NewSet("A-Za-z_"), names.NewSet("A-Za-z0-9_")

func moveSecretEnv(r *resolution, v string) error {
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if !names.Valid(name, envName, envNameRest, 128) {
			return r.refuse("secrets", fmt.Sprintf("%s: %q is not an environment variable name", AnnotationSecretEnv, name), "list variable names such as DB_PASSWORD")
		}
		r.pol.SecretEnv = append(r.pol.SecretEnv, name)
	}
	return nil
}

// maxWritable bounds palisade.dev/writable-paths: each is a tmpfs of memory.
const maxWritable = 8

// addWritable makes the listed directories writable for images that write
// below their root at run time: each becomes a noexec, nosuid, nodev tmpfs
// of the profile's writable_size, and must lie at or below one of the
// profile's writable_allowed directories.
func addWritable(r *resolution, v string) error {
	prof := r.pol.Profile
	var add []profiles.Tmpfs
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if !filepath.IsAbs(item) || filepath.Clean(item) != item || item == "/" {
			return r.refuse("tmpfs", fmt.Sprintf("%s entry %q is not a clean absolute directory", AnnotationWritable, item),
				"list absolute directories inside the container, such as /var/cache/app")
		}
		if !slices.ContainsFunc(prof.Filesystem.WritableAllowed, func(d string) bool { return item == d || strings.HasPrefix(item, d+"/") }) {
			return r.refuse("tmpfs", fmt.Sprintf("%s: %s is not at or below a directory profile %q lets workloads make writable (%s)",
				AnnotationWritable, item, prof.Name, strings.Join(prof.Filesystem.WritableAllowed, ", ")),
				"use an emptyDir volume, or ask the node administrator to list the directory in filesystem.writable_allowed")
		}
		if slices.ContainsFunc(prof.Filesystem.Tmpfs, func(t profiles.Tmpfs) bool { return t.Path == item }) ||
			slices.ContainsFunc(add, func(t profiles.Tmpfs) bool { return t.Path == item }) {
			continue
		}
		add = append(add, profiles.Tmpfs{Path: item, Size: prof.Filesystem.WritableSize, Mode: "1777"})
	}
	if len(add) > maxWritable {
		return r.refuse("tmpfs", fmt.Sprintf("%s lists %d directories, more than %d", AnnotationWritable, len(add), maxWritable),
			"use an emptyDir volume for the rest")
	}
	// a new slice: the profile's own list is shared with other containers
	prof.Filesystem.Tmpfs = append(slices.Clip(prof.Filesystem.Tmpfs), add...)
	return nil
}
