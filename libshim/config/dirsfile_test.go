package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The admin's file of trusted directories extends the trusted set without
// any environment (containerd's -info probe); a file anyone but root could
// have written, or a relative entry, adds nothing, and the refusal says why.
func TestDirsFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the file must be owned by root: run as root (make test does)")
	}
	t.Setenv(DirsEnv, "")
	admin := t.TempDir()
	cfgPath := filepath.Join(admin, "c.toml")
	if err := os.WriteFile(cfgPath, []byte("[runc]\nroot = \"/run/p\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := dirsFile
	defer func() { dirsFile = old }()
	dirsFile = filepath.Join(t.TempDir(), "config-dirs")

	// missing: only the defaults
	if _, err := LoadTrusted(cfgPath); err == nil || !strings.Contains(err.Error(), "not directly in a trusted directory") {
		t.Fatalf("without the file: %v", err)
	}
	write := func(body string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(dirsFile, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dirsFile, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("# trusted by the admin\n\n"+admin+"/  # trailing comment\n", 0o644)
	if cfg, err := LoadTrusted(cfgPath); err != nil || cfg.Runc.Root != "/run/p" {
		t.Fatalf("listed directory: %+v, %v", cfg, err)
	}
	for _, c := range []struct {
		body string
		mode os.FileMode
		why  string
	}{
		{admin + "\n", 0o666, "not owned by root and writable only by it"},
		{"relative/dir\n" + admin + "\n", 0o644, `"relative/dir" is not an absolute directory`},
	} {
		write(c.body, c.mode)
		if _, err := LoadTrusted(cfgPath); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("file %q mode %o: %v, want refusal naming %q", c.body, c.mode, err, c.why)
		}
	}
	// a link in place of the file is not followed
	if err := os.Remove(dirsFile); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(t.TempDir(), "real")
	if err := os.WriteFile(real, []byte(admin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, dirsFile); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTrusted(cfgPath); err == nil {
		t.Error("a symlinked dirs file was followed")
	}
}

// The trusted directories are named once each, whichever sources list them.
func TestTrustedDirsOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DirsEnv, dir+string(os.PathListSeparator)+dir+string(os.PathListSeparator)+DefaultDir)
	got := trustedDirs()
	for i, d := range got {
		if slices.Contains(got[i+1:], d) {
			t.Errorf("%s is listed twice: %v", d, got)
		}
	}
	if got[0] != DefaultDir || !slices.Contains(got, dir) {
		t.Errorf("trusted directories %v", got)
	}
}
