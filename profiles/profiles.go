// Package profiles defines palisade's profiles: the data that says what a
// container may do (capabilities, filesystem, process limit, user,
// namespaces, masked paths, devices, sysctls). The built-in profiles are TOML
// files embedded from this directory; administrators add their own in the
// directory their admin config names. docs/profiles.md documents the schema.
//
// Every field's zero value is the strictest choice, so that a field left out
// of a profile never grants anything.
package profiles

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/docker/go-units"

	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/libshim/names"
	"palisade.dev/palisade/libshim/tomlfile"
	"palisade.dev/palisade/seccomp"
)

//go:embed *.toml
var builtin embed.FS

// Default is the profile used when the admin config names none.
const Default = "restricted"

// maxFileSize bounds a profile file.
const maxFileSize = 256 << 10

// Profile is one profile.
type Profile struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	// Mode is "enforce" (default) or "alert": in alert mode what the rules
	// would refuse among capabilities, executables, images, sysctls,
	// devices and secret-looking variables is recorded instead
	// (docs/rollout.md); every other rule still refuses.
	Mode         string       `toml:"mode"`
	Images       Images       `toml:"images"`
	Capabilities Capabilities `toml:"capabilities"`
	Filesystem   Filesystem   `toml:"filesystem"`
	Pids         Pids         `toml:"pids"`
	User         User         `toml:"user"`
	Namespaces   Namespaces   `toml:"namespaces"`
	Paths        Paths        `toml:"paths"`
	Devices      Devices      `toml:"devices"`
	Sysctls      Sysctls      `toml:"sysctls"`
	Seccomp      Seccomp      `toml:"seccomp"`
	Exec         Exec         `toml:"exec"`
	Secrets      Secrets      `toml:"secrets"`

	// Source is the file the profile came from ("builtin:NAME.toml" for
	// built-ins). Not read from the file.
	Source string `toml:"-"`
}

// Profile modes.
const (
	ModeEnforce = "enforce"
	ModeAlert   = "alert"
)

// Images: which images the profile's containers may run.
type Images struct {
	// Allowed are image patterns: "REGISTRY/REPOSITORY" exactly, or
	// "PREFIX/*" for everything below PREFIX. Empty: any image the admin
	// config allows.
	Allowed []string `toml:"allowed"`
	// RequireDigest admits only references pinned by digest (@sha256:…).
	RequireDigest bool `toml:"require_digest"`
}

// Capabilities: what a container may hold.
type Capabilities struct {
	// Allowed capabilities (with or without CAP_). A container keeps those of
	// its spec that are listed here and may ask for more of them with the
	// annotation palisade.dev/cap-add; nothing else.
	Allowed []string `toml:"allowed"`
}

// Filesystem: the root filesystem and scratch space.
type Filesystem struct {
	// WritableRootfs leaves the root filesystem writable. Default false.
	WritableRootfs bool `toml:"writable_rootfs"`
	// Tmpfs are mounted noexec,nosuid,nodev (exec = true drops noexec).
	Tmpfs []Tmpfs `toml:"tmpfs"`
	// WritableAllowed are the directories a workload may ask to make
	// writable with palisade.dev/writable-paths: each path asked for must be
	// one of them or lie below one. Default: none.
	WritableAllowed []string `toml:"writable_allowed"`
	// WritableSize is the size of each such tmpfs (default "16m").
	WritableSize string `toml:"writable_size"`
}

// Tmpfs is one size-limited tmpfs.
type Tmpfs struct {
	Path string `toml:"path"`
	Size string `toml:"size"` // e.g. "64m"; required
	Mode string `toml:"mode"` // octal, default "1777"
	Exec bool   `toml:"exec"` // allow executing files from it; default false
}

// Pids: the PID cgroup limit.
type Pids struct {
	Limit int64 `toml:"limit"` // required, > 0
}

// User: who the process runs as.
type User struct {
	// AllowRoot lets uid 0 run as is. Default false: uid 0 becomes UID:GID.
	AllowRoot bool `toml:"allow_root"`
	// UID and GID replace root when root is not allowed (default 65534).
	UID uint32 `toml:"uid"`
	GID uint32 `toml:"gid"`
}

// Namespaces: which host namespaces a container may share.
type Namespaces struct {
	// HostAllowed lists namespace types (pid, network, ipc, uts) the
	// container may share with the host. Default none; mount never.
	HostAllowed []string `toml:"host_allowed"`
	// JoinAllowed lists directories whose namespace files (nsfs bind
	// mounts, e.g. a netns pinned by a tool of the administrator's) a
	// container may join, besides its own pod sandbox's namespaces and the
	// node's CNI network namespaces. Default none.
	JoinAllowed []string `toml:"join_allowed"`
}

