package lsm

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/selinux/go-selinux"
	"github.com/opencontainers/selinux/go-selinux/label"

	"palisade.dev/palisade/libshim/names"
)

// UnconfinedSELinuxTypes are the SELinux types under which a process runs
// outside container confinement: privileged containers (spc_t), unconfined
// domains, the container runtime's own, the kernel's and init scripts'. No
// profile, admin type or client request may give a container one of them.
// The pipeline's step and its verification pass both read this one list.
var UnconfinedSELinuxTypes = []string{"spc_t", "unconfined_t", "unconfined_service_t", "container_runtime_t", "kernel_t", "initrc_t", "init_t", "super_t"}

// Defaults when the host has no SELinux policy to ask (and for tests).
const (
	DefaultSELinuxType      = "container_t"
	DefaultSELinuxMountType = "container_file_t"
	defaultUser             = "system_u"
	defaultRole             = "system_r"
	defaultObjectRole       = "object_r"
)

// typeChars spells ^[A-Za-z0-9_]{1,128}$.
var typeChars = names.NewSet("A-Za-z0-9_")

// ValidSELinuxType says what is wrong with a type name an admin
// configures, or "".
func ValidSELinuxType(t string) string {
	if !names.Valid(t, typeChars, typeChars, 128) {
		return fmt.Sprintf("%q is not an SELinux type name", t)
	}
	if slices.Contains(UnconfinedSELinuxTypes, t) {
		return fmt.Sprintf("%q runs containers unconfined", t)
	}
	return ""
}

// UnconfinedAppArmor is the AppArmor profile name that disables it.
const UnconfinedAppArmor = "unconfined"

// ConfinementProblem says why a process's requested labels would take it
// outside the host's mandatory access control, or "". It is the one test
// shared by the pipeline and its verification pass.
func ConfinementProblem(apparmorProfile, selinuxLabel string) string {
	if apparmorProfile == UnconfinedAppArmor {
		return fmt.Sprintf("AppArmor profile %q is not allowed", UnconfinedAppArmor)
	}
	if selinuxLabel == "" {
		return ""
	}
	ctx, err := selinux.NewContext(selinuxLabel)
	if err != nil {
		return fmt.Sprintf("SELinux label %s is not a user:role:type[:level] label", selinuxLabel)
	}
	if slices.Contains(UnconfinedSELinuxTypes, ctx["type"]) || strings.Contains(ctx["type"], "unconfined") {
		return fmt.Sprintf("SELinux label %s would run the process unconfined", selinuxLabel)
	}
	return ""
}

// SELinuxType returns the type of a label.
func SELinuxType(l string) string {
	ctx, err := selinux.NewContext(l)
	if err != nil {
		return ""
	}
	return ctx["type"]
}

// SELinuxLevel returns the MLS/MCS level of a label.
func SELinuxLevel(l string) string {
	ctx, err := selinux.NewContext(l)
	if err != nil {
		return ""
	}
	return ctx["level"]
}

// SELinuxLabels returns a container's process and mount labels of type typ
// (mount type mountType) at level. On an SELinux host the user and role
// come from its container contexts (go-selinux's label.InitLabels, which
// also marks the level as used in this process); elsewhere, and when the
// host's policy names none, the usual system_u:system_r / object_r.
func SELinuxLabels(host Host, typ, mountType, level string) (process, mount string, err error) {
	if host.SELinux {
		p, m, err := label.InitLabels([]string{"type:" + typ, "filetype:" + mountType, "level:" + level})
		if err != nil {
			return "", "", fmt.Errorf("selinux labels of type %s at %s: %w", typ, level, err)
		}
		if p != "" && m != "" {
			return p, m, nil
		}
	}
	return strings.Join([]string{defaultUser, defaultRole, typ, level}, ":"),
		strings.Join([]string{defaultUser, defaultObjectRole, mountType, level}, ":"), nil
}

// ReleaseSELinux forgets a level in this process's go-selinux state (the
// node-wide reservation is the Reserver's).
func ReleaseSELinux(level string) {
	if level != "" {
		selinux.ReleaseLabel("system_u:system_r:container_t:" + level)
	}
}

// CheckClientLabel decides whether a label a client sent may be used: its
// type must be the admin's type or in allowed, and its level must be the one
// palisade reserved for the container.
func CheckClientLabel(l, typ string, allowed []string, level string) error {
	ctx, err := selinux.NewContext(l)
	if err != nil {
		return errors.New("it is not a user:role:type[:level] label")
	}
	if ctx["type"] != typ && !slices.Contains(allowed, ctx["type"]) {
		return fmt.Errorf("type %s is not allowed (allowed: %s)", ctx["type"], strings.Join(append([]string{typ}, allowed...), ", "))
	}
	if ctx["level"] != level {
		return fmt.Errorf("level %q is not the one palisade reserved for the container (%s)", ctx["level"], level)
	}
	return nil
}
