// Package release builds palisade's release artefacts reproducibly: for every
// architecture in libshim/arch, the shim, the CLI and palisade-init built
// from a clean export of one commit with a pinned Go toolchain, packed into
// palisade-VERSION-linux-ARCH.tar.gz with the contrib files and docs, an SPDX
// SBOM per tarball, and SHA256SUMS over all of them. The same commit gives
// the same bytes: -trimpath, no VCS stamping (the commit is stamped with -X),
// static linking, tar entries sorted with fixed times and owners, gzip without
// a timestamp. Check builds a commit twice, from two paths, once from an
// empty build cache, and compares every byte.
package release

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"palisade.dev/palisade/libshim/arch"
)

// Module is the Go module every binary belongs to; the commit is stamped
// into Module.Commit.
const Module = "palisade.dev/palisade"

// Source is one commit of palisade, exported into a directory of its own.
type Source struct {
	Dir       string    // the exported tree
	Commit    string    // full commit hash
	Version   string    // the VERSION file
	Toolchain string    // pinned Go toolchain, e.g. go1.26.8
	Epoch     time.Time // SOURCE_DATE_EPOCH: the commit's time
}

// Options say where and for what to build.
type Options struct {
	Out     string      // directory for the artefacts (created; must not hold old ones)
	Arches  []arch.Info // default arch.Supported
	GoCache string      // GOCACHE for the builds; "" keeps the caller's
	Log     func(format string, args ...any)
}

// Artefacts are the files one build wrote into Options.Out, sorted.
type Artefacts struct {
	Dir   string
	Files []string
}

// binary is one program of a release.
type binary struct {
	name string
	pkg  string
	cgo  bool // links libseccomp (the CLI, palisade-init) and C of its own (palisade-init)
}

var binaries = []binary{
	{"containerd-shim-palisade-v2", "./cmd/containerd-shim-palisade-v2", false}, // no libseccomp: palisade-init compiles
	{"palisade", "./cmd/palisade", true},
	{"palisade-init", "./cmd/palisade-init", true},
}

// shipped are the source paths a tarball carries besides bin/.
var shipped = []string{"README.md", "VERSION", "contrib", "docs"}

// Export writes the tree of commit (a git revision) of the repository at
// repo into dir, and reads what the release needs from it.
func Export(ctx context.Context, repo, commit, dir string) (*Source, error) {
	full, err := git(ctx, repo, "rev-parse", "--verify", commit+"^{commit}")
	if err != nil {
		return nil, err
	}
	epoch, err := git(ctx, repo, "log", "-1", "--format=%ct", full)
	if err != nil {
		return nil, err
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("commit time %q: %w", epoch, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	archive := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", full)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return nil, err
	}
	untar.Stdin = pipe
	var errs bytes.Buffer
	archive.Stderr, untar.Stderr = &errs, &errs
	if err := untar.Start(); err != nil {
		return nil, err
	}
	if err := archive.Run(); err != nil {
		return nil, fmt.Errorf("git archive %s: %w: %s", full, err, errs.String())
	}
	if err := untar.Wait(); err != nil {
		return nil, fmt.Errorf("unpack %s: %w: %s", full, err, errs.String())
	}
	version, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		return nil, err
	}
	toolchain, err := pinnedToolchain(filepath.Join(dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	return &Source{Dir: dir, Commit: full, Version: strings.TrimSpace(string(version)), Toolchain: toolchain, Epoch: time.Unix(secs, 0).UTC()}, nil
}

// pinnedToolchain is go.mod's toolchain directive, or its go directive when
// that names a full release (go 1.26.8): the exact compiler of a release.
func pinnedToolchain(gomod string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	var goLine string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "toolchain":
			return f[1], nil
		case len(f) == 2 && f[0] == "go":
			goLine = f[1]
		}
	}
	if strings.Count(goLine, ".") != 2 {
		return "", fmt.Errorf("%s: go %q is not a full release and there is no toolchain line: the compiler is not pinned", gomod, goLine)
	}
	return "go" + goLine, nil
}

