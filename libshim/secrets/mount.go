package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/selinux/go-selinux/label"
	"golang.org/x/sys/unix"
)

// fsSource names palisade's tmpfs mounts in /proc/self/mountinfo, so that
// leftovers can be found after a crash.
const fsSource = "palisade-secrets"

// Mount creates the container's secrets tmpfs at p.Dir and writes every
// item. On error nothing is left: no mount, no directory.
func Mount(p *Plan, src Source) (retErr error) {
	var total int64
	values := make([][]byte, len(p.Items))
	for i, it := range p.Items {
		v := it.Value
		if v == nil {
			var err error
			if v, err = src.Read(p.Scope, it.Name, p.MaxSize); err != nil {
				return err
			}
		} else if int64(len(v)) > p.MaxSize {
			return fmt.Errorf("secret %q is larger than %d bytes", it.Name, p.MaxSize)
		}
		total += int64(len(v))
		values[i] = v
	}
	if total > p.MaxTotal {
		return fmt.Errorf("the container's secrets total %d bytes, more than %d", total, p.MaxTotal)
	}
	if err := os.MkdirAll(filepath.Dir(p.Dir), 0o700); err != nil {
		return err
	}
	// The owner is recorded first, so that a sweep never mistakes a mount
	// being set up for a leftover.
	if err := RecordOwner(p.Dir, p.Bundle); err != nil {
		return fmt.Errorf("record the secrets mount's owner: %w", err)
	}
	if err := os.Mkdir(p.Dir, 0o700); err != nil {
		_ = os.Remove(p.Dir + ownerSuffix)
		return fmt.Errorf("create the secrets mount point: %w", err)
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, Release(p.Dir))
		}
	}()
	// Room for the files plus a page of overhead each; nothing else fits.
	size := total + int64(len(p.Items)+1)*4096
	opts := label.FormatMountLabel(fmt.Sprintf("size=%d,mode=0700,nr_inodes=%d", size, len(p.Items)+8), p.MountLabel)
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount(fsSource, p.Dir, "tmpfs", flags, opts+",noswap"); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("mount the secrets tmpfs: %w", err)
		}
		// kernels before 6.4 have no noswap
		if err := unix.Mount(fsSource, p.Dir, "tmpfs", flags, opts); err != nil {
			return fmt.Errorf("mount the secrets tmpfs: %w", err)
		}
	}
	for i, it := range p.Items {
		if err := writeSecret(filepath.Join(p.Dir, it.Name), values[i], p.UID, p.GID); err != nil {
			return fmt.Errorf("write secret %q: %w", it.Name, err)
		}
	}
	if err := os.Chown(p.Dir, int(p.UID), int(p.GID)); err != nil {
		return err
	}
	if err := os.Chmod(p.Dir, 0o500); err != nil {
		return err
	}
	// Read-only from here on, for the container and for everyone on the host.
	if err := unix.Mount("", p.Dir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("remount the secrets tmpfs read-only: %w", err)
	}
	return nil
}

func writeSecret(name string, v []byte, uid, gid uint32) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o400)
	if err != nil {
		return err
	}
	_, werr := f.Write(v)
	if werr == nil {
		werr = f.Chown(int(uid), int(gid))
	}
	return errors.Join(werr, f.Close())
}

// Unmount removes a container's secrets tmpfs and its mount point. A
// missing one is not an error.
func Unmount(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Mounted lists palisade's secrets tmpfs mounts on the host.
func Mounted() ([]string, error) {
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return i.FSType != "tmpfs" || i.Source != fsSource, false
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(infos))
	for i, m := range infos {
		out[i] = m.Mountpoint
	}
	return out, nil
}

// ownerSuffix names the host-side file next to a mount point that records
// the bundle of the container it belongs to (a path, never a secret).
const ownerSuffix = ".bundle"

// RecordOwner notes which bundle the secrets mount at dir belongs to.
func RecordOwner(dir, bundle string) error {
	return os.WriteFile(dir+ownerSuffix, []byte(bundle), 0o600)
}

// Release unmounts the secrets of a container and forgets its owner.
func Release(dir string) error {
	err := Unmount(dir)
	if rerr := os.Remove(dir + ownerSuffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// Sweep removes every palisade secrets mount whose container's bundle is
// gone: what a killed shim left behind. Mounts of other containerd
// instances are left alone as long as their bundles exist; a mount whose
// owner cannot be read for another reason is left alone too.
func Sweep() []error {
	return releaseWhere(func(owner string, err error) bool {
		if err != nil {
			return errors.Is(err, os.ErrNotExist)
		}
		_, serr := os.Stat(owner)
		return errors.Is(serr, os.ErrNotExist)
	})
}

// ReleaseFor releases every secrets mount owned by bundle (containerd's
// cleanup of a container whose shim died).
func ReleaseFor(bundle string) []error {
	return releaseWhere(func(owner string, err error) bool { return err == nil && owner == bundle })
}

// releaseWhere releases the secrets mounts whose recorded owner (or the
// error reading it) satisfies release.
func releaseWhere(release func(owner string, err error) bool) []error {
	mounts, err := Mounted()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, m := range mounts {
		owner, err := os.ReadFile(m + ownerSuffix)
		if !release(strings.TrimSpace(string(owner)), err) {
			continue
		}
		if err := Release(m); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Scope is the store scope of a container: "kubernetes/NS" with its
// Kubernetes namespace when containerd's CRI created it (containerd
// namespace k8s.io), else "containerd/NS" with its containerd namespace.
// The two kinds never share a directory, so a containerd namespace called
// "prod" does not reach the secrets of the Kubernetes namespace "prod".
// Clients of containerd's API are trusted like root (they could start a
// privileged container with another runtime); the scope separates
// workloads, not API clients.
func Scope(namespace string, annotations map[string]string) string {
	if namespace == "k8s.io" {
		if ns := annotations["io.kubernetes.cri.sandbox-namespace"]; ns != "" {
			return "kubernetes/" + ns
		}
	}
	return "containerd/" + namespace
}
