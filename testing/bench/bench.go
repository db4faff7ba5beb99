// Package bench measures what palisade costs against the stock runc shim,
// on the same machine, in the same run, with interleaved A/B pairs (these
// machines are noisy; only ratios measured side by side mean anything). It
// drives a private containerd from the harness with containerd's Go client.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"golang.org/x/sys/unix"

	"palisade.dev/palisade/testing/harness"
)

// Variant is one way of running a container.
type Variant struct {
	Name        string
	Runtime     string
	Options     any
	Annotations map[string]string
	Seccomp     bool // containerd's default seccomp profile in the client's spec
	Args        []string
}

// Bench holds a connected client and the environment.
type Bench struct {
	Env    *harness.Env
	Client *containerd.Client
	image  containerd.Image
	seq    int
	mu     sync.Mutex
}

// New connects to the environment's containerd.
func New(ctx context.Context, env *harness.Env) (*Bench, error) {
	c, err := containerd.New(env.Address, containerd.WithDefaultNamespace(env.Namespace))
	if err != nil {
		return nil, err
	}
	img, err := c.GetImage(ctx, env.Image())
	if err != nil {
		return nil, err
	}
	return &Bench{Env: env, Client: c, image: img}, nil
}

// Stock is the stock runc shim; Palisade the palisade shim with an admin config.
func Stock(root string, withSeccomp bool) Variant {
	return Variant{Name: "stock runc shim", Runtime: "io.containerd.runc.v2", Options: &runcoptions.Options{Root: root}, Seccomp: withSeccomp}
}

// Palisade runs under palisade with the admin config at cfg.
func Palisade(name, cfg string, ann map[string]string) Variant {
	return Variant{Name: name, Runtime: harness.Runtime, Options: &runtimeoptions.Options{ConfigPath: cfg}, Annotations: ann}
}

func (b *Bench) id(prefix string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), b.seq)
}

func (b *Bench) newContainer(ctx context.Context, v Variant, args ...string) (containerd.Container, error) {
	id := b.id("bench")
	opts := []oci.SpecOpts{oci.WithImageConfig(b.image), oci.WithProcessArgs(args...)}
	if v.Seccomp {
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	if len(v.Annotations) > 0 {
		opts = append(opts, oci.WithAnnotations(v.Annotations))
	}
	return b.Client.NewContainer(ctx, id,
		containerd.WithNewSnapshot(id, b.image),
		containerd.WithRuntime(v.Runtime, v.Options),
		containerd.WithNewSpec(opts...))
}

// StartToExit runs /bin/true once: create, start, wait for exit, delete.
func (b *Bench) StartToExit(ctx context.Context, v Variant) (time.Duration, error) {
	t0 := time.Now()
	c, err := b.newContainer(ctx, v, "/bin/true")
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup) }()
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", v.Name, err)
	}
	if err := runToExit(ctx, task); err != nil {
		return 0, fmt.Errorf("%s: /bin/true: %w", v.Name, err)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// Running is a long-running container for exec and memory measurements.
type Running struct {
	C    containerd.Container
	Task containerd.Task
}

// Start starts a sleeping container.
func (b *Bench) Start(ctx context.Context, v Variant) (*Running, error) {
	c, err := b.newContainer(ctx, v, "/bin/sleep", "3600")
	if err != nil {
		return nil, err
	}
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return nil, err
	}
	if err := task.Start(ctx); err != nil {
		return nil, err
	}
	return &Running{C: c, Task: task}, nil
}

// Stop kills and removes it.
func (r *Running) Stop(ctx context.Context) {
	exit, err := r.Task.Wait(ctx)
	if err == nil {
		_ = r.Task.Kill(ctx, syscall.SIGKILL)
		<-exit
	}
	_, _ = r.Task.Delete(ctx)
	_ = r.C.Delete(ctx, containerd.WithSnapshotCleanup)
}

