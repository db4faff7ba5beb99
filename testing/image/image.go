// Package image builds the deterministic OCI test image the end-to-end tests
// and the demo run: busybox-static with its applet links, the project's
// static test programs, and a minimal /etc. The result is an OCI image layout
// in a tar archive, ready for `ctr images import`. The same inputs always give
// the same bytes (fixed timestamps, ownership and order), so the image digest
// only changes when its content does.
package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Name is the reference the image is imported under.
const Name = "docker.io/palisade/test:latest"

// epoch is every file's modification time.
var epoch = time.Unix(946684800, 0).UTC() // 2000-01-01

// Options names the host files that go into the image.
type Options struct {
	Busybox  string            // a static busybox binary, installed as /bin/busybox
	Programs map[string]string // path in the image (e.g. /usr/bin/probe) -> host file
	// Ref is the reference the image is imported under; empty means Name.
	Ref string
	// Cmd is the image's default command; empty means /bin/sh.
	Cmd []string
	// User is the image's user (USER in a Dockerfile); empty means root.
	User string
	// Files are more files by path in the image, with their own mode (a
	// setuid bit included); they replace what the image would otherwise
	// hold there (such as /etc/passwd). A path ending in / is a directory.
	Files map[string]File
	// HardLinks makes busybox's applets hard links to /bin/busybox, as in
	// the busybox image, instead of symbolic links (masking one applet's
	// path then leaves the others alone).
	HardLinks bool
}

// File is a file's content and mode in the image, or a symbolic link.
type File struct {
	Body []byte
	Mode int64
	Link string // the target of a symbolic link
}

func (o Options) ref() string {
	if o.Ref != "" {
		return o.Ref
	}
	return Name
}

func (o Options) cmd() []string {
	if len(o.Cmd) > 0 {
		return o.Cmd
	}
	return []string{"/bin/sh"}
}

type entry struct {
	hdr  *tar.Header
	body []byte
}

// Blobs is an image as a registry serves it: its manifest and every blob
// (layer, config, manifest) by digest.
type Blobs struct {
	Manifest ocispec.Descriptor
	Platform ocispec.Platform
	Blobs    map[digest.Digest][]byte
}

// Build writes the OCI archive to w.
func Build(w io.Writer, o Options) error {
	img, err := Layout(o)
	if err != nil {
		return err
	}
	manDesc := img.Manifest
	manDesc.Platform = &img.Platform
	manDesc.Annotations = map[string]string{
		"io.containerd.image.name": o.ref(),
		ocispec.AnnotationRefName:  "latest",
	}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manDesc},
	}
	idxBytes, err := json.Marshal(index)
	if err != nil {
		return err
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})

	out := []entry{
		file("oci-layout", 0o644, layout),
		file("index.json", 0o644, idxBytes),
		dir("blobs", 0o755),
		dir("blobs/sha256", 0o755),
	}
	dgsts := make([]string, 0, len(img.Blobs))
	for d := range img.Blobs {
		dgsts = append(dgsts, string(d))
	}
	sort.Strings(dgsts)
	for _, d := range dgsts {
		out = append(out, file("blobs/sha256/"+digest.Digest(d).Encoded(), 0o644, img.Blobs[digest.Digest(d)]))
	}
	tw := tar.NewWriter(w)
	for _, e := range out {
		if err := write(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Layout builds the image's blobs: one layer, its config and its manifest.
func Layout(o Options) (*Blobs, error) {
	entries, err := rootfs(o)
	if err != nil {
		return nil, err
	}
	layer, err := tarball(entries)
	if err != nil {
		return nil, err
	}
	layerDesc := descriptor(ocispec.MediaTypeImageLayer, layer)

	cfg := ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config: ocispec.ImageConfig{
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:  o.cmd(),
			User: o.User,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDesc.Digest}},
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDesc := descriptor(ocispec.MediaTypeImageConfig, cfgBytes)

	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}
	manBytes, err := json.Marshal(manifest)
	if err != nil {
		return nil, err
	}
	blobs := map[digest.Digest][]byte{}
	for _, b := range [][]byte{layer, cfgBytes, manBytes} {
		blobs[digest.FromBytes(b)] = b
	}
	return &Blobs{Manifest: descriptor(ocispec.MediaTypeImageManifest, manBytes), Platform: cfg.Platform, Blobs: blobs}, nil
}

