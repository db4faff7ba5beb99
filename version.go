// Package palisade holds what every palisade binary shares at the top of the
// module: the release version, read from the VERSION file at build time, and
// the commit a release was built from.
package palisade

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var versionFile string

// Version is the palisade release, e.g. "0.1.0".
var Version = strings.TrimSpace(versionFile)

// Commit is the git commit a release binary was built from, stamped by
// `make release` with -ldflags "-X palisade.dev/palisade.Commit=…"; empty in
// a development build.
var Commit string

// Full is the version as the binaries print it: "0.1.0" in a development
// build, "0.1.0 (commit 0123abcd…)" in a release.
func Full() string {
	if Commit == "" {
		return Version
	}
	return Version + " (commit " + Commit + ")"
}
