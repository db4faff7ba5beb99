// Package hostinfo tells what the host offers palisade: cgroup layout,
// seccomp, Landlock, SELinux, AppArmor, the OCI runtimes installed, and
// whether containerd answers. `palisade doctor` prints it; the shim consults
// the same probes when a policy requires a feature.
package hostinfo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/containerd/v2/client"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/lsm"
)

// Status of one check.
type Status string

// Statuses.
const (
	OK      Status = "ok"
	Missing Status = "missing" // the host lacks it; policies that require it refuse containers
	Warn    Status = "warn"    // present but not as palisade expects
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Options for Probe.
type Options struct {
	ContainerdAddress string // "" skips the containerd check
	// SELinuxMode and AppArmorMode are the admin config's LSM modes; the
	// LSM lines say which applies and why. "" means the default.
	SELinuxMode, AppArmorMode string
}

// Probe runs every check.
func Probe(ctx context.Context, o Options) []Check {
	host := lsm.Detect()
	checks := []Check{
		{Name: "architecture", Status: OK, Detail: runtime.GOARCH + " (" + kernel() + ")"},
		cgroupCheck(),
		seccompCheck(),
		LandlockCheck(),
		lsmCheck("selinux", "SELinux", o.SELinuxMode, host.SELinux, "no /sys/fs/selinux"),
		lsmCheck("apparmor", "AppArmor", o.AppArmorMode, host.AppArmor, "no AppArmor module, or no apparmor_parser"),
		parserCheck(),
		runtimeCheck("runc"),
		runtimeCheck("crun"),
	}
	if o.ContainerdAddress != "" {
		checks = append(checks, containerdCheck(ctx, o.ContainerdAddress))
	}
	return checks
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "kernel unknown"
	}
	return "Linux " + unix.ByteSliceToString(u.Release[:])
}

func cgroupCheck() Check {
	c := Check{Name: "cgroups", Status: OK}
	switch cgroups.Mode() {
	case cgroups.Unified:
		c.Detail = "v2 (unified)"
	case cgroups.Hybrid:
		c.Detail = "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)"
	case cgroups.Legacy:
		c.Detail = "v1 (legacy)"
	default:
		return Check{Name: "cgroups", Status: Missing, Detail: "no cgroup filesystem found"}
	}
	if !pidsController() {
		c.Status, c.Detail = Warn, c.Detail+"; pids controller not available: PID limits cannot be enforced"
	} else {
		c.Detail += "; pids controller available"
	}
	return c
}

func pidsController() bool {
	if cgroups.Mode() == cgroups.Unified {
		b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		return err == nil && strings.Contains(string(b), "pids")
	}
	_, err := os.Stat("/sys/fs/cgroup/pids")
	return err == nil
}

func seccompCheck() Check {
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		return Check{Name: "seccomp", Status: Missing, Detail: "the kernel has no seccomp support: " + err.Error()}
	}
	maj, minor, micro := libseccomp.GetLibraryVersion()
	api, err := libseccomp.GetAPI()
	if err != nil {
		return Check{Name: "seccomp", Status: Warn, Detail: fmt.Sprintf("kernel supports seccomp; libseccomp %d.%d.%d API level unknown: %v", maj, minor, micro, err)}
	}
	return Check{Name: "seccomp", Status: OK, Detail: fmt.Sprintf("kernel filters supported; libseccomp %d.%d.%d, API level %d", maj, minor, micro, api)}
}

// LandlockCheck reports Landlock availability.
func LandlockCheck() Check {
	abi, err := execguard.LandlockABI()
	if err != nil {
		return Check{Name: "landlock", Status: Missing, Detail: "not available (" + err.Error() + "): exec allow-lists cannot be enforced by the kernel"}
	}
	return Check{Name: "landlock", Status: OK, Detail: fmt.Sprintf("ABI %d", abi)}
}

// lsmCheck reports an LSM and the mode that applies to it.
func lsmCheck(name, title, mode string, present bool, absent string) Check {
	if mode == "" {
		mode = lsm.IfAvailable
	}
	c := Check{Name: name, Status: OK, Detail: "enabled"}
	if !present {
		c.Status, c.Detail = Warn, "not enabled on this host ("+absent+")"
		if mode == lsm.Require {
			c.Status = Missing
		}
	}
	c.Detail += "; " + lsm.Why(title, name+".mode", mode, present)
	return c
}

func parserCheck() Check {
	if p := lsm.ParserPath(); p != "" {
		return Check{Name: "apparmor_parser", Status: OK, Detail: p + ": generated AppArmor profiles can be validated (and loaded where AppArmor is enabled)"}
	}
	return Check{Name: "apparmor_parser", Status: Warn, Detail: "not installed (Debian/Ubuntu: apt-get install apparmor): generated AppArmor profiles cannot be validated"}
}

func runtimeCheck(name string) Check {
	path, err := exec.LookPath(name)
	if err != nil {
		return Check{Name: name, Status: Missing, Detail: "not found in PATH"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return Check{Name: name, Status: Warn, Detail: path + ": --version failed: " + err.Error()}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	detail := path + ": " + lines[0]
	status := OK
	if name == "runc" {
		seccomp := false
		for _, l := range lines {
			if strings.HasPrefix(l, "libseccomp:") {
				seccomp = true
				detail += ", " + l
			}
		}
		if !seccomp {
			status, detail = Warn, detail+"; built without seccomp support: every seccomp profile will fail"
		}
	}
	return Check{Name: name, Status: status, Detail: detail}
}

func containerdCheck(ctx context.Context, address string) Check {
	if _, err := os.Stat(address); err != nil {
		return Check{Name: "containerd", Status: Missing, Detail: "no socket at " + address}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := client.New(address, client.WithTimeout(3*time.Second))
	if err != nil {
		return Check{Name: "containerd", Status: Missing, Detail: address + ": " + err.Error()}
	}
	defer func() { _ = c.Close() }()
	v, err := c.Version(ctx)
	if err != nil {
		return Check{Name: "containerd", Status: Missing, Detail: address + ": " + err.Error()}
	}
	return Check{Name: "containerd", Status: OK, Detail: fmt.Sprintf("%s: %s (%s)", address, v.Version, v.Revision)}
}
