// Package policy resolves what one container may do: the admin config bounds
// which profile applies and how it is adjusted on this node, the workload's
// palisade.dev/ annotations may choose among what the admin allowed and ask
// for less (or for allow-listed extras), and the result is one Policy the
// hardening pipeline applies. Anything the workload asks for beyond that is
// refused with a Refusal that names the container, the rule and the fix.
package policy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"

	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/secrets"
	"palisade.dev/palisade/profiles"
	"palisade.dev/palisade/seccomp"
)

// Annotations a workload may set. Any other key under Prefix is refused, so
// that a misspelt request is never silently ignored.
const (
	Prefix              = "palisade.dev/"
	AnnotationProfile   = Prefix + "profile"
	AnnotationCapAdd    = Prefix + "cap-add"
	AnnotationPidsLimit = Prefix + "pids-limit"
	AnnotationSeccomp   = Prefix + "seccomp-profile"
	AnnotationExecAllow = Prefix + "exec-allow"
	AnnotationSecrets   = Prefix + "secrets"
	AnnotationSecretEnv = Prefix + "secret-env"
)

var knownAnnotations = []string{AnnotationProfile, AnnotationCapAdd, AnnotationPidsLimit, AnnotationSeccomp, AnnotationExecAllow, AnnotationSecrets, AnnotationSecretEnv}

// maxAnnotationValue bounds a palisade annotation's value.
const maxAnnotationValue = 4096

// Policy is the resolved policy of one container.
type Policy struct {
	// Profile is the effective profile: the selected one with the admin's
	// overrides applied. It is a private copy.
	Profile *profiles.Profile
	// CapAdd are the capabilities the workload asked for (canonical), all
	// allowed by Profile.
	CapAdd []string
	// PidsLimit is the container's PID limit: the profile's, or lower when
	// the workload asked for lower.
	PidsLimit int64
	// AllowedHooks are the OCI hook paths the admin allows.
	AllowedHooks []string
	// Seccomp is the seccomp profile; nil means unconfined, which only an
	// admin override allows.
	Seccomp *seccomp.Loaded
	// SeccompName names it ("unconfined" when Seccomp is nil).
	SeccompName string
	// Exec is the exec allow-list; nil when the container has none.
	Exec *Exec
	// Secrets are the secrets the workload asked for with palisade.dev/secrets.
	Secrets []SecretRequest
	// SecretEnv are environment variables whose values move into secret
	// files (palisade.dev/secret-env).
	SecretEnv []string
}

// SecretRequest is one requested secret: a name in the container's scope,
// and where it appears ("" for the profile's directory).
type SecretRequest struct {
	Name   string
	Target string
}

// Exec is a container's exec allow-list.
type Exec struct {
	Mode  string   // profiles.ExecEnforce, ExecAudit or ExecEntrypointOnly
	Allow []string // for entrypoint-only, filled in once the entrypoint is resolved
	// Source says where the list came from (the profile, or the annotation).
	Source string
	// Enforced is set by the pipeline when the kernel enforces the list
	// (Landlock through palisade-init); false in audit mode or when Landlock
	// is unavailable and the admin accepted API-only checks.
	Enforced bool
}

