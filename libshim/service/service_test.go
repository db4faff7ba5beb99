package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/config"
)

// recorder stands in for the runc task service: it records what palisade
// delegates. It is the seam these unit tests observe; the end-to-end tests in
// testing/e2e run the real runc shim.
type recorder struct {
	taskAPI.TTRPCTaskService
	created *taskAPI.CreateTaskRequest
	execed  *taskAPI.ExecProcessRequest
}

func (r *recorder) Create(_ context.Context, req *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	r.created = req
	return &taskAPI.CreateTaskResponse{Pid: 42}, nil
}

func (r *recorder) Exec(_ context.Context, req *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	r.execed = req
	return &emptypb.Empty{}, nil
}

func (r *recorder) State(context.Context, *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	panic("boom in State")
}

func (r *recorder) Connect(context.Context, *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	return &taskAPI.ConnectResponse{ShimPid: 7}, nil
}

func setup(t testing.TB, adminConfig string) (ctx context.Context, dir, cfgPath, auditPath string) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv(config.DirsEnv, dir)
	auditPath = filepath.Join(dir, "audit.jsonl")
	cfgPath = filepath.Join(dir, "palisade.toml")
	if adminConfig == "" {
		adminConfig = "[runc]\nroot = \"/run/palisade-test\"\n[audit]\nfile = \"" + auditPath + "\"\n"
	}
	if err := os.WriteFile(cfgPath, []byte(adminConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteSpec(dir, &specs.Spec{Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"/bin/sh"}}, Linux: &specs.Linux{
		Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
	}}); err != nil {
		t.Fatal(err)
	}
	// The shim log goes nowhere in tests: the records are read from the audit file.
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	ctx = log.WithLogger(context.Background(), logrus.NewEntry(logger))
	return namespaces.WithNamespace(ctx, "ns1"), dir, cfgPath, auditPath
}

func options(t testing.TB, path string) *anypb.Any {
	a, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCreateHardensTranslatesAndAudits(t *testing.T) {
	ctx, dir, cfgPath, auditPath := setup(t, "")
	inner := &recorder{}
	s := New(inner)
	if _, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: dir, Options: options(t, cfgPath)}); err != nil {
		t.Fatal(err)
	}
	if inner.created == nil {
		t.Fatal("create was not delegated")
	}
	v, err := typeurl.UnmarshalAny(inner.created.Options)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := v.(*runcoptions.Options); !ok || o.Root != "/run/palisade-test" || o.BinaryName != "runc" {
		t.Errorf("delegated options = %T %+v, want runc options from the admin config", v, v)
	}
	spec, err := bundle.ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !spec.Process.NoNewPrivileges {
		t.Error("config.json was not hardened before delegation")
	}
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	var rec audit.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Event != audit.EventCreate || rec.Result != audit.ResultAllowed || rec.Namespace != "ns1" || rec.Container != "c1" || rec.Profile != "restricted" {
		t.Errorf("audit record %+v", rec)
	}
	if !slices.ContainsFunc(rec.Changes, func(c audit.Change) bool { return c.Rule == "no-new-privileges" }) {
		t.Errorf("audit record lacks the no-new-privileges change: %+v", rec.Changes)
	}
	if st, err := os.Stat(auditPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode: %v %v", st.Mode(), err)
	}

	// An exec into it is hardened too.
	proc, _ := json.Marshal(&specs.Process{Args: []string{"/bin/sh"}})
	if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "c1", ExecID: "e1", Spec: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", Value: proc}}); err != nil {
		t.Fatal(err)
	}
	var got specs.Process
	if err := json.Unmarshal(inner.execed.Spec.GetValue(), &got); err != nil || !got.NoNewPrivileges || got.User.UID != 65534 {
		t.Errorf("delegated exec process %+v (%v), want noNewPrivileges as 65534", got, err)
	}
}

