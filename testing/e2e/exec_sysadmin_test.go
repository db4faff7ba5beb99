package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vm.memfd_noexec, which keeps a memfd from running under an enforced exec
// allow-list, can be lowered again in its PID namespace by a process with
// CAP_SYS_ADMIN over it (Linux 6.6 and later only keep a namespace from
// going below its parent). A container that holds CAP_SYS_ADMIN, even where
// its profile allows it, is refused an enforced list, and nothing is left.
func TestExecAllowlistRefusesCapSysAdmin(t *testing.T) {
	e := needEnv(t)
	dir := t.TempDir()
	body := "name = \"allowbbadmin\"\n[exec]\nmode = \"enforce\"\nallow = [\"/bin/busybox\"]\n[capabilities]\nallowed = [\"CAP_SYS_ADMIN\"]\n[pids]\nlimit = 256\n"
	if err := os.WriteFile(filepath.Join(dir, "allowbbadmin.toml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t, e, "profiles_dir = \""+dir+"\"\nselectable_profiles = [\"allowbbadmin\"]\n")
	id := containerID(t, "sysadmin")
	r := runProfile(e, cfg, "allowbbadmin", id, []string{"--cap-add", "CAP_SYS_ADMIN"}, "/bin/sh", "-c", "echo ok")
	if r.Err == nil || !strings.Contains(r.Stderr, "CAP_SYS_ADMIN") || !strings.Contains(r.Stderr, "vm.memfd_noexec") ||
		!strings.Contains(r.Stderr, "[rule exec-allowlist, profile allowbbadmin]") {
		t.Errorf("an enforced exec allow-list with CAP_SYS_ADMIN: want a refusal by the exec-allowlist rule, got %v: %s", r, r.Stderr)
	}
	assertClean(t, e, id)
	// Without the capability the same profile runs.
	id = containerID(t, "nosysadmin")
	if r := runProfile(e, cfg, "allowbbadmin", id, nil, "/bin/sh", "-c", "echo ok"); r.Err != nil {
		t.Errorf("the profile without CAP_SYS_ADMIN: %v: %s", r, r.Stderr)
	}
}