// Exec runs /bin/true in it once.
func (b *Bench) Exec(ctx context.Context, r *Running) (time.Duration, error) {
	spec, err := r.C.Spec(ctx)
	if err != nil {
		return 0, err
	}
	p := *spec.Process
	p.Args = []string{"/bin/true"}
	t0 := time.Now()
	proc, err := r.Task.Exec(ctx, b.id("exec"), &p, cio.NullIO)
	if err != nil {
		return 0, err
	}
	if err := runToExit(ctx, proc); err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	return time.Since(t0), nil
}

// runToExit starts a created task or exec process, waits for it to exit
// 0, and deletes it.
func runToExit(ctx context.Context, p containerd.Process) error {
	exit, err := p.Wait(ctx)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	st := <-exit
	if code, _, err := st.Result(); err != nil || code != 0 {
		return fmt.Errorf("exited %d: %w", code, err)
	}
	_, err = p.Delete(ctx)
	return err
}

// Memory reads the RSS and PSS (kB) of the shim serving a container.
func (b *Bench) Memory(r *Running) (rss, pss int, err error) {
	m, err := b.Smaps(r)
	return m["Rss"], m["Pss"], err
}

// Smaps reads the shim's /proc/PID/smaps_rollup: kB by field name (Rss, Pss,
// Anonymous, Private_Clean, ...).
func (b *Bench) Smaps(r *Running) (map[string]int, error) {
	pid, err := b.shimPID(r)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasSuffix(f[0], ":") {
			m[strings.TrimSuffix(f[0], ":")], _ = strconv.Atoi(f[1])
		}
	}
	return m, nil
}

// Mappings sums the shim's resident memory (kB) by mapping: the file
// mapped (with its permissions), or "anonymous".
func (b *Bench) Mappings(r *Running) (map[string]int, error) {
	mappings, _, err := b.Detail(r)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, m := range mappings {
		name := "anonymous"
		if m.Name != "" {
			name = m.Name + " (" + m.Perms + ")"
		}
		out[name] += m.Rss
	}
	return out, nil
}

// Mapping is one mapping of the shim with its sizes.
type Mapping struct {
	Range, Perms, Name string // Name is empty for an anonymous mapping
	Size, Rss          int    // kB
}

// Detail lists the shim's mappings one by one, in address order, and
// reads its thread count: the breakdown behind Mappings' sums, for telling
// Go's heap arena, its runtime metadata, thread stacks and C malloc arenas
// apart.
func (b *Bench) Detail(r *Running) (mappings []Mapping, threads int, err error) {
	pid, err := b.shimPID(r)
	if err != nil {
		return nil, 0, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return ParseSmaps(string(data)), threads, nil
}

// ParseSmaps reads the text of /proc/PID/smaps: one Mapping per header
// line ("start-end perms offset dev inode [name]"), with its Size and Rss.
func ParseSmaps(data string) []Mapping {
	var out []Mapping
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			m := Mapping{Range: f[0], Perms: f[1]}
			if len(f) >= 6 {
				m.Name = strings.Join(f[5:], " ")
			}
			out = append(out, m)
		case len(out) > 0 && len(f) >= 2 && f[0] == "Size:":
			out[len(out)-1].Size, _ = strconv.Atoi(f[1])
		case len(out) > 0 && len(f) >= 2 && f[0] == "Rss:":
			out[len(out)-1].Rss, _ = strconv.Atoi(f[1])
		}
	}
	return out
}

// DropCached evicts files from the page cache (where no process maps
// them). Shim memory is measured with both shim binaries read back from
// disk the same way: a binary the Go linker has just written sits in the
// page cache as large folios that the kernel maps 2 MB at a time, so a
// freshly built shim would look megabytes bigger than an installed one.
func DropCached(paths ...string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync() // dirty pages (a fresh build) cannot be evicted
		if err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("evict %s from the page cache: %w", p, err)
		}
	}
	return nil
}

// shimPID finds the shim serving a container.
func (b *Bench) shimPID(r *Running) (int, error) {
	for _, pid := range harness.ProcessesMentioning(b.Env.Address) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmd), "\x00-id\x00"+r.C.ID()+"\x00") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no shim found for %s", r.C.ID())
}

