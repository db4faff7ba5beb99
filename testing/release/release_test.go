package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/arch"
)

func writeFile(t *testing.T, p, body string, mode os.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// tree writes a source tree and a bin directory whose file times and modes
// depend on when: what a tarball must not depend on.
func tree(t *testing.T, when time.Time, mode os.FileMode) (src, bin string) {
	src, bin = t.TempDir(), t.TempDir()
	for _, f := range []string{"README.md", "VERSION", "contrib/config.toml", "contrib/install.sh", "docs/release.md", "docs/a/b.md"} {
		m := mode
		if strings.HasSuffix(f, ".sh") {
			m = 0o700
		}
		writeFile(t, filepath.Join(src, f), "content of "+f, m, when)
	}
	writeFile(t, filepath.Join(bin, "palisade"), "binary", 0o700, when)
	return src, bin
}

func TestTarballDependsOnContentOnly(t *testing.T) {
	epoch := time.Unix(1764000000, 0).UTC()
	var out [2][]byte
	for i, when := range []time.Time{time.Unix(1, 0), time.Now()} {
		src, bin := tree(t, when, []os.FileMode{0o600, 0o664}[i])
		entries, err := tarEntries(src, bin)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "x.tar.gz")
		if err := writeTarGz(dst, "palisade-1-linux-amd64", entries, epoch); err != nil {
			t.Fatal(err)
		}
		if out[i], err = os.ReadFile(dst); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Fatal("two tarballs of the same contents differ")
	}
	gz, err := gzip.NewReader(bytes.NewReader(out[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !gz.ModTime.IsZero() || gz.Name != "" {
		t.Errorf("gzip header has time %v name %q", gz.ModTime, gz.Name)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "root" {
			t.Errorf("%s: mtime %v uid %d gid %d %s", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname)
		}
		want := int64(0o644)
		if h.Typeflag == tar.TypeDir || h.Name == "palisade-1-linux-amd64/bin/palisade" || strings.HasSuffix(h.Name, ".sh") {
			want = 0o755
		}
		if h.Mode != want {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, want)
		}
	}
	want := []string{
		"palisade-1-linux-amd64/", "palisade-1-linux-amd64/README.md", "palisade-1-linux-amd64/VERSION",
		"palisade-1-linux-amd64/bin/", "palisade-1-linux-amd64/bin/palisade",
		"palisade-1-linux-amd64/contrib/", "palisade-1-linux-amd64/contrib/config.toml", "palisade-1-linux-amd64/contrib/install.sh",
		"palisade-1-linux-amd64/docs/", "palisade-1-linux-amd64/docs/a/", "palisade-1-linux-amd64/docs/a/b.md", "palisade-1-linux-amd64/docs/release.md",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries\n%v\nwant\n%v", names, want)
	}
}

// A symlink in a shipped directory is refused, not followed.
func TestTarballRefusesLinks(t *testing.T) {
	src, bin := tree(t, time.Now(), 0o644)
	if err := os.Symlink("/etc/shadow", filepath.Join(src, "docs", "shadow")); err != nil {
		t.Fatal(err)
	}
	if _, err := tarEntries(src, bin); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a symlink was shipped: %v", err)
	}
}

func TestPinnedToolchain(t *testing.T) {
	for body, want := range map[string]string{
		"module m\n\ngo 1.26.8\n":                       "go1.26.8",
		"module m\n\ngo 1.26.0\n\ntoolchain go1.26.8\n": "go1.26.8",
		"module m\n\ngo 1.26\n":                         "",
	} {
		p := filepath.Join(t.TempDir(), "go.mod")
		writeFile(t, p, body, 0o644, time.Now())
		got, err := pinnedToolchain(p)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%q: %q, %v; want %q", body, got, err, want)
		}
	}
}

