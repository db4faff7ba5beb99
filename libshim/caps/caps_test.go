package caps

import (
	"slices"
	"testing"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"net_bind_service":       "CAP_NET_BIND_SERVICE",
		"CAP_IPC_LOCK":           "CAP_IPC_LOCK",
		" sys_admin ":            "CAP_SYS_ADMIN",
		"cap_checkpoint_restore": "CAP_CHECKPOINT_RESTORE",
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "CAP_", "NET_BIND", "CAP_SYS_ADMINN", "all"} {
		if _, err := Canonical(bad); err == nil {
			t.Errorf("Canonical(%q) accepted", bad)
		}
	}
}

func TestRuntimeDefaultIsKnownAndSorted(t *testing.T) {
	if !slices.IsSorted(RuntimeDefault) || len(RuntimeDefault) != 14 {
		t.Fatalf("RuntimeDefault must be the 14 default capabilities, sorted: %v", RuntimeDefault)
	}
	for _, c := range RuntimeDefault {
		if _, err := Canonical(c); err != nil || !Supported(c) {
			t.Errorf("%s: %v", c, err)
		}
	}
	if !slices.Contains(All(), "CAP_SYS_ADMIN") {
		t.Error("All() lacks CAP_SYS_ADMIN")
	}
}
