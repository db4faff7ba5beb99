package bench

import (
	"reflect"
	"testing"
)

// A mapping's header, not its VmFlags or other fields, starts a mapping;
// names with spaces survive; an anonymous mapping has no name.
func TestParseSmaps(t *testing.T) {
	const smaps = `00400000-00c00000 r-xp 00000000 fe:01 1234 /usr/bin/containerd-shim (deleted)
Size:               8192 kB
KernelPageSize:        4 kB
Rss:                6768 kB
Pss:                6768 kB
VmFlags: rd ex mr mw me
7f95bc000000-7f95bc021000 rw-p 00000000 00:00 0 
Size:                132 kB
Rss:                   4 kB
VmFlags: rd wr mr mw me ac
7ffc9f4de000-7ffc9f4ff000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
`
	want := []Mapping{
		{Range: "00400000-00c00000", Perms: "r-xp", Name: "/usr/bin/containerd-shim (deleted)", Size: 8192, Rss: 6768},
		{Range: "7f95bc000000-7f95bc021000", Perms: "rw-p", Size: 132, Rss: 4},
		{Range: "7ffc9f4de000-7ffc9f4ff000", Perms: "rw-p", Name: "[stack]", Size: 132, Rss: 16},
	}
	if got := ParseSmaps(smaps); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSmaps:\n got %+v\nwant %+v", got, want)
	}
	if got := ParseSmaps(""); got != nil {
		t.Errorf("ParseSmaps(\"\") = %+v, want none", got)
	}
}
