package critest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"palisade.dev/palisade/testing/image"
)

// Registry is a read-only OCI distribution registry serving images from
// memory: just what containerd's pulls use (the /v2/ check, manifests by tag
// or digest, blobs), over plain HTTP on the loopback.
type Registry struct {
	manifests map[string]map[string]digest.Digest // repository -> tag or digest -> manifest
	mediaType map[digest.Digest]string
	blobs     map[digest.Digest][]byte
	srv       *http.Server
	Addr      string // host:port it listens on
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{manifests: map[string]map[string]digest.Digest{}, mediaType: map[digest.Digest]string{}, blobs: map[digest.Digest][]byte{}}
}

// Add serves img under repository repo (a path such as
// e2e-test-images/busybox) and tag, and by its manifest's digest.
func (r *Registry) Add(repo, tag string, img *image.Blobs) {
	for d, b := range img.Blobs {
		r.blobs[d] = b
	}
	m := r.manifests[repo]
	if m == nil {
		m = map[string]digest.Digest{}
		r.manifests[repo] = m
	}
	m[tag] = img.Manifest.Digest
	m[string(img.Manifest.Digest)] = img.Manifest.Digest
	r.mediaType[img.Manifest.Digest] = img.Manifest.MediaType
}

// Start listens on a free loopback port and serves until Close.
func (r *Registry) Start() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	r.Addr = l.Addr().String()
	r.srv = &http.Server{Handler: r}
	go func() { _ = r.srv.Serve(l) }() // ends with Close
	return nil
}

// Close stops serving.
func (r *Registry) Close() error {
	if r.srv == nil {
		return nil
	}
	return r.srv.Close()
}

// ServeHTTP answers the distribution API's read requests.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "read-only registry", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(req.URL.Path, "/v2/")
	if p == "" || p == req.URL.Path {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		return
	}
	var d digest.Digest
	var mediaType string
	if i := strings.LastIndex(p, "/manifests/"); i > 0 {
		d = r.manifests[p[:i]][p[i+len("/manifests/"):]]
		mediaType = r.mediaType[d]
	} else if i := strings.LastIndex(p, "/blobs/"); i > 0 {
		d = digest.Digest(p[i+len("/blobs/"):])
		mediaType = "application/octet-stream"
	}
	body, ok := r.blobs[d]
	if !ok {
		http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not found"}]}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", string(d))
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if req.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// WriteHosts writes containerd's hosts.toml files into dir (CRI's registry
// config_path) so that every registry in hosts is served by r, and nothing
// is pulled from the internet.
func (r *Registry) WriteHosts(dir string, hosts ...string) error {
	for _, h := range hosts {
		if err := os.MkdirAll(filepath.Join(dir, h), 0o755); err != nil {
			return err
		}
		body := fmt.Sprintf("server = %q\n", "http://"+r.Addr)
		if err := os.WriteFile(filepath.Join(dir, h, "hosts.toml"), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
