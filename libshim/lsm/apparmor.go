package lsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/containerd/errdefs"
)

// AppArmorInput is what a generated AppArmor profile depends on. Equal
// inputs give the same profile and the same name.
type AppArmorInput struct {
	// Profile is the palisade profile's name.
	Profile string `json:"profile"`
	// Capabilities are the capabilities the profile allows (CAP_ names);
	// AppArmor denies every other, whatever the spec holds.
	Capabilities []string `json:"capabilities"`
	// WritableRootfs leaves the whole filesystem writable; otherwise only
	// Writable paths (and /dev, /proc, less docker-default's denials) are.
	WritableRootfs bool     `json:"writable_rootfs"`
	Writable       []string `json:"writable,omitempty"`
	// Exec is the exec allow-list: when set, only these paths (a trailing
	// "/" allows a tree) and Helper may be executed.
	Exec   []string `json:"exec,omitempty"`
	Helper string   `json:"helper,omitempty"`
}

// appArmorTemplate follows moby/profiles apparmor/template.go (Docker's
// docker-default, also containerd's contrib/apparmor) and tightens it:
// capabilities and writes only as the palisade profile allows, no raw or
// packet sockets without NET_RAW, no ptrace of anything (reading /proc of
// the container's own processes stays allowed), and, with an exec
// allow-list, execution of exactly the listed programs. It includes nothing
// from the host, so the text depends only on its input.
const appArmorTemplate = `# palisade: generated for profile {{.Profile}}; do not edit (palisade apparmor show {{.Profile}}).
abi <abi/3.0>,

@{PROC}=/proc/

profile {{.Name}} flags=(attach_disconnected,mediate_deleted) {
  network,
{{- if not .NetRaw}}
  # No CAP_NET_RAW in the profile: no raw or packet sockets either.
  deny network raw,
  deny network packet,
{{- end}}
{{- range .Caps}}
  capability {{.}},
{{- end}}

  # Reading and mapping files; writes only where the profile allows them.
  /{,**} rlkm,
{{- if .WritableRootfs}}
  /{,**} w,
{{- else}}
{{- range .Writable}}
  {{.}}{,/**} rwlk,
{{- end}}
{{- end}}
  /dev/{,**} rw,
  @{PROC}/{,**} rw,

{{- if .Exec}}

  # Exec allow-list: nothing else can be executed.
  {{.Helper}} ix,
{{- range .Exec}}
  {{.}} ix,
{{- end}}
{{- else}}

  # No exec allow-list: programs of the image may run.
  /{,**} ix,
{{- end}}

  umount,
  deny mount,
  deny pivot_root,
  deny change_profile,

  # Host (privileged) processes and the runtime may signal the container.
  signal (receive) peer=unconfined,
  signal (receive) peer=runc,
  signal (receive) peer=crun,
  # Container processes may signal each other.
  signal (send,receive) peer={{.Name}},
  # Processes may read each other's /proc entries; nothing may be traced.
  ptrace (read,readby) peer={{.Name}},

  deny @{PROC}/* w,   # deny write for all files directly in /proc (not in a subdir)
  # deny write to files not in /proc/<number>/** or /proc/sys/**
  deny @{PROC}/{[^1-9/],[^1-9/][^0-9/],[^1-9s/][^0-9y/][^0-9s/],[^1-9/][^0-9/][^0-9/][^0-9/]*}/** w,
  deny @{PROC}/sys/[^k]** w,  # deny /proc/sys except /proc/sys/k* (effectively /proc/sys/kernel)
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,  # deny everything except shm* in /proc/sys/kernel/
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,
  deny @{PROC}/*/attr/** w,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,
}
`

var appArmorTmpl = template.Must(template.New("apparmor").Parse(appArmorTemplate))

// safePath keeps paths that go into a profile to characters that have no
// meaning in AppArmor's glob and rule syntax.
var safePath = regexp.MustCompile(`^/[A-Za-z0-9._+@/-]*$`)

