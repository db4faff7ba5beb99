package service

import (
	"context"
	"os"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"

	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/seccompagent"
	"palisade.dev/palisade/testing/require"
)

type deleter struct{ recorder }

func (d *deleter) Delete(context.Context, *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	return &taskAPI.DeleteResponse{}, nil
}

// A container in alert mode gets its seccomp agent before runc runs: the
// spec names the agent's socket, which exists, root's alone, until the
// container is deleted. A container in enforce mode gets none.
func TestAlertModeAgentLifecycle(t *testing.T) {
	if os.Getuid() != 0 {
		require.Skipf(t, "the agent's socket lives in %s: run as root", seccompagent.Dir)
	}
	ctx, dir, cfgPath, auditPath := setup(t, "")
	alert := "alert_namespaces = [\"ns1\"]\n[audit]\nfile = \"" + auditPath + "\"\n"
	if err := os.WriteFile(cfgPath, []byte(alert), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(&deleter{})
	if _, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: dir, Options: options(t, cfgPath)}); err != nil {
		t.Fatal(err)
	}
	spec, err := bundle.ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	sock := seccompagent.SocketPath(dir)
	if spec.Linux.Seccomp == nil || spec.Linux.Seccomp.ListenerPath != sock {
		t.Fatalf("alert mode's filter: %+v, want listener %s", spec.Linux.Seccomp, sock)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("agent socket: %v %v", st, err)
	}
	if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the agent socket outlives its container: %v", err)
	}

	// enforce mode: no agent, no listener (the bundle still holds the alert
	// filter: as a client's filter, its listener and NOTIFY rules go)
	if err := os.WriteFile(cfgPath, []byte("[audit]\nfile = \""+auditPath+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c2", Bundle: dir, Options: options(t, cfgPath)}); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = s.Delete(ctx, &taskAPI.DeleteRequest{ID: "c2"}) }()
	spec, err = bundle.ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Linux.Seccomp.ListenerPath != "" {
		t.Errorf("enforce mode's filter names a listener: %s", spec.Linux.Seccomp.ListenerPath)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("enforce mode started an agent: %v", err)
	}
}
