// Package docgen keeps generated sections of the Markdown docs in step with
// the code they describe. A section sits between two marker comments:
//
//	<!-- BEGIN NAME: generated from the code: ... -->
//	...
//	<!-- END NAME -->
//
// A package's test renders the section from its tables and calls Check,
// which fails when the file differs, or rewrites it under -update.
package docgen

import (
	"fmt"
	"os"
	"strings"
)

func markers(name string) (string, string) {
	return "<!-- BEGIN " + name + ": generated from the code: the Documented test of its package, run with -update, rewrites it -->\n", "<!-- END " + name + " -->\n"
}

// Section returns the text between NAME's markers in the file at path.
func Section(path, name string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	begin, end := markers(name)
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("%s has no generated section %q (markers %q … %q)", path, name, strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	return s[i+len(begin) : j], nil
}

// Check compares the section NAME of the file at path with want; with
// update it rewrites the section instead. It returns a description of the
// difference, or "".
func Check(path, name, want string, update bool) (string, error) {
	have, err := Section(path, name)
	if err != nil {
		return "", err
	}
	if have == want {
		return "", nil
	}
	if !update {
		return fmt.Sprintf("%s: section %q is out of date with the code (run go test with -update):\n--- have\n%s--- want\n%s", path, name, have, want), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	begin, _ := markers(name)
	s := string(data)
	i := strings.Index(s, begin) + len(begin)
	s = s[:i] + want + s[i+len(have):]
	return "", os.WriteFile(path, []byte(s), 0o644)
}