// Paths: masked and read-only paths added to palisade's minimum.
type Paths struct {
	Masked   []string `toml:"masked"`
	Readonly []string `toml:"readonly"`
}

// Devices: device nodes beyond the standard safe set.
type Devices struct {
	Allowed []string `toml:"allowed"` // absolute paths under /dev
}

// Seccomp: the seccomp profile. Names are "palisade-default" (built in),
// "unconfined" (only where the admin config allows it for this profile) or
// NAME for PROFILES_DIR/seccomp/NAME.json.
type Seccomp struct {
	// Profile is the default; empty means "palisade-default".
	Profile string `toml:"profile"`
	// Selectable are other seccomp profiles a workload may choose with the
	// annotation palisade.dev/seccomp-profile.
	Selectable []string `toml:"selectable"`
	// CompatABI admits system calls made through the architecture's compat
	// ABIs (32-bit x86 and x32 on amd64, AArch32 on arm64) that the seccomp
	// profile lists. Default false: the filter covers the native ABI only,
	// and the kernel kills a process's first 32-bit system call (SIGSYS).
	CompatABI bool `toml:"compat_abi"`
}

// Exec modes.
const (
	ExecOff            = ""                // no allow-list
	ExecEnforce        = "enforce"         // the kernel (Landlock) allows only the list
	ExecAudit          = "audit"           // would-be refusals are recorded, nothing is blocked
	ExecEntrypointOnly = "entrypoint-only" // enforce, with the container's own entrypoint as the list
)

// Exec: the executables a container may run.
type Exec struct {
	// Mode is "", "enforce", "audit" or "entrypoint-only".
	Mode string `toml:"mode"`
	// Allow lists absolute paths inside the container; an entry ending in
	// "/" allows the whole directory tree.
	Allow []string `toml:"allow"`
}

// Env policies for variables whose names look like secrets.
const (
	EnvAllow  = "allow"
	EnvAudit  = "audit"
	EnvRefuse = "refuse"
)

// Secrets: where secrets appear and what happens to secret-looking env vars.
type Secrets struct {
	// Target is the directory secrets appear in. Default /run/secrets.
	Target string `toml:"target"`
	// Env is what happens to environment variables whose names match the
	// admin's patterns and that were not moved into files: "allow",
	// "audit" (default: recorded by name) or "refuse".
	Env string `toml:"env"`
}

// Sysctls: sysctls beyond the namespaced safe set.
type Sysctls struct {
	Allowed []string `toml:"allowed"`
}

const hint = "see docs/profiles.md"

func invalid(source, field, msg string) error {
	return &tomlfile.Error{What: "profile", Source: source, Field: field, Msg: msg, Hint: hint}
}

// Parse decodes and validates one profile.
func Parse(source string, data []byte) (*Profile, error) {
	var p Profile
	if err := tomlfile.Decode("profile", source, hint, data, maxFileSize, &p); err != nil {
		return nil, err
	}
	p.Source = source
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	return &p, nil
}

// nameFirst and nameRest spell ^[a-z0-9][a-z0-9-]{0,62}$.
var nameFirst, nameRest = names.NewSet("a-z0-9"), names.NewSet("a-z0-9-")

// seccompNameFirst and seccompNameRest keep seccomp profile names to
// file-name-safe words (^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$): they name files
// in the admin's directory and must not traverse out of it.
var seccompNameFirst, seccompNameRest = names.NewSet("A-Za-z0-9"), names.NewSet("A-Za-z0-9._-")

// hostNamespaces a profile may allow to be shared with the host.
var hostNamespaces = []string{"pid", "network", "ipc", "uts"}

// Normalize validates the profile and puts names in canonical form. Parse
// calls it; call it again after changing a profile (e.g. an admin override).
func (p *Profile) Normalize() error {
	for _, c := range sectionChecks {
		if field, msg := c(p); msg != "" {
			return invalid(p.Source, field, msg)
		}
	}
	return nil
}

// sectionCheck validates (and fills the defaults of) one section of a
// profile, returning the field at fault and what is wrong, or "" for msg.
type sectionCheck func(p *Profile) (field, msg string)