func TestCompareNamesTheDifference(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	now := time.Now()
	writeFile(t, filepath.Join(a, "SHA256SUMS"), "x", 0o644, now)
	writeFile(t, filepath.Join(b, "SHA256SUMS"), "x", 0o644, now.Add(time.Hour))
	if err := Compare(a, b); err != nil {
		t.Fatalf("same bytes, other times: %v", err)
	}
	writeFile(t, filepath.Join(b, "SHA256SUMS"), "y", 0o644, now)
	if err := Compare(a, b); err == nil || !strings.Contains(err.Error(), "SHA256SUMS differs") {
		t.Fatalf("different bytes: %v", err)
	}
	writeFile(t, filepath.Join(b, "extra"), "y", 0o644, now)
	if err := Compare(a, b); err == nil {
		t.Fatal("different file lists compared equal")
	}
}

// The SBOM of a binary names every module its build information lists, with
// purls, the file's SHA-256, and relationships between existing elements.
func TestSBOMFromBuildInfo(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bi, err := buildinfo.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	cgo := false
	for _, s := range bi.Settings {
		cgo = cgo || (s.Key == "CGO_ENABLED" && s.Value == "1")
	}
	if cgo {
		if _, err := debVersion(context.Background(), "libseccomp-dev:"+runtime.GOARCH); err != nil {
			// make release installs it; a bare go test may not have it.
			t.Skipf("this cgo test binary would need Debian's libseccomp-dev to be described: %v", err)
		}
	}
	epoch := time.Unix(1764000000, 0).UTC()
	src := &Source{Commit: "0123456789abcdef0123456789abcdef01234567", Version: "9.9.9", Toolchain: strings.Fields(runtime.Version())[0], Epoch: epoch}
	entries := []entry{{name: "bin/palisade", from: self, exec: true}}
	data, err := SBOM(context.Background(), src, arch.Native(), "palisade-9.9.9-linux-"+runtime.GOARCH, entries)
	if err != nil {
		t.Fatal(err)
	}
	var doc spdxDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2025-11-24T16:00:00Z" || !strings.Contains(doc.DocumentNamespace, src.Commit) {
		t.Errorf("header: %s %s %s", doc.SPDXVersion, doc.CreationInfo.Created, doc.DocumentNamespace)
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	purls := map[string]bool{}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] {
			t.Errorf("duplicate SPDXID %s", p.SPDXID)
		}
		ids[p.SPDXID] = true
		for _, r := range p.ExternalRefs {
			purls[r.Locator] = true
		}
	}
	for _, f := range doc.Files {
		ids[f.SPDXID] = true
		raw, _ := os.ReadFile(self)
		sum := sha256.Sum256(raw)
		if f.FileName != "./bin/palisade" || f.Checksums[0].Value != hex.EncodeToString(sum[:]) {
			t.Errorf("file %s checksum %v", f.FileName, f.Checksums)
		}
	}
	for _, r := range doc.Relationships {
		if !ids[r.Element] || !ids[r.Related] {
			t.Errorf("relationship %v names a missing element", r)
		}
	}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		if !purls["pkg:golang/"+m.Path+"@"+m.Version] {
			t.Errorf("module %s@%s is missing", m.Path, m.Version)
		}
	}
	if !purls["pkg:golang/stdlib@"+bi.GoVersion] {
		t.Errorf("the standard library %s is missing", bi.GoVersion)
	}
	// glibc for every cgo binary; libseccomp only for one that links it
	// (this test binary does not; palisade-init does not either).
	seccomp := slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "github.com/seccomp/libseccomp-golang" })
	if cgo && !strings.Contains(string(data), `"name": "glibc"`) {
		t.Error("a cgo binary's SBOM does not name glibc")
	}
	if strings.Contains(string(data), `"name": "libseccomp"`) != seccomp {
		t.Errorf("the SBOM names libseccomp: %v; the binary links libseccomp-golang: %v", !seccomp, seccomp)
	}
	// Another toolchain than the pinned one is refused.
	src.Toolchain = "go1.0.1"
	if _, err := SBOM(context.Background(), src, arch.Native(), "x", entries); err == nil || !strings.Contains(err.Error(), "not the pinned go1.0.1") {
		t.Errorf("a binary of another toolchain was described: %v", err)
	}
}
