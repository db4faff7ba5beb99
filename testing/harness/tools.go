// Package harness is palisade's real end-to-end environment: it finds the
// container tools testing/setup.sh installed, builds the project's binaries
// and the test image, starts a private containerd (own root, state, sockets,
// shim socket directory and runc state root) with palisade registered, runs
// containers through it with ctr, and tears everything down again by PID,
// with its mounts, shims and runc containers, even after a failed or killed
// run.
package harness

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed tools.txt
var toolsFile string

// Tools are the installed container tools.
type Tools struct {
	Containerd string
	Ctr        string
	RuncShim   string // containerd-shim-runc-v2, the stock shim
	Runc       string
	Crictl     string // needed only by environments with CRI
	Versions   map[string]string
}

// CacheDir is where setup.sh keeps the tools: $PALISADE_CACHE, else
// $XDG_CACHE_HOME/palisade, else ~/.cache/palisade.
func CacheDir() string {
	if d := os.Getenv("PALISADE_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "palisade")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "palisade")
}

func versions() map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(toolsFile, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			v[f[0]] = f[1]
		}
	}
	return v
}

// FindTools locates the tools in the cache; it fails with what to run when
// they are missing.
func FindTools() (*Tools, error) {
	v := versions()
	ctd := filepath.Join(CacheDir(), "tools", "containerd-"+v["containerd"])
	runc := filepath.Join(CacheDir(), "tools", "runc-"+v["runc"])
	t := &Tools{
		Containerd: filepath.Join(ctd, "containerd"),
		Ctr:        filepath.Join(ctd, "ctr"),
		RuncShim:   filepath.Join(ctd, "containerd-shim-runc-v2"),
		Runc:       filepath.Join(runc, "runc"),
		Crictl:     filepath.Join(CacheDir(), "tools", "crictl-"+v["crictl"], "crictl"),
		Versions:   v,
	}
	for _, p := range []string{t.Containerd, t.Ctr, t.RuncShim, t.Runc} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("harness: %s is missing: run testing/setup.sh (make deps) first", p)
		}
	}
	return t, nil
}

// pathDirs are the directories containerd and its shims must find binaries in.
func (t *Tools) pathDirs() []string {
	return []string{filepath.Dir(t.Containerd), filepath.Dir(t.Runc)}
}
