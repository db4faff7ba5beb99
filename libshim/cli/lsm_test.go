package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/lsm"
)

func TestAppArmorShow(t *testing.T) {
	cfg := noAdmin(t)
	code, out, errs := run("apparmor", "show", "--config", cfg, "restricted")
	if code != ExitOK || !strings.Contains(out, "profile palisade-restricted-") || !strings.Contains(out, "deny network raw,") {
		t.Fatalf("apparmor show restricted: %d %s %s", code, out, errs)
	}
	if lsm.ParserPath() != "" {
		if err := (&lsm.Env{}).ValidateAppArmor(out); err != nil {
			t.Errorf("apparmor_parser rejects apparmor show's output: %v", err)
		}
	}
	code, _, errs = run("apparmor", "show", "--config", cfg, "locked")
	if code != ExitUsage || !strings.Contains(errs, "--entrypoint") {
		t.Errorf("locked without its entrypoint: %d %s", code, errs)
	}
	code, out, _ = run("apparmor", "show", "--config", cfg, "locked", "--entrypoint", "/app/server")
	if code != ExitOK || !strings.Contains(out, "  \"/app/server\" ix,\n") || strings.Contains(out, "/{,**} ix,") {
		t.Errorf("locked with its entrypoint: %d\n%s", code, out)
	}
}

// lint renders each profile's AppArmor profile and reports one that cannot
// be generated.
func TestLintChecksAppArmor(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("name = \"bad\"\n[pids]\nlimit = 10\n[exec]\nmode = \"enforce\"\nallow = [\"/app/my*server\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run("profile", "lint", bad)
	if code != ExitFailed || !strings.Contains(out, "AppArmor") || !strings.Contains(out, "/app/my*server") {
		t.Fatalf("lint of a profile whose AppArmor rendering fails: %d %s", code, out)
	}
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("name = \"good\"\n[pids]\nlimit = 10\n[exec]\nmode = \"enforce\"\nallow = [\"/app/server\", \"/usr/lib/app/\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run("profile", "lint", good); code != ExitOK {
		t.Fatalf("lint of a good profile: %d %s", code, out)
	}
}

func TestExplainSaysWhichLSMModeApplies(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(cfg, []byte("profiles_dir = \"\"\n[selinux]\nmode = \"require\"\n[apparmor]\nmode = \"off\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run("explain", "--config", cfg, "--lsm-host", "apparmor", "restricted")
	if code != ExitOK || !strings.Contains(out, `selinux.mode = "require" but the host does not enforce SELinux: every container is refused`) ||
		!strings.Contains(out, `apparmor.mode = "off": palisade does not apply AppArmor`) {
		t.Fatalf("explain: %d\n%s", code, out)
	}
	if code, _, _ := run("explain", "--config", cfg, "--lsm-host", "bogus", "restricted"); code != ExitUsage {
		t.Errorf("--lsm-host bogus: exit %d", code)
	}
}
