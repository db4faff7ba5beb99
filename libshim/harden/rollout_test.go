package harden

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/caps"
)

func TestImagePatterns(t *testing.T) {
	cases := []struct {
		repo string
		pats []string
		want bool
	}{
		{"docker.io/library/nginx", []string{"docker.io/library/nginx"}, true},
		{"docker.io/library/nginx", []string{"docker.io/library/*"}, true},
		{"docker.io/library/nginx", []string{"docker.io/*"}, true},
		{"docker.io/library/nginx", []string{"*"}, true},
		{"docker.io/library/nginx", []string{"docker.io/lib*"}, false},
		{"docker.io/library/nginxx", []string{"docker.io/library/nginx"}, false},
		{"evil.io/docker.io/library/nginx", []string{"docker.io/library/*"}, false},
	}
	for _, c := range cases {
		if got := imageAllowed(c.repo, c.pats); got != c.want {
			t.Errorf("%s against %v: %v", c.repo, c.pats, got)
		}
	}
	req := request(t, "", nil)
	req.Config.Images.Allowed = []string{"docker.io/library/*"}
	for img, want := range map[string]string{
		"nginx:1.27":                 "",
		"docker.io/library/nginx":    "",
		"quay.io/evil/nginx":         "is not approved",
		"":                           "the container's image is not known",
		"bad@@ref":                   "is not a valid reference",
		"nginx@sha256:" + hex64("a"): "",
		// containerd's CRI reads these as (the start of) a local image's ID
		"sha256:" + hex64("a"):                           "is an image ID",
		"sha256:aaaaaaaaaaaa":                            "is an image ID",
		"sha512:aaaaaaaaaaaa":                            "is an image ID",
		"sha256:x@sha256:" + hex64("a"):                  "is an image ID",
		"docker.io/library/sha256:aaaa":                  "",
		"registry.example.com:5000/sha256:" + hex64("a"): "is not approved",
	} {
		r := *req
		r.Image, r.imageRef = func() string { return img }, nil
		if why, _ := r.imageProblem(); (want == "") != (why == "") || !strings.Contains(why, want) {
			t.Errorf("%q: %q, want %q", img, why, want)
		}
	}
	r := *req
	r.Config.Images.RequireDigest = true
	r.Image, r.imageRef = func() string { return "nginx:1.27" }, nil
	if why, _ := r.imageProblem(); !strings.Contains(why, "not pinned by digest") {
		t.Errorf("digest required: %q", why)
	}
}

func hex64(c string) string { return strings.Repeat(c, 64) }

// In alert mode the alertable rules record and fall back; the others still
// refuse.
func TestAlertMode(t *testing.T) {
	req := request(t, "", nil)
	req.Policy.Alert = true
	s := ctrSpec()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_TIME"}}
	s.Linux.Sysctl = map[string]string{"kernel.msgmax": "1"}
	changes, err := hardenInPlace(req, s)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, c := range changes {
		if c.WouldRefuse != nil {
			subjects = append(subjects, c.WouldRefuse.Subject+" "+c.WouldRefuse.Value)
		}
	}
	if strings.Join(subjects, ";") != "capability CAP_SYS_TIME;sysctl kernel.msgmax" {
		t.Errorf("would-refuse records %v", subjects)
	}
	if len(s.Process.Capabilities.Bounding) != 0 || len(s.Linux.Sysctl) != 0 {
		t.Errorf("alert mode granted what it recorded: caps %v sysctls %v", s.Process.Capabilities, s.Linux.Sysctl)
	}
	s = ctrSpec()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allHostCaps(t)}
	refusal(t, harden(t, req, s), "privileged", "privileged containers are not allowed")
	_ = audit.SubjectImage
}

func allHostCaps(t *testing.T) []string {
	t.Helper()
	all, err := caps.Host()
	if err != nil {
		t.Fatal(err)
	}
	return all
}
