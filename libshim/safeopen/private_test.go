package safeopen

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Writers racing on one name leave exactly one of their files, whole, of
// mode 0600, and no temporary file; a reader never sees a partial one.
func TestWritePrivateIsAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "private")
	fd, err := PrivateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	contents := map[string]bool{}
	var payloads [][]byte
	for i := range 8 {
		p := bytes.Repeat([]byte(strconv.Itoa(i)), 64<<10)
		payloads = append(payloads, p)
		contents[string(p)] = true
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if data, err := ReadPrivate(fd, "entry", 1<<20); err == nil && !contents[string(data)] {
				t.Errorf("a reader saw a partial file of %d bytes", len(data))
				return
			}
		}
	}()
	for _, p := range payloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := WritePrivate(fd, "entry", p); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "entry" {
		t.Fatalf("the directory holds %v, want only the entry", entries)
	}
	st, err := os.Lstat(filepath.Join(dir, "entry"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o600 {
		t.Errorf("the entry has mode %v, want 0600", st.Mode())
	}
	if data, err := ReadPrivate(fd, "entry", 1<<20); err != nil || !contents[string(data)] {
		t.Errorf("the entry is not one writer's whole file (%d bytes, %v)", len(data), err)
	}
}

// A directory that is not private, or reached through a symlink, is
// refused and nothing is created through the link.
func TestPrivateDirRefuses(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Join(link, "below"), open, "relative"} {
		if fd, err := PrivateDir(p); err == nil {
			_ = unix.Close(fd)
			t.Errorf("PrivateDir(%s) accepted", p)
		}
	}
	if entries, _ := os.ReadDir(real); len(entries) != 0 {
		t.Errorf("created through a symlink: %v", entries)
	}
}
