package release

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"
)

// entry is one file of a tarball: its path inside the tarball (below the
// top directory) and where its bytes come from.
type entry struct {
	name string
	from string
	exec bool
}

// tarEntries lists bin/ (from binDir) and the shipped source paths, sorted.
func tarEntries(srcDir, binDir string) ([]entry, error) {
	var out []entry
	bins, err := os.ReadDir(binDir)
	if err != nil {
		return nil, err
	}
	for _, b := range bins {
		out = append(out, entry{name: "bin/" + b.Name(), from: filepath.Join(binDir, b.Name()), exec: true})
	}
	for _, s := range shipped {
		root := filepath.Join(srcDir, s)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if !d.Type().IsRegular() {
				return fmt.Errorf("%s is not a regular file: a release ships files only", p)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(srcDir, p)
			if err != nil {
				return err
			}
			out = append(out, entry{name: filepath.ToSlash(rel), from: p, exec: info.Mode()&0o111 != 0})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// writeTarGz writes entries under top/ with directories made explicit, every
// header fixed (mtime = epoch, root:root, 0755 or 0644, PAX off) and a gzip
// header without name or time: the bytes depend on the contents only.
func writeTarGz(dst, top string, entries []entry, epoch time.Time) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	gz, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	gz.ModTime = time.Time{}
	gz.OS = 3 // Unix, whatever the builder
	tw := tar.NewWriter(gz)
	header := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: size, ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
	}
	dirs := map[string]bool{}
	var addDir func(d string) error
	addDir = func(d string) error {
		if d == "." || dirs[d] {
			return nil
		}
		if err := addDir(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(header(d+"/", 0o755, tar.TypeDir, 0))
	}
	write := func() error {
		for _, e := range entries {
			name := path.Join(top, e.name)
			if err := addDir(path.Dir(name)); err != nil {
				return err
			}
			data, err := os.ReadFile(e.from)
			if err != nil {
				return err
			}
			mode := int64(0o644)
			if e.exec {
				mode = 0o755
			}
			if err := tw.WriteHeader(header(name, mode, tar.TypeReg, int64(len(data)))); err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return gz.Close()
	}
	if err := write(); err != nil {
		f.Close()
		_ = os.Remove(dst)
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return f.Close()
}
