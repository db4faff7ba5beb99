package lsm

import (
	"strings"
	"testing"
)

func TestConfinementProblem(t *testing.T) {
	for _, c := range []struct {
		aa, se string
		bad    bool
	}{
		{"", "", false},
		{"palisade-restricted-0123456789ab", "system_u:system_r:container_t:s0:c1,c2", false},
		{"unconfined", "", true},
		{"", "system_u:system_r:spc_t:s0", true},
		{"", "unconfined_u:unconfined_r:unconfined_t:s0", true},
		{"", "system_u:system_r:my_unconfined_domain_t:s0", true},
		{"", "system_u:system_r:container_runtime_t:s0", true},
		{"", "garbage", true},
	} {
		if got := ConfinementProblem(c.aa, c.se); (got != "") != c.bad {
			t.Errorf("ConfinementProblem(%q, %q) = %q, want bad=%v", c.aa, c.se, got, c.bad)
		}
	}
}

func TestClientLabel(t *testing.T) {
	const level = "s0:c3,c7"
	for _, c := range []struct {
		label, want string
	}{
		{"system_u:system_r:container_t:s0:c3,c7", ""},
		{"system_u:system_r:container_init_t:s0:c3,c7", ""},
		{"system_u:system_r:container_t:s0:c1,c2", "not the one palisade reserved"},
		{"system_u:system_r:container_t:s0", "not the one palisade reserved"},
		{"system_u:system_r:svirt_sandbox_file_t:s0:c3,c7", "is not allowed"},
		{"nonsense", "not a user:role:type"},
	} {
		err := CheckClientLabel(c.label, "container_t", []string{"container_init_t"}, level)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckClientLabel(%q) = %v, want %q", c.label, err, c.want)
		}
	}
}

// Without SELinux on the host the labels are built from the defaults.
func TestSELinuxLabelsWithoutHost(t *testing.T) {
	p, m, err := SELinuxLabels(Host{}, "container_t", "container_file_t", "s0:c1,c2")
	if err != nil || p != "system_u:system_r:container_t:s0:c1,c2" || m != "system_u:object_r:container_file_t:s0:c1,c2" {
		t.Fatalf("labels %q %q %v", p, m, err)
	}
	if ValidSELinuxType("spc_t") == "" || ValidSELinuxType("a:b") == "" || ValidSELinuxType("container_t") != "" {
		t.Error("ValidSELinuxType")
	}
}
