package harden

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/config"
)

func req() *Request { return &Request{Namespace: "ns", ID: "c1", Config: config.Default()} }

func TestNoNewPrivileges(t *testing.T) {
	cases := []struct {
		name    string
		in      bool
		changes int
	}{
		{"sets it when the client did not", false, 1},
		{"keeps it when already set", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &specs.Spec{Process: &specs.Process{NoNewPrivileges: c.in, Args: []string{"/bin/true"}}}
			changes, err := Spec(req(), s)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Process.NoNewPrivileges {
				t.Error("noNewPrivileges not set")
			}
			if len(changes) != c.changes {
				t.Errorf("changes = %+v, want %d", changes, c.changes)
			}
			if c.changes == 1 && (changes[0].Rule != "no-new-privileges" || changes[0].Before != false || changes[0].After != true) {
				t.Errorf("change = %+v", changes[0])
			}
		})
	}
}

func TestSpecWithoutProcessRefused(t *testing.T) {
	_, err := Spec(req(), &specs.Spec{})
	var r *Refusal
	if !errors.As(err, &r) || r.Rule != "process-required" || r.Container != "ns/c1" || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("spec without process: %v", err)
	}
	want := "palisade: container ns/c1: the spec has no process [rule process-required]; the OCI spec must contain a process to run"
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err.Error(), want)
	}
}

func TestProcess(t *testing.T) {
	p := &specs.Process{Args: []string{"sh"}}
	changes, err := Process(req(), p)
	if err != nil || !p.NoNewPrivileges || len(changes) != 1 {
		t.Fatalf("exec process: %+v %v %+v", p, err, changes)
	}
	if _, err := Process(req(), nil); err == nil {
		t.Fatal("nil exec process accepted")
	}
}

// Verify is independent of the transforms: a spec that skipped the pipeline
// fails it, naming each broken invariant.
func TestVerifyCatchesUnhardenedSpec(t *testing.T) {
	err := Verify(req(), &specs.Spec{Process: &specs.Process{}})
	var r *Refusal
	if !errors.As(err, &r) || r.Rule != "verify-no-new-privileges" || !errdefs.IsInternal(err) {
		t.Fatalf("verify: %v", err)
	}
}

// FuzzSpec checks the pipeline's invariants on arbitrary specs: it never
// panics, a hardened spec always verifies, and hardening is idempotent.
func FuzzSpec(f *testing.F) {
	f.Add([]byte(`{"process":{"args":["/bin/sh"]}}`))
	f.Add([]byte(`{"process":{"noNewPrivileges":true,"args":["x"],"user":{"uid":0,"gid":0}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"process":null,"root":{"path":"rootfs"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.Spec
		if json.Unmarshal(data, &s) != nil {
			return
		}
		if _, err := Spec(req(), &s); err != nil {
			return // refused: fine, as long as it did not panic
		}
		if err := Verify(req(), &s); err != nil {
			t.Fatalf("hardened spec fails verification: %v", err)
		}
		once, _ := json.Marshal(&s)
		changes, err := Spec(req(), &s)
		if err != nil {
			t.Fatalf("hardening a hardened spec failed: %v", err)
		}
		twice, _ := json.Marshal(&s)
		if len(changes) != 0 || !reflect.DeepEqual(once, twice) {
			t.Fatalf("hardening is not idempotent: changes %+v\n%s\n%s", changes, once, twice)
		}
	})
}
