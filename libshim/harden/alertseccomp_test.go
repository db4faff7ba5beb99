package harden

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const agentSocket = "/run/palisade/alert/0123.sock"

func renderedFilter(t *testing.T, req *Request) (*specs.LinuxSeccomp, *Plan) {
	t.Helper()
	plan, _, err := Harden(req, ctrSpec())
	if err != nil {
		t.Fatal(err)
	}
	return plan.Spec.Linux.Seccomp, plan
}

// Enforce mode renders the same filter whether or not the shim runs a
// seccomp agent: no NOTIFY action, no listener. Alert mode with an agent
// hands calls to it; alert mode without one (palisade run) enforces.
func TestAlertSeccompLeavesEnforceAlone(t *testing.T) {
	plain, _ := renderedFilter(t, request(t, "", nil))
	withAgent := request(t, "", nil)
	withAgent.SeccompAgent = agentSocket
	enforce, plan := renderedFilter(t, withAgent)
	a, _ := json.Marshal(plain)
	b, _ := json.Marshal(enforce)
	if string(a) != string(b) {
		t.Fatal("enforce mode renders another filter when the shim runs an agent")
	}
	if strings.Contains(string(b), "SCMP_ACT_NOTIFY") || strings.Contains(string(b), "listenerPath") || plan.SeccompAgent != "" {
		t.Fatalf("enforce mode hands calls to a listener: %s", b)
	}

	alert := request(t, "", nil)
	alert.Policy.Alert, alert.SeccompAgent = true, agentSocket
	got, plan := renderedFilter(t, alert)
	if got.ListenerPath != agentSocket || plan.SeccompAgent != agentSocket || !slices.ContainsFunc(got.Syscalls, func(r specs.LinuxSyscall) bool {
		return r.Action == specs.ActNotify && slices.Contains(r.Names, "unshare")
	}) {
		t.Fatalf("alert mode: listener %q, rules %+v", got.ListenerPath, got.Syscalls)
	}
	// hardening the hardened spec changes nothing
	again, _, err := Harden(alert, plan.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if x, y := mustJSON(t, plan.Spec.Linux.Seccomp), mustJSON(t, again.Spec.Linux.Seccomp); x != y {
		t.Error("alert mode is not idempotent")
	}

	noAgent := request(t, "", nil)
	noAgent.Policy.Alert = true
	if got, _ := renderedFilter(t, noAgent); got.ListenerPath != "" || string(mustJSONb(t, got)) != string(a) {
		t.Error("alert mode without an agent does not render the enforce filter")
	}
}

// The verification pass refuses a listener other than the container's agent
// in alert mode, and any listener or NOTIFY rule in enforce mode.
func TestVerifySeccompListener(t *testing.T) {
	alert := request(t, "", nil)
	alert.Policy.Alert, alert.SeccompAgent = true, agentSocket
	_, plan := renderedFilter(t, alert)
	if why := verifySeccomp(alert, nil, plan.Spec); why != "" {
		t.Fatalf("the agent's own filter: %s", why)
	}
	other := *plan.Spec.Linux.Seccomp
	other.ListenerPath = "/tmp/evil.sock"
	s := *plan.Spec
	s.Linux = &specs.Linux{Seccomp: &other}
	if why := verifySeccomp(alert, nil, &s); !strings.Contains(why, "listener other than") {
		t.Errorf("another listener: %q", why)
	}
	enforce := request(t, "", nil)
	enforce.SeccompAgent = agentSocket
	if why := verifySeccomp(enforce, nil, plan.Spec); why == "" {
		t.Error("enforce mode accepts a filter handing calls to the agent")
	}
	other.ListenerPath = ""
	if why := verifySeccomp(enforce, nil, &s); !strings.Contains(why, "in enforce mode") {
		t.Errorf("NOTIFY rules without a listener: %q", why)
	}
}

func mustJSON(t *testing.T, v any) string { return string(mustJSONb(t, v)) }

func mustJSONb(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
