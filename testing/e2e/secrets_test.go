package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"palisade.dev/palisade/testing/harness"
)

// putSecret writes a secret into the environment's store under scope.
func putSecret(t *testing.T, e *harness.Env, scope, name, value string) {
	t.Helper()
	dir := filepath.Join(e.SecretStore, "containerd", scope)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
}

func assertNoSecretMounts(t *testing.T, e *harness.Env) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := e.SecretMounts(t)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("palisade secrets tmpfs still mounted: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertNowhere checks that a secret value appears in none of the places it
// must never reach: the audit file and containerd's (and the shims') log.
func assertNowhere(t *testing.T, e *harness.Env, values ...string) {
	t.Helper()
	auditData, _ := os.ReadFile(e.AuditLog)
	for _, v := range values {
		if strings.Contains(string(auditData), v) {
			t.Errorf("a secret value is in the audit file")
		}
		if strings.Contains(e.ContainerdLog(), v) {
			t.Errorf("a secret value is in the containerd/shim log")
		}
	}
}

func TestSecretsDelivered(t *testing.T) {
	e := needEnv(t)
	suffix := fmt.Sprint(time.Now().UnixNano())
	dbValue, tokValue := "db-pass-"+suffix, "tok-"+suffix
	putSecret(t, e, e.Namespace, "db-password", dbValue)
	putSecret(t, e, e.Namespace, "api-token", tokValue)
	script := strings.Join([]string{
		"echo VALUES; cat /run/secrets/db-password; echo; cat /run/secrets/api-token; echo",
		"echo STAT; stat -c '%a %u %g' /run/secrets/db-password /run/secrets/api-token; id -u",
		"echo MOUNT; grep ' /run/secrets ' /proc/self/mountinfo",
		"echo ENV; env; tr '\\0' '\\n' < /proc/1/environ",
		"echo WRITE; echo x > /run/secrets/new; echo write=$?",
		"echo EXEC; /run/secrets/db-password; echo exec=$?",
	}, "; ")
	id := containerID(t, "two")
	r := e.Run(id, []string{"--annotation", "palisade.dev/secrets=db-password,api-token"}, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	sections := map[string]string{}
	var cur string
	for _, line := range strings.Split(r.Stdout, "\n") {
		switch line {
		case "VALUES", "STAT", "MOUNT", "ENV", "WRITE", "EXEC":
			cur = line
			continue
		}
		sections[cur] += line + "\n"
	}
	if sections["VALUES"] != dbValue+"\n"+tokValue+"\n" {
		t.Errorf("secret contents: %q", sections["VALUES"])
	}
	if sections["STAT"] != "400 65534 65534\n400 65534 65534\n65534\n" {
		t.Errorf("secret files are not 0400 and owned by the container's user (65534): %q", sections["STAT"])
	}
	mnt := sections["MOUNT"]
	if !strings.Contains(mnt, " - tmpfs palisade-secrets ") || !strings.Contains(mnt, " ro,") || !strings.Contains(mnt, "nosuid") || !strings.Contains(mnt, "noexec") {
		t.Errorf("/run/secrets is not a read-only nosuid noexec tmpfs: %q", mnt)
	}
	if strings.Contains(sections["ENV"], dbValue) || strings.Contains(sections["ENV"], tokValue) {
		t.Error("a secret value is in the environment")
	}
	if !strings.Contains(sections["WRITE"], "write=1") && !strings.Contains(sections["WRITE"], "write=2") {
		t.Errorf("writing into /run/secrets did not fail: %q", sections["WRITE"])
	}
	if !strings.Contains(sections["EXEC"], "exec=126") {
		t.Errorf("executing a secret did not fail with 126: %q", sections["EXEC"])
	}
	assertClean(t, e, id)
	assertNoSecretMounts(t, e)
	assertNowhere(t, e, dbValue, tokValue)
	rec := findRecord(auditRecords(t, e, id), "create")
	if rec == nil || !strings.Contains(fmt.Sprint(rec.Changes), "secrets db-password, api-token") {
		t.Errorf("the audit record does not name the secrets: %+v", rec)
	}
}

// A palisade-secret: reference and a palisade.dev/secret-env move: the value
// reaches the process as a file, and nowhere else.
func TestSecretEnvReferenceAndMove(t *testing.T) {
	e := needEnv(t)
	suffix := fmt.Sprint(time.Now().UnixNano())
	refValue, movedValue := "ref-"+suffix, "moved-"+suffix
	putSecret(t, e, e.Namespace, "db-password", refValue)
	id := containerID(t, "env")
	args := append([]string{"run", "-d", "--env", "DB_PASSWORD=palisade-secret:db-password", "--env", "API_TOKEN=" + movedValue,
		"--env", "SERVICE_TOKEN_HINT=left-alone", "--annotation", "palisade.dev/secret-env=API_TOKEN"}, e.RunArgs()...)
	if r := e.Ctr(append(args, e.Image(), id, "/bin/sleep", "300")...); r.Err != nil {
		t.Fatalf("run -d: %v", r)
	}
	r := e.Ctr("tasks", "exec", "--exec-id", "read", id, "/bin/sh", "-c",
		`cat "$DB_PASSWORD_FILE"; echo; cat "$API_TOKEN_FILE"; echo; echo ENV; env; tr '\0' '\n' < /proc/1/environ`)
	if r.Err != nil {
		t.Fatalf("exec: %v", r)
	}
	files, env, _ := strings.Cut(r.Stdout, "ENV\n")
	if files != refValue+"\n"+movedValue+"\n" {
		t.Errorf("values through the _FILE variables: %q", files)
	}
	if strings.Contains(env, refValue) || strings.Contains(env, movedValue) || strings.Contains(env, "API_TOKEN=") {
		t.Errorf("a secret value or the moved variable is in the environment:\n%s", env)
	}
	bundleSpec, err := os.ReadFile(filepath.Join(e.Dir, "state", "io.containerd.runtime.v2.task", e.Namespace, id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(bundleSpec), movedValue) || strings.Contains(string(bundleSpec), refValue) {
		t.Error("a secret value is in the bundle's config.json")
	}
	rec := findRecord(auditRecords(t, e, id), "create")
	if rec == nil || !strings.Contains(fmt.Sprint(rec.Changes), "SERVICE_TOKEN_HINT looks like a secret") {
		t.Errorf("the secret-looking variable left in the environment is not audited: %+v", rec)
	}
	removeContainer(t, e, id)
	assertNoSecretMounts(t, e)
	assertNowhere(t, e, refValue, movedValue)
}

func TestSecretRefusals(t *testing.T) {
	e := needEnv(t)
	putSecret(t, e, "other-namespace", "theirs", "not-for-you")
	putSecret(t, e, e.Namespace, "big", strings.Repeat("x", 200))
	if err := os.Symlink("/etc/hostname", filepath.Join(e.SecretStore, "containerd", e.Namespace, "link")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	small := adminConfig(t, e, "secrets.max_size = 100\nsecrets.max_total = 1000\n")
	cases := []struct {
		name, annotation, config, want string
	}{
		{"missing", "palisade.dev/secrets=nope", "", `secret "nope" not found in scope "containerd/palisade-e2e"`},
		{"dotdot", "palisade.dev/secrets=../other-namespace/theirs", "", `secret name "../other-namespace/theirs" is not allowed`},
		{"slash", "palisade.dev/secrets=a/b", "", `secret name "a/b" is not allowed`},
		{"symlink", "palisade.dev/secrets=link", "", `secret "link" in scope "containerd/palisade-e2e" is a symlink`},
		{"oversized", "palisade.dev/secrets=big", small, `secret "big" in scope "containerd/palisade-e2e" is larger than 100 bytes`},
		{"other scope", "palisade.dev/secrets=theirs", "", `secret "theirs" not found in scope "containerd/palisade-e2e"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := e.AdminConfig
			if c.config != "" {
				cfg = c.config
			}
			id := containerID(t, "x")
			r := e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg, "--annotation", c.annotation, e.Image(), id, "/bin/true")
			if r.Err == nil || !strings.Contains(r.Stderr, c.want) {
				t.Errorf("want refusal containing %q, got %v", c.want, r)
			}
			assertClean(t, e, id)
			assertNoSecretMounts(t, e)
		})
	}
	assertNowhere(t, e, "not-for-you")
}

// After the shim is killed, containerd's cleanup (shim delete) removes the
// secrets tmpfs the shim could not.
func TestSecretsRemovedAfterShimKilled(t *testing.T) {
	e := needEnv(t)
	putSecret(t, e, e.Namespace, "crash", "crash-value")
	id := containerID(t, "kill")
	args := append([]string{"run", "-d", "--annotation", "palisade.dev/secrets=crash"}, e.RunArgs()...)
	if r := e.Ctr(append(args, e.Image(), id, "/bin/sleep", "300")...); r.Err != nil {
		t.Fatalf("run -d: %v", r)
	}
	if len(e.SecretMounts(t)) == 0 {
		t.Fatal("no secrets tmpfs while the container runs")
	}
	var shims []int
	for _, pid := range harness.ProcessesMentioning(e.Address) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(b), "\x00-id\x00"+id+"\x00") {
			shims = append(shims, pid)
		}
	}
	if len(shims) == 0 {
		t.Fatal("no shim process found")
	}
	for _, pid := range shims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	assertNoSecretMounts(t, e)
	e.Ctr("tasks", "delete", "-f", id)
	e.Ctr("containers", "delete", id)
	assertClean(t, e, id)
}

// A secrets tmpfs whose container's bundle is gone (its shim and
// containerd's cleanup both died) is removed by the next palisade shim that
// starts, in the background; one whose bundle exists is left alone.
func TestLeftoverSecretsSweptByNextShim(t *testing.T) {
	e := needEnv(t)
	fake := func(name, owner string) string {
		dir := filepath.Join(e.SecretMount, e.Namespace, containerID(t, name))
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+".bundle", []byte(owner), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("palisade-secrets", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0700"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
			_ = os.Remove(dir)
			_ = os.Remove(dir + ".bundle")
		})
		return dir
	}
	gone := fake("ghost", filepath.Join(e.Dir, "no-such-bundle"))
	live := fake("alive", e.Dir) // an existing directory stands for a live bundle
	id := containerID(t, "sweeper")
	if r := e.Ctr(append(append([]string{"run", "--rm"}, e.RunArgs()...), e.Image(), id, "/bin/true")...); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(e.SecretMounts(t), gone) {
		if time.Now().After(deadline) {
			t.Fatalf("the leftover secrets tmpfs %s is still mounted after a shim started", gone)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(gone + ".bundle"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the leftover's owner file is still there (%v)", err)
	}
	if !slices.Contains(e.SecretMounts(t), live) {
		t.Errorf("the sweep removed %s, whose bundle exists", live)
	}
	assertClean(t, e, id)
}

// A container whose create cannot be audited never runs: the create is
// refused with the reason, and nothing of it is left — no task, no
// secrets tmpfs. (The record is written while runc creates the container;
// the container would start only after the create answered.)
func TestContainerRefusedWhenItsRecordCannotBeWritten(t *testing.T) {
	e := needEnv(t)
	putSecret(t, e, e.Namespace, "audited", "audited-value")
	blocker := filepath.Join(e.Dir, "audit-blocker-"+strings.NewReplacer("/", "-").Replace(t.Name()))
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// the audit file's directory is a regular file: the record cannot be written
	body := fmt.Sprintf("version = 1\nrunc.root = %q\naudit.file = %q\nsecrets.store = %q\nsecrets.mount_root = %q\n",
		e.RuncRoot, filepath.Join(blocker, "audit.jsonl"), e.SecretStore, e.SecretMount)
	cfg := filepath.Join(e.ConfigDir, "unauditable.toml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	id := containerID(t, "unaudited")
	r := e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/secrets=audited", e.Image(), id, "/usr/bin/probe", "sleep", "300")
	if r.Err == nil || !strings.Contains(r.Stderr, "cannot write its audit record") {
		t.Fatalf("run without an auditable create: %v, want a refusal naming the audit record", r)
	}
	e.Ctr("containers", "delete", id)
	assertNoSecretMounts(t, e)
	assertClean(t, e, id)
}
