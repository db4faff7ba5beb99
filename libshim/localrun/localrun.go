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
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/libshim/secrets"
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
		var names []string
		for n := range o.Secrets {
			names = append(names, n)
		}
		if prev := ann[policy.AnnotationSecrets]; prev != "" {
			names = append(names, prev)
		}
		ann[policy.AnnotationSecrets] = strings.Join(names, ",")
	}

	nsCtx := namespaces.WithNamespace(ctx, Namespace)
	spec, err := oci.GenerateSpec(nsCtx, nil, &containers.Container{ID: id},
		oci.WithRootFSPath(root), oci.WithProcessArgs(o.Args...), oci.WithEnv(o.Env), oci.WithAnnotations(ann))
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
	cleanups = append(cleanups, func() error { return harden.ReleaseLSM(req) })
	changes, err := harden.Spec(req, spec)
	if err != nil {
		return 0, err
	}
	if o.Changes != nil {
		o.Changes(req.Policy.Profile.Name, changes)
	}
	if plan := req.SecretPlan; plan != nil {
		if err := secrets.Mount(plan, FileSource(o.Secrets)); err != nil {
			return 0, err
		}
		cleanups = append(cleanups, func() error { return secrets.Release(plan.Dir) })
	}
	if err := bundle.WriteSpec(bundleDir, spec); err != nil {
		return 0, err
	}
	if err := interrupted(); err != nil {
		return 0, err
	}

	// The container's init is runc create's child; as a subreaper this
	// process inherits it and can wait for its exit status.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("become a subreaper: %w", err)
	}
	runc := func(args ...string) *exec.Cmd {
		return exec.Command(cfg.Runc.BinaryName, append([]string{"--root", runcRoot}, args...)...)
	}
	pidFile := filepath.Join(tmp, "init.pid")
	create := runc("create", "--bundle", bundleDir, "--pid-file", pidFile, id)
	create.Stdin, create.Stdout, create.Stderr = o.Stdin, o.Stdout, o.Stderr
	cleanups = append(cleanups, func() error {
		out, err := runc("delete", "--force", id).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "does not exist") {
			return fmt.Errorf("runc delete: %w: %s", err, out)
		}
		return nil
	})
	if err := create.Run(); err != nil {
		return 0, fmt.Errorf("runc create: %w", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("runc pid file: %w", err)
	}
	if ex := req.Policy.Exec; ex != nil && ex.Enforced {
		if out, err := exec.Command(req.Helper, "memfd-noexec", strconv.Itoa(pid)).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("make memfds non-executable: %w: %s", err, out)
		}
	}
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
