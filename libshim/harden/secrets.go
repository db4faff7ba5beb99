package harden

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/secrets"
	"palisade.dev/palisade/profiles"
)

// secretsStep plans the container's secrets and rewrites its environment:
// a variable whose value is "palisade-secret:NAME" becomes VAR_FILE pointing
// at the secret's file; a variable named in palisade.dev/secret-env has its
// value moved into a file the same way; other variables whose names look
// like secrets are allowed, recorded or refused as the profile says. The
// secrets directory is bind-mounted read-only, nosuid, nodev, noexec. The
// plan (with moved values, never logged) is the Plan's Secrets, for the
// launcher to mount before runc runs. Names only are recorded.
func secretsStep(r *run, s *specs.Spec) error {
	pol, cfg := r.req.Policy, r.req.Config
	target := pol.Profile.Secrets.Target
	uid, gid, ok := hostIDs(s)
	if !ok {
		return r.refuse(fmt.Sprintf("user %d:%d is outside the container's user namespace mappings", s.Process.User.UID, s.Process.User.GID),
			"run the container as a user its uidMappings and gidMappings map")
	}
	plan := &secrets.Plan{
		Scope: r.req.SecretScope, Dir: r.req.SecretsDir, Bundle: r.req.Bundle,
		UID: uid, GID: gid,
		MaxSize: cfg.Secrets.MaxSize, MaxTotal: cfg.Secrets.MaxTotal,
	}
	if l := r.dec.Labels; l != nil {
		plan.MountLabel = l.SELinuxMount // lsm-labels ran first
	}
	add := func(it secrets.Item) {
		if !slices.ContainsFunc(plan.Items, func(o secrets.Item) bool { return o.Name == it.Name }) {
			plan.Items = append(plan.Items, it)
		}
	}
	for _, req := range pol.Secrets {
		t := req.Target
		if t == "" {
			t = path.Join(target, req.Name)
		}
		if t != path.Join(target, req.Name) && (t == target || strings.HasPrefix(t, target+"/")) {
			return r.refuse(fmt.Sprintf("secret %q: target %s lies inside the read-only secrets directory %s, where it cannot be placed", req.Name, t, target),
				"leave the target out (the secret appears as "+path.Join(target, req.Name)+") or choose a path outside "+target)
		}
		add(secrets.Item{Name: req.Name, Target: t})
	}
	env := s.Process.Env[:0:0]
	for _, kv := range s.Process.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(v, secrets.EnvReference):
			name := strings.TrimPrefix(v, secrets.EnvReference)
			if err := secrets.ValidName(name); err != nil {
				return r.refuse(fmt.Sprintf("environment variable %s refers to a secret: %v", k, err), "use "+secrets.EnvReference+"NAME with a valid secret name")
			}
			if cfg.Secrets.Store == "" {
				return r.refuse(fmt.Sprintf("environment variable %s refers to secret %q, but this node has no secret store", k, name), "ask the node administrator to set secrets.store")
			}
			add(secrets.Item{Name: name, Target: path.Join(target, name)})
			env = append(env, k+"_FILE="+path.Join(target, name))
			r.record("env "+k+" ("+secrets.EnvReference+name+")", k+"_FILE="+path.Join(target, name))
		case slices.Contains(pol.SecretEnv, k):
			if err := secrets.ValidName(k); err != nil {
				return r.refuse(fmt.Sprintf("environment variable %s cannot be a secret file name: %v", k, err), "")
			}
			add(secrets.Item{Name: k, Target: path.Join(target, k), Value: []byte(v)})
			env = append(env, k+"_FILE="+path.Join(target, k))
			r.record("env "+k+" (value withheld)", k+"_FILE="+path.Join(target, k))
		default:
			if secrets.MatchesPattern(k, cfg.Secrets.EnvPatterns) {
				switch pol.Profile.Secrets.Env {
				case profiles.EnvRefuse:
					if err := r.wouldRefuse(fmt.Sprintf("environment variable %s looks like a secret (it matches the node's secret patterns)", k),
						fmt.Sprintf("deliver it as a file: set %s=%sNAME, or name it in %s", k, secrets.EnvReference, "palisade.dev/secret-env"),
						audit.SubjectEnv, k); err != nil {
						return err
					}
				case profiles.EnvAudit:
					r.note(fmt.Sprintf("environment variable %s looks like a secret and stays in the environment", k))
				}
			}
			env = append(env, kv)
		}
	}
	for _, k := range pol.SecretEnv {
		moved := slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"_FILE=") })
		if !moved {
			return r.refuse(fmt.Sprintf("palisade.dev/secret-env names %s, which the process environment does not have", k), "remove it from the annotation")
		}
	}
	if len(env) != len(s.Process.Env) || !slices.Equal(env, s.Process.Env) {
		s.Process.Env = env
	}
	if len(plan.Items) == 0 {
		return nil
	}
	// Values moved out of the environment are gone from the spec after this
	// pass: hardening a hardened spec again plans only the annotated secrets.
	// The shim plans once, at create.
	if plan.Dir == "" {
		return r.refuse("the container asks for secrets but the shim has no place to mount them", "")
	}
	want := []specs.Mount{{Destination: target, Type: "bind", Source: plan.Dir, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}}
	for _, it := range plan.Items {
		if it.Target != path.Join(target, it.Name) {
			want = append(want, specs.Mount{Destination: it.Target, Type: "bind", Source: path.Join(plan.Dir, it.Name), Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
		}
	}
	for _, m := range want {
		if !slices.ContainsFunc(s.Mounts, func(o specs.Mount) bool { return o.Destination == m.Destination }) {
			s.Mounts = append(s.Mounts, m)
		}
	}
	r.record(nil, fmt.Sprintf("secrets %s from scope %q on a read-only tmpfs at %s", strings.Join(plan.Names(), ", "), plan.Scope, target))
	r.dec.Secrets = plan
	return nil
}

// secretsProcess rewrites an exec process's environment as the container's
// was rewritten at create (clients copy the container's original process,
// values included): references and moved variables become VAR_FILE. The
// files exist only for secrets delivered at create.
func secretsProcess(r *run, p *specs.Process) error {
	target := r.req.Policy.Profile.Secrets.Target
	env := p.Env[:0:0]
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		name := ""
		switch {
		case strings.HasPrefix(v, secrets.EnvReference):
			name = strings.TrimPrefix(v, secrets.EnvReference)
		case slices.Contains(r.req.Policy.SecretEnv, k):
			name = k
		default:
			if secrets.MatchesPattern(k, r.req.Config.Secrets.EnvPatterns) && r.req.Policy.Profile.Secrets.Env == profiles.EnvRefuse {
				return r.refuse(fmt.Sprintf("environment variable %s of the exec request looks like a secret (it matches the node's secret patterns)", k),
					"deliver it as a file instead")
			}
			env = append(env, kv)
			continue
		}
		if !slices.Contains(r.dec.SecretNames, name) {
			return r.refuse(fmt.Sprintf("environment variable %s refers to secret %q, which was not delivered to this container at create", k, name),
				"request the secret when the container is created")
		}
		env = append(env, k+"_FILE="+path.Join(target, name))
		r.record("env "+k+" (value withheld)", k+"_FILE="+path.Join(target, name))
	}
	p.Env = env
	return nil
}

func verifySecretsEnv(req *Request, _ *Decisions, p *specs.Process) string {
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(v, secrets.EnvReference) {
			return "environment variable " + k + " still holds a secret reference"
		}
		if slices.Contains(req.Policy.SecretEnv, k) {
			return "environment variable " + k + " was to be moved into a secret file"
		}
	}
	return ""
}

func verifySecretsMount(_ *Request, dec *Decisions, s *specs.Spec) string {
	if dec == nil || dec.Secrets == nil {
		return ""
	}
	for _, m := range s.Mounts {
		if m.Source == dec.Secrets.Dir {
			if l := lacking(m.Options, attrRO, attrNoSUID, attrNoDev, attrNoExec); len(l) > 0 {
				return "the secrets mount lacks " + strings.Join(l, ",")
			}
			return ""
		}
	}
	return "the secrets are planned but not mounted"
}
