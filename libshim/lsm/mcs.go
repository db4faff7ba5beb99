package lsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// MCS reserves SELinux MCS category pairs for the whole node. Every
// container gets a pair no other running container has; the containers of
// one pod share their sandbox's pair.
//
// A shim serves one container or one pod, so reservations cannot live in a
// shim's memory: they live in one file under Dir, read and rewritten under
// an exclusive flock by whichever shim creates or deletes a container. They
// therefore survive a shim's restart. A reservation whose container's bundle
// is gone (the container was deleted while no shim was there to release it)
// is stale and dropped; a store that is lost altogether is rebuilt from the
// labels in runc's state of the running containers (RuncRoots).
type MCS struct {
	// Dir is a root-only directory for the store and its lock.
	Dir string
	// Categories is the category range (c0..cN-1); 0 means 1024.
	Categories int
	// RuncRoots are runc state roots (runc --root, or their parent holding
	// one root per containerd namespace) to rebuild a lost store from.
	RuncRoots []string
}

// Holder is a container asking for a pair.
type Holder struct {
	Namespace, ID string
	// Group is the pod sandbox's id for the containers of a CRI pod (the
	// sandbox itself included); "" gives the container a pair of its own.
	Group string
	// Bundle is the container's bundle directory; when it no longer exists
	// the reservation is stale.
	Bundle string
}

const storeName = "mcs.json"

// store is the file's content: one reservation per group.
type store struct {
	Version int                     `json:"version"`
	Groups  map[string]*reservation `json:"groups"` // by namespace/group
}

type reservation struct {
	Level   string            `json:"level"`
	Holders map[string]string `json:"holders"` // namespace/id -> bundle
}

func (h Holder) key() string { return h.Namespace + "/" + h.ID }

func (h Holder) group() string {
	if h.Group != "" {
		return h.Namespace + "/" + h.Group
	}
	return h.key()
}

// Reserve returns the holder's level ("s0:cA,cB"): its group's when the
// group has one, else a new pair no reservation uses. Reserving again for
// the same container returns the same level.
func (m *MCS) Reserve(h Holder) (string, error) {
	if h.Namespace == "" || h.ID == "" {
		return "", fmt.Errorf("mcs: a holder needs a namespace and an id: %w", errdefs.ErrInvalidArgument)
	}
	var level string
	err := m.update(func(s *store) error {
		g := h.group()
		for name, r := range s.Groups {
			if _, ok := r.Holders[h.key()]; ok && name != g {
				delete(r.Holders, h.key()) // the same id, re-created in another group
				if len(r.Holders) == 0 {
					delete(s.Groups, name)
				}
			}
		}
		if r, ok := s.Groups[g]; ok {
			r.Holders[h.key()] = h.Bundle
			level = r.Level
			return nil
		}
		l, err := m.pick(s)
		if err != nil {
			return err
		}
		s.Groups[g] = &reservation{Level: l, Holders: map[string]string{h.key(): h.Bundle}}
		level = l
		return nil
	})
	return level, err
}

// Release drops a container's hold and returns the level it released ("" if
// the container held none, or its pod still holds the level).
func (m *MCS) Release(namespace, id string) (string, error) {
	key := namespace + "/" + id
	var released string
	err := m.update(func(s *store) error {
		for name, r := range s.Groups {
			if _, ok := r.Holders[key]; !ok {
				continue
			}
			delete(r.Holders, key)
			if len(r.Holders) == 0 {
				delete(s.Groups, name)
				released = r.Level
			}
		}
		return nil
	})
	return released, err
}

// Levels returns the reserved levels by group (for tests and `doctor`).
func (m *MCS) Levels() (map[string]string, error) {
	out := map[string]string{}
	err := m.update(func(s *store) error {
		for g, r := range s.Groups {
			out[g] = r.Level
		}
		return nil
	})
	return out, err
}

func (m *MCS) categories() int {
	if m.Categories > 1 {
		return m.Categories
	}
	return 1024
}

// pick draws a free pair at random, as go-selinux does, falling back to a
// scan when the space is nearly full.
func (m *MCS) pick(s *store) (string, error) {
	n := m.categories()
	used := make(map[string]bool, len(s.Groups))
	for _, r := range s.Groups {
		used[r.Level] = true
	}
	level := func(a, b int) string { return fmt.Sprintf("s0:c%d,c%d", a, b) }
	for range 64 {
		a, b := rand.IntN(n), rand.IntN(n) //nolint:gosec // uniqueness matters here, not unpredictability
		if a == b {
			continue
		}
		if a > b {
			a, b = b, a
		}
		if l := level(a, b); !used[l] {
			return l, nil
		}
	}
	for a := 0; a < n; a++ {
		for b := a + 1; b < n; b++ {
			if l := level(a, b); !used[l] {
				return l, nil
			}
		}
	}
	return "", fmt.Errorf("mcs: all %d category pairs are reserved: %w", n*(n-1)/2, errdefs.ErrResourceExhausted)
}

