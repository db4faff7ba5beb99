package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/tomlfile"
)

func TestParseValid(t *testing.T) {
	cfg, err := Parse("t.toml", []byte("version = 1\n[runc]\nroot = \"/run/x\"\nsystemd_cgroup = true\n[audit]\nfile = \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runc.Root != "/run/x" || !cfg.Runc.SystemdCgroup || cfg.Runc.BinaryName != "runc" || cfg.Audit.File != "" || cfg.Source != "t.toml" {
		t.Errorf("unexpected config %+v", cfg)
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	cfg, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if cfg.Runc != d.Runc || cfg.Audit != d.Audit || cfg.Version != SchemaVersion {
		t.Errorf("empty config %+v differs from the defaults %+v", cfg, d)
	}
}

func TestParseErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"unknown field", "version = 1\n[runc]\nrooot = \"/x\"\n", `bad.toml:3: field "runc.rooot": unknown field`},
		{"unknown section", "[auditt]\nfile = \"/x\"\n", `field "auditt`},
		{"wrong type", "[runc]\nsystemd_cgroup = \"yes\"\n", `bad.toml:2: field "runc.systemd_cgroup"`},
		{"syntax", "[runc\n", `bad.toml:1`},
		{"version", "version = 2\n", `field "version": schema version 2 is not supported`},
		{"relative root", "[runc]\nroot = \"run/x\"\n", `field "runc.root": "run/x" is not an absolute path`},
		{"relative binary", "[runc]\nbinary_name = \"bin/runc\"\n", `field "runc.binary_name"`},
		{"empty binary", "[runc]\nbinary_name = \"\"\n", `field "runc.binary_name": must not be empty`},
		{"relative audit", "[audit]\nfile = \"audit.log\"\n", `field "audit.file"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.toml", []byte(c.body))
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("error is not an invalid argument: %v", err)
			}
		})
	}
}

func TestParseOversized(t *testing.T) {
	_, err := Parse("big.toml", make([]byte, maxFileSize+1))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized config: %v", err)
	}
}

func TestLoadFileMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.toml")
	_, err := LoadFile(p)
	var ce *tomlfile.Error
	if !errors.As(err, &ce) || ce.Source != p {
		t.Fatalf("missing file error %v does not name %s", err, p)
	}
}

func TestFromRuntimeOptions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DirsEnv, dir)
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte("[runc]\nroot = \"/run/p\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pack := func(v any) typeurl.Any {
		a, err := typeurl.MarshalAnyToProto(v)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	cfg, err := FromRuntimeOptions(pack(&runtimeoptions.Options{ConfigPath: path}))
	if err != nil || cfg.Runc.Root != "/run/p" || cfg.Source != path {
		t.Fatalf("ConfigPath: %+v, %v", cfg, err)
	}
	// A client may not hand the shim a config of its own, nor point it at one.
	_, err = FromRuntimeOptions(pack(&runtimeoptions.Options{ConfigBody: []byte("[runc]\nbinary_name = \"/tmp/x\"\n")}))
	if err == nil || !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "config body are not accepted") {
		t.Fatalf("ConfigBody: %v", err)
	}
	elsewhere := filepath.Join(t.TempDir(), "mine.toml")
	if err := os.WriteFile(elsewhere, []byte("[runc]\nbinary_name = \"/tmp/x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = FromRuntimeOptions(pack(&runtimeoptions.Options{ConfigPath: elsewhere}))
	if err == nil || !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "is not one the node administrator trusts (not directly in a trusted directory") {
		t.Fatalf("untrusted ConfigPath: %v", err)
	}
	// through /proc/self/root the path text looks trusted; the lookup must not follow the magic link
	for _, sneaky := range []string{"/proc/self/root" + path, dir + "/sub/../c.toml", dir + "/sub/c.toml"} {
		if _, err := FromRuntimeOptions(pack(&runtimeoptions.Options{ConfigPath: sneaky})); err == nil && sneaky != dir+"/sub/../c.toml" {
			t.Errorf("%s was accepted", sneaky)
		}
	}
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if _, err := FromRuntimeOptions(pack(&runtimeoptions.Options{ConfigPath: link})); err == nil {
		t.Fatal("a symlink out of the trusted directory was followed")
	}
	// A FIFO in the trusted directory must be refused, not read (it would block).
	fifo := filepath.Join(dir, "fifo.toml")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := FromRuntimeOptions(pack(&runtimeoptions.Options{ConfigPath: fifo})); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "a FIFO, not a regular file") {
			t.Fatalf("FIFO config: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading a FIFO as the admin config hangs")
	}
	if _, err := FromRuntimeOptions(pack(&runtimeoptions.Options{ConfigPath: "/nonexistent-palisade-dir/c.toml"})); err == nil {
		t.Fatal("a config in a missing directory was accepted")
	}
	// runc's own options would let a client pick the runtime binary or its
	// state; only the I/O owner containerd sets for user-namespace pods
	// passes, with the default admin config.
	_, err = FromRuntimeOptions(pack(&runcoptions.Options{BinaryName: "/tmp/fake-runc", Root: "/tmp/state", IoUid: 1000}))
	if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "runc runtime options BinaryName, Root are not accepted") {
		t.Fatalf("runc options: %v", err)
	}
	for _, bad := range []*runcoptions.Options{{NoPivotRoot: true}, {ShimCgroup: "/x"}, {CriuImagePath: "/x"}, {TaskApiAddress: "/x"}, {SystemdCgroup: true}} {
		if _, err := FromRuntimeOptions(pack(bad)); err == nil {
			t.Errorf("runc options %v accepted", bad)
		}
	}
	cfg, err = FromRuntimeOptions(pack(&runcoptions.Options{IoUid: 1000000, IoGid: 1000001, BinaryName: Default().Runc.BinaryName}))
	if err != nil {
		t.Fatalf("runc options from containerd for a user-namespace pod: %v", err)
	}
	if o := cfg.RuncOptions(); o.IoUid != 1000000 || o.IoGid != 1000001 || o.BinaryName != Default().Runc.BinaryName {
		t.Errorf("translated runc options %+v", o)
	}
}

func TestRuncOptions(t *testing.T) {
	cfg := &Config{Runc: Runc{BinaryName: "/usr/bin/runc", Root: "/run/r", SystemdCgroup: true}}
	a, err := cfg.RuncOptionsAny()
	if err != nil {
		t.Fatal(err)
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*runcoptions.Options)
	if !ok || o.BinaryName != "/usr/bin/runc" || o.Root != "/run/r" || !o.SystemdCgroup {
		t.Fatalf("translated options %T %+v", v, v)
	}
}

// The example shipped in contrib/ stays valid.
func TestContribExample(t *testing.T) {
	cfg, err := LoadFile("../../contrib/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultProfile != "restricted" || cfg.Audit.File == "" {
		t.Errorf("%+v", cfg)
	}
}
