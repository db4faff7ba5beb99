package execguard

import "golang.org/x/sys/unix"

// LandlockABI returns the kernel's Landlock ABI version, or an error when
// Landlock is not available (not built in, or not among the active LSMs).
func LandlockABI() (int, error) {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0, errno
	}
	return int(abi), nil
}
