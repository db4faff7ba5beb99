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
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/launch"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/libshim/seccompagent"
	"palisade.dev/palisade/libshim/secrets"
	"palisade.dev/palisade/profiles"
)

// maxProcessSize bounds an exec request's process spec.
const maxProcessSize = 1 << 20

// container is what the shim remembers about a container it created.
type container struct {
	req         harden.Request
	annotations map[string]string
	secretsDir  string              // the host mount of its secrets, "" without
	pid         uint32              // its init process on the host
	agent       *seccompagent.Agent // alert mode's seccomp agent, nil without
	seccomp     *launch.Seccomp     // how its filter is loaded; exec processes follow
}

// Service is the palisade task service.
type Service struct {
	taskAPI.TTRPCTaskService // the stock runc task service; un-overridden calls pass through

	// addresses are containerd's sockets: no container may bind-mount them.
	addresses []string
	// socketDir is the directory of the shim sockets.
	socketDir string
	// node is containerd's layout, learned from containerd.
	node layout
	// landlockABI detects the kernel's Landlock support.
	landlockABI func() (int, error)
	// lsm is the host's LSM support (lsm.go), detected in the background
	// from the shim's start: reading it is off the shim's start-up path.
	lsm func() *lsm.Env

	mu         sync.Mutex
	containers map[string]*container
}

var _ taskAPI.TTRPCTaskService = (*Service)(nil)

// New wraps the runc task service. addresses are containerd's gRPC and
// TTRPC socket addresses.
func New(inner taskAPI.TTRPCTaskService, addresses ...string) *Service {
	s := &Service{TTRPCTaskService: inner, addresses: addresses, socketDir: socketDir(), node: layout{handoff: takeHandoff()},
		landlockABI: execguard.LandlockABI, lsm: sync.OnceValue(lsmEnv), containers: map[string]*container{}}
	go func() {
		defer func() { _ = recover() }() // the first Create meets a panic again, and refuses
		s.lsm()
	}()
	return s
}

// RegisterTTRPC registers the wrapper itself, not the inner service: were the
// inner one registered, every override would be silently bypassed.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Create hardens the bundle's spec and creates the container through runc:
// admit the request, resolve the container's policy on this node, run the
// pipeline, and launch the plan.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	gc := holdGC() // until runc starts (gc.go)
	defer gc.release()
	rec := &audit.Record{Event: audit.EventCreate, Namespace: ns, Container: r.ID}
	cfg, spec, err := s.admit(ns, r, rec)
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	req, err := s.prepare(ctx, ns, r, cfg, spec)
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	rec.Profile = req.Policy.Profile.Name
	if req.Policy.Alert {
		rec.Mode = profiles.ModeAlert
	}
	plan, changes, err := harden.Harden(req, spec)
	rec.Image = req.ImageSeen()
	if req.Policy.Alert {
		rec.Image = req.ImageRef()
	}
	if rec.Changes = changes; err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	agent, err := s.startAgent(ctx, cfg, plan, *rec)
	if err != nil {
		releaseLSM(ctx, req, &plan.Decisions)
		return nil, s.refused(ctx, cfg, rec, policy.Failed(req.Container(), "seccomp", rec.Profile,
			"cannot start the seccomp agent alert mode records system calls with: "+err.Error(), "check that the shim can create "+seccompagent.Dir))
	}
	labelRootfs(r.Rootfs, plan.Labels)
	rt := &runcCreate{s: s, r: r, cfg: cfg, rec: rec, gc: gc, createHooks: hasCreateHooks(plan.Spec)}
	launched, err := launch.Launch(ctx, plan, launch.Target{
		Container: req.Container(), Profile: rec.Profile, Bundle: r.Bundle, Helper: req.Helper,
		Secrets: secrets.DirSource{Root: cfg.Secrets.Store}, RunHelper: runReaped,
	}, rt)
	if err != nil {
		if agent != nil {
			agent.Close()
		}
		releaseLSM(ctx, req, &plan.Decisions) // a refused container keeps no MCS pair
		if rt.resp == nil && !rt.recorded {
			return nil, s.refused(ctx, cfg, rec, err)
		}
		if rt.resp == nil {
			return nil, err // runc's own error, after the container's allowed record
		}
		again := &audit.Record{Event: audit.EventCreate, Namespace: ns, Container: r.ID, Config: cfg.Source, Profile: rec.Profile}
		again.SetCRI(spec.Annotations, cfg.Node.CRINamespaces)
		return nil, s.refused(ctx, cfg, again, err)
	}
	log.G(ctx).WithField("container", req.Container()).Debug("palisade: " + launched.Seccomp.Note())
	req.Created = plan.ForExec()
	s.mu.Lock()
	s.containers[r.ID] = &container{req: *req, annotations: spec.Annotations, secretsDir: launched.SecretsDir, pid: launched.Pid, agent: agent, seccomp: launched.Seccomp}
	s.mu.Unlock()
	return rt.resp, nil
}