func TestCreateRefusesBrokenConfigWithoutTouchingTheBundle(t *testing.T) {
	ctx, dir, cfgPath, _ := setup(t, "[runc]\nbogus = 1\n")
	before, _ := os.ReadFile(filepath.Join(dir, bundle.ConfigName))
	inner := &recorder{}
	_, err := New(inner).Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: dir, Options: options(t, cfgPath)})
	if err == nil {
		t.Fatal("broken config accepted")
	}
	err = errgrpc.ToNative(err)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), cfgPath+":2: field \"runc.bogus\"") || !strings.Contains(err.Error(), "ns1/c1") {
		t.Errorf("error %v does not name the container, file, line and field", err)
	}
	if inner.created != nil {
		t.Error("runc was asked to create a container despite the refusal")
	}
	after, _ := os.ReadFile(filepath.Join(dir, bundle.ConfigName))
	if string(before) != string(after) {
		t.Error("the bundle's spec changed although the container was refused")
	}
}

func TestCreateRefusesRuncOptions(t *testing.T) {
	ctx, dir, _, _ := setup(t, "")
	a, _ := typeurl.MarshalAnyToProto(&runcoptions.Options{BinaryName: "/tmp/not-runc"})
	inner := &recorder{}
	if _, err := New(inner).Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: dir, Options: a}); err == nil || inner.created != nil {
		t.Fatalf("runc options from the client were accepted: %v", err)
	}
}

// A panic in a handler becomes an error for that request over a real ttrpc
// connection, and the server keeps answering.
func TestRecoverInterceptorKeepsServing(t *testing.T) {
	server, err := ttrpc.NewServer(ttrpc.WithUnaryServerInterceptor(RecoverInterceptor))
	if err != nil {
		t.Fatal(err)
	}
	svc := &served{New(&recorder{})}
	if err := svc.RegisterTTRPC(server); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go server.Serve(context.Background(), l) //nolint:errcheck // ends with Close
	defer func() { _ = server.Close() }()

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	defer func() { _ = client.Close() }()
	tc := taskAPI.NewTTRPCTaskClient(client)
	ctx := context.Background()

	_, err = tc.State(ctx, &taskAPI.StateRequest{ID: "x"})
	if err == nil || !strings.Contains(err.Error(), "boom in State") || !strings.Contains(err.Error(), "keeps serving") {
		t.Fatalf("panicking handler returned %v", err)
	}
	resp, err := tc.Connect(ctx, &taskAPI.ConnectRequest{ID: "x"})
	if err != nil || resp.ShimPid != 7 {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
}

// Requests for containers palisade did not create are refused, not passed on.
func TestUnknownContainersRefused(t *testing.T) {
	ctx, _, _, _ := setup(t, "")
	inner := &recorder{}
	s := New(inner)
	if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "nope", ExecID: "e"}); !errdefs.IsNotFound(errgrpc.ToNative(err)) || inner.execed != nil {
		t.Errorf("exec into an unknown container: %v", err)
	}
	if _, err := s.Start(ctx, &taskAPI.StartRequest{ID: "nope"}); !errdefs.IsNotFound(errgrpc.ToNative(err)) {
		t.Errorf("start of an unknown container: %v", err)
	}
	if _, err := s.Update(ctx, &taskAPI.UpdateTaskRequest{ID: "nope"}); !errdefs.IsNotFound(errgrpc.ToNative(err)) {
		t.Errorf("update of an unknown container: %v", err)
	}
}

func TestRestoreRefusedByDefault(t *testing.T) {
	ctx, dir, cfgPath, _ := setup(t, "")
	inner := &recorder{}
	_, err := New(inner).Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: dir, Options: options(t, cfgPath), Checkpoint: "/var/lib/ckpt"})
	if err == nil || !strings.Contains(err.Error(), "restoring from a checkpoint is not allowed") || inner.created != nil {
		t.Errorf("restore: %v", err)
	}
}

// auditFails is a runc service whose create succeeds, recording what is
// then done to the container.
type auditFails struct {
	recorder
	killed, deleted bool
}