// sectionChecks are Normalize's checks, one per section, in the order the
// sections appear in a profile (runc's configs/validate style).
var sectionChecks = []sectionCheck{
	checkName, checkMode, checkImages, checkCapabilities, checkFilesystem, checkPids, checkUser, checkNamespaces,
	checkPaths, checkDevices, checkSeccomp, checkExec, checkSecrets, checkSysctls,
}

func checkName(p *Profile) (string, string) {
	if !names.Valid(p.Name, nameFirst, nameRest, 63) {
		return "name", fmt.Sprintf("%q must be 1-63 lower-case letters, digits or dashes", p.Name)
	}
	return "", ""
}

func checkMode(p *Profile) (string, string) {
	if p.Mode == "" {
		p.Mode = ModeEnforce
	}
	if p.Mode != ModeEnforce && p.Mode != ModeAlert {
		return "mode", fmt.Sprintf("%q is not %q or %q", p.Mode, ModeEnforce, ModeAlert)
	}
	return "", ""
}

func checkImages(p *Profile) (string, string) {
	for i, pat := range p.Images.Allowed {
		if why := ImagePatternProblem(pat); why != "" {
			return fmt.Sprintf("images.allowed[%d]", i), why
		}
	}
	return "", ""
}

// ImagePatternProblem says why an image pattern is malformed, or "".
func ImagePatternProblem(pat string) string {
	base := strings.TrimSuffix(pat, "/*")
	if pat == "*" {
		return ""
	}
	if base == "" || strings.ContainsAny(base, "*?[@: ") || strings.HasPrefix(base, "/") || strings.HasSuffix(base, "/") {
		return fmt.Sprintf("%q is not REGISTRY/REPOSITORY or PREFIX/* (or *)", pat)
	}
	return ""
}

func checkCapabilities(p *Profile) (string, string) {
	for i, c := range p.Capabilities.Allowed {
		n, err := caps.Canonical(c)
		if err != nil {
			return fmt.Sprintf("capabilities.allowed[%d]", i), err.Error()
		}
		p.Capabilities.Allowed[i] = n
	}
	p.Capabilities.Allowed = caps.Set(p.Capabilities.Allowed)
	return "", ""
}

func checkFilesystem(p *Profile) (string, string) {
	seen := map[string]bool{}
	for i := range p.Filesystem.Tmpfs {
		t := &p.Filesystem.Tmpfs[i]
		field := fmt.Sprintf("filesystem.tmpfs[%d]", i)
		if err := absPath(t.Path); err != nil {
			return field + ".path", err.Error()
		}
		if t.Path == "/" || seen[t.Path] {
			return field + ".path", fmt.Sprintf("%q is the root or listed twice", t.Path)
		}
		seen[t.Path] = true
		if _, err := units.RAMInBytes(t.Size); err != nil || t.Size == "" || strings.HasPrefix(t.Size, "-") {
			return field + ".size", fmt.Sprintf("%q is not a size such as \"64m\"", t.Size)
		}
		if t.Mode == "" {
			t.Mode = "1777"
		}
		if m, err := strconv.ParseUint(t.Mode, 8, 32); err != nil || m > 0o7777 {
			return field + ".mode", fmt.Sprintf("%q is not an octal mode such as \"1777\"", t.Mode)
		}
	}
	for i, d := range p.Filesystem.WritableAllowed {
		if err := absPath(d); err != nil || d == "/" {
			return fmt.Sprintf("filesystem.writable_allowed[%d]", i), fmt.Sprintf("%q must be an absolute directory other than /", d)
		}
	}
	if p.Filesystem.WritableSize == "" {
		p.Filesystem.WritableSize = "16m"
	}
	if n, err := units.RAMInBytes(p.Filesystem.WritableSize); err != nil || n <= 0 {
		return "filesystem.writable_size", fmt.Sprintf("%q is not a size such as \"16m\"", p.Filesystem.WritableSize)
	}
	return "", ""
}

func checkPids(p *Profile) (string, string) {
	if p.Pids.Limit <= 0 {
		return "pids.limit", fmt.Sprintf("must be a positive number of processes, not %d", p.Pids.Limit)
	}
	return "", ""
}

func checkUser(p *Profile) (string, string) {
	if p.User.UID == 0 {
		p.User.UID = 65534
	}
	if p.User.GID == 0 {
		p.User.GID = 65534
	}
	return "", ""
}

func checkNamespaces(p *Profile) (string, string) {
	for i, ns := range p.Namespaces.HostAllowed {
		if !slices.Contains(hostNamespaces, ns) {
			return fmt.Sprintf("namespaces.host_allowed[%d]", i), fmt.Sprintf("%q is not one of %s", ns, strings.Join(hostNamespaces, ", "))
		}
	}
	return checkPathList("namespaces.join_allowed", p.Namespaces.JoinAllowed)
}

