package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/testing/image"
)

// Runtime is palisade's containerd runtime type.
const Runtime = "io.containerd.palisade.v2"

// dirPrefix names the harness's directories under os.TempDir, so that a
// later run can find and tear down what a killed run left behind.
const dirPrefix = "palisade-e2e-"

// Options configure a private containerd.
type Options struct {
	Tools     *Tools
	Build     *Build
	Namespace string // containerd namespace for the test image and containers
	// AdminConfig is added to the default admin config (see
	// WriteAdminConfig).
	AdminConfig string
	// CRI enables containerd's CRI plugin with runtime handlers "runc" and
	// "palisade" (see cri.go); without it the CRI plugins are disabled.
	CRI bool
	// RegistryHosts, with CRI, is the directory of containerd's per-registry
	// hosts.toml files (CRI's registry config_path): where pulls go.
	RegistryHosts string
}

// Env is one private containerd with palisade registered.
type Env struct {
	Dir         string // everything lives under here
	Address     string // containerd's gRPC socket
	Namespace   string
	ConfigDir   string // the directory of admin configs the shim trusts
	AdminConfig string // path of palisade's admin config
	AuditLog    string // palisade's audit file (per the default admin config)
	RuncRoot    string // runc state root given to palisade
	SecretStore string // palisade's secret store (one directory per scope)
	SecretMount string // where palisade mounts per-container secrets
	NRISocket   string // containerd's NRI socket (not the host's /var/run/nri)

	tools         *Tools
	build         *Build
	cmd           *exec.Cmd
	cri           bool
	registryHosts string
}

