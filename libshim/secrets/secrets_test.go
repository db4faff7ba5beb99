package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func store(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"team-a", "team-b"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, v string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("team-a/db", "value-a")
	write("team-b/db", "value-b")
	write("team-a/big", strings.Repeat("x", 101))
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "team-a/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../team-b/db", filepath.Join(root, "team-a/sibling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "team-a/dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "team-b"), filepath.Join(root, "team-c")); err != nil {
		t.Fatal(err)
	}
	// A FIFO: opening it for reading would block until a writer comes.
	if err := unix.Mkfifo(filepath.Join(root, "team-a/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestDirSource(t *testing.T) {
	src := DirSource{Root: store(t)}
	if v, err := src.Read("team-a", "db", 100); err != nil || string(v) != "value-a" {
		t.Fatalf("read: %q %v", v, err)
	}
	cases := []struct{ scope, name, want string }{
		{"team-a", "nope", `secret "nope" not found in scope "team-a"`},
		{"team-a", "link", "is a symlink"},
		{"team-a", "sibling", "is a symlink"},
		{"team-a", "big", "larger than 100 bytes"},
		{"team-a", "dir", "is a directory"},
		{"team-a", "fifo", "is a FIFO"},
		{"team-a", "../team-b/db", "is not allowed"},
		{"team-a", "a/b", "is not allowed"},
		{"team-a", "..", "is not allowed"},
		{"../x", "db", "scope"},
		{"team-a/../team-b", "db", "scope"},
		{"team-c", "db", `no scope "team-c"`}, // a symlinked scope is not followed
	}
	for _, c := range cases {
		var (
			v   []byte
			err error
		)
		done := make(chan struct{})
		go func() { v, err = src.Read(c.scope, c.name, 100); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s/%s: reading the store hangs", c.scope, c.name)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s/%s: got %q %v, want %q", c.scope, c.name, v, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "value-a") || strings.Contains(err.Error(), "value-b")) {
			t.Errorf("an error carries a secret value: %v", err)
		}
	}
	if _, err := src.Read("team-a", "nope", 100); !errdefs.IsNotFound(err) {
		t.Errorf("missing secret is not NotFound: %v", err)
	}
}

func TestNamesPatternsScope(t *testing.T) {
	for _, ok := range []string{"db-password", "API_TOKEN", "tls.key", "a"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a..b", "../x", "a/b", "-x", strings.Repeat("a", 129), "x y"} {
		if ValidName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	p := []string{"*PASSWORD*", "*TOKEN*"}
	for name, want := range map[string]bool{"DB_PASSWORD": true, "github_token": true, "PATH": false, "HOME": false} {
		if MatchesPattern(name, p) != want {
			t.Errorf("MatchesPattern(%s) != %v", name, want)
		}
	}
	ann := map[string]string{"io.kubernetes.cri.sandbox-namespace": "shop"}
	if Scope("k8s.io", ann) != "kubernetes/shop" || Scope("default", ann) != "containerd/default" || Scope("k8s.io", nil) != "containerd/k8s.io" {
		t.Error("scope: the Kubernetes namespace counts only for CRI's containerd namespace")
	}
	for _, bad := range []string{"/proc/x", "/dev/shm/x", "relative", "/a/../b", "/"} {
		if ValidTarget(bad) == nil {
			t.Errorf("target %q accepted", bad)
		}
	}
}