func checkPaths(p *Profile) (string, string) {
	if field, msg := checkPathList("paths.masked", p.Paths.Masked); msg != "" {
		return field, msg
	}
	return checkPathList("paths.readonly", p.Paths.Readonly)
}

func checkPathList(field string, list []string) (string, string) {
	for i, pth := range list {
		if err := absPath(pth); err != nil {
			return fmt.Sprintf("%s[%d]", field, i), err.Error()
		}
	}
	return "", ""
}

func checkDevices(p *Profile) (string, string) {
	for i, d := range p.Devices.Allowed {
		if err := absPath(d); err != nil || !strings.HasPrefix(d, "/dev/") {
			return fmt.Sprintf("devices.allowed[%d]", i), fmt.Sprintf("%q is not a path under /dev", d)
		}
	}
	return "", ""
}

func checkSeccomp(p *Profile) (string, string) {
	if p.Seccomp.Profile == "" {
		p.Seccomp.Profile = seccomp.DefaultName
	}
	for i, n := range append([]string{p.Seccomp.Profile}, p.Seccomp.Selectable...) {
		if !names.Valid(n, seccompNameFirst, seccompNameRest, 100) {
			field := "seccomp.profile"
			if i > 0 {
				field = fmt.Sprintf("seccomp.selectable[%d]", i-1)
			}
			return field, fmt.Sprintf("%q is not a seccomp profile name (letters, digits, '.', '_', '-')", n)
		}
	}
	return "", ""
}

func checkExec(p *Profile) (string, string) {
	switch p.Exec.Mode {
	case ExecOff, ExecEntrypointOnly:
		if len(p.Exec.Allow) > 0 {
			return "exec.allow", fmt.Sprintf("an allow-list needs mode \"enforce\" or \"audit\" (mode is %q)", p.Exec.Mode)
		}
	case ExecEnforce, ExecAudit:
		if len(p.Exec.Allow) == 0 {
			return "exec.allow", fmt.Sprintf("mode %q needs a non-empty allow-list", p.Exec.Mode)
		}
	default:
		return "exec.mode", fmt.Sprintf("%q is not one of enforce, audit, entrypoint-only", p.Exec.Mode)
	}
	for i, a := range p.Exec.Allow {
		if err := absPath(strings.TrimSuffix(a, "/")); err != nil || a == "/" {
			return fmt.Sprintf("exec.allow[%d]", i), fmt.Sprintf("%q is not an absolute path (end it with / to allow a directory tree; / itself is not a list)", a)
		}
	}
	return "", ""
}

func checkSecrets(p *Profile) (string, string) {
	if p.Secrets.Target == "" {
		p.Secrets.Target = "/run/secrets"
	}
	if err := absPath(p.Secrets.Target); err != nil || p.Secrets.Target == "/" {
		return "secrets.target", fmt.Sprintf("%q is not a clean absolute path", p.Secrets.Target)
	}
	if p.Secrets.Env == "" {
		p.Secrets.Env = EnvAudit
	}
	if p.Secrets.Env != EnvAllow && p.Secrets.Env != EnvAudit && p.Secrets.Env != EnvRefuse {
		return "secrets.env", fmt.Sprintf("%q is not one of allow, audit, refuse", p.Secrets.Env)
	}
	return "", ""
}

func checkSysctls(p *Profile) (string, string) {
	for i, s := range p.Sysctls.Allowed {
		if s == "" || strings.ContainsAny(s, " /=") {
			return fmt.Sprintf("sysctls.allowed[%d]", i), fmt.Sprintf("%q is not a sysctl name such as net.ipv4.tcp_syncookies", s)
		}
	}
	return "", ""
}

func absPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Errorf("%q is not a clean absolute path", p)
	}
	return nil
}

// Set is the profiles available on a node, by name.
type Set map[string]*Profile

// Builtin returns the embedded profiles. They are parsed once; the map is
// a fresh copy on each call, the profiles are shared and must not be
// modified (Clone them).
func Builtin() (Set, error) {
	parsed, err := builtinSet()
	if err != nil {
		return nil, err
	}
	return maps.Clone(parsed), nil
}

var builtinSet = sync.OnceValues(func() (Set, error) {
	set := Set{}
	entries, err := fs.ReadDir(builtin, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(builtin, e.Name())
		if err != nil {
			return nil, err
		}
		if err := set.add("builtin:"+e.Name(), data); err != nil {
			return nil, err
		}
	}
	return set, nil
})

