// Package names checks short identifiers (profile, secret, SELinux type and
// environment variable names) against a character set and a length bound.
//
// A regular expression such as ^[a-z0-9][a-z0-9-]{0,62}$ says the same, but
// Go compiles a counted repetition into one instruction per repetition: the
// five such patterns palisade had cost about 0.5 MB of heap and a
// millisecond at every start of the shim (and of its start process), for
// checks that are a loop over bytes.
package names

// Set is a set of ASCII bytes.
type Set [256]bool

// NewSet returns the set that a regexp character class spells with its
// ranges: "A-Za-z0-9._-" (a '-' at either end stands for itself).
func NewSet(class string) *Set {
	var s Set
	for i := 0; i < len(class); i++ {
		if i+2 < len(class) && class[i+1] == '-' {
			for c := int(class[i]); c <= int(class[i+2]); c++ {
				s[c] = true
			}
			i += 2
			continue
		}
		s[class[i]] = true
	}
	return &s
}

// Valid reports whether name is 1 to maxLen bytes long, its first byte in
// first and every other byte in rest: the regexp ^[first][rest]{0,maxLen-1}$.
func Valid(name string, first, rest *Set, maxLen int) bool {
	if len(name) == 0 || len(name) > maxLen || !first[name[0]] {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !rest[name[i]] {
			return false
		}
	}
	return true
}
