package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"palisade.dev/palisade/testing/harness"
)

// ReleaseEnv names the release tarball TestInstallRelease installs (make
// test-install sets it to the amd64 tarball make release produced).
const ReleaseEnv = "PALISADE_RELEASE"

// contrib/install.sh, driven as a node administrator would, from the tarball
// make release produced, into a private prefix, admin config directory and
// containerd drop-in directory, with a private containerd that imports that
// drop-in directory: install, containerd picks the runtime up, a container
// runs hardened under the installed shim, uninstall removes it again. A
// tampered tarball installs nothing.
func TestInstallRelease(t *testing.T) {
	e := needEnv(t)
	tarball := os.Getenv(ReleaseEnv)
	if tarball == "" {
		t.Skipf("%s is not set: make test-install runs this test against the tarball of make release", ReleaseEnv)
	}
	tarball, err := filepath.Abs(tarball)
	if err != nil {
		t.Fatal(err)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "contrib", "install.sh")
	d := t.TempDir()
	var (
		prefix     = filepath.Join(d, "prefix")
		configDir  = filepath.Join(d, "etc-palisade")
		dropins    = filepath.Join(d, "conf.d")
		ctdConfig  = filepath.Join(d, "containerd.toml")
		address    = filepath.Join(d, "containerd.sock")
		namespace  = "palisade-install"
		imageTar   = filepath.Join(d, "image.tar")
		adminFile  = filepath.Join(configDir, "config.toml")
		auditFile  = filepath.Join(d, "audit.jsonl")
		tools      = e.Tools()
		pathEnv    = strings.Join([]string{filepath.Join(prefix, "bin"), filepath.Dir(tools.Containerd), filepath.Dir(tools.Runc), os.Getenv("PATH")}, ":")
		commonArgs = []string{"--prefix", prefix, "--config-dir", configDir, "--dropin-dir", dropins, "--containerd-config", ctdConfig, "--address", address}
	)
	install := func(args ...string) (string, error) {
		cmd := exec.Command("bash", append([]string{script}, append(append([]string{}, commonArgs...), args...)...)...)
		cmd.Env = append(os.Environ(), "PATH="+pathEnv)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if err := os.WriteFile(ctdConfig, []byte(installContainerdConfig(d, dropins, address, configDir)), 0o600); err != nil {
		t.Fatal(err)
	}

	// A tarball that does not match SHA256SUMS installs nothing.
	tampered := filepath.Join(d, "tampered")
	if err := os.MkdirAll(tampered, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(filepath.Dir(tarball), "SHA256SUMS"))
	if err != nil {
		t.Fatalf("make release writes SHA256SUMS beside the tarball: %v", err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(filepath.Join(tampered, filepath.Base(tarball)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tampered, "SHA256SUMS"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := install("--no-restart", filepath.Join(tampered, filepath.Base(tarball))); err == nil || !strings.Contains(out, "does not match") {
		t.Fatalf("a tampered tarball was installed: %v\n%s", err, out)
	}
	if _, err := os.Stat(prefix); !os.IsNotExist(err) {
		t.Fatalf("a refused install left %s behind (%v)", prefix, err)
	}

	// Install; containerd is restarted by the test (the script would use
	// systemctl on a node).
	out, err := install("--no-restart", tarball)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	t.Logf("install.sh:\n%s", out)
	for _, b := range []string{"containerd-shim-palisade-v2", "palisade", "palisade-init"} {
		if fi, err := os.Stat(filepath.Join(prefix, "bin", b)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s not installed 0755: %v", b, err)
		}
	}
	contribConfig, err := os.ReadFile(filepath.Join(root, "contrib", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	installed, err := os.ReadFile(adminFile)
	if err != nil || !bytes.Equal(installed, contribConfig) {
		t.Fatalf("the admin config is not contrib/config.toml: %v", err)
	}
	dropin, err := os.ReadFile(filepath.Join(dropins, "palisade.toml"))
	if err != nil || !strings.Contains(string(dropin), "ConfigPath = '"+adminFile+"'") || !strings.Contains(string(dropin), "runtime_path = '"+prefix+"/bin/containerd-shim-palisade-v2'") {
		t.Fatalf("drop-in does not point at this installation: %v\n%s", err, dropin)
	}
	// As an administrator of this test node would: keep runc's state, the
	// audit file and secret mounts inside the test directory.
	adminConfig := strings.NewReplacer(
		`root = ""`, fmt.Sprintf("root = %q", filepath.Join(d, "runc")),
		`file = "/var/log/palisade/audit.jsonl"`, fmt.Sprintf("file = %q", auditFile),
		`mount_root = "/run/palisade/secrets"`, fmt.Sprintf("mount_root = %q", filepath.Join(d, "secrets")),
	).Replace(string(installed))
	if err := os.WriteFile(adminFile, []byte(adminConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second install keeps the administrator's edited config.
	if out, err := install("--no-restart", tarball); err != nil || !strings.Contains(out, "kept the existing") {
		t.Fatalf("reinstall: %v\n%s", err, out)
	}

	stop := startContainerd(t, tools.Containerd, ctdConfig, filepath.Join(d, "containerd.log"), pathEnv, address)
	defer stop()
	if r := e.Ctr("images", "export", imageTar, e.Image()); r.Err != nil {
		t.Fatalf("export the test image: %s", r)
	}
	ctr := exec.Command(tools.Ctr, "--address", address, "-n", namespace, "images", "import", imageTar)
	if out, err := ctr.CombinedOutput(); err != nil {
		t.Fatalf("import the test image: %v\n%s", err, out)
	}

	out, err = install("--check", "--image", e.Image(), "--namespace", namespace)
	if err != nil {
		t.Fatalf("install.sh --check: %v\n%s\ncontainerd log:\n%s", err, out, readFile(filepath.Join(d, "containerd.log")))
	}
	t.Logf("install.sh --check:\n%s", out)
	for _, want := range []string{"registers the runtime io.containerd.palisade.v2", "a test container ran under palisade as uid 65534", "palisade install: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if audit := readFile(auditFile); !strings.Contains(audit, "palisade-install-check-") {
		t.Errorf("the installed shim wrote no audit record for the test container:\n%s", audit)
	}

	// Uninstall keeps the admin config unless --purge.
	if out, err := install("--uninstall", "--no-restart"); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	for _, p := range []string{filepath.Join(prefix, "bin", "palisade"), filepath.Join(prefix, "bin", "containerd-shim-palisade-v2"), filepath.Join(dropins, "palisade.toml")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("uninstall left %s (%v)", p, err)
		}
	}
	if _, err := os.Stat(adminFile); err != nil {
		t.Errorf("uninstall removed the admin config without --purge: %v", err)
	}
	if out, err := install("--uninstall", "--purge", "--no-restart"); err != nil {
		t.Fatalf("uninstall --purge: %v\n%s", err, out)
	}
	if _, err := os.Stat(configDir); !os.IsNotExist(err) {
		t.Errorf("--purge left %s (%v)", configDir, err)
	}
	if out, err := install("--check"); err == nil {
		t.Errorf("--check passed after uninstall:\n%s", out)
	}
}

// installContainerdConfig is a private containerd that imports drop-ins from
// dropins, as a node's /etc/containerd/config.toml imports conf.d.
func installContainerdConfig(d, dropins, address, configDir string) string {
	return fmt.Sprintf(`version = 4
root = %q
state = %q
imports = [%q]
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox"]

[plugins.'io.containerd.server.v1.grpc']
  address = %q
[plugins.'io.containerd.server.v1.ttrpc']
  address = %q
[plugins.'io.containerd.server.v1.debug']
  address = ""
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = %q
  env = ["PALISADE_CONFIG_DIRS=%s"]
`, filepath.Join(d, "root"), filepath.Join(d, "state"), filepath.Join(dropins, "*.toml"), address, address+".ttrpc", filepath.Join(d, "s"), configDir)
}

// startContainerd starts containerd with config and PATH and waits until it
// answers; the returned function stops it.
func startContainerd(t *testing.T, bin, config, logPath, path, address string) func() {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = append(os.Environ(), "PATH="+path)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }() // stopped on purpose
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	ctr := filepath.Join(filepath.Dir(bin), "ctr")
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if exec.Command(ctr, "--address", address, "version").Run() == nil {
			return stop
		}
	}
	stop()
	t.Fatalf("containerd did not answer within 20s:\n%s", readFile(logPath))
	return nil
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