func descriptor(mediaType string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(b))), Size: int64(len(b))}
}

// rootfs lists the image's files in a fixed order.
func rootfs(o Options) ([]entry, error) {
	bb, err := os.ReadFile(o.Busybox)
	if err != nil {
		return nil, fmt.Errorf("image: busybox: %w", err)
	}
	applets, err := exec.Command(o.Busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("image: %s --list-full: %w", o.Busybox, err)
	}
	m := map[string]entry{}
	add := func(e entry) {
		// parents first, as a real image would have them
		for d := path.Dir(e.hdr.Name); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := m[d]; !ok {
				m[d] = dir(d, 0o755)
			}
		}
		m[e.hdr.Name] = e
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "var", "home", "root"} {
		add(dir(d, 0o755))
	}
	add(dir("tmp", 0o1777))
	add(file("bin/busybox", 0o755, bb))
	for _, a := range strings.Fields(string(applets)) {
		if a == "bin/busybox" {
			continue
		}
		if o.HardLinks {
			add(hardlink(a, "bin/busybox"))
		} else {
			add(symlink(a, "/bin/busybox"))
		}
	}
	add(file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")))
	add(file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")))
	add(file("etc/hostname", 0o644, []byte("palisade-test\n")))
	for name, f := range o.Files {
		switch n := strings.Trim(name, "/"); {
		case f.Link != "":
			add(symlink(n, f.Link))
		case strings.HasSuffix(name, "/"):
			add(dir(n, f.Mode))
		default:
			add(file(n, f.Mode, f.Body))
		}
	}
	names := make([]string, 0, len(o.Programs))
	for name := range o.Programs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := os.ReadFile(o.Programs[name])
		if err != nil {
			return nil, fmt.Errorf("image: program %s: %w", name, err)
		}
		add(file(strings.TrimPrefix(name, "/"), 0o755, b))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// hard links last: their target must already be in the archive
	sort.SliceStable(keys, func(i, j int) bool {
		return m[keys[i]].hdr.Typeflag != tar.TypeLink && m[keys[j]].hdr.Typeflag == tar.TypeLink
	})
	out := make([]entry, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out, nil
}

func tarball(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := write(tw, e); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func write(tw *tar.Writer, e entry) error {
	if err := tw.WriteHeader(e.hdr); err != nil {
		return err
	}
	_, err := tw.Write(e.body)
	return err
}

func header(name string, typ byte, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: mode, ModTime: epoch, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
}

func file(name string, mode int64, body []byte) entry {
	h := header(name, tar.TypeReg, mode)
	h.Size = int64(len(body))
	return entry{hdr: h, body: body}
}

func dir(name string, mode int64) entry { return entry{hdr: header(name, tar.TypeDir, mode)} }

func hardlink(name, target string) entry {
	h := header(name, tar.TypeLink, 0o755)
	h.Linkname = target
	return entry{hdr: h}
}

func symlink(name, target string) entry {
	h := header(name, tar.TypeSymlink, 0o777)
	h.Linkname = target
	return entry{hdr: h}
}

// Extract writes the image's root filesystem into dir (for palisade run
// --rootfs), with the same content as the archive's layer.
func Extract(dir string, o Options) error {
	entries, err := rootfs(o)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.hdr.Name)
		mode := os.FileMode(e.hdr.Mode & 0o777)
		if e.hdr.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.WriteFile(p, e.body, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(e.hdr.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, e.hdr.Linkname), p); err != nil {
				return err
			}
		}
	}
	return nil
}
