// Command release is `make release` and `make release-check`: it builds
// palisade's release artefacts for amd64 and arm64 from a clean export of a
// commit (testing/release), or builds them twice and compares the bytes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"palisade.dev/palisade/testing/release"
)

func main() {
	out := flag.String("out", "dist", "directory for the tarballs, SBOMs and SHA256SUMS")
	commit := flag.String("commit", "HEAD", "git revision to release")
	check := flag.Bool("check", false, "build twice (two paths, the second from an empty build cache) and compare every byte")
	flag.Parse()
	if err := run(context.Background(), *out, *commit, *check); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, commit string, check bool) error {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "release: "+format+"\n", args...) }
	work, err := os.MkdirTemp("", "palisade-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if check {
		if err := release.Check(ctx, ".", commit, work, logf); err != nil {
			return err
		}
		logf("reproducible: two builds of %s are byte for byte the same", commit)
		return nil
	}
	if dirty, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(dirty) > 0 {
		logf("warning: uncommitted changes are not in the release: it is built from %s as committed", commit)
	}
	src, err := release.Export(ctx, ".", commit, filepath.Join(work, "src"))
	if err != nil {
		return err
	}
	a, err := release.Build(ctx, src, release.Options{Out: out, Log: logf})
	if err != nil {
		return err
	}
	for _, f := range a.Files {
		fmt.Println(filepath.Join(a.Dir, f))
	}
	return nil
}
