package critest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"palisade.dev/palisade/testing/harness"
)

// Handlers are the CRI runtime handlers the suite runs against, in order:
// the stock runc shim, then palisade set up as contrib/kubernetes's
// `palisade` RuntimeClass (no runtime options: the shim's default admin
// config, so that hostUsers: false pods run too).
var Handlers = []string{"runc", harness.CRIHandlerNoOptions}

// Options configure a conformance run.
type Options struct {
	OutDir string // reports and logs go here
	Focus  string // ginkgo focus regexp; "" runs every spec
	Skip   string // ginkgo skip regexp
	Say    func(string)
}

// Reports are the JUnit reports of a run, by handler.
type Reports map[string]string

// Conformance builds critest's images, starts a registry and a private
// containerd with the CRI plugin pulling from it, and runs critest once per
// handler. It returns the JUnit reports and the tools' versions.
func Conformance(o Options) (Reports, string, error) {
	tools, err := harness.FindTools()
	if err != nil {
		return nil, "", err
	}
	critest := filepath.Join(harness.CacheDir(), "tools", "critest-"+tools.Versions["critest"], "critest")
	if _, err := os.Stat(critest); err != nil {
		return nil, "", fmt.Errorf("critest is missing (testing/setup-critest.sh builds it): %w", err)
	}
	versions := fmt.Sprintf("critest %s, containerd %s, runc %s", tools.Versions["critest"], tools.Versions["containerd"], tools.Versions["runc"])
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, "", err
	}
	work, err := os.MkdirTemp("", "palisade-critest-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(work)

	reg := NewRegistry()
	if err := reg.Start(); err != nil {
		return nil, "", err
	}
	defer func() { _ = reg.Close() }() // the listener only; nothing to report
	hosts := filepath.Join(work, "hosts")
	if err := reg.WriteHosts(hosts, Mirrored...); err != nil {
		return nil, "", err
	}
	env, closeEnv, err := harness.LaunchWith(harness.Options{CRI: true, Namespace: "k8s.io", RegistryHosts: hosts}, o.Say)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		// palisade's audit records and containerd's log explain failures
		// after the environment is gone
		if b, err := os.ReadFile(env.AuditLog); err == nil {
			_ = os.WriteFile(filepath.Join(o.OutDir, "audit.jsonl"), b, 0o600)
		}
		_ = os.WriteFile(filepath.Join(o.OutDir, "containerd.log"), []byte(env.ContainerdLog()), 0o600)
		if err := closeEnv(); err != nil {
			o.Say("teardown: " + err.Error())
		}
	}()

	o.Say("building critest's images and serving them on " + reg.Addr)
	prog := filepath.Join(work, "criimage")
	root, err := harness.ModuleRoot()
	if err != nil {
		return nil, "", err
	}
	build := exec.Command("go", "build", "-trimpath", "-o", prog, "./testing/cmd/criimage")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("build criimage: %w\n%s", err, out)
	}
	imgs, err := Images(Programs{Busybox: "/bin/busybox", Pause: env.Build().Pause, CRIImage: prog})
	if err != nil {
		return nil, "", err
	}
	if err := Serve(reg, imgs); err != nil {
		return nil, "", err
	}

	reports := Reports{}
	for _, h := range Handlers {
		report := filepath.Join(o.OutDir, h+".xml")
		logPath := filepath.Join(o.OutDir, h+".log")
		o.Say(fmt.Sprintf("critest against handler %s (log: %s)", h, logPath))
		start := time.Now()
		if err := runCritest(critest, env, h, report, logPath, o); err != nil {
			return nil, "", err
		}
		o.Say(fmt.Sprintf("handler %s done in %s", h, time.Since(start).Round(time.Second)))
		reports[h] = report
	}
	return reports, versions, nil
}

// runCritest runs critest against one handler; its exit status only says
// that some spec failed, which the report tells in detail, so only a
// missing report is an error.
func runCritest(critest string, env *harness.Env, handler, report, logPath string, o Options) error {
	_ = os.Remove(report)
	args := []string{
		"-runtime-endpoint", "unix://" + env.Address, "-image-endpoint", "unix://" + env.Address,
		"-runtime-handler", handler, "-nri-socket", env.NRISocket,
		"-ginkgo.junit-report", report, "-ginkgo.no-color", "-ginkgo.timeout", "3h", "-ginkgo.v",
	}
	if o.Focus != "" {
		args = append(args, "-ginkgo.focus", o.Focus)
	}
	if o.Skip != "" {
		args = append(args, "-ginkgo.skip", o.Skip)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour+5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, critest, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = filepath.Dir(logPath)
	runErr := cmd.Run()
	if _, err := os.Stat(report); err != nil {
		return fmt.Errorf("critest against %s wrote no report (see %s): %w", handler, logPath, errors.Join(runErr, err))
	}
	return nil
}
