package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	containers "github.com/containerd/containerd/api/services/containers/v1"
	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	"github.com/containerd/containerd/v2/pkg/shim"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"palisade.dev/palisade/libshim/config"
)

// layout is what the shim learns of its node's containerd: where its root
// and its snapshotters' directories are. containerd started this shim and
// gave it its address, so its answer is trusted; paths derived from a
// client's request never are. Learned once per shim, on the first Create:
// from the process that started the shim (handoff.go), else by asking
// containerd itself.
type layout struct {
	mu           sync.Mutex
	known        bool
	root         string
	snapshotters []string
	dirs         []string // every directory a plugin reported as its root
	// handoff is the pipe on which the start process sends what it
	// learned (nil: none).
	handoff *os.File
}

// learned is containerd's layout as its introspection service reports it.
type learned struct {
	Address      string   `json:"address"` // the gRPC socket that was asked
	Root         string   `json:"root"`
	Snapshotters []string `json:"snapshotters"`
	Dirs         []string `json:"dirs"`
}

// learn asks containerd's introspection service (at the first of
// addresses, its gRPC socket) for its plugins' roots, unless the start
// process already did. A service without a containerd (tests) learns
// nothing: task rootfs mounts are then refused.
func (l *layout) learn(ctx context.Context, addresses []string) (root string, snapshotters, dirs []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.known || len(addresses) == 0 {
		return l.root, l.snapshotters, l.dirs, nil
	}
	address := strings.TrimPrefix(addresses[0], "unix://")
	if address == "" {
		return "", nil, nil, fmt.Errorf("the shim was not given containerd's address")
	}
	got, ok := receiveLayout(l.handoff, address)
	l.handoff = nil
	if !ok {
		if got, err = askContainerd(ctx, address); err != nil {
			return "", nil, nil, err
		}
	}
	l.root, l.snapshotters, l.dirs, l.known = got.Root, got.Snapshotters, got.Dirs, true
	return l.root, l.snapshotters, l.dirs, nil
}

// askContainerd asks containerd's introspection service at address (its
// gRPC socket) for its plugins' roots.
func askContainerd(ctx context.Context, address string) (learned, error) {
	out := learned{Address: address}
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return out, err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := introspection.NewIntrospectionClient(conn).Plugins(ctx, &introspection.PluginsRequest{})
	if err != nil {
		return out, fmt.Errorf("ask containerd at %s for its directories: %w", address, err)
	}
	for _, p := range resp.Plugins {
		dir := p.Exports["root"]
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		dir = filepath.Clean(dir)
		out.Dirs = append(out.Dirs, dir)
		if p.Type == "io.containerd.snapshotter.v1" && p.InitErr == nil {
			out.Snapshotters = append(out.Snapshotters, dir)
		}
		if strings.HasPrefix(filepath.Base(dir), "io.containerd.") && out.Root == "" {
			out.Root = filepath.Dir(dir)
		}
	}
	return out, nil
}

// socketDir finds the directory of the shim sockets from the shim's own
// start: the "s" link containerd's shim code leaves in the first bundle
// (the shim's working directory) when socket_dir is configured, else the
// directory of the shim's own socket address.
func socketDir() string {
	if dir, err := os.Readlink("s"); err == nil && filepath.IsAbs(dir) {
		return filepath.Clean(dir)
	}
	if addr, err := shim.ReadAddress("address"); err == nil {
		if p := strings.TrimPrefix(addr, "unix://"); filepath.IsAbs(p) {
			return filepath.Dir(p)
		}
	}
	return ""
}

// annotationImageName is the image reference CRI records on its containers.
const annotationImageName = "io.kubernetes.cri.image-name"

// imageOf returns a lookup of a container's image reference: CRI's
// annotation in a CRI namespace, else the image of containerd's container
// record (asked of containerd, which the shim trusts). Both are what the
// client declared: containerd does not tie a container's root filesystem to
// its image record.
func (s *Service) imageOf(ctx context.Context, cfg *config.Config, ns, id string, annotations map[string]string) func() string {
	return func() string {
		if slices.Contains(cfg.Node.CRINamespaces, ns) {
			if v := annotations[annotationImageName]; v != "" {
				return v
			}
		}
		if len(s.addresses) == 0 || s.addresses[0] == "" {
			return ""
		}
		conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(s.addresses[0], "unix://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return ""
		}
		defer func() { _ = conn.Close() }()
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "containerd-namespace", ns), 5*time.Second)
		defer cancel()
		resp, err := containers.NewContainersClient(conn).Get(ctx, &containers.GetContainerRequest{ID: id})
		if err != nil || resp.Container == nil {
			return ""
		}
		return resp.Container.Image
	}
}
