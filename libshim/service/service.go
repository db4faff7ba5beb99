// Package service is palisade's containerd shim: containerd's own runc shim
// (manager and task service) with palisade's strict layer in front of it.
//
// The task service wraps the stock runc task service. Create reads the
// bundle's spec, runs it through the hardening pipeline, writes it back and
// only then delegates; Exec, Update, Checkpoint and Delete are intercepted
// too; every other call passes straight through. Runtime options from
// containerd are translated into runc options from the admin config before
// the stock code sees them (it would panic on runtimeoptions.v1.Options).
package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/sys/reaper"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/libshim/secrets"
)

// maxProcessSize bounds an exec request's process spec.
const maxProcessSize = 1 << 20

// container is what the shim remembers about a container it created.
type container struct {
	req         harden.Request
	annotations map[string]string
	secretsDir  string // the host mount of its secrets, "" without
}

// Service is the palisade task service.
type Service struct {
	taskAPI.TTRPCTaskService // the stock runc task service; un-overridden calls pass through

	// addresses are containerd's sockets: no container may bind-mount them.
	addresses []string
	// landlockABI detects the kernel's Landlock support.
	landlockABI func() (int, error)
	// lsm is the host's LSM support (lsm.go).
	lsm *lsm.Env

	mu         sync.Mutex
	containers map[string]*container
}

var _ taskAPI.TTRPCTaskService = (*Service)(nil)

// New wraps the runc task service. addresses are containerd's gRPC and
// TTRPC socket addresses.
func New(inner taskAPI.TTRPCTaskService, addresses ...string) *Service {
	return &Service{TTRPCTaskService: inner, addresses: addresses, landlockABI: execguard.LandlockABI, lsm: lsmEnv(), containers: map[string]*container{}}
}

// RegisterTTRPC registers the wrapper itself, not the inner service: were the
// inner one registered, every override would be silently bypassed.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Create hardens the bundle's spec and creates the container through runc.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	rec := &audit.Record{Event: audit.EventCreate, Namespace: ns, Container: r.ID}

	cfg, err := config.FromRuntimeOptions(r.Options)
	if err != nil {
		err = fmt.Errorf("palisade: container %s/%s refused: %w", ns, r.ID, err)
		return nil, s.refused(ctx, nil, rec, err)
	}
	rec.Config = cfg.Source
	if (r.Checkpoint != "" || r.ParentCheckpoint != "") && !cfg.AllowRestore {
		return nil, s.refused(ctx, cfg, rec, &policy.Refusal{
			Container: ns + "/" + r.ID, Rule: "restore", Kind: errdefs.ErrPermissionDenied,
			Reason: "restoring from a checkpoint is not allowed: CRIU restores credentials, capabilities and seccomp state from the image, not from the hardened spec",
			Fix:    "set allow_restore = true in " + cfg.Source + " if checkpoints on this node are trusted",
		})
	}
	spec, err := bundle.ReadSpec(r.Bundle)
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, fmt.Errorf("palisade: container %s/%s refused: %w", ns, r.ID, err))
	}
	rec.SetCRI(spec.Annotations)
	req, err := harden.Prepare(ns, r.ID, cfg, spec, harden.Node{
		Bundle: r.Bundle, Addresses: s.addresses, Rootfs: rootfsAccess(ctx, r, spec), LandlockABI: s.landlockABI, LSM: s.lsm,
	})
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	created := false
	defer func() {
		if !created {
			releaseLSM(ctx, req) // a refused container keeps no MCS pair
		}
	}()
	rec.Profile = req.Policy.Profile.Name

	changes, err := harden.Spec(req, spec)
	rec.Changes = changes
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	labelRootfs(r.Rootfs, req)
	if plan := req.SecretPlan; plan != nil {
		if err := secrets.Mount(plan, secrets.DirSource{Root: cfg.Secrets.Store}); err != nil {
			return nil, s.refused(ctx, cfg, rec, &policy.Refusal{
				Container: req.Container(), Rule: "secrets", Profile: req.Policy.Profile.Name, Kind: errdefs.ErrFailedPrecondition,
				Reason: "cannot deliver the container's secrets: " + err.Error(),
				Fix:    "check that each secret exists in the store under scope " + strconv.Quote(plan.Scope) + " as a plain file within the size limits",
			})
		}
		defer func() {
			if !created {
				if err := secrets.Release(plan.Dir); err != nil {
					log.G(ctx).WithError(err).Error("palisade: cannot remove the secrets of a refused container")
				}
			}
		}()
	}
	if err := bundle.WriteSpec(r.Bundle, spec); err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	runcOpts, err := cfg.RuncOptionsAny()
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, fmt.Errorf("palisade: encode runc options: %w", err))
	}
	// The decision is recorded before runc runs: a container must never run
	// without its audit record.
	if err := s.allowed(ctx, cfg, rec); err != nil {
		return nil, err
	}

	r.Options = runcOpts
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		log.G(ctx).WithError(err).WithField("container", req.Container()).Warn("palisade: runc failed to create the hardened container")
		return nil, err
	}
	if ex := req.Policy.Exec; ex != nil && ex.Enforced {
		// Landlock does not mediate memfds: make them non-executable in the
		// container's PID namespace before its process starts.
		out, err := runReaped(exec.CommandContext(ctx, req.Helper, "memfd-noexec", strconv.Itoa(int(resp.Pid))))
		if err != nil {
			_, derr := s.TTRPCTaskService.Delete(ctx, &taskAPI.DeleteRequest{ID: r.ID})
			rec := &audit.Record{Event: audit.EventCreate, Namespace: ns, Container: r.ID, Config: cfg.Source, Profile: req.Policy.Profile.Name}
			rec.SetCRI(spec.Annotations)
			return nil, s.refused(ctx, cfg, rec, errors.Join(&policy.Refusal{
				Container: req.Container(), Rule: "exec-allowlist", Profile: req.Policy.Profile.Name, Kind: errdefs.ErrFailedPrecondition,
				Reason: fmt.Sprintf("cannot make memfds non-executable (vm.memfd_noexec): %v: %s", err, strings.TrimSpace(string(out))),
				Fix:    "run on a kernel with vm.memfd_noexec (Linux 6.3 or later)",
			}, derr))
		}
	}
	created = true
	c := &container{req: *req, annotations: spec.Annotations}
	if req.SecretPlan != nil {
		c.secretsDir = req.SecretPlan.Dir
		c.req.SecretNames = req.SecretPlan.Names()
		c.req.SecretPlan = nil // moved values must not outlive the mount
	}
	s.mu.Lock()
	s.containers[r.ID] = c
	s.mu.Unlock()
	return resp, nil
}

