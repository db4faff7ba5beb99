// Package localrun runs one container on a developer's machine without
// containerd: it builds containerd's default spec for a root filesystem and a
// command, puts it through the very pipeline the shim uses (policy, hardening,
// verification, secrets, exec helper), drives runc (create, start, wait,
// delete) with the caller's standard streams, and removes everything it made
// afterwards, also when interrupted.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/launch"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
)

// Namespace is the namespace local containers are named in.
const Namespace = "palisade-run"

// Options describe one local container.
type Options struct {
	Config      *config.Config
	Rootfs      string
	Args        []string
	Env         []string
	Annotations map[string]string
	// Secrets maps secret names to host files holding their values.
	Secrets map[string]string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// Changes receives the pipeline's changes before the container starts.
	Changes func(profile string, changes []audit.Change)
}

// FileSource serves secrets from named host files (palisade run --secret).
type FileSource map[string]string

// Read reads the file given for name, bounded by max.
func (f FileSource) Read(_, name string, max int64) ([]byte, error) {
	p, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("secret %q was not given with --secret: %w", name, errdefs.ErrNotFound)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	if st.Size() > max {
		return nil, fmt.Errorf("secret %q is larger than %d bytes", name, max)
	}
	return os.ReadFile(p)
}

// Run runs the container to completion and returns its exit code.
func Run(ctx context.Context, o Options) (code int, retErr error) {
	root, err := filepath.Abs(o.Rootfs)
	if err != nil {
		return 0, err
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return 0, fmt.Errorf("root filesystem %s is not a directory", o.Rootfs)
	}
	// Signals are caught from the start: an interrupt at any step unwinds
	// through the cleanups below instead of leaving a mount or a container.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	interrupted := func() error {
		select {
		case s := <-sigs:
			return fmt.Errorf("interrupted by %v", s)
		default:
			return nil
		}
	}
	tmp, err := os.MkdirTemp("", "palisade-run-")
	if err != nil {
		return 0, err
	}
	id := filepath.Base(tmp)
	bundleDir, runcRoot := filepath.Join(tmp, "bundle"), filepath.Join(tmp, "runc")
	var cleanups []func() error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			retErr = errors.Join(retErr, cleanups[i]())
		}
		retErr = errors.Join(retErr, os.RemoveAll(tmp))
	}()
	if err := os.MkdirAll(bundleDir, 0o700); err != nil {
		return 0, err
	}

	cfg := *o.Config
	cfg.Secrets.MountRoot = filepath.Join(tmp, "secrets")
	ann := map[string]string{}
	for k, v := range o.Annotations {
		ann[k] = v
	}
	if len(o.Secrets) > 0 {
		cfg.Secrets.Store = tmp // secrets come from --secret files, not a store
		// --secret NAME=FILE and palisade.dev/secrets=NAME[=/target] name
		// the same secrets: each is requested once, with the annotation's
		// target where it gives one.
		var items []string
		named := map[string]bool{}
		if prev := ann[policy.AnnotationSecrets]; prev != "" {
			for _, it := range strings.Split(prev, ",") {
				items = append(items, it)
				name, _, _ := strings.Cut(strings.TrimSpace(it), "=")
				named[name] = true
			}
		}
		var extra []string
		for n := range o.Secrets {
			if !named[n] {
				extra = append(extra, n)
			}
		}
		slices.Sort(extra)
		ann[policy.AnnotationSecrets] = strings.Join(append(items, extra...), ",")
	}

	nsCtx := namespaces.WithNamespace(ctx, Namespace)
	spec, err := oci.GenerateSpec(nsCtx, nil, &containers.Container{ID: id},
		oci.WithRootFSPath(root), oci.WithProcessArgs(o.Args...), oci.WithDefaultPathEnv, oci.WithEnv(o.Env), oci.WithAnnotations(ann))
	if err != nil {
		return 0, fmt.Errorf("generate the spec: %w", err)
	}
	spec.Linux.CgroupsPath = "/" + Namespace + "/" + id

	req, err := harden.Prepare(Namespace, id, &cfg, spec, harden.Node{
		Bundle: bundleDir, LandlockABI: execguard.LandlockABI,
		Rootfs: func(f func(string) error) error { return f(root) },
		LSM:    &lsm.Env{Host: lsm.Detect(), Reserve: true, Load: true},
	})
	if err != nil {
		return 0, err
	}
	plan, changes, err := harden.Harden(req, spec)
	if err != nil {
		return 0, err
	}
	cleanups = append(cleanups, func() error { return harden.ReleaseLSM(req, &plan.Decisions) })
	if o.Changes != nil {
		o.Changes(req.Policy.Profile.Name, changes)
	}
	if err := interrupted(); err != nil {
		return 0, err
	}
	// The container's init is runc create's child; as a subreaper this
	// process inherits it and can wait for its exit status.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("become a subreaper: %w", err)
	}
	rt := &runcDirect{binary: cfg.Runc.BinaryName, root: runcRoot, bundle: bundleDir, id: id, pidFile: filepath.Join(tmp, "init.pid"), o: o}
	launched, err := launch.Launch(ctx, plan, launch.Target{
		Container: req.Container(), Profile: req.Policy.Profile.Name, Bundle: bundleDir, Helper: req.Helper,
		Secrets: FileSource(o.Secrets), RunHelper: runHelper,
	}, rt)
	if err != nil {
		return 0, err
	}
	cleanups = append(cleanups, launched.Release, func() error { return rt.Delete(context.WithoutCancel(ctx)) })
	pid := int(launched.Pid)
	runc := rt.command
	if err := interrupted(); err != nil {
		return 0, err
	}
	if out, err := runc("start", id).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("runc start: %w: %s", err, out)
	}
	type result struct {
		ws  unix.WaitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for {
			_, r.err = unix.Wait4(pid, &r.ws, 0, nil)
			if !errors.Is(r.err, unix.EINTR) {
				break
			}
		}
		done <- r
	}()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return 0, fmt.Errorf("wait for the container: %w", r.err)
			}
			if r.ws.Signaled() {
				return 128 + int(r.ws.Signal()), nil
			}
			return r.ws.ExitStatus(), nil
		case s := <-sigs:
			// Ctrl-C: stop the container; the cleanups remove the rest.
			_ = unix.Kill(pid, unix.SIGKILL)
			_ = s
		}
	}
}

// runcDirect is the launcher's runtime for palisade run: runc itself, with
// the caller's standard streams.
type runcDirect struct {
	binary, root, bundle, id, pidFile string
	o                                 Options
}

func (r *runcDirect) command(args ...string) *exec.Cmd {
	return exec.Command(r.binary, append([]string{"--root", r.root}, args...)...)
}

func (r *runcDirect) Create(context.Context) (uint32, error) {
	create := r.command("create", "--bundle", r.bundle, "--pid-file", r.pidFile, r.id)
	create.Stdin, create.Stdout, create.Stderr = r.o.Stdin, r.o.Stdout, r.o.Stderr
	if err := create.Run(); err != nil {
		return 0, fmt.Errorf("runc create: %w", err)
	}
	b, err := os.ReadFile(r.pidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("runc pid file: %w", err)
	}
	return uint32(pid), nil
}

func (r *runcDirect) Delete(context.Context) error {
	out, err := r.command("delete", "--force", r.id).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "does not exist") {
		return fmt.Errorf("runc delete: %w: %s", err, out)
	}
	return nil
}

// runHelper runs a palisade-init command: its combined output, unless the
// caller collects the output itself.
func runHelper(c *exec.Cmd) ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, c.Run()
	}
	return c.CombinedOutput()
}
