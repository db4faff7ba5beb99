//go:build cgo

package seccomp

import (
	"palisade.dev/palisade/libshim/arch"

	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "regenerate palisade-default.json from DefaultProfile")

const defaultJSON = "palisade-default.json"

// The JSON is generated from the typed profile; this fails when they drift.
func TestDefaultJSONMatchesTypedProfile(t *testing.T) {
	want, err := json.MarshalIndent(DefaultProfile(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(defaultJSON, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(defaultJSON)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs from DefaultProfile(); run go test ./seccomp -run TestDefaultJSON -update", defaultJSON)
	}
	// and the JSON loads through the same strict loader as an admin's file
	if _, err := Parse(DefaultName, defaultJSON, got); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultValidates(t *testing.T) {
	l, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Notes {
		t.Log(n)
	}
}

const (
	cloneNewUser = unix.CLONE_NEWUSER
	sigchld      = uint64(unix.SIGCHLD)
)

// What the built-in default does, evaluated on the BPF program libseccomp
// compiles for each architecture.
func TestDefaultProfileActions(t *testing.T) {
	l, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		name string
		args []uint64
		want string
	}
	common := []call{
		{"read", nil, "allow"}, {"write", nil, "allow"}, {"openat", nil, "allow"}, {"execve", nil, "allow"},
		{"clone", []uint64{sigchld}, "allow"},
		{"clone", []uint64{cloneNewUser | sigchld}, "errno EPERM"},
		{"clone", []uint64{unix.CLONE_NEWNS}, "errno EPERM"},
		{"clone3", nil, "errno ENOSYS"},
		{"landlock_create_ruleset", nil, "allow"}, {"landlock_add_rule", nil, "allow"}, {"landlock_restrict_self", nil, "allow"},
		{"personality", []uint64{0}, "allow"},
		{"personality", []uint64{0x0400000}, "errno EPERM"}, // READ_IMPLIES_EXEC
		{"socket", []uint64{unix.AF_INET}, "allow"},
		{"prctl", nil, "allow"},
	}
	deviation := map[string]bool{}
	for _, d := range Deviations {
		for _, n := range d.Names {
			common = append(common, call{n, nil, "errno EPERM"})
			deviation[n] = true
		}
	}
	perArch := map[string][]call{
		"amd64": {{"arch_prctl", nil, "allow"}, {"open", nil, "allow"}, {"iopl", nil, "errno EPERM"}},
		"arm64": {{"open", nil, "absent"}, {"arch_prctl", nil, "absent"}, {"iopl", nil, "absent"}},
	}
	for _, arch := range []string{"amd64", "arm64"} {
		for _, bounding := range [][]string{{"CAP_NET_BIND_SERVICE"}, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG", "CAP_SYS_TIME", "CAP_SYS_MODULE", "CAP_SYS_BOOT", "CAP_DAC_READ_SEARCH"}} {
			sc, err := Resolve(l, arch, bounding, NativeOnly)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Compile(sc, arch)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range append(append([]call{}, common...), perArch[arch]...) {
				v, err := f.Check(c.name, c.args...)
				if err != nil {
					t.Errorf("%s %s: %v", arch, c.name, err)
					continue
				}
				if v.Absent && deviation[c.name] && c.want != "absent" {
					continue // e.g. stime and umount exist only on 32-bit ABIs
				}
				if v.Action != c.want {
					t.Errorf("%s with %v: %s%v = %s, want %s", arch, bounding, c.name, c.args, v.Action, c.want)
				}
			}
		}
	}
}

// Docker's default with CAP_SYS_ADMIN allows mount and unshare; palisade's
// never does: the comparison proves the interpreter sees the difference.
func TestStricterThanDocker(t *testing.T) {
	docker, err := Validate("docker", "moby", mobyseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	ours, _ := Default()
	for _, l := range []*Loaded{docker, ours} {
		sc, _ := Resolve(l, "amd64", []string{"CAP_SYS_ADMIN"}, NativeOnly)
		f, err := Compile(sc, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := f.Check("mount")
		want := map[*Loaded]string{docker: "allow", ours: "errno EPERM"}[l]
		if v.Action != want {
			t.Errorf("%s: mount = %s, want %s", l.Name, v.Action, want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	arches := `"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}]`
	cases := []struct{ name, body, want string }{
		{"misspelt syscall", `{"defaultAction":"SCMP_ACT_ERRNO",` + arches + `,"syscalls":[{"names":["read","opne"],"action":"SCMP_ACT_ALLOW"}]}`,
			`invalid seccomp profile p.json: syscalls[0]: unknown syscall "opne" on amd64`},
		{"unknown action", `{"defaultAction":"SCMP_ACT_ERRNO",` + arches + `,"syscalls":[{"names":["read"],"action":"SCMP_ACT_MAYBE"}]}`,
			`syscalls[0]: action "SCMP_ACT_MAYBE" is not a seccomp action`},
		{"unknown default action", `{"defaultAction":"ALLOW",` + arches + `,"syscalls":[]}`, `defaultAction "ALLOW"`},
		{"no arm64", `{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}],"syscalls":[]}`,
			"does not cover arm64: missing SCMP_ARCH_AARCH64"},
		{"no native arch", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],"syscalls":[]}`,
			"does not cover amd64: missing SCMP_ARCH_X86_64"},
		{"no architectures", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}`, "does not cover amd64: missing SCMP_ARCH_X86_64"},
		{"unknown field", `{"defaultAction":"SCMP_ACT_ERRNO","syscals":[]}`, `unknown field "syscals"`},
		{"bad cap", `{"defaultAction":"SCMP_ACT_ERRNO",` + arches + `,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["SYS_ADMIN"]}}]}`,
			`condition capability "SYS_ADMIN"`},
		{"arg index", `{"defaultAction":"SCMP_ACT_ERRNO",` + arches + `,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
			"argument index 6 is above 5"},
		{"notify", `{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/agent.sock",` + arches + `,"syscalls":[]}`, "listenerPath is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p", "p.json", []byte(c.body))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

// Compat ABIs are left out of a resolved filter unless asked for, and the
// compiled program then kills every call made through them (libseccomp's
// bad-architecture action), whatever the rules say; asked for, they follow
// the same rules as the native ABI. A profile that lists no compat ABI is
// valid and stays native-only either way.
func TestCompatABIs(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	native, err := Parse("native", "native.json", []byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],`+
		`"syscalls":[{"names":["getpid","read","exit_group"],"action":"SCMP_ACT_ALLOW"}]}`))
	if err != nil {
		t.Fatalf("a native-only profile is refused: %v", err)
	}
	wantABIs := map[string][]string{"amd64": {"x86", "x32"}, "arm64": {"arm"}}
	for _, c := range []struct {
		l      *Loaded
		abis   ABIs
		compat string // what getpid through a compat ABI gets
	}{
		{def, NativeOnly, "kill-thread"},
		{def, WithCompat, "allow"},
		{native, NativeOnly, "kill-thread"},
		{native, WithCompat, "kill-thread"},
	} {
		for _, arch := range []string{"amd64", "arm64"} {
			sc, err := Resolve(c.l, arch, nil, c.abis)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(sc.Architectures); sc.Architectures[0] != Arches[arch].Arch || (c.compat == "kill-thread") != (n == 1) {
				t.Errorf("%s %s %v: architectures %v", c.l.Name, arch, c.abis, sc.Architectures)
			}
			f, err := Compile(sc, arch)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := f.Check("getpid"); v.Action != "allow" {
				t.Errorf("%s %s %v: native getpid = %s", c.l.Name, arch, c.abis, v.Action)
			}
			vs, err := f.CheckCompat("getpid")
			if err != nil {
				t.Fatal(err)
			}
			var abis []string
			for _, v := range vs {
				abis = append(abis, v.ABI)
				if v.Action != c.compat {
					t.Errorf("%s %s %v: getpid through %s = %s, want %s", c.l.Name, arch, c.abis, v.ABI, v.Action, c.compat)
				}
			}
			if strings.Join(abis, ",") != strings.Join(wantABIs[arch], ",") {
				t.Errorf("%s: compat ABIs checked %v, want %v", arch, abis, wantABIs[arch])
			}
		}
	}
	// With compat ABIs, a denied syscall stays denied through them too.
	sc, _ := Resolve(def, "amd64", nil, WithCompat)
	f, err := Compile(sc, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := f.CheckCompat("keyctl")
	for _, v := range vs {
		if v.Action != "errno EPERM" {
			t.Errorf("keyctl through %s with compat ABIs = %s, want errno EPERM", v.ABI, v.Action)
		}
	}
}

// A name libseccomp does not know yet is dropped from an allow rule (it stays
// denied) with a note; in a deny rule it refuses the profile.
func TestNewerSyscalls(t *testing.T) {
	arches := `"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"]`
	l, err := Parse("p", "p.json", []byte(`{"defaultAction":"SCMP_ACT_ERRNO",`+arches+`,"syscalls":[{"names":["read","mseal"],"action":"SCMP_ACT_ALLOW"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if names := l.Profile.Syscalls[0].Names; len(names) == 1 && len(l.Notes) == 0 {
		t.Errorf("mseal dropped without a note: %v", names)
	}
}

// docs/seccomp.md documents every deviation.
func TestDeviationsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/seccomp.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Deviations {
		for _, n := range d.Names {
			if !strings.Contains(string(doc), "`"+n+"`") {
				t.Errorf("docs/seccomp.md does not mention %s", n)
			}
		}
	}
}

// ResolveCached returns one shared filter per architecture, capability set
// (in any order) and ABI choice, equal to what Resolve computes, with its
// JSON; filters from Resolve have none.
func TestResolveCached(t *testing.T) {
	l, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ResolveCached(l, "amd64", []string{"CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"}, NativeOnly)
	b, _ := ResolveCached(l, "amd64", []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}, NativeOnly)
	c, _ := ResolveCached(l, "amd64", []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}, WithCompat)
	d, _ := ResolveCached(l, "arm64", []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}, NativeOnly)
	if a != b || a == c || a == d || c == d {
		t.Errorf("cache keys: same set %v, compat %v, arm64 %v", a == b, a == c, a == d)
	}
	fresh, _ := Resolve(l, "amd64", []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}, WithCompat)
	want, _ := json.Marshal(fresh)
	if got := Encoded(c); string(got) != string(want) {
		t.Errorf("cached encoding differs from a fresh resolution")
	}
	if Encoded(fresh) != nil {
		t.Errorf("a filter from Resolve has a cached encoding")
	}
}

// The seccomp table names the same architectures as libshim/arch's.
func TestArchesFollowArchTable(t *testing.T) {
	for _, a := range arch.Supported {
		row, ok := Arches[a.GoArch]
		if !ok || row.Arch != a.OCI || len(row.Compat) != len(a.Compat) {
			t.Fatalf("%s: seccomp row %+v, arch row %+v", a.GoArch, row, a)
		}
		for i, c := range row.Compat {
			if c.Arch != a.Compat[i] {
				t.Errorf("%s: compat %s, arch table %s", a.GoArch, c.Arch, a.Compat[i])
			}
		}
	}
}