// Resolve computes the policy of a container from the admin config and the
// spec's annotations. container names it in errors.
func Resolve(container string, cfg *config.Config, annotations map[string]string) (*Policy, error) {
	refuse := func(rule, profile, reason, fix string) error {
		return &Refusal{Container: container, Rule: rule, Profile: profile, Reason: reason, Fix: fix, Kind: errdefs.ErrInvalidArgument}
	}
	for k, v := range annotations {
		if !strings.HasPrefix(k, Prefix) {
			continue
		}
		if !slices.Contains(knownAnnotations, k) {
			return nil, refuse("annotations", "", fmt.Sprintf("unknown annotation %q", k),
				"palisade understands "+strings.Join(knownAnnotations, ", "))
		}
		if len(v) > maxAnnotationValue {
			return nil, refuse("annotations", "", fmt.Sprintf("annotation %q is longer than %d bytes", k, maxAnnotationValue), "shorten it")
		}
	}

	set, err := profiles.Load(cfg.ProfilesDir)
	if err != nil {
		return nil, fmt.Errorf("palisade: container %s refused: %w", container, err)
	}
	name := cfg.DefaultProfile
	if want, ok := annotations[AnnotationProfile]; ok {
		selectable := append([]string{cfg.DefaultProfile}, cfg.SelectableProfiles...)
		if _, exists := set[want]; !exists {
			return nil, refuse("profile-selection", "", fmt.Sprintf("unknown profile %q requested with %s", want, AnnotationProfile),
				"choose one of the profiles this node allows: "+strings.Join(selectable, ", "))
		}
		if !slices.Contains(selectable, want) {
			return nil, refuse("profile-selection", "", fmt.Sprintf("profile %q is not selectable on this node", want),
				"choose one of "+strings.Join(selectable, ", ")+", or ask the node administrator to add it to selectable_profiles in "+cfg.Source)
		}
		name = want
	}
	base, ok := set[name]
	if !ok {
		return nil, config.Invalid(cfg.Source, "default_profile", fmt.Sprintf("profile %q does not exist (known: %s)", name, strings.Join(set.Names(), ", ")))
	}
	prof, err := applyOverride(cfg, base)
	if err != nil {
		return nil, err
	}
	for name := range cfg.Overrides {
		if _, ok := set[name]; !ok {
			return nil, config.Invalid(cfg.Source, "overrides."+name, fmt.Sprintf("profile %q does not exist", name))
		}
	}

	pol := &Policy{Profile: prof, PidsLimit: prof.Pids.Limit, AllowedHooks: cfg.AllowedHooks}
	if v, ok := annotations[AnnotationCapAdd]; ok {
		for _, item := range strings.Split(v, ",") {
			c, err := caps.Canonical(item)
			if err != nil {
				return nil, refuse("capabilities", prof.Name, fmt.Sprintf("%s: %v", AnnotationCapAdd, err), "use capability names such as NET_BIND_SERVICE")
			}
			if !slices.Contains(prof.Capabilities.Allowed, c) {
				return nil, refuse("capabilities", prof.Name, fmt.Sprintf("capability %s is not allowed by profile %q (allowed: %s)", c, prof.Name, caps.Short(prof.Capabilities.Allowed)),
					"remove it from "+AnnotationCapAdd+", or select a profile that allows it")
			}
			if !caps.Supported(c) {
				return nil, refuse("capabilities", prof.Name, fmt.Sprintf("capability %s is not supported by this kernel", c), "remove it from "+AnnotationCapAdd)
			}
			pol.CapAdd = append(pol.CapAdd, c)
		}
		pol.CapAdd = caps.Set(pol.CapAdd)
	}
	if v, ok := annotations[AnnotationPidsLimit]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case err != nil || n <= 0:
			return nil, refuse("pids-limit", prof.Name, fmt.Sprintf("%s=%q is not a positive number", AnnotationPidsLimit, v), "give a number of processes such as 64")
		case n > prof.Pids.Limit:
			return nil, refuse("pids-limit", prof.Name, fmt.Sprintf("%s=%d is above the profile's limit of %d", AnnotationPidsLimit, n, prof.Pids.Limit),
				"a workload may only ask for a lower limit")
		}
		pol.PidsLimit = n
	}
	if err := resolveSeccomp(pol, cfg, annotations, refuse); err != nil {
		return nil, err
	}
	if err := resolveExec(pol, annotations, refuse); err != nil {
		return nil, err
	}
	if err := resolveSecrets(pol, cfg, annotations, refuse); err != nil {
		return nil, err
	}
	return pol, nil
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// resolveSecrets reads palisade.dev/secrets ("name" or "name=/target/path",
// comma-separated) and palisade.dev/secret-env (variable names).
func resolveSecrets(pol *Policy, cfg *config.Config, annotations map[string]string, refuse func(rule, profile, reason, fix string) error) error {
	prof := pol.Profile.Name
	if v, ok := annotations[AnnotationSecrets]; ok {
		seen := map[string]bool{}
		for _, item := range strings.Split(v, ",") {
			name, target, _ := strings.Cut(strings.TrimSpace(item), "=")
			if err := secrets.ValidName(name); err != nil {
				return refuse("secrets", prof, fmt.Sprintf("%s: %v", AnnotationSecrets, err), "name secrets by their file name in the store")
			}
			if target != "" {
				if err := secrets.ValidTarget(target); err != nil {
					return refuse("secrets", prof, fmt.Sprintf("%s: %v", AnnotationSecrets, err), "give an absolute path outside /proc, /sys and /dev")
				}
			}
			if seen[name] {
				return refuse("secrets", prof, fmt.Sprintf("%s names secret %q twice", AnnotationSecrets, name), "list each secret once")
			}
			seen[name] = true
			pol.Secrets = append(pol.Secrets, SecretRequest{Name: name, Target: target})
		}
		if cfg.Secrets.Store == "" {
			return refuse("secrets", prof, "this node has no secret store (secrets.store is not set in "+cfg.Source+")", "ask the node administrator to configure one")
		}
	}
	if v, ok := annotations[AnnotationSecretEnv]; ok {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if !envNameRe.MatchString(name) {
				return refuse("secrets", prof, fmt.Sprintf("%s: %q is not an environment variable name", AnnotationSecretEnv, name), "list variable names such as DB_PASSWORD")
			}
			pol.SecretEnv = append(pol.SecretEnv, name)
		}
	}
	return nil
}

