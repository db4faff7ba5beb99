package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Concurrent writers append whole records; the file is 0600.
func TestFileSinkAppendsWholeRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.jsonl")
	sink := &FileSink{Path: path}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &Record{Event: EventCreate, Container: "c", Result: ResultAllowed, Changes: []Change{{Rule: "r", Before: false, After: true}}}
			if err := sink.Write(context.Background(), r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d is not a record: %v", n, err)
		}
		n++
	}
	if n != 50 {
		t.Errorf("%d records, want 50", n)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", st.Mode())
	}
}

func TestSetCRI(t *testing.T) {
	ann := map[string]string{
		"io.kubernetes.cri.sandbox-name":      "web-0",
		"io.kubernetes.cri.sandbox-namespace": "shop",
		"io.kubernetes.cri.container-name":    "nginx",
	}
	r := Record{Namespace: "k8s.io"}
	r.SetCRI(ann, []string{"k8s.io"})
	if r.Pod != "web-0" || r.PodNamespace != "shop" || r.ContainerName != "nginx" {
		t.Errorf("%+v", r)
	}
	// outside CRI's namespaces the annotations are any client's claim
	r = Record{Namespace: "default"}
	r.SetCRI(ann, []string{"k8s.io"})
	if r.Pod != "" || r.PodNamespace != "" || r.ContainerName != "" {
		t.Errorf("a container in namespace default took a pod's names: %+v", r)
	}
}