var capName = regexp.MustCompile(`^[a-z_]+$`)

// AppArmorName is the name of the profile generated from in:
// palisade-PROFILE-HASH, the hash covering the template and the input, so
// that a changed profile (or palisade release) loads under a new name.
func AppArmorName(in AppArmorInput) string {
	data, _ := json.Marshal(in)
	sum := sha256.Sum256(append([]byte(appArmorTemplate), data...))
	return "palisade-" + in.Profile + "-" + hex.EncodeToString(sum[:])[:12]
}

// RenderAppArmor renders the profile for in and returns its name and text.
func RenderAppArmor(in AppArmorInput) (name, text string, err error) {
	data := struct {
		AppArmorInput
		Name     string
		NetRaw   bool
		Caps     []string
		Writable []string
		Exec     []string
	}{AppArmorInput: in, Name: AppArmorName(in)}
	for _, c := range in.Capabilities {
		c = strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		if !capName.MatchString(c) {
			return "", "", fmt.Errorf("apparmor: capability %q: %w", c, errdefs.ErrInvalidArgument)
		}
		data.Caps = append(data.Caps, c)
		data.NetRaw = data.NetRaw || c == "net_raw"
	}
	slices.Sort(data.Caps)
	clean := func(p string) (string, error) {
		if !safePath.MatchString(p) || path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
			return "", fmt.Errorf("apparmor: path %q cannot be written into a profile (clean absolute paths of letters, digits and ._+@- only): %w", p, errdefs.ErrInvalidArgument)
		}
		return p, nil
	}
	for _, w := range in.Writable {
		w, err := clean(w)
		if err != nil {
			return "", "", err
		}
		if w == "/" {
			return "", "", fmt.Errorf("apparmor: / listed as a writable path: %w", errdefs.ErrInvalidArgument)
		}
		data.Writable = append(data.Writable, w)
	}
	slices.Sort(data.Writable)
	data.Writable = slices.Compact(data.Writable)
	for _, e := range in.Exec {
		e, err := clean(e)
		if err != nil {
			return "", "", err
		}
		if strings.HasSuffix(e, "/") {
			e += "**"
		}
		data.Exec = append(data.Exec, e)
	}
	if len(in.Exec) > 0 {
		if _, err := clean(in.Helper); err != nil || in.Helper == "" {
			return "", "", fmt.Errorf("apparmor: exec helper path %q: %w", in.Helper, errdefs.ErrInvalidArgument)
		}
	}
	var b bytes.Buffer
	if err := appArmorTmpl.Execute(&b, data); err != nil {
		return "", "", fmt.Errorf("apparmor: render: %w", err)
	}
	return data.Name, b.String(), nil
}

// ValidateAppArmor parses and compiles a profile with apparmor_parser
// without loading it (-Q -K): it works where the kernel has no AppArmor.
// It returns errdefs.ErrNotFound when no parser is installed.
func (e *Env) ValidateAppArmor(text string) error {
	return e.parser(text, "-Q", "-K")
}

// LoadAppArmor loads (or replaces) a profile in the kernel.
func (e *Env) LoadAppArmor(text string) error {
	return e.parser(text, "-r", "-K")
}

func (e *Env) parser(text string, args ...string) error {
	bin := ParserPath()
	if bin == "" {
		return fmt.Errorf("apparmor_parser is not installed (Debian and Ubuntu: apt-get install apparmor): %w", errdefs.ErrNotFound)
	}
	cmd := exec.Command(bin, args...) //nolint:gosec // a fixed binary; the profile goes to its stdin
	cmd.Stdin = strings.NewReader(text)
	out, err := e.run(cmd)
	if err != nil {
		return fmt.Errorf("apparmor_parser %s: %w: %s", strings.Join(args, " "), err, parserOutput(out))
	}
	return nil
}
