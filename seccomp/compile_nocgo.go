//go:build !cgo

package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Compile needs libseccomp, which this build does not link (HaveLibseccomp).
func Compile(*specs.LinuxSeccomp, string) (*Filter, error) { return nil, ErrNoLibseccomp }

func rawFilter(*specs.LinuxSeccomp, string) ([]bpf.RawInstruction, error) {
	return nil, ErrNoLibseccomp
}
