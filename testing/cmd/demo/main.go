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
	env, closeEnv, err := harness.Launch(func(msg string) { step("%s", msg) })
	if err != nil {
		return err
	}
	defer func() {
		if err := closeEnv(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: teardown:", err)
		}
	}()
	dir, err := os.MkdirTemp("", "palisade-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	id := "demo-web"
	step("ctr run --runtime %s --allow-new-privs %s %s probe report", harness.Runtime, env.Image(), id)
	fmt.Println("    (a plain ctr run: root, the runtime's 14 default capabilities, and new privileges allowed;")
	fmt.Println("     palisade's default profile \"restricted\" decides what the container really gets)")
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
		fmt.Printf("    %s %s/%s: %s under profile %s (admin config %s)\n", rec.Event, rec.Namespace, rec.Container, rec.Result, rec.Profile, rec.Config)
		for _, c := range rec.Changes {
			fmt.Printf("      %-18s %v -> %v\n", c.Rule, c.Before, c.After)
		}
	}

	step("attacks from inside the container")
	attacks := []struct{ what, cmd string }{
		{"write to the root filesystem", "probe try write /etc/evil"},
		{"write to /tmp", "probe try write /tmp/scratch"},
		{"run a program copied to /tmp", "probe try copyexec /usr/bin/probe /tmp/payload"},
		{"fork 400 processes", "probe try fork 400"},
		{"read /proc/interrupts (masked)", "probe try read /proc/interrupts"},
		{"write /proc/sys", "probe try write /proc/sys/kernel/domainname"},
		{"open a raw socket", "probe try rawsocket"},
		{"unshare namespaces", "probe try unshare"},
		{"ptrace (seccomp)", "probe try syscall ptrace"},
		{"io_uring_setup (seccomp)", "probe try syscall io_uring_setup"},
		{"keyctl (seccomp)", "probe try syscall keyctl"},
		{"clone a user namespace (seccomp)", "probe try syscall clone-newuser"},
	}
	var script []string
	for _, a := range attacks {
		script = append(script, a.cmd)
	}
	r = env.Run("demo-attacks", nil, "/bin/sh", "-c", strings.Join(script, "; "))
	if r.Err != nil {
		return fmt.Errorf("%s", r)
	}
	for i, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		var o struct {
			OK     bool   `json:"ok"`
			Errno  string `json:"errno"`
			Detail string `json:"detail"`
		}
		if i >= len(attacks) || json.Unmarshal([]byte(line), &o) != nil {
			return fmt.Errorf("unexpected probe output %q", line)
		}
		verdict := "allowed"
		if !o.OK {
			verdict = "refused by the kernel: " + o.Errno
		}
		if o.Detail != "" {
			verdict += " (" + o.Detail + ")"
		}
		fmt.Printf("    %-32s %s\n", attacks[i].what, verdict)
	}

	step("profile \"locked\": only the entrypoint may be executed, enforced by the kernel (Landlock)")
	locked, err := env.WriteAdminConfig("locked.toml", `selectable_profiles = ["locked"]`)
	if err != nil {
		return err
	}
	r = env.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", locked, "--annotation", "palisade.dev/profile=locked",
		env.Image(), "demo-locked", "/bin/sh", "-c", "echo 'the entrypoint (sh) runs'; /usr/bin/probe report; echo \"probe exit code: $?\"")
	if r.Err != nil {
		return fmt.Errorf("%s", r)
	}
	fmt.Print(indent(strings.TrimSpace(r.Stdout) + "\n" + strings.TrimSpace(withoutLogLines(r.Stderr))))

	step("a secret, delivered as a file on a read-only tmpfs, never through the environment")
	if err := os.MkdirAll(filepath.Join(env.SecretStore, "containerd", env.Namespace), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(env.SecretStore, "containerd", env.Namespace, "db-password"), []byte("correct horse battery staple"), 0o600); err != nil {
		return err
	}
	r = env.Run("demo-secret", []string{"--env", "DB_PASSWORD=palisade-secret:db-password"}, "/bin/sh", "-c",
		`echo "DB_PASSWORD_FILE=$DB_PASSWORD_FILE"; ls -ln /run/secrets; echo "env has the value: $(env | grep -c 'correct horse' || true)"; grep ' /run/secrets ' /proc/self/mountinfo | cut -d' ' -f5,6,9-`)
	if r.Err != nil {
		return fmt.Errorf("%s", r)
	}
	fmt.Print(indent(r.Stdout))

	step("what palisade refuses outright (nothing is created, nothing is left behind)")
	bad := filepath.Join(env.ConfigDir, "broken.toml") // a directory the node trusts
	if err := os.WriteFile(bad, []byte("version = 1\n[runc]\nrooot = \"/run/x\"\n"), 0o600); err != nil {
		return err
	}
	mine := filepath.Join(dir, "mine.toml") // a config a client brings along
	if err := os.WriteFile(mine, []byte("[overrides.restricted]\ncapabilities_allowed = [\"SYS_ADMIN\"]\n"), 0o600); err != nil {
		return err
	}
	refusals := []struct {
		what string
		args []string
	}{
		{"ctr run --privileged", append(env.RunArgs(), "--privileged")},
		{"ctr run --cap-add CAP_SYS_ADMIN", append(env.RunArgs(), "--cap-add", "CAP_SYS_ADMIN")},
		{"ctr run --net-host", append(env.RunArgs(), "--net-host")},
		{"a bind of containerd's state directory (found from this node, not assumed)", append(env.RunArgs(), "--mount", "type=bind,src="+filepath.Join(env.Dir, "state")+",dst=/x,options=rbind:ro")},
		{"joining the host's PID namespace by path", append(env.RunArgs(), "--with-ns", fmt.Sprintf("pid:/proc/%d/ns/pid", os.Getpid()))},
		{"a broken admin config", []string{"--runtime", harness.Runtime, "--runtime-config-path", bad}},
		{"an admin config the client brings along", []string{"--runtime", harness.Runtime, "--runtime-config-path", mine, "--cap-add", "CAP_SYS_ADMIN"}},
	}
	for i, rf := range refusals {
		rid := fmt.Sprintf("demo-refused-%d", i)
		args := append(append([]string{"run", "--rm"}, rf.args...), env.Image(), rid, "/bin/true")
		r := env.Ctr(args...)
		if r.Err == nil {
			return fmt.Errorf("%s was not refused", rf.what)
		}
		if left := env.Leftovers(rid); len(left) > 0 {
			return fmt.Errorf("the refused container left %v", left)
		}
		fmt.Printf("    %s:\n    %s", rf.what, indent(strings.TrimPrefix(lastLine(r.Stderr), "ctr: failed to create shim task: ")))
	}
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

// withoutLogLines drops ctr's own log lines (time="..." level=...).
func withoutLogLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "time=") && strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