// resolveExec takes the profile's exec allow-list, narrowed by the
// workload's palisade.dev/exec-allow when it sets one.
func resolveExec(pol *Policy, annotations map[string]string, refuse func(rule, profile, reason, fix string) error) error {
	prof := pol.Profile
	if prof.Exec.Mode != profiles.ExecOff {
		pol.Exec = &Exec{Mode: prof.Exec.Mode, Allow: append([]string(nil), prof.Exec.Allow...), Source: "profile " + prof.Name}
	}
	v, ok := annotations[AnnotationExecAllow]
	if !ok {
		return nil
	}
	var list []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		clean := filepath.Clean(item)
		if strings.HasSuffix(item, "/") && clean != "/" {
			clean += "/"
		}
		if !filepath.IsAbs(item) || clean != item || item == "/" {
			return refuse("exec-allowlist", prof.Name, fmt.Sprintf("%s entry %q is not a clean absolute path", AnnotationExecAllow, item),
				"list absolute paths inside the container; end one with / to allow a directory tree")
		}
		list = append(list, item)
	}
	switch {
	case pol.Exec == nil:
		pol.Exec = &Exec{Mode: profiles.ExecEnforce, Allow: list, Source: AnnotationExecAllow}
	case pol.Exec.Mode == profiles.ExecEntrypointOnly:
		return refuse("exec-allowlist", prof.Name, fmt.Sprintf("profile %q already allows only the entrypoint; %s cannot narrow it further", prof.Name, AnnotationExecAllow),
			"remove the annotation")
	default:
		if err := execguard.Narrows(list, pol.Exec.Allow); err != nil {
			return refuse("exec-allowlist", prof.Name, fmt.Sprintf("%s does not narrow the profile's list: %v", AnnotationExecAllow, err),
				"a workload may only remove entries from the profile's exec allow-list")
		}
		pol.Exec.Allow, pol.Exec.Source = list, AnnotationExecAllow
	}
	return nil
}

// resolveSeccomp chooses the seccomp profile: the profile's, or one of its
// selectable ones that the workload asked for. "unconfined" needs the
// admin's override for this profile.
func resolveSeccomp(pol *Policy, cfg *config.Config, annotations map[string]string, refuse func(rule, profile, reason, fix string) error) error {
	prof := pol.Profile
	name := prof.Seccomp.Profile
	unconfinedOK := cfg.Overrides[prof.Name].SeccompUnconfined
	if want, ok := annotations[AnnotationSeccomp]; ok {
		choices := append([]string{prof.Seccomp.Profile}, prof.Seccomp.Selectable...)
		if unconfinedOK {
			choices = append(choices, seccomp.Unconfined)
		}
		if want == seccomp.Unconfined && !unconfinedOK {
			return refuse("seccomp", prof.Name, fmt.Sprintf("running without seccomp is not allowed for profile %q on this node", prof.Name),
				"use a seccomp profile, or ask the node administrator to set overrides."+prof.Name+".seccomp_unconfined = true in "+cfg.Source)
		}
		if !slices.Contains(choices, want) {
			return refuse("seccomp", prof.Name, fmt.Sprintf("seccomp profile %q is not selectable under profile %q", want, prof.Name),
				"choose one of "+strings.Join(choices, ", "))
		}
		name = want
	}
	pol.SeccompName = name
	if name == seccomp.Unconfined {
		if !unconfinedOK {
			return refuse("seccomp", prof.Name, fmt.Sprintf("running without seccomp is not allowed for profile %q on this node", prof.Name),
				"use a seccomp profile, or ask the node administrator to set overrides."+prof.Name+".seccomp_unconfined = true in "+cfg.Source)
		}
		return nil
	}
	dir := ""
	if cfg.ProfilesDir != "" {
		dir = filepath.Join(cfg.ProfilesDir, "seccomp")
	}
	l, err := seccomp.Load(name, dir)
	if err != nil {
		return refuse("seccomp", prof.Name, err.Error(), "fix or install the seccomp profile")
	}
	pol.Seccomp = l
	return nil
}

// applyOverride returns a private copy of p with the admin's override for
// it applied and validated.
func applyOverride(cfg *config.Config, p *profiles.Profile) (*profiles.Profile, error) {
	prof := p.Clone()
	o, ok := cfg.Overrides[p.Name]
	if !ok {
		return prof, nil
	}
	if o.CapabilitiesAllowed != nil {
		prof.Capabilities.Allowed = append([]string(nil), (*o.CapabilitiesAllowed)...)
	}
	if o.PidsLimit > 0 {
		prof.Pids.Limit = o.PidsLimit
	}
	if o.Tmpfs != nil {
		prof.Filesystem.Tmpfs = append([]profiles.Tmpfs(nil), (*o.Tmpfs)...)
	}
	if o.SeccompCompatABI != nil {
		prof.Seccomp.CompatABI = *o.SeccompCompatABI
	}
	prof.Source = p.Source + " with overrides from " + cfg.Source
	if err := prof.Normalize(); err != nil {
		return nil, config.Invalid(cfg.Source, "overrides."+p.Name, err.Error())
	}
	return prof, nil
}
