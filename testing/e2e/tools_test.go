package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	apitypes "github.com/containerd/containerd/api/types"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"

	"palisade.dev/palisade"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/hostinfo"
)

// containerd asks a runtime for its info (`shim -info`) with the runtime's
// options on stdin; for palisade those are runtimeoptions.v1.Options, which
// the stock runc manager cannot read. The shim translates them.
func TestShimInfoTranslatesRuntimeOptions(t *testing.T) {
	e := needEnv(t)
	opts, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: e.AdminConfig})
	if err != nil {
		t.Fatal(err)
	}
	in, err := proto.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	cmd := e.Command("containerd-shim-palisade-v2", "-info")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shim -info: %v: %s", err, stderr.String())
	}
	var info apitypes.RuntimeInfo
	if err := proto.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "io.containerd.palisade.v2" || info.GetVersion().GetVersion() != palisade.Version {
		t.Errorf("info names %q version %q", info.Name, info.GetVersion().GetVersion())
	}
	v, err := typeurl.UnmarshalAny(info.Options)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := v.(*runcoptions.Options); !ok || o.Root != e.RuncRoot {
		t.Errorf("info options %T %+v, want runc options with root %s", v, v, e.RuncRoot)
	}
	if info.Features == nil {
		t.Error("no runtime features: runc was not asked")
	}

	// A config body from the client is refused, with an error, not a crash.
	bad, _ := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigBody: []byte("bogus = 1\n")})
	in, _ = proto.Marshal(bad)
	cmd = e.Command("containerd-shim-palisade-v2", "-info")
	cmd.Stdin = bytes.NewReader(in)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "runtime options with a config body are not accepted") {
		t.Errorf("shim -info with a config body: %v: %s", err, out)
	}
}

func TestShimAndCLIReportTheVersion(t *testing.T) {
	e := needEnv(t)
	out, err := e.Command("containerd-shim-palisade-v2", "-v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), palisade.Version) {
		t.Errorf("shim -v: %v: %s", err, out)
	}
	out, err = e.Command("palisade", "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "palisade "+palisade.Version {
		t.Errorf("palisade version: %v: %s", err, out)
	}
}

// palisade doctor reaches the private containerd and finds runc with seccomp.
func TestDoctor(t *testing.T) {
	e := needEnv(t)
	cmd := e.Command("palisade", "doctor", "--address", e.Address, "-o", "json")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("doctor: %v", err)
	}
	var checks []hostinfo.Check
	if err := json.Unmarshal(out, &checks); err != nil {
		t.Fatal(err)
	}
	status := map[string]hostinfo.Check{}
	for _, c := range checks {
		status[c.Name] = c
	}
	if c := status["containerd"]; c.Status != hostinfo.OK || !strings.Contains(c.Detail, "2.4") {
		t.Errorf("containerd: %+v", c)
	}
	if c := status["runc"]; c.Status != hostinfo.OK || !strings.Contains(c.Detail, "libseccomp") {
		t.Errorf("runc: %+v", c)
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err == nil && status["cgroups"].Status != hostinfo.OK {
		t.Errorf("cgroups: %+v", status["cgroups"])
	}
}

// explain --container shows a container's audit receipt, found through
// containerd (its runtime options name the admin config, and so the audit file).
func TestExplainContainer(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "refused")
	r := e.Run(id, []string{"--cap-add", "CAP_SYS_ADMIN"}, "/bin/true")
	if r.Err == nil {
		t.Fatalf("not refused: %v", r)
	}
	out, err := e.Command("palisade", "explain", "--config", e.AdminConfig, "--container", id, "-n", e.Namespace).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "create "+e.Namespace+"/"+id+": refused under profile restricted") ||
		!strings.Contains(string(out), "capability CAP_SYS_ADMIN is not allowed") {
		t.Errorf("explain of a refused container: %v\n%s", err, out)
	}

	id = containerID(t, "kept")
	startDetached(t, e, id)
	defer removeContainer(t, e, id)
	out, err = e.Command("palisade", "explain", "--address", e.Address, "--container", id, "-n", e.Namespace).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": allowed under profile restricted") || !strings.Contains(string(out), "capabilities") {
		t.Errorf("explain through containerd: %v\n%s", err, out)
	}
}

// containerd runs `containerd-shim-palisade-v2 -info` with its own
// environment, not the shim manager's `env` that carries
// PALISADE_CONFIG_DIRS. The admin's list of trusted config directories in a
// file (here the build's, /etc/palisade/config-dirs on a node) makes the
// probe accept the config Create accepts, and palisade then advertises the
// same runtime features as the stock runc shim with the same runc.
func TestShimInfoWithContainerdsEnvironment(t *testing.T) {
	e := needEnv(t)
	probe := func(bin string, opts proto.Message) *apitypes.RuntimeInfo {
		t.Helper()
		a, err := typeurl.MarshalAnyToProto(opts)
		if err != nil {
			t.Fatal(err)
		}
		in, err := proto.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-info")
		cmd.Env = slices.DeleteFunc(e.ContainerdEnv(), func(kv string) bool { return strings.HasPrefix(kv, config.DirsEnv+"=") })
		cmd.Stdin = bytes.NewReader(in)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -info: %v: %s", bin, err, stderr.String())
		}
		var info apitypes.RuntimeInfo
		if err := proto.Unmarshal(out, &info); err != nil {
			t.Fatal(err)
		}
		return &info
	}
	got := probe(e.Binary("containerd-shim-palisade-v2"), &runtimeoptions.Options{ConfigPath: e.AdminConfig})
	want := probe(e.Tools().RuncShim, &runcoptions.Options{Root: e.RuncRoot})
	if got.Features == nil || !proto.Equal(got.Features, want.Features) {
		t.Errorf("palisade advertises features %v, the runc shim %v", got.Features, want.Features)
	}
	v, err := typeurl.UnmarshalAny(got.Options)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := v.(*runcoptions.Options); !ok || o.Root != e.RuncRoot {
		t.Errorf("info options %T %+v, want runc options with root %s", v, v, e.RuncRoot)
	}
}