// Exec hardens the exec process with the pipeline's process steps.
func (s *Service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	c, err := s.known(r.ID)
	if err != nil {
		return nil, err
	}
	rec := s.record(audit.EventExec, c)
	rec.ExecID = r.ExecID
	cfg := c.req.Config
	if r.Spec == nil || len(r.Spec.GetValue()) > maxProcessSize {
		return nil, s.refused(ctx, cfg, rec, fmt.Errorf("palisade: container %s: exec %s: missing or oversized process spec: %w",
			c.req.Container(), r.ExecID, errdefs.ErrInvalidArgument))
	}
	var p specs.Process
	if err := json.Unmarshal(r.Spec.GetValue(), &p); err != nil {
		return nil, s.refused(ctx, cfg, rec, fmt.Errorf("palisade: container %s: exec %s: invalid process spec: %w: %w",
			c.req.Container(), r.ExecID, err, errdefs.ErrInvalidArgument))
	}
	req := c.req
	req.Rootfs = s.runningRootfs(ctx, r.ID)
	changes, err := harden.Process(&req, &p)
	rec.Changes = changes
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	data, err := json.Marshal(&p)
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, fmt.Errorf("palisade: encode exec process: %w", err))
	}
	if err := s.allowed(ctx, cfg, rec); err != nil {
		return nil, err
	}
	r.Spec = &anypb.Any{TypeUrl: r.Spec.GetTypeUrl(), Value: data}
	return s.TTRPCTaskService.Exec(ctx, r)
}

// Update checks new resources against the container's policy: the stock
// shim would apply anything, e.g. raise the PID limit or lift it entirely.
func (s *Service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*emptypb.Empty, error) {
	c, err := s.known(r.ID)
	if err != nil {
		return nil, err
	}
	rec := s.record(audit.EventUpdate, c)
	if r.Resources != nil {
		if len(r.Resources.GetValue()) > maxProcessSize {
			return nil, s.refused(ctx, c.req.Config, rec, fmt.Errorf("palisade: container %s: update: oversized resources: %w", c.req.Container(), errdefs.ErrInvalidArgument))
		}
		var res specs.LinuxResources
		if err := json.Unmarshal(r.Resources.GetValue(), &res); err != nil {
			return nil, s.refused(ctx, c.req.Config, rec, fmt.Errorf("palisade: container %s: update: invalid resources: %w: %w", c.req.Container(), err, errdefs.ErrInvalidArgument))
		}
		changes, err := harden.Resources(&c.req, &res)
		rec.Changes = changes
		if err != nil {
			return nil, s.refused(ctx, c.req.Config, rec, err)
		}
	}
	if err := s.allowed(ctx, c.req.Config, rec); err != nil {
		return nil, err
	}
	return s.TTRPCTaskService.Update(ctx, r)
}

// Checkpoint is audited; a restore goes through Create and so through the
// whole pipeline again.
func (s *Service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*emptypb.Empty, error) {
	c, err := s.known(r.ID)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(ctx, c.req.Config, s.record(audit.EventCheckpoint, c)); err != nil {
		return nil, err
	}
	return s.TTRPCTaskService.Checkpoint(ctx, r)
}

