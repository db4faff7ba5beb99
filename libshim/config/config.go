// Package config loads palisade's admin configuration: the TOML file a node
// administrator writes to say how the shim runs runc and where decisions are
// audited. The file's path comes from containerd's runtime options
// (ConfigPath, or the file's body in ConfigBody), else DefaultPath, else the
// built-in defaults apply.
//
// Loading is strict: an unknown field, a wrong type or an invalid value is an
// error that names the file, the line and the field. The shim turns such an
// error into a refusal of every container, never into a crash or a silent
// fallback.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// DefaultPath is where the shim looks for the admin config when containerd's
// runtime options name none.
const DefaultPath = "/etc/palisade/config.toml"

// SchemaVersion is the config schema this build understands.
const SchemaVersion = 1

// maxFileSize bounds how much of a config file is read: a config is a few
// kilobytes; anything much larger is a mistake or an attack on the shim.
const maxFileSize = 1 << 20

// Source names for configs that do not come from a file.
const (
	SourceBuiltin = "<built-in defaults>"
	SourceBody    = "<runtime options ConfigBody>"
)

// Config is the admin configuration. Every field is documented in
// docs/config.md; absent fields keep the value of Default().
type Config struct {
	// Version is the schema version; absent means SchemaVersion.
	Version int `toml:"version"`
	// Runc says how the wrapped runc shim runs runc.
	Runc Runc `toml:"runc"`
	// Audit says where decision records go besides the shim log.
	Audit Audit `toml:"audit"`

	// Source is where this config came from: a file path, SourceBody or
	// SourceBuiltin. It is not read from the file.
	Source string `toml:"-"`
}

// Runc holds the options palisade passes to containerd's runc shim. They live
// in the admin config (not in the client's request) so that no client can
// point the shim at another runtime binary or state directory.
type Runc struct {
	// BinaryName is the OCI runtime binary: a name looked up in PATH, or an
	// absolute path. Default "runc".
	BinaryName string `toml:"binary_name"`
	// Root is runc's state directory (runc --root). Empty means runc's
	// default, /run/containerd/runc/<namespace>.
	Root string `toml:"root"`
	// SystemdCgroup makes runc manage cgroups through systemd.
	SystemdCgroup bool `toml:"systemd_cgroup"`
}

// Audit configures the audit sinks. Records always go to the shim log too.
type Audit struct {
	// File is an append-only JSON-lines file (created 0600). Empty disables
	// the file sink. Default /var/log/palisade/audit.jsonl.
	File string `toml:"file"`
}

// Default returns the built-in configuration.
func Default() *Config {
	return &Config{
		Version: SchemaVersion,
		Runc:    Runc{BinaryName: "runc"},
		Audit:   Audit{File: "/var/log/palisade/audit.jsonl"},
		Source:  SourceBuiltin,
	}
}

// Error is a problem with an admin config. It names the source, the position
// when known, the field, and what is wrong.
type Error struct {
	Source string
	Line   int // 0 when unknown
	Field  string
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid admin config ")
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	b.WriteString(" (fix the file; see docs/config.md)")
	return b.String()
}

// Unwrap gives the errdefs category: a bad config is an invalid argument.
func (e *Error) Unwrap() error { return errdefs.ErrInvalidArgument }

// LoadFile reads the config at path. A missing file is an error here: only
// Resolve falls back from DefaultPath to the built-in defaults.
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Source: path, Msg: fmt.Sprintf("cannot open: %v", errors.Unwrap(err))}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &Error{Source: path, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	return Parse(path, data)
}

// Parse decodes and validates a config body; source names it in errors.
func Parse(source string, data []byte) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, &Error{Source: source, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	}
	cfg := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, decodeError(source, err)
	}
	cfg.Source = source
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Resolve finds the config the shim must use: path if given, else
// DefaultPath if it exists, else the built-in defaults.
func Resolve(path string) (*Config, error) {
	if path != "" {
		return LoadFile(path)
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return LoadFile(DefaultPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, &Error{Source: DefaultPath, Msg: fmt.Sprintf("cannot stat: %v", err)}
	}
	return Default(), nil
}

func decodeError(source string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		first := strict.Errors[0]
		row, _ := first.Position()
		return &Error{Source: source, Line: row, Field: strings.Join(first.Key(), "."), Msg: "unknown field (check the spelling)"}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return &Error{Source: source, Line: row, Field: strings.Join(de.Key(), "."), Msg: de.Error()}
	}
	return &Error{Source: source, Msg: err.Error()}
}

func (c *Config) validate() error {
	bad := func(field, msg string) error { return &Error{Source: c.Source, Field: field, Msg: msg} }
	if c.Version != SchemaVersion {
		return bad("version", fmt.Sprintf("schema version %d is not supported (this palisade reads version %d)", c.Version, SchemaVersion))
	}
	switch {
	case c.Runc.BinaryName == "":
		return bad("runc.binary_name", "must not be empty")
	case strings.ContainsRune(c.Runc.BinaryName, '/') && !filepath.IsAbs(c.Runc.BinaryName):
		return bad("runc.binary_name", fmt.Sprintf("%q must be a bare name or an absolute path", c.Runc.BinaryName))
	}
	if c.Runc.Root != "" && !filepath.IsAbs(c.Runc.Root) {
		return bad("runc.root", fmt.Sprintf("%q is not an absolute path", c.Runc.Root))
	}
	if c.Audit.File != "" && !filepath.IsAbs(c.Audit.File) {
		return bad("audit.file", fmt.Sprintf("%q is not an absolute path", c.Audit.File))
	}
	return nil
}