// admit loads the admin config the request names and applies the task-API
// rules (fields, stdio, restore) before the bundle's spec is read.
func (s *Service) admit(ns string, r *taskAPI.CreateTaskRequest, rec *audit.Record) (*config.Config, *specs.Spec, error) {
	name := ns + "/" + r.ID
	cfg, err := config.FromRuntimeOptions(r.Options)
	if err != nil {
		return nil, nil, fmt.Errorf("palisade: container %s refused: %w", name, err)
	}
	rec.Config = cfg.Source
	if err := checkFields(name, "create", r); err != nil {
		return cfg, nil, err
	}
	if why, fix := stdioProblem(cfg, stdio{stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, id: r.ID, container: r.ID, state: harden.ContainerdState(r.Bundle)}); why != "" {
		return cfg, nil, policy.Denied(name, "stdio", "", why, fix)
	}
	if (r.Checkpoint != "" || r.ParentCheckpoint != "") && !cfg.AllowRestore {
		return cfg, nil, policy.Denied(name, "restore", "",
			"restoring from a checkpoint is not allowed: CRIU restores credentials, capabilities and seccomp state from the image, not from the hardened spec",
			"set allow_restore = true in "+cfg.Source+" if checkpoints on this node are trusted")
	}
	spec, err := bundle.ReadSpec(r.Bundle)
	if err != nil {
		return cfg, nil, fmt.Errorf("palisade: container %s refused: %w", name, err)
	}
	rec.SetCRI(spec.Annotations, cfg.Node.CRINamespaces)
	return cfg, spec, nil
}

// prepare learns what the pipeline must know of this node and resolves the
// container's policy.
func (s *Service) prepare(ctx context.Context, ns string, r *taskAPI.CreateTaskRequest, cfg *config.Config, spec *specs.Spec) (*harden.Request, error) {
	node := harden.Node{
		Bundle: r.Bundle, Addresses: s.addresses, SocketDir: s.socketDir, RootfsMounts: rootfsMounts(r),
		Joinable: s.joinable(ns, r.ID, spec.Annotations), Rootfs: rootfsAccess(ctx, r, spec), LandlockABI: s.landlockABI, LSM: s.lsm(),
		Image:        s.imageOf(ctx, cfg, ns, r.ID, spec.Annotations),
		SeccompAgent: seccompagent.SocketPath(r.Bundle),
	}
	var err error
	if node.ContainerdRoot, node.SnapshotterRoots, node.ContainerdDirs, err = s.node.learn(ctx, s.addresses); err != nil {
		return nil, policy.Failed(ns+"/"+r.ID, "node-layout", "",
			"cannot learn containerd's directories, which no container may reach: "+err.Error(),
			"check that containerd's gRPC socket answers the shim")
	}
	return harden.Prepare(ns, r.ID, cfg, spec, node)
}

// runcCreate is the launcher's runtime in the shim: containerd's runc task
// service, with the admin's runc options. The container's audit record is
// written first: a container never runs without it.
type runcCreate struct {
	s        *Service
	r        *taskAPI.CreateTaskRequest
	cfg      *config.Config
	rec      *audit.Record
	recorded bool
	resp     *taskAPI.CreateTaskResponse
	gc       *gcHold // released when runc starts
	// createHooks: the spec has hooks runc runs at create
	createHooks bool
}