// Start cleans up stale environments, then starts a private containerd and
// imports the test image.
func Start(o Options) (_ *Env, retErr error) {
	CleanStale(o.Tools)
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	// The owner's PID marks the directory as in use; CleanStale removes only
	// directories whose owner is gone.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, err
	}
	e := &Env{
		Dir:           dir,
		Address:       filepath.Join(dir, "containerd.sock"),
		Namespace:     o.Namespace,
		ConfigDir:     filepath.Join(dir, "config"),
		AdminConfig:   filepath.Join(dir, "config", "palisade.toml"),
		AuditLog:      filepath.Join(dir, "audit.jsonl"),
		RuncRoot:      filepath.Join(dir, "runc"),
		SecretStore:   filepath.Join(dir, "secret-store"),
		SecretMount:   filepath.Join(dir, "secrets"),
		NRISocket:     filepath.Join(dir, "nri", "nri.sock"),
		tools:         o.Tools,
		build:         o.Build,
		cri:           o.CRI,
		registryHosts: o.RegistryHosts,
	}
	if e.Namespace == "" {
		e.Namespace = "palisade-e2e"
	}
	defer func() {
		if retErr != nil {
			_ = e.Close()
		}
	}()
	if err := os.Mkdir(e.ConfigDir, 0o755); err != nil {
		return nil, err
	}
	if _, err := e.WriteAdminConfig(filepath.Base(e.AdminConfig), o.AdminConfig); err != nil {
		return nil, err
	}
	// the built shim reads its list of trusted config directories and its
	// default config (the environment's) here
	if err := os.WriteFile(e.build.ConfigDirsFile, []byte(e.ConfigDir+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := copyFile(e.AdminConfig, e.build.DefaultConfig); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(e.SecretStore, "containerd", e.Namespace), 0o700); err != nil {
		return nil, err
	}
	if e.cri {
		if err := e.prepareCRI(); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "containerd.toml"), []byte(e.containerdConfig()), 0o600); err != nil {
		return nil, err
	}
	if err := e.StartContainerd(); err != nil {
		return nil, err
	}
	if r := e.Ctr("images", "import", e.build.Image); r.Err != nil {
		return nil, fmt.Errorf("harness: import test image: %s", r)
	}
	if e.cri {
		if err := e.startCRI(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// WriteAdminConfig writes an admin config named name into the environment's
// directory and returns its path. It points runc's state, the audit log and
// the secret store and mounts into the environment (as top-level dotted
// keys) and then holds extra, which may add top-level keys and tables.
func (e *Env) WriteAdminConfig(name, extra string) (string, error) {
	body := fmt.Sprintf("version = 1\nrunc.root = %q\naudit.file = %q\nsecrets.store = %q\nsecrets.mount_root = %q\n%s\n",
		e.RuncRoot, e.AuditLog, e.SecretStore, e.SecretMount, extra)
	path := filepath.Join(e.ConfigDir, name)
	return path, os.WriteFile(path, []byte(body), 0o600)
}

// Image is the test image's reference.
func (e *Env) Image() string { return image.Name }

func (e *Env) containerdConfig() string {
	return fmt.Sprintf(`version = 4
root = %q
state = %q
imports = []
%s

[debug]
  level = "info"

[plugins.'io.containerd.server.v1.grpc']
  address = %q
[plugins.'io.containerd.server.v1.ttrpc']
  address = %q
[plugins.'io.containerd.server.v1.debug']
  address = ""
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = %q
  # the admin configs palisade may be pointed at: the environment's own
  env = [%q]
[plugins.'io.containerd.nri.v1.nri']
  socket_path = %q
  plugin_path = %q
  plugin_config_path = %q
`, filepath.Join(e.Dir, "root"), filepath.Join(e.Dir, "state"), e.criConfig(), e.Address, e.Address+".ttrpc", filepath.Join(e.Dir, "s"), config.DirsEnv+"="+e.ConfigDir,
		e.NRISocket, filepath.Join(e.Dir, "nri", "plugins"), filepath.Join(e.Dir, "nri", "conf.d")) + e.criTables()
}

// ContainerdEnv is containerd's own environment: the test's, with the
// tools on PATH. The shims it starts get the shim manager's `env` on top
// (PALISADE_CONFIG_DIRS); what containerd runs itself, such as the runtime
// feature probe `-info`, does not.
func (e *Env) ContainerdEnv() []string {
	return append(os.Environ(), "PATH="+e.path())
}

func (e *Env) path() string {
	dirs := append([]string{e.build.BinDir}, e.tools.pathDirs()...)
	return strings.Join(append(dirs, os.Getenv("PATH")), ":")
}

// StartContainerd starts (or restarts) the private containerd and waits until
// it answers.
func (e *Env) StartContainerd() error {
	logf, err := os.OpenFile(filepath.Join(e.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(e.tools.Containerd, "--config", filepath.Join(e.Dir, "containerd.toml"))
	cmd.Env = e.ContainerdEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("harness: start containerd: %w", err)
	}
	e.cmd = cmd
	if err := os.WriteFile(filepath.Join(e.Dir, "containerd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r := e.Ctr("version"); r.Err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("harness: containerd did not answer within 20s; log:\n%s", e.ContainerdLog())
}

// StopContainerd stops containerd (SIGTERM, then SIGKILL), leaving shims and
// their containers running, as a containerd restart on a node would.
func (e *Env) StopContainerd() error {
	if e.cmd == nil {
		return nil
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = e.cmd.Wait() // killed on purpose: its exit status says nothing
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
	e.cmd = nil
	return nil
}

// ContainerdLog returns containerd's (and the shims') log so far.
func (e *Env) ContainerdLog() string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, "containerd.log"))
	return string(b)
}

// Result is the outcome of a command.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int
	Err      error
}

// String describes the command and its outcome, for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("%s: %v (exit %d)\nstdout: %s\nstderr: %s", strings.Join(r.Args, " "), r.Err, r.ExitCode, r.Stdout, r.Stderr)
}

// Ctr runs ctr against the private containerd in the environment's namespace.
func (e *Env) Ctr(args ...string) Result {
	return e.CtrContext(context.Background(), args...)
}

// CtrContext is Ctr with a context; the command gets at most two minutes.
func (e *Env) CtrContext(ctx context.Context, args ...string) Result {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return e.runTool(ctx, "ctr", e.tools.Ctr, append([]string{"--address", e.Address, "--namespace", e.Namespace}, args...))
}

// runTool runs a container tool with containerd's PATH and collects its
// outcome; name is how the result names it.
func (e *Env) runTool(ctx context.Context, name, bin string, args []string) Result {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PATH="+e.path())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: append([]string{name}, args...), Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.ExitCode = ee.ExitCode()
	}
	return r
}

