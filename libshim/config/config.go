// Package config loads palisade's admin configuration: the TOML file a node
// administrator writes to say how the shim runs runc and where decisions are
// audited. The file's path comes from containerd's runtime options
// (ConfigPath, naming a file in a directory the administrator trusts; a
// config body sent by a client is refused), else DefaultPath, else the
// built-in defaults apply.
//
// Loading is strict: an unknown field, a wrong type or an invalid value is an
// error that names the file, the line and the field. The shim turns such an
// error into a refusal of every container, never into a crash or a silent
// fallback.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/tomlfile"
	"palisade.dev/palisade/profiles"
)

// DefaultPath is where the shim looks for the admin config when containerd's
// runtime options name none (or are runc's, see fromRuncOptions). It is a
// variable only so that the end-to-end harness can build a shim whose
// default is its private environment's (-ldflags -X); a client cannot
// change it.
var DefaultPath = "/etc/palisade/config.toml"

// SchemaVersion is the config schema this build understands.
const SchemaVersion = 1

// maxFileSize bounds how much of a config file is read: a config is a few
// kilobytes; anything much larger is a mistake or an attack on the shim.
const maxFileSize = 1 << 20

// SourceBuiltin names the built-in defaults as a config's source.
const SourceBuiltin = "<built-in defaults>"

// Config is the admin configuration. Every field is documented in
// docs/config.md; absent fields keep the value of Default().
type Config struct {
	// io is the owner of the container's I/O pipes containerd asked for
	// (runc options IoUid/IoGid, for a pod with its own user namespace).
	io struct{ uid, gid uint32 }
	// Version is the schema version; absent means SchemaVersion.
	Version int `toml:"version"`
	// DefaultProfile is the profile of a container that selects none.
	DefaultProfile string `toml:"default_profile"`
	// SelectableProfiles are the profiles a workload may choose with the
	// annotation palisade.dev/profile. The default profile always is.
	SelectableProfiles []string `toml:"selectable_profiles"`
	// ProfilesDir holds the admin's own profiles (*.toml), next to the
	// built-in ones. A missing directory is fine.
	ProfilesDir string `toml:"profiles_dir"`
	// AllowedHooks are the OCI hook binaries (absolute paths) a spec may
	// carry; a spec with any other hook is refused.
	AllowedHooks []string `toml:"allowed_hooks"`
	// Landlock says what to do when a profile's exec allow-list needs
	// Landlock and the kernel lacks it: "require" (refuse the container,
	// the default) or "if-available" (check at the API only, and record it).
	Landlock string `toml:"landlock"`
	// ExecHelper is the host path of palisade-init, the static helper that
	// applies Landlock inside containers. Default: next to the shim binary.
	ExecHelper string `toml:"exec_helper"`
	// AllowRestore lets containers be restored from checkpoints. Off by
	// default: CRIU restores a process's credentials, capabilities and
	// seccomp state from the checkpoint image, not from the hardened spec.
	AllowRestore bool `toml:"allow_restore"`
	// AllowCheckpoint lets clients checkpoint containers. Off by default:
	// the shim writes the image (the container's memory, secrets included)
	// as root to a path the client names.
	AllowCheckpoint bool `toml:"allow_checkpoint"`
	// Overrides adjust a profile on this node, by profile name.
	Overrides map[string]Override `toml:"overrides"`
	// Runc says how the wrapped runc shim runs runc.
	Runc Runc `toml:"runc"`
	// Audit says where decision records go besides the shim log.
	Audit Audit `toml:"audit"`
	// Secrets configures secret delivery.
	Secrets Secrets `toml:"secrets"`
	// Node describes what of this node's layout the shim cannot discover.
	Node Node `toml:"node"`
	// Stdio says which stdio targets besides FIFOs a client may give.
	Stdio Stdio `toml:"stdio"`
	// Images are the images this node runs.
	Images Images `toml:"images"`
	// AlertNamespaces are namespaces (Kubernetes namespaces for CRI
	// containers, else containerd namespaces) whose containers run in alert
	// mode whatever their profile says.
	AlertNamespaces []string `toml:"alert_namespaces"`
	// SELinux and AppArmor say how palisade applies each LSM.
	SELinux  SELinux  `toml:"selinux"`
	AppArmor AppArmor `toml:"apparmor"`

	// Source is where this config came from: a file path or
	// SourceBuiltin. It is not read from the file.
	Source string `toml:"-"`
}

// Landlock modes.
const (
	LandlockRequire     = "require"
	LandlockIfAvailable = "if-available"
)