// Load returns the built-in profiles plus the *.toml files in dir. A missing
// dir is not an error; a bad file, or one that redefines a name, is.
func Load(dir string) (Set, error) {
	set, err := Builtin()
	if err != nil || dir == "" {
		return set, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := readBounded(f)
		if err != nil {
			return nil, invalid(f, "", err.Error())
		}
		if err := set.add(f, data); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return os.ReadFile(path)
}

func (s Set) add(source string, data []byte) error {
	p, err := Parse(source, data)
	if err != nil {
		return err
	}
	if prev, ok := s[p.Name]; ok {
		return invalid(source, "name", fmt.Sprintf("profile %q is already defined by %s", p.Name, prev.Source))
	}
	s[p.Name] = p
	return nil
}

// Names lists the profile names, sorted.
func (s Set) Names() []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Clone returns a deep copy, so overrides never change a shared profile.
func (p *Profile) Clone() *Profile {
	c := *p
	c.Capabilities.Allowed = slices.Clone(p.Capabilities.Allowed)
	c.Filesystem.Tmpfs = slices.Clone(p.Filesystem.Tmpfs)
	c.Namespaces.HostAllowed = slices.Clone(p.Namespaces.HostAllowed)
	c.Paths.Masked = slices.Clone(p.Paths.Masked)
	c.Paths.Readonly = slices.Clone(p.Paths.Readonly)
	c.Devices.Allowed = slices.Clone(p.Devices.Allowed)
	c.Sysctls.Allowed = slices.Clone(p.Sysctls.Allowed)
	c.Seccomp.Selectable = slices.Clone(p.Seccomp.Selectable)
	c.Exec.Allow = slices.Clone(p.Exec.Allow)
	return &c
}

// Warning is a setting that is legal but probably not what the author meant.
type Warning struct {
	Field string
	Msg   string
}

// interpreters are programs that run arbitrary code given to them: on an
// exec allow-list they allow whatever they can be told to do.
var interpreters = []string{"/bin/sh", "/bin/bash", "/bin/busybox", "/usr/bin/python3", "/usr/bin/perl", "/usr/bin/node", "/bin/dash", "/usr/bin/env"}

// Lint returns the warnings for a valid profile.
func Lint(p *Profile) []Warning {
	var w []Warning
	if p.Filesystem.WritableRootfs && len(p.Filesystem.Tmpfs) > 0 {
		w = append(w, Warning{"filesystem.tmpfs", "tmpfs on a writable root filesystem: the image itself can be changed anyway"})
	}
	for _, c := range p.Capabilities.Allowed {
		if c == "CAP_SYS_ADMIN" || c == "CAP_SYS_MODULE" || c == "CAP_SYS_PTRACE" || c == "CAP_DAC_READ_SEARCH" {
			w = append(w, Warning{"capabilities.allowed", c + " gives container escapes an easy start; is it really needed?"})
		}
	}
	if (p.Exec.Mode == ExecEnforce || p.Exec.Mode == ExecEntrypointOnly) && p.Mode != ModeAlert && slices.Contains(p.Capabilities.Allowed, "CAP_SYS_ADMIN") {
		w = append(w, Warning{"capabilities.allowed", "CAP_SYS_ADMIN with an enforced exec allow-list (exec.mode = " + strconv.Quote(p.Exec.Mode) +
			"): wherever the kernel enforces the list, a container of this profile that holds it is refused, since it could set vm.memfd_noexec back to 0 and run a program from a memfd; drop it, or use exec.mode = \"audit\""})
	}
	if p.User.AllowRoot && (p.User.UID != 65534 || p.User.GID != 65534) {
		w = append(w, Warning{"user.uid", "uid and gid are used only when root is not allowed (allow_root = true here)"})
	}
	for i, a := range p.Exec.Allow {
		if slices.Contains(interpreters, a) || strings.HasSuffix(a, "/") && (a == "/bin/" || a == "/usr/bin/") {
			w = append(w, Warning{fmt.Sprintf("exec.allow[%d]", i), a + " can run arbitrary code or programs; the allow-list allows all of it"})
		}
	}
	if len(p.Namespaces.HostAllowed) > 0 {
		w = append(w, Warning{"namespaces.host_allowed", "sharing host namespaces (" + strings.Join(p.Namespaces.HostAllowed, ", ") + ") weakens isolation"})
	}
	return w
}