func (c *runcCreate) Create(ctx context.Context) (uint32, error) {
	opts, err := c.cfg.RuncOptionsAny()
	if err != nil {
		return 0, fmt.Errorf("palisade: encode runc options: %w", err)
	}
	c.r.Options = opts
	c.gc.release()
	// The record is written while runc creates the container: a created
	// container runs nothing of its own until containerd starts it, which
	// it does only after this Create has answered, and this Create answers
	// only once the record is written — or deletes what runc created and
	// refuses. The record's first write in a shim (its encoder, the log,
	// opening the file) then costs the container's start nothing. Hooks
	// that runc runs while it creates the container (an admin's, on the
	// host) would run before the record: with any, it is written first.
	var recorded <-chan error
	if c.createHooks {
		if err := c.s.allowed(ctx, c.cfg, c.rec); err != nil {
			return 0, err
		}
		done := make(chan error, 1)
		done <- nil
		recorded = done
	} else {
		recorded = inBackground("writing the audit record", func() error { return c.s.allowed(ctx, c.cfg, c.rec) })
	}
	resp, err := c.s.TTRPCTaskService.Create(ctx, c.r)
	if aerr := <-recorded; aerr != nil {
		if err == nil {
			c.resp = resp
			// even when the client has given up: runc's commands die with
			// a cancelled context, and the container would stay created
			if derr := c.Delete(context.WithoutCancel(ctx)); derr != nil {
				log.G(ctx).WithError(derr).WithField("container", c.rec.Namespace+"/"+c.r.ID).Error("palisade: cannot delete a container whose audit record could not be written")
			}
			c.resp = nil
		}
		return 0, aerr
	}
	c.recorded = true
	if err != nil {
		log.G(ctx).WithError(err).WithField("container", c.rec.Namespace+"/"+c.r.ID).Warn("palisade: runc failed to create the hardened container")
		return 0, err
	}
	c.resp = resp
	return resp.Pid, nil
}

// hasCreateHooks reports whether runc runs hooks of spec while it creates
// the container (prestart, createRuntime, createContainer).
func hasCreateHooks(spec *specs.Spec) bool {
	h := spec.Hooks
	return h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer) > 0 //nolint:staticcheck // prestart is deprecated, and still run by runc
}

// inBackground runs f on a goroutine of its own and delivers its error. A
// panic in f, out of reach of RecoverInterceptor there, is an error too,
// never the end of the shim.
func inBackground(what string, f func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("palisade: %s failed: recovered from a panic: %v: %w", what, p, errdefs.ErrInternal)
			}
		}()
		done <- f()
	}()
	return done
}

