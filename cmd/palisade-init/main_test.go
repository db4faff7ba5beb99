package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/testing/require"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildHelper builds palisade-init as make build does: cgo, static. The
// directory outlives the test that first asked (TestMain removes it).
func buildHelper(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "palisade-init-test-")
		if buildErr != nil {
			return
		}
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-linkmode external -extldflags -static", "-o", filepath.Join(buildDir, "palisade-init"), ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		tb.Fatalf("build palisade-init: %v", buildErr)
	}
	return filepath.Join(buildDir, "palisade-init")
}

// startableHelper is buildHelper's binary, when this host can start it as
// a child.
func startableHelper(t *testing.T) string {
	t.Helper()
	helper := buildHelper(t)
	if err := exec.Command(helper, "version").Run(); errors.Is(err, syscall.ENOEXEC) {
		// go test -exec qemu-… (make test-arm64) without binfmt_misc:
		// the arm64 helper cannot be started as a child on this host.
		require.Skipf(t, "the built helper cannot be started here (%v): the C code's tests that run in this process cover it", err)
	}
	return helper
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// BenchmarkHelperStart is what palisade-init adds to a process start: one
// more exec, reading the allowed programs' ELF headers, and the Landlock
// ruleset. Each iteration starts true(1) directly and through the helper,
// one after the other, so both see the same machine load; it reports the
// median of each (ms) and the median of the per-pair differences
// (over-ms, the helper's own cost).
func BenchmarkHelperStart(b *testing.B) {
	if _, err := execguard.LandlockABI(); err != nil {
		b.Skipf("Landlock is not available here (%v): the helper cannot run", err)
	}
	helper := buildHelper(b)
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true(1) to start")
	}
	start := func(args ...string) time.Duration {
		t := time.Now()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", args, err, out)
		}
		return time.Since(t)
	}
	var direct, via, over []float64
	b.ResetTimer()
	for range b.N {
		d := start(truePath)
		h := start(helper, "exec", "--allow", truePath, "--", truePath)
		direct, via, over = append(direct, ms(d)), append(via, ms(h)), append(over, ms(h-d))
	}
	b.ReportMetric(median(direct), "direct-ms")
	b.ReportMetric(median(via), "helper-ms")
	b.ReportMetric(median(over), "over-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}
