package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"palisade.dev/palisade/testing/image"
)

// Build is what the project builds for the end-to-end environment.
type Build struct {
	BinDir  string // holds containerd-shim-palisade-v2, palisade-init and palisade
	Probe   string
	Probe32 string // the probe built for 386: a 32-bit program, for compat ABI tests
	Pause   string // the pod sandbox's static program
	Image   string // the OCI archive of the test image
	Rootfs  string // the same image as a directory (palisade run --rootfs)
	// ConfigDirsFile is where the built shim reads its extra trusted
	// config directories (instead of /etc/palisade/config-dirs).
	ConfigDirsFile string
	// DefaultConfig is the built shim's default admin config (instead of
	// /etc/palisade/config.toml): the environment's.
	DefaultConfig string
	// LayoutCacheDir is where the built shim's start processes keep
	// containerd's layout (instead of /run/palisade/layout).
	LayoutCacheDir string
	// PauseImage is the OCI archive of the pod sandbox image (PauseRef)
	// the CRI tests use.
	PauseImage string
}

// ModuleRoot is the palisade source tree.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("harness: find the module root: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// compat32 is the 32-bit Go architecture whose programs each host
// architecture runs through its compat system call ABI.
var compat32 = map[string]string{"amd64": "386", "arm64": "arm"}

// BuildAll builds the shim, the CLI, the static test programs and the test
// image into dir. Go's build cache makes a repeat cheap.
func BuildAll(dir string) (*Build, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	b := &Build{BinDir: filepath.Join(dir, "bin"), Probe: filepath.Join(dir, "programs", "probe"), Probe32: filepath.Join(dir, "programs", "probe32"),
		Image: filepath.Join(dir, "image.tar"), Rootfs: filepath.Join(dir, "rootfs"),
		PauseImage: filepath.Join(dir, "pause.tar"), ConfigDirsFile: filepath.Join(dir, "config-dirs"),
		DefaultConfig: filepath.Join(dir, "config.toml"), Pause: filepath.Join(dir, "programs", "pause"),
		LayoutCacheDir: filepath.Join(dir, "layout-cache")}
	pause := b.Pause
	steps := []struct {
		out, pkg string
		static   bool
		goarch   string // cross-build for this architecture ("" = the host's)
		cgo      bool   // static with cgo, as released (palisade-init: C, and libseccomp for compile)
	}{
		{filepath.Join(b.BinDir, "containerd-shim-palisade-v2"), "./cmd/containerd-shim-palisade-v2", true, "", false},
		{filepath.Join(b.BinDir, "palisade"), "./cmd/palisade", false, "", false},
		{filepath.Join(b.BinDir, "palisade-init"), "./cmd/palisade-init", true, "", true},
		{b.Probe, "./testing/cmd/probe", true, "", false},
		{b.Probe32, "./testing/cmd/probe", true, compat32[runtime.GOARCH], false},
		{pause, "./testing/cmd/pause", true, "", false},
	}
	for _, s := range steps {
		// The shims of a private environment read its trusted config
		// directories and its default config from the build, not /etc/palisade,
		// and keep containerd's layout, compiled seccomp programs and
		// palisade-init's unreadable copies there, not in /run.
		ldflags := "-X palisade.dev/palisade/libshim/config.dirsFile=" + b.ConfigDirsFile +
			" -X palisade.dev/palisade/libshim/config.DefaultPath=" + b.DefaultConfig +
			" -X palisade.dev/palisade/libshim/service.layoutCacheDir=" + b.LayoutCacheDir +
			" -X palisade.dev/palisade/libshim/launch.ProgramDir=" + filepath.Join(dir, "seccomp-programs") +
			" -X palisade.dev/palisade/libshim/launch.HelperDir=" + filepath.Join(dir, "helper-copies")
		if s.cgo {
			ldflags += " -linkmode external -extldflags -static"
		}
		args := []string{"build", "-trimpath", "-ldflags", ldflags, "-o", s.out}
		if s.cgo {
			args = append(args, "-tags", "netgo,osusergo") // glibc's NSS cannot work in a static binary
		}
		cmd := exec.Command("go", append(args, s.pkg)...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		if s.cgo {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
		} else if s.static {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
		}
		if s.goarch != "" {
			cmd.Env = append(cmd.Env, "GOARCH="+s.goarch)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("harness: go build %s: %w\n%s", s.pkg, err, stderr.String())
		}
	}
	f, err := os.OpenFile(b.Image, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opts := image.Options{
		Busybox:  "/bin/busybox",
		Programs: map[string]string{"/usr/bin/probe": b.Probe, "/usr/bin/probe32": b.Probe32},
	}
	if err := image.Build(f, opts); err != nil {
		return nil, err
	}
	if err := image.Extract(b.Rootfs, opts); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return b, writeImage(b.PauseImage, image.Options{
		Busybox:  "/bin/busybox",
		Programs: map[string]string{"/pause": pause},
		Ref:      PauseRef,
		Cmd:      []string{"/pause"},
	})
}

// PauseRef is the pod sandbox image's reference in the CRI tests.
const PauseRef = "registry.k8s.io/pause:palisade-test"

func writeImage(path string, o image.Options) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := image.Build(f, o); err != nil {
		return err
	}
	return f.Close()
}
