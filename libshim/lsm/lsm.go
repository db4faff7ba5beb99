// Package lsm gives containers a confined label of the host's Linux
// security modules, generated from their palisade profile: an SELinux
// process and mount label with a node-wide unique MCS category pair
// (selinux.go, mcs.go), and an AppArmor profile rendered from a template
// that follows Docker's docker-default and tightens it with the palisade
// profile (apparmor.go).
//
// The admin chooses, per LSM, a Mode: require (refuse containers when the
// host lacks the LSM), if-available (use it when the host has it, record
// when it does not) or off (palisade neither applies nor manages it; labels
// that disable confinement are still refused). Detection, MCS reservation
// and AppArmor loading are reached through an Env, so that the hardening
// pipeline stays testable on hosts without the LSMs.
package lsm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/containerd/containerd/v2/pkg/apparmor"
	"github.com/opencontainers/selinux/go-selinux"
)

// Modes an admin chooses per LSM.
const (
	Require     = "require"
	IfAvailable = "if-available"
	Off         = "off"
)

// Modes lists the valid modes.
var Modes = []string{Require, IfAvailable, Off}

// ValidMode says whether m is a mode.
func ValidMode(m string) bool { return m == Require || m == IfAvailable || m == Off }

// Host says which LSMs the host enforces.
type Host struct {
	SELinux  bool
	AppArmor bool
}

// Detect probes the running kernel: SELinux when selinuxfs is mounted and
// enabled, AppArmor when the module is enabled and apparmor_parser exists
// (containerd's own test, shared with runc).
func Detect() Host {
	return Host{SELinux: selinux.GetEnabled(), AppArmor: apparmor.HostSupports()}
}

// Env is what the pipeline needs to apply the LSMs on one node.
type Env struct {
	Host Host
	// Reserve makes SELinux MCS reservations in the node's store (the
	// shim); false for dry runs, which preview labels without reserving.
	Reserve bool
	// Runner runs apparmor_parser. The shim passes one that cooperates with
	// its child reaper; nil runs commands directly.
	Runner func(*exec.Cmd) ([]byte, error)
	// Preview generates the AppArmor profile also where it is not applied,
	// so that the CLI can show it.
	Preview bool
	// Load loads generated AppArmor profiles into the kernel when the host
	// has AppArmor. False for dry runs.
	Load bool
}

// Labels are what the pipeline decided for one container; exec processes
// get the same.
type Labels struct {
	// SELinuxProcess and SELinuxMount are the container's SELinux labels,
	// "" when SELinux is not applied.
	SELinuxProcess, SELinuxMount string
	// AppArmorProfile is the profile the container runs under, "" when
	// AppArmor is not applied. AppArmorName and AppArmorText are the
	// generated profile's name and text, set also when it is not applied,
	// so that the CLI can show them.
	AppArmorProfile, AppArmorName, AppArmorText string
}

// Why explains the mode that applies to an LSM on a host, in one line, for
// `palisade doctor` and `explain`.
func Why(lsmName, field, mode string, present bool) string {
	switch {
	case mode == Off:
		return fmt.Sprintf("%s = %q: palisade does not apply %s; labels a client sends pass through, except those that disable confinement", field, mode, lsmName)
	case present:
		return fmt.Sprintf("%s = %q and the host enforces %s: every container gets palisade's confined label", field, mode, lsmName)
	case mode == Require:
		return fmt.Sprintf("%s = %q but the host does not enforce %s: every container is refused", field, mode, lsmName)
	default:
		return fmt.Sprintf("%s = %q and the host does not enforce %s: containers run without it, and each audit record says so", field, mode, lsmName)
	}
}

func (e *Env) run(cmd *exec.Cmd) ([]byte, error) {
	if e != nil && e.Runner != nil {
		return e.Runner(cmd)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// parserOutput drops the parser's notices about a kernel without AppArmor
// (cache disabled) so that messages keep only what matters.
func parserOutput(out []byte) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, "Cache read/write disabled") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "; ")
}

// ParserPath returns the apparmor_parser binary, or "" when none is
// installed.
func ParserPath() string {
	for _, p := range []string{"/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		return p
	}
	return ""
}
