// Package policy resolves what one container may do: the admin config bounds
// which profile applies and how it is adjusted on this node, the workload's
// palisade.dev/ annotations may choose among what the admin allowed and ask
// for less (or for allow-listed extras), and the result is one Policy the
// hardening pipeline applies. Anything the workload asks for beyond that is
// refused with a Refusal that names the container, the rule and the fix.
package policy

import (
	"fmt"
	"slices"
	"strings"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/config"
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
	AnnotationWritable  = Prefix + "writable-paths"
)

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
	// Alert is set when the container runs in alert mode (its profile's
	// mode, or an admin's override or alert namespace): rules that allow it
	// record what they would refuse instead of refusing.
	Alert bool
	// WouldRefuse are the would-be refusals of the workload's annotations
	// in alert mode, for the audit record.
	WouldRefuse []audit.Change
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
}

// Resolve computes the policy of a container from the admin config and the
// spec's annotations. container names it in errors. Each palisade.dev/
// annotation is read by its entry in the annotations table
// (annotations.go), in the table's order; any other key under Prefix is
// refused.
func Resolve(container string, cfg *config.Config, annotations map[string]string) (*Policy, error) {
	for k, v := range annotations {
		if !strings.HasPrefix(k, Prefix) {
			continue
		}
		if lookupAnnotation(k) == nil {
			return nil, Invalid(container, "annotations", "", fmt.Sprintf("unknown annotation %q", k),
				"palisade understands "+strings.Join(AnnotationKeys(), ", "))
		}
		if len(v) > maxAnnotationValue {
			return nil, Invalid(container, "annotations", "", fmt.Sprintf("annotation %q is longer than %d bytes", k, maxAnnotationValue), "shorten it")
		}
	}
	set, err := profiles.Load(cfg.ProfilesDir)
	if err != nil {
		return nil, fmt.Errorf("palisade: container %s refused: %w", container, err)
	}
	for name := range cfg.Overrides {
		if _, ok := set[name]; !ok {
			return nil, config.Invalid(cfg.Source, "overrides."+name, fmt.Sprintf("profile %q does not exist", name))
		}
	}
	scope, _, _ := strings.Cut(container, "/")
	if k8s := annotations["io.kubernetes.cri.sandbox-namespace"]; k8s != "" && slices.Contains(cfg.Node.CRINamespaces, scope) {
		scope = k8s
	}
	res := &resolution{container: container, cfg: cfg, set: set, name: cfg.DefaultProfile, scope: scope, pol: &Policy{AllowedHooks: cfg.AllowedHooks}}
	for _, a := range annotationTable {
		if a.key == AnnotationProfile {
			if v, ok := annotations[a.key]; ok {
				if err := a.apply(res, v); err != nil {
					return nil, err
				}
			}
			if err := res.profileDefaults(); err != nil {
				return nil, err
			}
			continue
		}
		if v, ok := annotations[a.key]; ok {
			if err := a.apply(res, v); err != nil {
				return nil, err
			}
		}
	}
	if err := res.loadSeccomp(); err != nil {
		return nil, err
	}
	return res.pol, nil
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
	if o.Mode != "" {
		prof.Mode = o.Mode
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
