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
func DecodeSpec(name string, data []byte) (*specs.Spec, error) {
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("spec %s is larger than %d bytes: %w", name, MaxSpecSize, errdefs.ErrInvalidArgument)
	}
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("spec %s is not a valid OCI spec: %w: %w", name, err, errdefs.ErrInvalidArgument)
	}
	if dec.More() {
		return nil, fmt.Errorf("spec %s has trailing data after the JSON object: %w", name, errdefs.ErrInvalidArgument)
	}
	return &s, nil
}

// WriteSpec atomically replaces bundle/config.json with s.
func WriteSpec(bundle string, s *specs.Spec) (retErr error) {
	data, err := json.Marshal(s)
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