// Build builds every architecture's tarball and SBOM from src, then
// SHA256SUMS.
func Build(ctx context.Context, src *Source, o Options) (*Artefacts, error) {
	if len(o.Arches) == 0 {
		o.Arches = arch.Supported
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	if old, _ := filepath.Glob(filepath.Join(o.Out, "palisade-*")); len(old) > 0 {
		return nil, fmt.Errorf("%s already holds %s: remove it first", o.Out, filepath.Base(old[0]))
	}
	work, err := os.MkdirTemp("", "palisade-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var files []string
	for _, a := range o.Arches {
		base := fmt.Sprintf("palisade-%s-linux-%s", src.Version, a.GoArch)
		bin := filepath.Join(work, a.GoArch)
		for _, b := range binaries {
			o.Log("build %s for %s", b.name, a.GoArch)
			if err := goBuild(ctx, src, o, a, b, filepath.Join(bin, b.name)); err != nil {
				return nil, err
			}
		}
		entries, err := tarEntries(src.Dir, bin)
		if err != nil {
			return nil, err
		}
		tgz := base + ".tar.gz"
		if err := writeTarGz(filepath.Join(o.Out, tgz), base, entries, src.Epoch); err != nil {
			return nil, err
		}
		sbom, err := SBOM(ctx, src, a, base, entries)
		if err != nil {
			return nil, err
		}
		name := base + ".spdx.json"
		if err := os.WriteFile(filepath.Join(o.Out, name), sbom, 0o644); err != nil {
			return nil, err
		}
		files = append(files, tgz, name)
		o.Log("wrote %s and %s", tgz, name)
	}
	sort.Strings(files)
	var sums bytes.Buffer
	for _, f := range files {
		sum, err := sha256File(filepath.Join(o.Out, f))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, f)
	}
	if err := os.WriteFile(filepath.Join(o.Out, "SHA256SUMS"), sums.Bytes(), 0o644); err != nil {
		return nil, err
	}
	files = append(files, "SHA256SUMS")
	sort.Strings(files)
	return &Artefacts{Dir: o.Out, Files: files}, nil
}

// goBuild builds one binary for one architecture. The cgo binaries link
// glibc and libseccomp statically (docs/release.md says why); netgo and
// osusergo keep glibc's NSS, which cannot work in a static binary, out.
func goBuild(ctx context.Context, src *Source, o Options, a arch.Info, b binary, out string) error {
	ldflags := "-s -w -X " + Module + ".Commit=" + src.Commit
	args := []string{"build", "-trimpath", "-buildvcs=false", "-o", out}
	env := []string{"GOOS=linux", "GOARCH=" + a.GoArch, "GOTOOLCHAIN=" + src.Toolchain, "GOFLAGS=", "GOAMD64=v1", "GOARM64=v8.0",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(src.Epoch.Unix(), 10), "LC_ALL=C", "TZ=UTC"}
	if b.cgo {
		args = append(args, "-tags", "netgo,osusergo")
		ldflags += " -linkmode external -extldflags -static"
		env = append(env, "CGO_ENABLED=1", "CC="+a.Triplet+"-gcc", "CGO_CFLAGS=-O2 -g0", "CGO_LDFLAGS=", "PKG_CONFIG_PATH=", "PKG_CONFIG_LIBDIR=/usr/lib/"+a.Triplet+"/pkgconfig:/usr/share/pkgconfig")
	} else {
		env = append(env, "CGO_ENABLED=0")
	}
	if o.GoCache != "" {
		env = append(env, "GOCACHE="+o.GoCache)
	}
	args = append(args, "-ldflags", ldflags, b.pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src.Dir
	cmd.Env = append(os.Environ(), env...)
	if outb, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", b.name, a.GoArch, err, outb)
	}
	return nil
}

// Check builds a commit twice, from two exports at different paths, the
// second with an empty build cache (so every package and C file is compiled
// again), and fails on the first file whose bytes differ.
func Check(ctx context.Context, repo, commit, work string, log func(string, ...any)) error {
	var dirs [2]string
	for i := range dirs {
		d := filepath.Join(work, fmt.Sprintf("build-%d", i+1))
		src, err := Export(ctx, repo, commit, filepath.Join(d, strings.Repeat("src", i+1)))
		if err != nil {
			return err
		}
		o := Options{Out: filepath.Join(d, "dist"), Log: log}
		if i == 1 {
			o.GoCache = filepath.Join(d, "gocache")
		}
		log("build %d of %s in %s (build cache: %s)", i+1, src.Commit, d, cmp.Or(o.GoCache, "the usual one"))
		if _, err := Build(ctx, src, o); err != nil {
			return err
		}
		dirs[i] = filepath.Join(d, "dist")
	}
	return Compare(dirs[0], dirs[1])
}

// Compare fails unless directories a and b hold the same files with the same
// bytes.
func Compare(a, b string) error {
	list := func(d string) ([]string, error) {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out, nil
	}
	la, err := list(a)
	if err != nil {
		return err
	}
	lb, err := list(b)
	if err != nil {
		return err
	}
	if !slices.Equal(la, lb) {
		return fmt.Errorf("not reproducible: %s holds %v, %s holds %v", a, la, b, lb)
	}
	for _, f := range la {
		x, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, f))
		if err != nil {
			return err
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("not reproducible: %s differs between %s and %s (diffoscope shows where)", f, a, b)
		}
	}
	return nil
}

func sha256File(p string) (string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func git(ctx context.Context, repo string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...).Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out)), nil
}
