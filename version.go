// Package palisade holds what every palisade binary shares at the top of the
// module: the release version, read from the VERSION file at build time.
package palisade

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var versionFile string

// Version is the palisade release, e.g. "0.1.0".
var Version = strings.TrimSpace(versionFile)