// Kill and Delete fail on a cancelled context, as runc's commands do
// (they are killed with it).
func (r *auditFails) Kill(ctx context.Context, _ *taskAPI.KillRequest) (*emptypb.Empty, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.killed = true
	return &emptypb.Empty{}, nil
}

func (r *auditFails) Delete(ctx context.Context, _ *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.deleted = true
	return &taskAPI.DeleteResponse{}, nil
}

// A container whose audit record cannot be written is refused, and what
// runc created meanwhile (the record is written while runc creates; the
// container runs nothing before containerd starts it) is killed and
// deleted before the refusal is answered.
func TestCreateRefusedWithoutItsRecord(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, bundleDir, cfgPath, _ := setup(t, "[runc]\nroot = \"/run/palisade-test\"\n[audit]\nfile = \""+blocker+"/audit.jsonl\"\n")
	inner := &auditFails{}
	s := New(inner)
	// the client gave up meanwhile: what runc created is deleted all the same
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: bundleDir, Options: options(t, cfgPath)})
	if err == nil || !strings.Contains(err.Error(), "cannot write its audit record") {
		t.Fatalf("create without its record: %v, want a refusal naming the audit record", err)
	}
	if inner.created == nil || !inner.killed || !inner.deleted {
		t.Fatalf("runc created %v, killed %v, deleted %v: what runc created must be killed and deleted", inner.created != nil, inner.killed, inner.deleted)
	}
	if _, err := s.known("c1"); err == nil {
		t.Fatal("the refused container is known to the shim")
	}
}

// The audit record of a create is written on a goroutine of its own, out
// of reach of RecoverInterceptor: a panic there is the create's error,
// never the end of a shim that serves a pod's other containers.
func TestBackgroundPanicIsAnError(t *testing.T) {
	err := <-inBackground("writing the audit record", func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "writing the audit record") {
		t.Fatalf("a panic gave %v, want an error naming it", err)
	}
	if err := <-inBackground("nothing", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// auditBeforeRunc is a runc service that notes whether the create's
// audit record was on disk when runc was asked to create.
type auditBeforeRunc struct {
	recorder
	auditPath string
	onDisk    bool
}

func (r *auditBeforeRunc) Create(ctx context.Context, req *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	data, _ := os.ReadFile(r.auditPath)
	r.onDisk = strings.Contains(string(data), `"event":"create"`)
	return r.recorder.Create(ctx, req)
}

// With hooks that runc runs while it creates the container (an admin's,
// on the host), the create's record is on disk before runc is asked.
func TestCreateRecordBeforeCreateHooks(t *testing.T) {
	for _, withHook := range []bool{false, true} {
		t.Run(fmt.Sprintf("hook=%v", withHook), func(t *testing.T) {
			dir := t.TempDir()
			auditPath := filepath.Join(dir, "audit.jsonl")
			ctx, bundleDir, cfgPath, _ := setup(t, "allowed_hooks = [\"/usr/local/bin/admin-hook\"]\n[runc]\nroot = \"/run/palisade-test\"\n[audit]\nfile = \""+auditPath+"\"\n")
			spec, err := bundle.ReadSpec(bundleDir)
			if err != nil {
				t.Fatal(err)
			}
			if withHook {
				spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/local/bin/admin-hook"}}}
			}
			if err := bundle.WriteSpec(bundleDir, spec); err != nil {
				t.Fatal(err)
			}
			inner := &auditBeforeRunc{auditPath: auditPath}
			if _, err := New(inner).Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: bundleDir, Options: options(t, cfgPath)}); err != nil {
				t.Fatal(err)
			}
			if withHook && !inner.onDisk {
				t.Fatal("runc was asked to create (and so to run the createRuntime hook) before the create's record was written")
			}
			data, _ := os.ReadFile(auditPath)
			if !strings.Contains(string(data), `"event":"create"`) {
				t.Fatalf("no create record after Create: %s", data)
			}
		})
	}
}
