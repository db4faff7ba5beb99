package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"palisade.dev/palisade/libshim/execguard"
)

// BenchmarkHelperStart is what palisade-init adds to a process start: one
// more exec, reading the allowed programs' ELF headers, and the Landlock
// ruleset. Compare helper/true with direct/true.
func BenchmarkHelperStart(b *testing.B) {
	if _, err := execguard.LandlockABI(); err != nil {
		b.Skipf("Landlock is not available here (%v): the helper cannot run", err)
	}
	helper := filepath.Join(b.TempDir(), "palisade-init")
	build := exec.Command("go", "build", "-o", helper, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true(1) to start")
	}
	run := func(b *testing.B, args ...string) {
		for i := 0; i < b.N; i++ {
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, truePath) })
	b.Run("helper", func(b *testing.B) { run(b, helper, "exec", "--allow", truePath, "--", truePath) })
}
