// Command demo is `make demo`: it starts a private containerd with palisade
// registered, runs a real container under palisade, shows from inside the
// container and from the audit record what palisade hardened, shows a
// refusal, and tears everything down.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func run() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the demo starts containerd and runc: run it as root")
	}
	tools, err := harness.FindTools()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "palisade-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	step("building the palisade shim, the CLI and the test image")
	build, err := harness.BuildAll(dir)
	if err != nil {
		return err
	}
	step("starting a private containerd %s with runc %s and palisade registered as %s",
		tools.Versions["containerd"], tools.Versions["runc"], harness.Runtime)
	env, err := harness.Start(harness.Options{Tools: tools, Build: build})
	if err != nil {
		return err
	}
	defer func() {
		step("tearing down containerd, shims, mounts and state")
		if err := env.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: teardown:", err)
		}
	}()

	id := "demo-web"
	step("ctr run --runtime %s --allow-new-privs %s %s probe report", harness.Runtime, env.Image(), id)
	fmt.Println("    (the client asks for new privileges; palisade's pipeline takes them away)")
	r := env.Run(id, []string{"--allow-new-privs"}, "/usr/bin/probe", "report", "-text")
	if r.Err != nil {
		return fmt.Errorf("%s", r)
	}
	fmt.Print(indent(r.Stdout))

	step("what palisade changed, from its audit record (%s)", env.AuditLog)
	recs, err := records(env.AuditLog)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.Container != id || rec.Event != audit.EventCreate {
			continue
		}
		fmt.Printf("    %s %s/%s: %s (admin config %s)\n", rec.Event, rec.Namespace, rec.Container, rec.Result, rec.Config)
		for _, c := range rec.Changes {
			fmt.Printf("      rule %-20s %v -> %v\n", c.Rule, c.Before, c.After)
		}
	}

	step("a broken admin config: palisade refuses the container and leaves nothing behind")
	bad := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(bad, []byte("version = 1\n[runc]\nrooot = \"/run/x\"\n"), 0o600); err != nil {
		return err
	}
	r = env.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", bad, env.Image(), "demo-refused", "/bin/true")
	if r.Err == nil {
		return fmt.Errorf("the container with a broken admin config was not refused")
	}
	fmt.Print(indent(lastLine(r.Stderr)))
	if left := env.Leftovers("demo-refused"); len(left) > 0 {
		return fmt.Errorf("the refused container left %v", left)
	}
	fmt.Println("    nothing left behind: no mount, bundle, runc state, cgroup or shim")
	return nil
}

func records(path string) ([]audit.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1] + "\n"
}