// Override replaces parts of a profile on this node. Absent fields keep the
// profile's value.
type Override struct {
	// CapabilitiesAllowed replaces the profile's capability allow-list.
	CapabilitiesAllowed *[]string `toml:"capabilities_allowed"`
	// PidsLimit replaces the profile's PID limit when > 0.
	PidsLimit int64 `toml:"pids_limit"`
	// Tmpfs replaces the profile's tmpfs list.
	Tmpfs *[]profiles.Tmpfs `toml:"tmpfs"`
	// SeccompUnconfined lets containers of this profile run without a
	// seccomp filter, when the profile or the workload asks for "unconfined".
	SeccompUnconfined bool `toml:"seccomp_unconfined"`
	// SeccompCompatABI replaces the profile's seccomp.compat_abi when set:
	// whether 32-bit (compat ABI) system calls are admitted.
	SeccompCompatABI *bool `toml:"seccomp_compat_abi"`
	// Mode replaces the profile's mode ("enforce" or "alert") on this node.
	Mode string `toml:"mode"`
}

// Images bounds which images run on this node, besides each profile's own
// list.
type Images struct {
	// Allowed are image patterns ("REGISTRY/REPOSITORY", "PREFIX/*", "*").
	// Empty: any image.
	Allowed []string `toml:"allowed"`
	// RequireDigest admits only references pinned by digest.
	RequireDigest bool `toml:"require_digest"`
}

// Runc holds the options palisade passes to containerd's runc shim. They live
// in the admin config (not in the client's request) so that no client can
// point the shim at another runtime binary or state directory.
type Runc struct {
	// BinaryName is the OCI runtime binary: a name looked up in PATH, or an
	// absolute path. Default "runc".
	BinaryName string `toml:"binary_name"`
	// Root is runc's state directory (runc --root). Empty means runc's
	// default, /run/containerd/runc/<namespace>.
	Root string `toml:"root"`
	// SystemdCgroup makes runc manage cgroups through systemd.
	SystemdCgroup bool `toml:"systemd_cgroup"`
}

// Secrets configures where secrets come from and how they are delivered.
type Secrets struct {
	// Store is a root-owned directory (0700) with one subdirectory per
	// scope (the Kubernetes namespace, else the containerd namespace) and
	// one file per secret. Empty disables secrets: requests are refused.
	Store string `toml:"store"`
	// MountRoot is where per-container tmpfs mounts are made on the host.
	MountRoot string `toml:"mount_root"`
	// EnvPatterns are names of environment variables that look like
	// secrets (shell globs, case-insensitive); profiles say what to do
	// with them.
	EnvPatterns []string `toml:"env_patterns"`
	// MaxSize bounds one secret, MaxTotal all of a container's, in bytes.
	MaxSize  int64 `toml:"max_size"`
	MaxTotal int64 `toml:"max_total"`
}

// Node adds to what the shim discovers of the node's layout (containerd's
// root, state and shim socket directories, runc's root, palisade's own).
type Node struct {
	// ProtectedPaths are more host paths no bind mount may expose, nor any
	// parent of them (credentials, other runtimes' state).
	ProtectedPaths []string `toml:"protected_paths"`
	// KubeletRoot is the kubelet's root directory. A pod's containers may
	// bind-mount only their own pod's directory below it. Default
	// /var/lib/kubelet.
	KubeletRoot string `toml:"kubelet_root"`
	// CRINamespaces are the containerd namespaces of containerd's CRI
	// plugin: only there do CRI annotations place a container in a pod (its
	// sandbox's namespaces and directories). Default ["k8s.io"].
	CRINamespaces []string `toml:"cri_namespaces"`
	// NetnsDirs hold the network namespaces CNI pins (a pod sandbox joins
	// one). Default /run/netns and /var/run/netns.
	NetnsDirs []string `toml:"netns_dirs"`
}

// Stdio bounds the stdio targets of a container or exec process. A FIFO
// that already exists is always fine (ctr, CRI and nerdctl create them
// first); a binary:// logger runs on the host as root and a file:// target
// is written by the shim as root, so both need the administrator's leave.
type Stdio struct {
	// FIFODirs are where clients make stdio FIFOs, one directory of their
	// own per process inside (containerd's client library). CRI's
	// per-container FIFO directories are always accepted. Default
	// /run/containerd/fifo.
	FIFODirs []string `toml:"fifo_dirs"`
	// AllowedBinaries are the logging binaries (absolute paths) a
	// binary:// stdio URI may name, e.g. nerdctl's.
	AllowedBinaries []string `toml:"allowed_binaries"`
	// FileDirs are the directories a file:// stdio URI may write below.
	FileDirs []string `toml:"file_dirs"`
	// Exec allows binary:// and file:// targets for exec processes too (by
	// default only a container's own stdio may use them).
	Exec bool `toml:"exec"`
}

