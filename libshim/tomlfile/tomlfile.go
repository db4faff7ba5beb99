// Package tomlfile decodes the TOML files palisade reads (the admin config,
// profiles) strictly: unknown fields, wrong types and syntax errors become an
// *Error naming the file, the line and the field, never a silent default.
package tomlfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// Error is a problem in a file: what kind of file, where, which field, what
// is wrong, and where to read more.
type Error struct {
	What   string // "admin config", "profile"
	Source string // path, or a description such as "<runtime options ConfigBody>"
	Line   int    // 0 when unknown
	Field  string
	Msg    string
	Hint   string // e.g. "see docs/config.md"
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s %s", e.What, e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// Unwrap gives the errdefs category: a bad file is an invalid argument.
func (e *Error) Unwrap() error { return errdefs.ErrInvalidArgument }

// Decode decodes data into v, refusing unknown fields and data larger than
// max bytes. what, source and hint go into the *Error it returns.
func Decode(what, source, hint string, data []byte, max int, v any) error {
	fail := func(line int, field, msg string) error {
		return &Error{What: what, Source: source, Line: line, Field: field, Msg: msg, Hint: hint}
	}
	if len(data) > max {
		return fail(0, "", fmt.Sprintf("larger than %d bytes", max))
	}
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		first := strict.Errors[0]
		row, _ := first.Position()
		return fail(row, strings.Join(first.Key(), "."), "unknown field (check the spelling)")
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return fail(row, strings.Join(de.Key(), "."), de.Error())
	}
	return fail(0, "", err.Error())
}
