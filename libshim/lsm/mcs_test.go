package lsm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// 100 containers created at once, each through its own MCS value (as in
// separate shim processes), all get different pairs.
func TestMCSUniqueUnderConcurrentCreates(t *testing.T) {
	dir := t.TempDir()
	levels := make([]string, 100)
	errs := make([]error, 100)
	var wg sync.WaitGroup
	for i := range levels {
		wg.Go(func() {
			m := &MCS{Dir: dir, Categories: 16} // 120 pairs: collisions are likely unless the lock works
			levels[i], errs[i] = m.Reserve(Holder{Namespace: "ns", ID: fmt.Sprintf("c%d", i)})
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for i, l := range levels {
		if errs[i] != nil {
			t.Fatalf("reserve %d: %v", i, errs[i])
		}
		if !strings.HasPrefix(l, "s0:c") {
			t.Fatalf("level %q", l)
		}
		if j, dup := seen[l]; dup {
			t.Fatalf("containers c%d and c%d got the same level %s", j, i, l)
		}
		seen[l] = i
	}
	got, err := (&MCS{Dir: dir}).Levels()
	if err != nil || len(got) != 100 {
		t.Fatalf("store holds %d reservations (%v), want 100", len(got), err)
	}
}

// A delete releases the pair; the pods' containers share their sandbox's and
// it is released with the last of them.
func TestMCSReleaseAndPods(t *testing.T) {
	m := &MCS{Dir: t.TempDir(), Categories: 3} // 3 pairs only
	a, err := m.Reserve(Holder{Namespace: "k8s.io", ID: "sandbox1", Group: "sandbox1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Reserve(Holder{Namespace: "k8s.io", ID: "app1", Group: "sandbox1"})
	if err != nil || b != a {
		t.Fatalf("pod container got %q (%v), want its sandbox's %q", b, err, a)
	}
	again, err := m.Reserve(Holder{Namespace: "k8s.io", ID: "app1", Group: "sandbox1"})
	if err != nil || again != a {
		t.Fatalf("reserving again gave %q (%v), want %q", again, err, a)
	}
	c, _ := m.Reserve(Holder{Namespace: "default", ID: "x"})
	d, _ := m.Reserve(Holder{Namespace: "default", ID: "y"})
	if c == a || d == a || c == d || c == "" || d == "" {
		t.Fatalf("levels %q %q %q are not distinct", a, c, d)
	}
	if _, err := m.Reserve(Holder{Namespace: "default", ID: "z"}); err == nil {
		t.Fatal("a fourth pair was handed out of three")
	}
	if rel, err := m.Release("k8s.io", "sandbox1"); err != nil || rel != "" {
		t.Fatalf("releasing the sandbox while its container runs released %q (%v)", rel, err)
	}
	if rel, err := m.Release("k8s.io", "app1"); err != nil || rel != a {
		t.Fatalf("releasing the pod's last container released %q (%v), want %q", rel, err, a)
	}
	z, err := m.Reserve(Holder{Namespace: "default", ID: "z"})
	if err != nil || z != a {
		t.Fatalf("the released pair was not reused: %q %v", z, err)
	}
	if rel, err := m.Release("default", "nothing"); err != nil || rel != "" {
		t.Fatalf("releasing an unknown container: %q %v", rel, err)
	}
}

// After a restart (a new MCS value, nothing in memory) the reservations of
// running containers are kept, those of containers whose bundle is gone are
// dropped, and a lost store is rebuilt from runc's state.
func TestMCSRebuildAfterRestart(t *testing.T) {
	dir, bundles := t.TempDir(), t.TempDir()
	live, gone := filepath.Join(bundles, "live"), filepath.Join(bundles, "gone")
	for _, b := range []string{live, gone} {
		if err := os.Mkdir(b, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	first := &MCS{Dir: dir, Categories: 3}
	l1, _ := first.Reserve(Holder{Namespace: "default", ID: "live", Bundle: live})
	l2, _ := first.Reserve(Holder{Namespace: "default", ID: "gone", Bundle: gone})
	if err := os.Remove(gone); err != nil { // deleted while no shim was there
		t.Fatal(err)
	}
	restarted := &MCS{Dir: dir, Categories: 3}
	levels, err := restarted.Levels()
	if err != nil || len(levels) != 1 || levels["default/live"] != l1 {
		t.Fatalf("after restart the store holds %v (%v), want only default/live=%s (%s was stale)", levels, err, l1, l2)
	}
	n1, _ := restarted.Reserve(Holder{Namespace: "default", ID: "n1"})
	n2, _ := restarted.Reserve(Holder{Namespace: "default", ID: "n2"})
	if n1 == l1 || n2 == l1 {
		t.Fatalf("new containers got the running container's %s: %s %s", l1, n1, n2)
	}

	// The store is lost: runc's state of the running containers rebuilds it.
	runcRoot := t.TempDir()
	writeState := func(ns, id, label string, labels ...string) {
		d := filepath.Join(runcRoot, ns, id)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		var st runcState
		st.ID, st.Config.ProcessLabel, st.Config.Labels = id, label, labels
		data, _ := json.Marshal(st)
		if err := os.WriteFile(filepath.Join(d, "state.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeState("default", "live", "system_u:system_r:container_t:s0:c1,c2", "bundle="+live)
	writeState("k8s.io", "app", "system_u:system_r:container_t:s0:c0,c2", AnnotationSandboxID+"=sb", "bundle="+live)
	writeState("k8s.io", "nolabel", "")
	lost := t.TempDir()
	rebuilt := &MCS{Dir: lost, Categories: 3, RuncRoots: []string{runcRoot}}
	levels, err = rebuilt.Levels()
	if err != nil || levels["default/live"] != "s0:c1,c2" || levels["k8s.io/sb"] != "s0:c0,c2" || len(levels) != 2 {
		t.Fatalf("rebuilt store = %v (%v)", levels, err)
	}
	if sb, _ := rebuilt.Reserve(Holder{Namespace: "k8s.io", ID: "app2", Group: "sb"}); sb != "s0:c0,c2" {
		t.Fatalf("a new container of pod sb got %q, want the pod's s0:c0,c2", sb)
	}
	if l, _ := rebuilt.Reserve(Holder{Namespace: "default", ID: "new"}); l != "s0:c0,c1" {
		t.Fatalf("the only free pair is s0:c0,c1, got %q", l)
	}
}

func TestPodGroup(t *testing.T) {
	for _, c := range []struct {
		ann  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{AnnotationContainerType: "sandbox", AnnotationSandboxID: "sb"}, "id"},
		{map[string]string{AnnotationContainerType: "container", AnnotationSandboxID: "sb"}, "sb"},
	} {
		if got := PodGroup("id", c.ann); got != c.want {
			t.Errorf("PodGroup(%v) = %q, want %q", c.ann, got, c.want)
		}
	}
}
