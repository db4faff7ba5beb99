package seccomp

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Resolving a profile and encoding the result is the same work for every
// container with the same architecture, capability set and ABI choice:
// ResolveCached does it once per profile version and keeps the JSON, which
// Encoded hands to the code that writes config.json.

// maxCached bounds the filters kept for one profile, and maxEncoded those
// kept in all: capability sets vary little on a node, and past the bound
// filters are simply resolved afresh.
const (
	maxCached  = 32
	maxEncoded = 128
)

type cacheKey struct {
	goarch   string
	bounding string // sorted and comma-joined
	abis     ABIs
}

type resolveCache struct {
	mu sync.Mutex
	m  map[cacheKey]*specs.LinuxSeccomp
}

// encodings maps each cached filter to its JSON. Cached filters are never
// modified, so the pointer identifies the bytes.
var encodings = struct {
	sync.RWMutex
	m map[*specs.LinuxSeccomp][]byte
}{m: map[*specs.LinuxSeccomp][]byte{}}

// ResolveCached is Resolve, remembered: the filter it returns is shared by
// every container that resolves the same way and must not be modified.
func ResolveCached(l *Loaded, goarch string, bounding []string, abis ABIs) (*specs.LinuxSeccomp, error) {
	if l.cache == nil {
		return Resolve(l, goarch, bounding, abis)
	}
	sorted := slices.Clone(bounding)
	slices.Sort(sorted)
	key := cacheKey{goarch: goarch, bounding: strings.Join(sorted, ","), abis: abis}
	c := l.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.m[key]; ok {
		return sc, nil
	}
	sc, err := Resolve(l, goarch, bounding, abis)
	if err != nil || len(c.m) >= maxCached {
		return sc, err
	}
	data, err := json.Marshal(sc)
	if err != nil {
		return sc, nil //nolint:nilerr // not cached; the spec's writer encodes it itself and reports the error
	}
	if remember(sc, data) {
		c.m[key] = sc
	}
	return sc, nil
}

// remember keeps a shared filter's JSON for Encoded, while there is room.
func remember(sc *specs.LinuxSeccomp, data []byte) bool {
	encodings.Lock()
	defer encodings.Unlock()
	if len(encodings.m) >= maxEncoded {
		return false
	}
	encodings.m[sc] = data
	return true
}

// Encoded returns the JSON of a filter ResolveCached returned, or nil for
// any other.
func Encoded(sc *specs.LinuxSeccomp) json.RawMessage {
	encodings.RLock()
	defer encodings.RUnlock()
	return encodings.m[sc]
}
