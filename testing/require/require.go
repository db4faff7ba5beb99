// Package require lets a test skip, saying why, where this host lacks what
// it needs, and fail instead under `make test` (PALISADE_E2E_REQUIRED=1),
// whose set-up provides everything a protection's test needs: a protection
// is never reported as proven by a skip there.
package require

import (
	"os"
	"testing"
)

// Skipf skips the test with the reason, or fails it under make test.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("PALISADE_E2E_REQUIRED") == "1" {
		t.Fatalf("cannot run under make test: "+format, args...)
	}
	t.Skipf(format, args...)
}