func (c *runcCreate) Delete(ctx context.Context) error {
	// the created init waits for start; killed first, its delete does not
	// wait for it in vain
	_, _ = c.s.TTRPCTaskService.Kill(ctx, &taskAPI.KillRequest{ID: c.r.ID, Signal: uint32(unix.SIGKILL)}) //nolint:staticcheck // the runc service, named on purpose
	_, err := c.s.TTRPCTaskService.Delete(ctx, &taskAPI.DeleteRequest{ID: c.r.ID})
	return err
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
	if err := checkFields(c.req.Container(), "exec", r); err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	if why, fix := stdioProblem(cfg, stdio{stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, id: r.ExecID, container: r.ID, state: harden.ContainerdState(c.req.Bundle), exec: true}); why != "" {
		return nil, s.refused(ctx, cfg, rec, policy.Denied(c.req.Container(), "stdio", c.req.Policy.Profile.Name, "exec "+r.ExecID+": "+why, fix))
	}
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
	hardened, changes, err := harden.Process(&req, &p)
	rec.Changes = changes
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, err)
	}
	if err := launch.WrapExec(c.seccomp, hardened); err != nil {
		return nil, s.refused(ctx, cfg, rec, policy.Denied(c.req.Container(), "seccomp", c.req.Policy.Profile.Name, "exec "+r.ExecID+": "+err.Error(),
			"exec the process with the container's own capabilities, user and labels"))
	}
	data, err := json.Marshal(hardened)
	if err != nil {
		return nil, s.refused(ctx, cfg, rec, fmt.Errorf("palisade: encode exec process: %w", err))
	}
	if err := s.allowed(ctx, cfg, rec); err != nil {
		return nil, err
	}
	r.Spec = &anypb.Any{TypeUrl: r.Spec.GetTypeUrl(), Value: data}
	defer scheduleFree()
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
	if err := checkFields(c.req.Container(), "update", r); err != nil {
		return nil, s.refused(ctx, c.req.Config, rec, err)
	}
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
	rec := s.record(audit.EventCheckpoint, c)
	if err := checkFields(c.req.Container(), "checkpoint", r); err != nil {
		return nil, s.refused(ctx, c.req.Config, rec, err)
	}
	if !c.req.Config.AllowCheckpoint {
		return nil, s.refused(ctx, c.req.Config, rec, policy.Denied(c.req.Container(), "checkpoint", c.req.Policy.Profile.Name,
			"checkpoints are not allowed: the shim would write the container's memory and state as root to "+strconv.Quote(r.Path),
			"set allow_checkpoint = true in "+c.req.Config.Source+" if checkpoints on this node are wanted"))
	}
	if err := s.allowed(ctx, c.req.Config, rec); err != nil {
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
	if ok && c.agent != nil {
		c.agent.Close() // its last records, before the delete's
	}
	if ok && c.secretsDir != "" {
		if err := secrets.Release(c.secretsDir); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.req.Container()).Error("palisade: cannot remove the container's secrets")
		}
	}
	if ok {
		releaseLSM(ctx, &c.req, c.req.Created)
		rec := s.record(audit.EventDelete, c)
		rec.Result = audit.ResultAllowed
		if resp != nil && resp.ExitedAt != nil {
			rec.Exit = &audit.Exit{Status: resp.ExitStatus, At: resp.ExitedAt.AsTime().UTC()}
		}
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
	if c.req.Policy.Alert {
		rec.Mode = profiles.ModeAlert
	}
	rec.SetCRI(c.annotations, c.req.Config.Node.CRINamespaces)
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
	rec.Time, rec.Schema = time.Now().UTC(), audit.Schema
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

// rootfsMounts are the task's rootfs mounts as the pipeline judges them.
func rootfsMounts(r *taskAPI.CreateTaskRequest) []harden.RootfsMount {
	out := make([]harden.RootfsMount, 0, len(r.Rootfs))
	for _, m := range r.Rootfs {
		out = append(out, harden.RootfsMount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	return out
}

// joinable returns the namespaces a container of a CRI pod may join: those
// of its pod's sandbox, which this shim created (containerd runs a pod's
// containers in one shim). A sandbox itself, and any container outside a
// CRI namespace, may join none.
func (s *Service) joinable(ns, id string, annotations map[string]string) func(specs.LinuxNamespaceType) []string {
	sid := annotations["io.kubernetes.cri.sandbox-id"]
	if sid == "" || sid == id {
		return nil
	}
	return func(typ specs.LinuxNamespaceType) []string {
		s.mu.Lock()
		sb, ok := s.containers[sid]
		s.mu.Unlock()
		if !ok || sb.req.Namespace != ns || sb.pid == 0 || !slices.Contains(sb.req.Config.Node.CRINamespaces, ns) {
			return nil
		}
		file := map[specs.LinuxNamespaceType]string{
			specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc",
			specs.UTSNamespace: "uts", specs.UserNamespace: "user",
		}[typ]
		if file == "" {
			return nil
		}
		return []string{fmt.Sprintf("/proc/%d/ns/%s", sb.pid, file)}
	}
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
	if cmd.Stdout == nil && cmd.Stderr == nil {
		cmd.Stdout, cmd.Stderr = &out, &out
	}
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