// update runs f on the store under the node-wide lock and writes the result
// back atomically.
func (m *MCS) update(f func(*store) error) error {
	if m.Dir == "" {
		return fmt.Errorf("mcs: no state directory: %w", errdefs.ErrFailedPrecondition)
	}
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return fmt.Errorf("mcs: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(m.Dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("mcs: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("mcs: lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = unix.Flock(int(lock.Fd()), unix.LOCK_UN) }()

	s, err := m.load()
	if err != nil {
		return err
	}
	before, _ := json.Marshal(s)
	if err := f(s); err != nil {
		return err
	}
	after, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("mcs: %w", err)
	}
	if string(before) == string(after) {
		return nil
	}
	tmp := filepath.Join(m.Dir, storeName+".tmp")
	if err := os.WriteFile(tmp, after, 0o600); err != nil {
		return fmt.Errorf("mcs: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(m.Dir, storeName)); err != nil {
		return fmt.Errorf("mcs: %w", err)
	}
	return nil
}

// load reads the store, dropping stale holders; a missing store is rebuilt
// from runc's state.
func (m *MCS) load() (*store, error) {
	data, err := os.ReadFile(filepath.Join(m.Dir, storeName))
	s := &store{Version: 1, Groups: map[string]*reservation{}}
	switch {
	case errors.Is(err, os.ErrNotExist):
		m.rebuild(s)
	case err != nil:
		return nil, fmt.Errorf("mcs: %w", err)
	default:
		if err := json.Unmarshal(data, s); err != nil || s.Version != 1 {
			// A damaged store cannot be trusted to be complete: rebuild
			// it from the containers that run.
			s = &store{Version: 1, Groups: map[string]*reservation{}}
			m.rebuild(s)
		}
	}
	for name, r := range s.Groups {
		for key, bundle := range r.Holders {
			if bundle == "" {
				continue
			}
			if _, err := os.Stat(bundle); errors.Is(err, os.ErrNotExist) {
				delete(r.Holders, key)
			}
		}
		if len(r.Holders) == 0 {
			delete(s.Groups, name)
		}
	}
	return s, nil
}

// runcState is the part of runc's state.json that names a container's
// labels: its process label and runc's labels (annotations and bundle=).
type runcState struct {
	ID     string `json:"id"`
	Config struct {
		ProcessLabel string   `json:"process_label"`
		Labels       []string `json:"labels"`
	} `json:"config"`
}

// rebuild adds a reservation for every container in the runc roots that
// runs with an MCS level. A root is either one runc root (ID/state.json) or
// containerd's parent of one root per namespace (NS/ID/state.json).
func (m *MCS) rebuild(s *store) {
	for _, root := range m.RuncRoots {
		files, _ := filepath.Glob(filepath.Join(root, "*", "state.json"))
		nested, _ := filepath.Glob(filepath.Join(root, "*", "*", "state.json"))
		for _, f := range append(files, nested...) {
			h, level, err := RuncHolder(root, f)
			if err != nil || !strings.Contains(level, ":c") {
				continue
			}
			r, ok := s.Groups[h.group()]
			if !ok {
				r = &reservation{Level: level, Holders: map[string]string{}}
				s.Groups[h.group()] = r
			}
			r.Holders[h.key()] = h.Bundle
		}
	}
}

// RuncHolder reads a running container's runc state file (ROOT/ID/state.json
// or ROOT/NS/ID/state.json) and returns who holds which MCS level: the
// level of its process label, its bundle, and its pod from the annotations
// runc keeps as labels.
func RuncHolder(root, file string) (Holder, string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Holder{}, "", err
	}
	var st runcState
	if err := json.Unmarshal(data, &st); err != nil || st.ID == "" {
		return Holder{}, "", fmt.Errorf("%s is not a runc state file: %w", file, errdefs.ErrInvalidArgument)
	}
	dir := filepath.Dir(filepath.Dir(file))
	ns := filepath.Base(dir)
	if dir == filepath.Clean(root) {
		ns = filepath.Base(root)
	}
	h := Holder{Namespace: ns, ID: st.ID}
	for _, l := range st.Config.Labels {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "bundle":
			h.Bundle = v
		case AnnotationSandboxID:
			if v != st.ID {
				h.Group = v
			}
		}
	}
	if h.Group == "" {
		h.Group = h.ID
	}
	return h, SELinuxLevel(st.Config.ProcessLabel), nil
}

// CRI annotations that say which pod a container belongs to.
const (
	AnnotationSandboxID     = "io.kubernetes.cri.sandbox-id"
	AnnotationContainerType = "io.kubernetes.cri.container-type"
)

// PodGroup returns the group of a container from its CRI annotations: the
// sandbox's id for a pod's sandbox and its containers, "" otherwise.
func PodGroup(id string, annotations map[string]string) string {
	switch annotations[AnnotationContainerType] {
	case "sandbox":
		return id
	case "container":
		return annotations[AnnotationSandboxID]
	}
	return ""
}