// RunArgs are the ctr arguments that run a container under palisade with
// the environment's admin config.
func (e *Env) RunArgs() []string {
	return []string{"--runtime", Runtime, "--runtime-config-path", e.AdminConfig}
}

// Run runs `ctr run --rm` of the test image under palisade and waits for it.
// extra holds ctr flags (before the image), cmd the container's command.
func (e *Env) Run(id string, extra []string, cmd ...string) Result {
	args := append([]string{"run", "--rm"}, e.RunArgs()...)
	args = append(args, extra...)
	args = append(args, e.Image(), id)
	return e.Ctr(append(args, cmd...)...)
}

// Close tears the environment down: every task and container, containerd,
// leftover shims and runc containers, every mount under Dir, and Dir.
func (e *Env) Close() error {
	if e.cmd != nil {
		e.removePods()
		e.removeAll()
	}
	_ = e.StopContainerd()
	return teardown(e.Dir, e.tools.Runc)
}

// removeAll kills and deletes every task and container in every namespace.
func (e *Env) removeAll() {
	nss := e.Ctr("namespaces", "list", "-q")
	for _, ns := range strings.Fields(nss.Stdout) {
		sub := *e
		sub.Namespace = ns
		for _, id := range strings.Fields(sub.Ctr("tasks", "list", "-q").Stdout) {
			sub.Ctr("tasks", "kill", "-a", "-s", "SIGKILL", id)
		}
		for _, id := range strings.Fields(sub.Ctr("containers", "list", "-q").Stdout) {
			sub.Ctr("tasks", "delete", "-f", id)
			sub.Ctr("containers", "delete", id)
		}
	}
}

// Rootfs is the test image as a directory.
func (e *Env) Rootfs() string { return e.build.Rootfs }

// Binary returns the path of a project binary built for the environment
// (containerd-shim-palisade-v2, palisade).
func (e *Env) Binary(name string) string { return filepath.Join(e.build.BinDir, name) }

// Command returns a command for a project binary with containerd's PATH, so
// that it finds runc as the shims do.
func (e *Env) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(e.Binary(name), args...)
	cmd.Env = append(os.Environ(), "PATH="+e.path(), config.DirsEnv+"="+e.ConfigDir)
	return cmd
}

// Launch is what the demo, the benchmarks and the end-to-end tests all do
// first: find the tools, build the project and the test image into a
// temporary directory, and start a private containerd. progress, when set,
// hears what is happening. Close the environment with the returned function,
// which also removes the build.
func Launch(progress func(string)) (*Env, func() error, error) {
	return LaunchWith(Options{}, progress)
}

// LaunchWith is Launch with options (CRI, namespace, admin config); it
// fills in the tools and the build itself.
func LaunchWith(o Options, progress func(string)) (*Env, func() error, error) {
	say := func(format string, a ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, a...))
		}
	}
	tools, err := FindTools()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "palisade-build-")
	if err != nil {
		return nil, nil, err
	}
	say("building the palisade shim, palisade-init, the CLI and the test image")
	build, err := BuildAll(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	say("starting a private containerd %s with runc %s and palisade registered as %s", tools.Versions["containerd"], tools.Versions["runc"], Runtime)
	o.Tools, o.Build = tools, build
	env, err := Start(o)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return env, func() error {
		say("tearing down containerd, shims, mounts and state")
		return errors.Join(env.Close(), os.RemoveAll(dir))
	}, nil
}

// Tools returns the container tools the environment runs.
func (e *Env) Tools() *Tools { return e.tools }