// SELinux configures SELinux labels (docs/lsm.md).
type SELinux struct {
	// Mode is "require", "if-available" (default) or "off".
	Mode string `toml:"mode"`
	// Type is the process type of every container (default container_t),
	// MountType the type of its files (default container_file_t).
	Type      string `toml:"type"`
	MountType string `toml:"mount_type"`
	// AllowedTypes are further process types a client's label may ask for.
	AllowedTypes []string `toml:"allowed_types"`
	// Categories is the MCS category range (c0 to cN-1, default 1024).
	Categories int `toml:"categories"`
	// StateDir holds the node's MCS reservations.
	StateDir string `toml:"state_dir"`
}

// AppArmor configures generated AppArmor profiles (docs/lsm.md).
type AppArmor struct {
	// Mode is "require", "if-available" (default) or "off".
	Mode string `toml:"mode"`
}

// Audit configures the audit sinks. Records always go to the shim log too.
type Audit struct {
	// File is an append-only JSON-lines file (created 0600). Empty disables
	// the file sink. Default /var/log/palisade/audit.jsonl.
	File string `toml:"file"`
}

// Default returns the built-in configuration.
func Default() *Config {
	return &Config{
		Version:        SchemaVersion,
		DefaultProfile: profiles.Default,
		ProfilesDir:    "/etc/palisade/profiles",
		Landlock:       LandlockRequire,
		Runc:           Runc{BinaryName: "runc"},
		Audit:          Audit{File: "/var/log/palisade/audit.jsonl"},
		Stdio:          Stdio{FIFODirs: []string{"/run/containerd/fifo"}},
		Node: Node{
			KubeletRoot:   "/var/lib/kubelet",
			CRINamespaces: []string{"k8s.io"},
			NetnsDirs:     []string{"/run/netns", "/var/run/netns"},
		},
		SELinux: SELinux{
			Mode: lsm.IfAvailable, Type: lsm.DefaultSELinuxType, MountType: lsm.DefaultSELinuxMountType,
			Categories: 1024, StateDir: "/run/palisade/selinux",
		},
		AppArmor: AppArmor{Mode: lsm.IfAvailable},
		Secrets: Secrets{
			MountRoot:   "/run/palisade/secrets",
			EnvPatterns: []string{"*PASSWORD*", "*PASSWD*", "*TOKEN*", "*SECRET*", "*API_KEY*", "*PRIVATE_KEY*", "*CREDENTIAL*"},
			MaxSize:     64 << 10,
			MaxTotal:    1 << 20,
		},
		Source: SourceBuiltin,
	}
}

// Invalid returns the error for a bad value of field in the admin config
// at source.
func Invalid(source, field, msg string) error {
	return &tomlfile.Error{What: "admin config", Source: source, Field: field, Msg: msg, Hint: hint}
}

const hint = "fix the file; see docs/config.md"

// LoadFile reads the config at path. A missing file is an error here: only
// Resolve falls back from DefaultPath to the built-in defaults.
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Invalid(path, "", fmt.Sprintf("cannot open: %v", errors.Unwrap(err)))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, Invalid(path, "", fmt.Sprintf("cannot read: %v", err))
	}
	return Parse(path, data)
}

