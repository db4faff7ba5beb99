package lsm

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"palisade.dev/palisade/testing/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// appArmorCases are profiles shaped like the built-in palisade profiles.
var appArmorCases = map[string]AppArmorInput{
	"restricted": {Profile: "restricted", Capabilities: []string{"CAP_NET_BIND_SERVICE"}, Writable: []string{"/tmp"}},
	"baseline": {Profile: "baseline", Capabilities: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
		"CAP_SETPCAP", "CAP_SETFCAP", "CAP_NET_BIND_SERVICE", "CAP_IPC_LOCK"}, Writable: []string{"/tmp", "/run", "/var/tmp"}},
	"locked": {Profile: "locked", Capabilities: []string{"CAP_NET_BIND_SERVICE"}, Writable: []string{"/tmp"},
		Exec: []string{"/usr/bin/probe", "/lib64/ld-linux-x86-64.so.2"}, Helper: "/.palisade/init"},
	"writable-netraw": {Profile: "netraw", Capabilities: []string{"CAP_NET_RAW"}, WritableRootfs: true, Exec: []string{"/usr/bin/"}, Helper: "/.palisade/init"},
}

// The rendered profiles are checked against golden files (go test
// ./libshim/lsm -update rewrites them) and parsed by the real
// apparmor_parser.
func TestAppArmorGolden(t *testing.T) {
	for name, in := range appArmorCases {
		t.Run(name, func(t *testing.T) {
			pname, text, err := RenderAppArmor(in)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(pname, "palisade-"+in.Profile+"-") || len(pname) != len("palisade-"+in.Profile+"-")+12 {
				t.Errorf("name %q is not palisade-%s-<12 hex>", pname, in.Profile)
			}
			golden := filepath.Join("testdata", name+".apparmor")
			if *update {
				if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./libshim/lsm -update)", err)
			}
			if text != string(want) {
				t.Errorf("rendered profile differs from %s (go test ./libshim/lsm -update after checking the change):\n%s", golden, text)
			}
			requireParser(t)
			if err := (&Env{}).ValidateAppArmor(text); err != nil {
				t.Errorf("apparmor_parser rejects the rendered profile: %v", err)
			}
		})
	}
}

// requireParser skips (printing why) when apparmor_parser is missing, and
// fails instead under make test, whose setup installs it.
func requireParser(t *testing.T) {
	t.Helper()
	if ParserPath() != "" {
		return
	}
	require.Skipf(t, "apparmor_parser is not installed: profiles are rendered but not parsed (apt-get install apparmor; testing/setup.sh installs it)")
}

// The validation can fail: a broken profile is rejected with the parser's
// message.
func TestAppArmorParserRejects(t *testing.T) {
	requireParser(t)
	err := (&Env{}).ValidateAppArmor("profile broken { /x blah, }\n")
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("apparmor_parser accepted a broken profile or gave no reason: %v", err)
	}
}

// What the profile denies depends on the palisade profile.
func TestAppArmorRules(t *testing.T) {
	render := func(in AppArmorInput) string {
		t.Helper()
		_, text, err := RenderAppArmor(in)
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	restricted := render(appArmorCases["restricted"])
	for _, want := range []string{"deny network raw,", "deny network packet,", "capability net_bind_service,", `"/tmp{,/**}" rwlk,`, "deny mount,", "/{,**} ix,"} {
		if !strings.Contains(restricted, want) {
			t.Errorf("restricted profile lacks %q", want)
		}
	}
	for _, not := range []string{"/{,**} w,", "capability,", "capability net_raw", "ptrace (trace", "\n  file,"} {
		if strings.Contains(restricted, not) {
			t.Errorf("restricted profile has %q", not)
		}
	}
	locked := render(appArmorCases["locked"])
	if strings.Contains(locked, "/{,**} ix,") || !strings.Contains(locked, "  \"/usr/bin/probe\" ix,\n") || !strings.Contains(locked, "  \"/.palisade/init\" ix,\n") {
		t.Errorf("locked profile does not allow exactly its exec list:\n%s", locked)
	}
	if n := strings.Count(locked, " ix,"); n != 3 {
		t.Errorf("locked profile has %d ix rules, want 3 (helper, probe, interpreter)", n)
	}
	netraw := render(appArmorCases["writable-netraw"])
	if strings.Contains(netraw, "deny network raw") || !strings.Contains(netraw, "/{,**} w,") || !strings.Contains(netraw, `"/usr/bin/**" ix,`) {
		t.Errorf("profile with NET_RAW and a writable root:\n%s", netraw)
	}
	// Any input change gives a new name.
	a := AppArmorName(appArmorCases["restricted"])
	in := appArmorCases["restricted"]
	in.Writable = []string{"/tmp", "/data"}
	if AppArmorName(in) == a {
		t.Error("a different profile kept the same name")
	}
}

// Paths that would change a profile's meaning are refused, never written.
func TestAppArmorRefusesInjection(t *testing.T) {
	for _, p := range []string{"/tmp rw,\n  /** ix", "/a\"b", "/a\\b", "/a@{HOME}", "/a\tb", "/x/../etc", "relative", "/tmp/*", "/{a,b}", "/a?", "/[ab]", "/^a"} {
		for _, in := range []AppArmorInput{
			{Profile: "p", Writable: []string{p}},
			{Profile: "p", Exec: []string{p}, Helper: "/.palisade/init"},
		} {
			if _, _, err := RenderAppArmor(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("path %q: err = %v, want invalid argument", p, err)
			}
		}
	}
	if _, _, err := RenderAppArmor(AppArmorInput{Profile: "p", Writable: []string{"/"}}); err == nil {
		t.Error("/ accepted as a writable path")
	}
}

// Paths are written quoted; the characters they may hold besides letters
// and digits are literal to AppArmor: the parser compiles them to exactly
// the path (a space escaped, nothing turned into a pattern).
func TestAppArmorPathsAreLiteral(t *testing.T) {
	requireParser(t)
	const odd = "/data dir/a:b,c=d~e%f#g+h.i_j-k"
	_, text, err := RenderAppArmor(AppArmorInput{Profile: "p", Writable: []string{odd}, Exec: []string{odd}, Helper: "/.palisade/init"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ParserPath(), "-Q", "-K", "-D", "rule-exprs")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("apparmor_parser: %v\n%s", err, out)
	}
	// The parser's regular expressions escape + and . (and, in their
	// final form, the space) as literals.
	re := strings.NewReplacer("+", `\+`, ".", `\.`).Replace(odd)
	final := strings.ReplaceAll(re, " ", `\ `)
	for _, want := range []string{"rule: " + re + "(|/[^\\x00]*)  ->  " + final + "([]|/", "rule: " + re + "  ->  " + final + " ("} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the parser did not compile %q to a literal (want %q):\n%s", odd, want, out)
		}
	}
}
