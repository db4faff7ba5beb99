package names

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// Valid says exactly what the regexps it replaced said, for random strings
// over the sets' bytes and their neighbours (and a few bytes beyond ASCII),
// at every length around the bound.
func TestValidIsTheRegexp(t *testing.T) {
	for _, c := range []struct {
		re          string
		first, rest string
		max         int
	}{
		{`^[A-Za-z_][A-Za-z0-9_]{0,127}$`, "A-Za-z_", "A-Za-z0-9_", 128},
		{`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, "A-Za-z0-9", "A-Za-z0-9._-", 128},
		{`^[A-Za-z0-9_]{1,128}$`, "A-Za-z0-9_", "A-Za-z0-9_", 128},
		{`^[a-z0-9][a-z0-9-]{0,62}$`, "a-z0-9", "a-z0-9-", 63},
		{`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`, "A-Za-z0-9", "A-Za-z0-9._-", 100},
	} {
		re := regexp.MustCompile(c.re)
		first, rest := NewSet(c.first), NewSet(c.rest)
		var members []byte
		for b := range 256 {
			if rest[b] || first[b] {
				members = append(members, byte(b))
			}
		}
		odd := []byte("azAZ09_-./:\n \x00\x7f\xc3\xa9`{@[")
		r := rand.New(rand.NewPCG(1, uint64(len(c.re))))
		matched := 0
		for n := 0; n < 20000; n++ {
			size := r.IntN(c.max + 3)
			b := make([]byte, size)
			for i := range b {
				switch r.IntN(200) {
				case 0:
					b[i] = odd[r.IntN(len(odd))]
				case 1:
					b[i] = byte(r.IntN(256))
				default:
					b[i] = members[r.IntN(len(members))]
				}
			}
			s := string(b)
			got, want := Valid(s, first, rest, c.max), re.MatchString(s)
			if got != want {
				t.Fatalf("%s: %q: Valid %v, regexp %v", c.re, s, got, want)
			}
			if want {
				matched++
			}
		}
		if matched < 1000 || matched > 19000 {
			t.Errorf("%s: %d of 20000 random names matched: the test does not exercise both answers", c.re, matched)
		}
		for _, s := range []string{"", "a", "A", "0", "_", "-", ".", "a-b", "a.b", "a_b", "aB", string(make([]byte, c.max))} {
			if got, want := Valid(s, first, rest, c.max), re.MatchString(s); got != want {
				t.Errorf("%s: %q: Valid %v, regexp %v", c.re, s, got, want)
			}
		}
	}
}