// Parse decodes and validates a config body; source names it in errors.
func Parse(source string, data []byte) (*Config, error) {
	cfg := Default()
	if err := tomlfile.Decode("admin config", source, hint, data, maxFileSize, cfg); err != nil {
		return nil, err
	}
	cfg.Source = source
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Resolve finds the config the shim must use: path if given, else
// DefaultPath if it exists, else the built-in defaults.
func Resolve(path string) (*Config, error) {
	if path != "" {
		return LoadFile(path)
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return LoadFile(DefaultPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, Invalid(DefaultPath, "", fmt.Sprintf("cannot stat: %v", err))
	}
	return Default(), nil
}

func (c *Config) validate() error {
	bad := func(field, msg string) error { return Invalid(c.Source, field, msg) }
	if c.Version != SchemaVersion {
		return bad("version", fmt.Sprintf("schema version %d is not supported (this palisade reads version %d)", c.Version, SchemaVersion))
	}
	switch {
	case c.Runc.BinaryName == "":
		return bad("runc.binary_name", "must not be empty")
	case strings.ContainsRune(c.Runc.BinaryName, '/') && !filepath.IsAbs(c.Runc.BinaryName):
		return bad("runc.binary_name", fmt.Sprintf("%q must be a bare name or an absolute path", c.Runc.BinaryName))
	}
	if c.Runc.Root != "" && !filepath.IsAbs(c.Runc.Root) {
		return bad("runc.root", fmt.Sprintf("%q is not an absolute path", c.Runc.Root))
	}
	if c.Landlock != LandlockRequire && c.Landlock != LandlockIfAvailable {
		return bad("landlock", fmt.Sprintf("%q is not %q or %q", c.Landlock, LandlockRequire, LandlockIfAvailable))
	}
	if c.ExecHelper != "" && !filepath.IsAbs(c.ExecHelper) {
		return bad("exec_helper", fmt.Sprintf("%q is not an absolute path", c.ExecHelper))
	}
	if c.DefaultProfile == "" {
		return bad("default_profile", "must name a profile")
	}
	if c.ProfilesDir != "" && !filepath.IsAbs(c.ProfilesDir) {
		return bad("profiles_dir", fmt.Sprintf("%q is not an absolute path", c.ProfilesDir))
	}
	for i, h := range c.AllowedHooks {
		if !filepath.IsAbs(h) || filepath.Clean(h) != h {
			return bad(fmt.Sprintf("allowed_hooks[%d]", i), fmt.Sprintf("%q is not a clean absolute path", h))
		}
	}
	for name, o := range c.Overrides {
		if o.PidsLimit < 0 {
			return bad("overrides."+name+".pids_limit", fmt.Sprintf("must be positive, not %d", o.PidsLimit))
		}
		if o.Mode != "" && o.Mode != profiles.ModeEnforce && o.Mode != profiles.ModeAlert {
			return bad("overrides."+name+".mode", fmt.Sprintf("%q is not %q or %q", o.Mode, profiles.ModeEnforce, profiles.ModeAlert))
		}
	}
	for i, pat := range c.Images.Allowed {
		if why := profiles.ImagePatternProblem(pat); why != "" {
			return bad(fmt.Sprintf("images.allowed[%d]", i), why)
		}
	}
	for field, p := range map[string]string{"secrets.store": c.Secrets.Store, "secrets.mount_root": c.Secrets.MountRoot} {
		if p != "" && !filepath.IsAbs(p) {
			return bad(field, fmt.Sprintf("%q is not an absolute path", p))
		}
	}
	if c.Secrets.MountRoot == "" {
		return bad("secrets.mount_root", "must not be empty")
	}
	if c.Secrets.MaxSize <= 0 || c.Secrets.MaxTotal < c.Secrets.MaxSize {
		return bad("secrets.max_size", fmt.Sprintf("max_size (%d) must be positive and not above max_total (%d)", c.Secrets.MaxSize, c.Secrets.MaxTotal))
	}
	if c.Audit.File != "" && !filepath.IsAbs(c.Audit.File) {
		return bad("audit.file", fmt.Sprintf("%q is not an absolute path", c.Audit.File))
	}
	lists := map[string][]string{
		"node.protected_paths": c.Node.ProtectedPaths, "node.netns_dirs": c.Node.NetnsDirs,
		"stdio.allowed_binaries": c.Stdio.AllowedBinaries, "stdio.file_dirs": c.Stdio.FileDirs, "stdio.fifo_dirs": c.Stdio.FIFODirs,
	}
	if c.Node.KubeletRoot != "" {
		lists["node.kubelet_root"] = []string{c.Node.KubeletRoot}
	}
	for field, l := range lists {
		for i, p := range l {
			if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
				return bad(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q is not a clean absolute path below /", p))
			}
		}
	}
	return c.validateLSM(bad)
}

func (c *Config) validateLSM(bad func(field, msg string) error) error {
	for field, m := range map[string]string{"selinux.mode": c.SELinux.Mode, "apparmor.mode": c.AppArmor.Mode} {
		if !lsm.ValidMode(m) {
			return bad(field, fmt.Sprintf("%q is not one of %s", m, strings.Join(lsm.Modes, ", ")))
		}
	}
	if why := lsm.ValidSELinuxType(c.SELinux.Type); why != "" {
		return bad("selinux.type", why)
	}
	if why := lsm.ValidSELinuxType(c.SELinux.MountType); why != "" {
		return bad("selinux.mount_type", why)
	}
	for i, t := range c.SELinux.AllowedTypes {
		if why := lsm.ValidSELinuxType(t); why != "" {
			return bad(fmt.Sprintf("selinux.allowed_types[%d]", i), why)
		}
	}
	if c.SELinux.Categories < 2 || c.SELinux.Categories > 1024 {
		return bad("selinux.categories", fmt.Sprintf("%d is not between 2 and 1024", c.SELinux.Categories))
	}
	if !filepath.IsAbs(c.SELinux.StateDir) {
		return bad("selinux.state_dir", fmt.Sprintf("%q is not an absolute path", c.SELinux.StateDir))
	}
	return nil
}

// TrustedDirs are the directories admin configs may come from.
func TrustedDirs() []string { return trustedDirs() }

// HelperPath is palisade-init's host path: exec_helper, else the file next to
// the running binary (the shim or the CLI, installed side by side).
func (c *Config) HelperPath() string {
	if c.ExecHelper != "" {
		return c.ExecHelper
	}
	self, err := os.Executable()
	if err != nil {
		return "palisade-init"
	}
	return filepath.Join(filepath.Dir(self), "palisade-init")
}
