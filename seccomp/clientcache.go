package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Most containers that bring a filter of their own bring the same one: CRI
// puts the runtime's default profile (containerd's, Docker's) into every pod
// whose seccompProfile is RuntimeDefault. Decoding its ~400 names and
// combining it with the node's filter is the same work every time, so
// DecodeClient keeps each distinct filter text decoded once, and
// IntersectCached keeps each combination of a cached node filter with such a
// client filter, with its JSON for Encoded.
//
// What decides the answer is the key, whole: the client filter is found by
// the SHA-256 of its exact JSON text (and its text compared in full), the
// node filter by the identity of a ResolveCached result, which is never
// modified; so a client can only ever get the decoding of the bytes it sent,
// combined with the filter its own policy resolved to.

// maxClient bounds the client filters kept decoded, maxIntersected their
// combinations; past the bounds the work is simply done afresh.
const (
	maxClient      = 16
	maxIntersected = 32
)

type clientFilter struct {
	text []byte
	sc   *specs.LinuxSeccomp
}

type intersectKey struct {
	node, client *specs.LinuxSeccomp
	native       specs.Arch
}

var clientCache = struct {
	sync.Mutex
	byHash   map[[sha256.Size]byte]clientFilter
	interned map[*specs.LinuxSeccomp]bool
	combined map[intersectKey]*specs.LinuxSeccomp
}{
	byHash:   map[[sha256.Size]byte]clientFilter{},
	interned: map[*specs.LinuxSeccomp]bool{},
	combined: map[intersectKey]*specs.LinuxSeccomp{},
}

// DecodeClient decodes a client's filter (a spec's linux.seccomp, as JSON).
// The filter it returns may be shared with every other spec that carried the
// same text and must not be modified.
func DecodeClient(text []byte) (*specs.LinuxSeccomp, error) {
	sum := sha256.Sum256(text)
	clientCache.Lock()
	c, ok := clientCache.byHash[sum]
	clientCache.Unlock()
	if ok && bytes.Equal(c.text, text) {
		return c.sc, nil
	}
	sc := new(specs.LinuxSeccomp)
	if err := json.Unmarshal(text, sc); err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	clientCache.Lock()
	defer clientCache.Unlock()
	if _, ok := clientCache.byHash[sum]; !ok && len(clientCache.byHash) < maxClient {
		clientCache.byHash[sum] = clientFilter{text: bytes.Clone(text), sc: sc}
		clientCache.interned[sc] = true
	}
	return sc, nil
}

// IntersectCached is Intersect, remembered when node came from
// ResolveCached and workload from DecodeClient (both shared, never
// modified). The result is shared too and must not be modified.
func IntersectCached(node, workload *specs.LinuxSeccomp, native specs.Arch) *specs.LinuxSeccomp {
	key := intersectKey{node: node, client: workload, native: native}
	clientCache.Lock()
	cacheable := clientCache.interned[workload] && Encoded(node) != nil
	if out, ok := clientCache.combined[key]; ok && cacheable {
		clientCache.Unlock()
		return out
	}
	clientCache.Unlock()
	out := Intersect(node, workload, native)
	if !cacheable {
		return out
	}
	data, err := json.Marshal(out)
	if err != nil {
		return out
	}
	clientCache.Lock()
	defer clientCache.Unlock()
	if prev, ok := clientCache.combined[key]; ok {
		return prev
	}
	if len(clientCache.combined) < maxIntersected && remember(out, data) {
		clientCache.combined[key] = out
	}
	return out
}