// Pairs measures f for A and B n times each, interleaved, alternating which
// goes first.
func Pairs(n int, a, b func() (time.Duration, error)) (as, bs []time.Duration, err error) {
	for i := 0; i < n; i++ {
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		x, err := first()
		if err != nil {
			return nil, nil, err
		}
		y, err := second()
		if err != nil {
			return nil, nil, err
		}
		if i%2 == 1 {
			x, y = y, x
		}
		as, bs = append(as, x), append(bs, y)
	}
	return as, bs, nil
}

// Rounds runs every function once per round, for n rounds, and returns
// each function's samples in round order. The order rotates from round to
// round (with n a multiple of len(fs), each function runs in each position
// equally often), and a round samples all the functions within seconds of
// each other: what drifts over a run (the machine's other load, the page
// cache, containerd's own state) shifts every variant alike, so rows that
// share a variant can be compared with each other, not only within a pair.
func Rounds[T any](n int, fs ...func() (T, error)) ([][]T, error) {
	out := make([][]T, len(fs))
	for i := range n {
		for k := range fs {
			j := (i + k) % len(fs)
			d, err := fs[j]()
			if err != nil {
				return nil, err
			}
			out[j] = append(out[j], d)
		}
	}
	return out, nil
}

// Stats summarises durations.
type Stats struct {
	Median, P90, P99 time.Duration
	N                int
}

// Summarize computes order statistics.
func Summarize(d []time.Duration) Stats {
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return Stats{Median: q(0.5), P90: q(0.9), P99: q(0.99), N: len(s)}
}

// RatioCI is the ratio of medians B/A with a 95% bootstrap interval over
// the pairs.
func RatioCI(a, b []time.Duration) (ratio, lo, hi float64) {
	med := func(d []time.Duration) float64 { return float64(Summarize(d).Median) }
	ratio = med(b) / med(a)
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []float64
	for k := 0; k < 2000; k++ {
		var ra, rb []time.Duration
		for range a {
			j := rng.IntN(len(a))
			ra, rb = append(ra, a[j]), append(rb, b[j])
		}
		rs = append(rs, med(rb)/med(ra))
	}
	slices.Sort(rs)
	return ratio, rs[len(rs)*25/1000], rs[len(rs)*975/1000]
}

// Concurrent starts n containers at once and returns each one's start-to-exit.
func (b *Bench) Concurrent(ctx context.Context, v Variant, n int) ([]time.Duration, error) {
	out := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = b.StartToExit(ctx, v)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteBetween replaces the text between two marker lines in a file.
func WriteBetween(path, begin, end, body string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the markers %q and %q", filepath.Base(path), begin, end)
	}
	s = s[:i+len(begin)] + "\n" + body + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// Phases are the steps of one start-to-exit run, timed separately.
var Phases = []string{"container", "create", "start", "wait", "delete task", "delete container"}

// StartToExitPhases is StartToExit with each step timed: the container
// record, NewTask (the shim's start and Create), Start, the wait for the
// exit, the task's delete (runc delete, the shim's shutdown) and the
// container's delete with its snapshot.
func (b *Bench) StartToExitPhases(ctx context.Context, v Variant) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	t := time.Now()
	lap := func(name string) {
		now := time.Now()
		out[name] = now.Sub(t)
		t = now
	}
	c, err := b.newContainer(ctx, v, "/bin/true")
	if err != nil {
		return nil, err
	}
	lap("container")
	defer func() { _ = c.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup) }()
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	lap("create")
	exit, err := task.Wait(ctx)
	if err != nil {
		return nil, err
	}
	if err := task.Start(ctx); err != nil {
		return nil, err
	}
	lap("start")
	st := <-exit
	if code, _, err := st.Result(); err != nil || code != 0 {
		return nil, fmt.Errorf("%s: exited %d: %w", v.Name, code, err)
	}
	lap("wait")
	if _, err := task.Delete(ctx); err != nil {
		return nil, err
	}
	lap("delete task")
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		return nil, err
	}
	lap("delete container")
	return out, nil
}
