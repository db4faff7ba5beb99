// Package bundle reads and writes the OCI runtime spec (config.json) of a
// container bundle. Reads are size-bounded and strict; writes are atomic (a
// temporary file in the bundle, then rename), so runc never sees a
// half-written spec. There is no fsync: bundles live in containerd's state
// directory, which does not survive a reboot, so durability buys nothing and
// would cost a disk flush on every container start.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/seccomp"
)

// ConfigName is the spec's file name inside a bundle.
const ConfigName = "config.json"

// MaxSpecSize bounds the spec palisade will parse. Real specs are a few tens
// of kilobytes; the bound keeps a hostile client from exhausting the shim.
const MaxSpecSize = 4 << 20

// ReadSpec reads and decodes bundle/config.json.
func ReadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, ConfigName)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("read spec %s: %w", path, err)
	}
	return DecodeSpec(path, data)
}

// DecodeSpec decodes a spec; name is used in errors.
//
// The client's seccomp filter is decoded whole: the hardening pipeline
// combines it with the policy's (seccomp.Intersect), so a pod's own
// profile can tighten the node's. The decoded filter may be shared with
// other specs that carried the same text: it must not be modified.
func DecodeSpec(name string, data []byte) (*specs.Spec, error) {
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("spec %s is larger than %d bytes: %w", name, MaxSpecSize, errdefs.ErrInvalidArgument)
	}
	var in specIn
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("spec %s is not a valid OCI spec: %w: %w", name, err, errdefs.ErrInvalidArgument)
	}
	if dec.More() {
		return nil, fmt.Errorf("spec %s has trailing data after the JSON object: %w", name, errdefs.ErrInvalidArgument)
	}
	s := in.Spec
	if in.Linux != nil {
		l := in.Linux.Linux
		if in.Linux.Seccomp != nil {
			l.Seccomp = in.Linux.Seccomp.filter
		}
		s.Linux = &l
	}
	return &s, nil
}

// EncodeSpec encodes a spec as JSON. A seccomp filter the policy resolved
// before (seccomp.ResolveCached) is written from its cached encoding.
func EncodeSpec(s *specs.Spec) ([]byte, error) {
	if s.Linux != nil && s.Linux.Seccomp != nil {
		if raw := seccomp.Encoded(s.Linux.Seccomp); raw != nil {
			return json.Marshal(specOut{Spec: s, Linux: &linuxOut{Linux: s.Linux, Seccomp: raw}})
		}
	}
	return json.Marshal(s)
}

// specOut and linuxOut encode a spec with linux.seccomp given as JSON.
type specOut struct {
	*specs.Spec
	Linux *linuxOut `json:"linux,omitempty"`
}

type linuxOut struct {
	*specs.Linux
	Seccomp json.RawMessage `json:"seccomp,omitempty"`
}

// specIn is a spec whose linux.seccomp is read as seccompIn. The outer
// fields shadow the embedded ones of the same JSON name.
type specIn struct {
	specs.Spec
	Linux *linuxIn `json:"linux,omitempty"`
}

type linuxIn struct {
	specs.Linux
	Seccomp *seccompIn `json:"seccomp,omitempty"`
}

// seccompIn is the client's filter, decoded whole, once per distinct text
// (seccomp.DecodeClient): the filter is shared and never modified.
type seccompIn struct{ filter *specs.LinuxSeccomp }

func (s *seccompIn) UnmarshalJSON(data []byte) (err error) {
	s.filter, err = seccomp.DecodeClient(data)
	return err
}

// WriteSpec atomically replaces bundle/config.json with s.
func WriteSpec(bundle string, s *specs.Spec) (retErr error) {
	data, err := EncodeSpec(s)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	path := filepath.Join(bundle, ConfigName)
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(bundle, ".config.json.palisade-*")
	if err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return fmt.Errorf("write spec %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write spec %s: %w", path, err)
	}
	return nil
}
