package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"palisade.dev/palisade"
	"palisade.dev/palisade/libshim/hostinfo"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run("version")
	if code != ExitOK || out != "palisade "+palisade.Version+"\n" {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out, _ = run("version", "-o", "json")
	var v map[string]string
	if code != ExitOK || json.Unmarshal([]byte(out), &v) != nil || v["version"] != palisade.Version {
		t.Fatalf("version -o json: %d %q", code, out)
	}
	if palisade.Version == "" {
		t.Fatal("VERSION is empty")
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, errs := run("version", "-o", "yaml"); code != ExitUsage || !strings.Contains(errs, "--output must be table or json") {
		t.Errorf("bad --output: %d %q", code, errs)
	}
	if code, _, _ := run("no-such-command"); code != ExitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestDoctorJSON(t *testing.T) {
	code, out, errs := run("doctor", "--address", "", "-o", "json")
	if code != ExitOK {
		t.Fatalf("doctor: %d %s", code, errs)
	}
	var checks []hostinfo.Check
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range checks {
		names[c.Name] = true
		if c.Status == "" || c.Detail == "" {
			t.Errorf("check %+v has no status or detail", c)
		}
	}
	for _, want := range []string{"cgroups", "seccomp", "landlock", "selinux", "apparmor", "runc", "crun"} {
		if !names[want] {
			t.Errorf("doctor does not report %s", want)
		}
	}
	if names["containerd"] {
		t.Error("containerd checked although --address was empty")
	}
}
