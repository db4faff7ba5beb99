package execguard

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The Landlock probe agrees with the kernel's list of active LSMs.
func TestLandlockMatchesActiveLSMs(t *testing.T) {
	lsms, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		t.Skipf("cannot read the active LSM list (%v): nothing to compare the probe with", err)
	}
	abi, err := LandlockABI()
	active := false
	for _, l := range splitComma(string(lsms)) {
		active = active || l == "landlock"
	}
	switch {
	case active && (err != nil || abi < 1):
		t.Fatalf("landlock is an active LSM but the probe says ABI %d, %v", abi, err)
	case !active && err == nil:
		t.Fatalf("landlock is not active but the probe reports ABI %d", abi)
	case !active && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS):
		t.Fatalf("unexpected error %v", err)
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' || s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
