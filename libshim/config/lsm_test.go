package config

import (
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/lsm"
)

func TestLSMDefaultsAndParse(t *testing.T) {
	d := Default()
	if d.SELinux.Mode != lsm.IfAvailable || d.AppArmor.Mode != lsm.IfAvailable || d.SELinux.Type != "container_t" {
		t.Errorf("LSM defaults %+v %+v", d.SELinux, d.AppArmor)
	}
	cfg, err := Parse("t.toml", []byte("[selinux]\nmode = \"require\"\ntype = \"my_container_t\"\nallowed_types = [\"container_init_t\"]\n[apparmor]\nmode = \"off\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SELinux.Mode != lsm.Require || cfg.SELinux.Type != "my_container_t" || cfg.SELinux.MountType != "container_file_t" ||
		len(cfg.SELinux.AllowedTypes) != 1 || cfg.AppArmor.Mode != lsm.Off {
		t.Errorf("parsed %+v %+v", cfg.SELinux, cfg.AppArmor)
	}
}

func TestLSMInvalid(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"[selinux]\nmode = \"required\"\n", `bad.toml: field "selinux.mode": "required" is not one of require, if-available, off`},
		{"[apparmor]\nmode = \"on\"\n", `field "apparmor.mode"`},
		{"[selinux]\ntype = \"spc_t\"\n", `field "selinux.type": "spc_t" runs containers unconfined`},
		{"[selinux]\nallowed_types = [\"container_t\", \"unconfined_t\"]\n", `field "selinux.allowed_types[1]"`},
		{"[selinux]\nmount_type = \"a:b\"\n", `field "selinux.mount_type"`},
		{"[selinux]\ncategories = 1\n", `field "selinux.categories"`},
		{"[selinux]\nstate_dir = \"run/x\"\n", `field "selinux.state_dir"`},
		{"[selinux]\nmod = \"off\"\n", `field "selinux.mod": unknown field`},
	} {
		_, err := Parse("bad.toml", []byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.body, err, c.want)
		}
	}
}