// Delete delegates, then forgets the container and audits its removal.
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err != nil || r.ExecID != "" {
		return resp, err
	}
	s.mu.Lock()
	c, ok := s.containers[r.ID]
	delete(s.containers, r.ID)
	s.mu.Unlock()
	if ok && c.secretsDir != "" {
		if err := secrets.Release(c.secretsDir); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.req.Container()).Error("palisade: cannot remove the container's secrets")
		}
	}
	if ok {
		releaseLSM(ctx, &c.req)
		rec := s.record(audit.EventDelete, c)
		rec.Result = audit.ResultAllowed
		if aerr := s.audit(ctx, c.req.Config, rec); aerr != nil {
			log.G(ctx).WithError(aerr).WithField("container", c.req.Container()).Error("palisade: cannot write the audit record of a delete")
		}
	}
	return resp, nil
}

// known returns palisade's record of a container. Requests for containers
// palisade did not create (and harden) are refused, never passed to runc.
func (s *Service) known(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, errgrpc.ToGRPC(fmt.Errorf("palisade: no container %q was created through palisade in this shim: %w", id, errdefs.ErrNotFound))
	}
	return c, nil
}

// Start starts a container's init or an exec process, only for containers
// palisade created.
func (s *Service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	if _, err := s.known(r.ID); err != nil {
		return nil, err
	}
	return s.TTRPCTaskService.Start(ctx, r)
}

func (s *Service) record(ev audit.Event, c *container) *audit.Record {
	rec := &audit.Record{Event: ev, Namespace: c.req.Namespace, Container: c.req.ID, Config: c.req.Config.Source, Profile: c.req.Policy.Profile.Name}
	rec.SetCRI(c.annotations)
	return rec
}

// sinks returns where records go under cfg: always the shim log, and the
// audit file when the config names one. With no usable config (it failed to
// load) only the log is known.
func sinks(cfg *config.Config) audit.Sink {
	m := audit.Multi{audit.LogSink{}}
	if cfg != nil && cfg.Audit.File != "" {
		m = append(m, &audit.FileSink{Path: cfg.Audit.File})
	}
	return m
}

func (s *Service) audit(ctx context.Context, cfg *config.Config, rec *audit.Record) error {
	rec.Time = time.Now().UTC()
	return sinks(cfg).Write(ctx, rec)
}

// allowed records that the operation may proceed. An operation never runs
// without its record: if the record cannot be written, it is refused.
func (s *Service) allowed(ctx context.Context, cfg *config.Config, rec *audit.Record) error {
	rec.Result = audit.ResultAllowed
	if err := s.audit(ctx, cfg, rec); err != nil {
		what := string(rec.Event)
		if rec.ExecID != "" {
			what += " " + rec.ExecID
		}
		return errgrpc.ToGRPC(fmt.Errorf("palisade: container %s/%s: %s refused: cannot write its audit record (check audit.file in %s): %w",
			rec.Namespace, rec.Container, what, rec.Config, err))
	}
	return nil
}

// refused records a refusal and returns the error in ttrpc form.
func (s *Service) refused(ctx context.Context, cfg *config.Config, rec *audit.Record, err error) error {
	rec.Result = audit.ResultRefused
	rec.Reason = err.Error()
	if aerr := s.audit(ctx, cfg, rec); aerr != nil {
		log.G(ctx).WithError(aerr).Error("palisade: cannot write the audit record of a refusal")
	}
	return errgrpc.ToGRPC(err)
}

// rootfsAccess gives the pipeline a read-only view of the container's root
// filesystem before runc has mounted it: the snapshot's mounts on a
// temporary read-only mount point, or the spec's root directory when the
// client mounted it itself.
func rootfsAccess(ctx context.Context, r *taskAPI.CreateTaskRequest, spec *specs.Spec) func(func(string) error) error {
	if len(r.Rootfs) > 0 {
		mounts := mount.FromProto(r.Rootfs)
		return func(f func(string) error) error { return mount.WithReadonlyTempMount(ctx, mounts, f) }
	}
	root := spec.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(r.Bundle, root)
	}
	return func(f func(string) error) error { return f(root) }
}

// runningRootfs gives the pipeline the root of a running container, as its
// init process sees it (with the container's own mounts).
func (s *Service) runningRootfs(ctx context.Context, id string) func(func(string) error) error {
	return func(f func(string) error) error {
		st, err := s.TTRPCTaskService.State(ctx, &taskAPI.StateRequest{ID: id}) //nolint:staticcheck // the runc service, named on purpose
		if err != nil {
			return fmt.Errorf("find the container's init process: %w", err)
		}
		if st.Pid == 0 {
			return fmt.Errorf("the container is not running")
		}
		return f(fmt.Sprintf("/proc/%d/root", st.Pid))
	}
}

// runReaped runs a command in the shim. The shim is a subreaper whose
// reaper collects every child, so exec.Cmd's own Wait would race it (and
// fail with ECHILD); the reaper's monitor hands the exit status over instead.
func runReaped(cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ec, err := reaper.Default.Start(cmd)
	if err != nil {
		return nil, err
	}
	status, err := reaper.Default.Wait(cmd, ec)
	if err == nil && status != 0 {
		err = fmt.Errorf("%s exited with status %d", cmd.Path, status)
	}
	return out.Bytes(), err
}
