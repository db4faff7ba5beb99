package harness

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Suite runs a package of end-to-end tests (name is how its messages start)
// in one environment with options o: run gets the environment, or nil and
// the reason the tests must skip. With PALISADE_E2E_REQUIRED=1 (make test)
// a missing prerequisite fails the run instead. It returns the exit code.
func Suite(name string, o Options, run func(env *Env, skipReason string) int) int {
	unavailable := func(reason string) int {
		if os.Getenv("PALISADE_E2E_REQUIRED") == "1" {
			fmt.Fprintf(os.Stderr, "%s: cannot run and PALISADE_E2E_REQUIRED=1: %s\n", name, reason)
			return 1
		}
		return run(nil, reason)
	}
	if os.Geteuid() != 0 {
		return unavailable("end-to-end tests need root (containerd and runc create namespaces, cgroups and mounts)")
	}
	if _, err := FindTools(); err != nil {
		return unavailable(err.Error())
	}
	env, closeEnv, err := LaunchWith(o, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	code := run(env, "")
	if code != 0 {
		lines := strings.Split(env.ContainerdLog(), "\n")
		fmt.Fprintf(os.Stderr, "%s: containerd log (last 60 lines):\n%s\n", name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
	}
	if err := closeEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: teardown: %v\n", name, err)
		return 1
	}
	return code
}

// UniqueName names a test's container or pod: the test's name (lower case,
// without "Test", at most max characters), a suffix and a number, so that
// tests never see each other's leftovers.
func UniqueName(t interface{ Name() string }, suffix string, max int) string {
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(strings.TrimPrefix(t.Name(), "Test")))
	if len(n) > max {
		n = n[:max]
	}
	return fmt.Sprintf("%s-%s-%d", n, suffix, time.Now().UnixNano()%1e6)
}
