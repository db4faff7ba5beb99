package secrets

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	opts := fmt.Sprintf("size=%d,mode=0700,nr_inodes=%d", size, len(p.Items)+8)
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
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) >= 5 && len(tail) >= 2 && tail[0] == "tmpfs" && tail[1] == fsSource {
			out = append(out, unescapeOctal(fields[4]))
		}
	}
	return out, sc.Err()
}

func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
// instances are left alone as long as their bundles exist.
func Sweep() []error {
	mounts, err := Mounted()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, m := range mounts {
		owner, err := os.ReadFile(m + ownerSuffix)
		if err == nil {
			if _, err := os.Stat(strings.TrimSpace(string(owner))); err == nil {
				continue // the container still exists
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			continue // cannot tell: leave it
		}
		if err := Release(m); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ReleaseFor releases every secrets mount owned by bundle (containerd's
// cleanup of a container whose shim died).
func ReleaseFor(bundle string) []error {
	mounts, err := Mounted()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, m := range mounts {
		owner, err := os.ReadFile(m + ownerSuffix)
		if err == nil && strings.TrimSpace(string(owner)) == bundle {
			if err := Release(m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// Scope is the store scope of a container: its Kubernetes namespace when
// containerd's CRI created it (containerd namespace k8s.io, which only the
// CRI plugin uses), else its containerd namespace.
func Scope(namespace string, annotations map[string]string) string {
	if namespace == "k8s.io" {
		if ns := annotations["io.kubernetes.cri.sandbox-namespace"]; ns != "" {
			return ns
		}
	}
	return namespace
}
