package critest

import (
	"strings"
	"testing"
)

const (
	specStart   = "[k8s.io] Container runtime should support basic operations on container runtime should support starting container [Conformance]"
	specHostPID = "[k8s.io] Security Context NamespaceOption runtime should support HostPID"
	specPort    = "[k8s.io] Networking runtime should support port mapping with host port and container port [Conformance]"
	specDigest  = "[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance] [Serial]"
	specSysctl  = "[k8s.io] PodSandbox runtime should support sysctls should support unsafe sysctls"
)

func readSample(t *testing.T) (runc, palisade map[string]Result) {
	t.Helper()
	runc, err := ReadJUnit("testdata/runc.xml")
	if err != nil {
		t.Fatal(err)
	}
	palisade, err = ReadJUnit("testdata/palisade.xml")
	if err != nil {
		t.Fatal(err)
	}
	return runc, palisade
}

// The recorded reports (ginkgo's JUnit format, as critest writes it) are
// read spec by spec, without the "[It] " prefix, with failure messages; a
// suite node that passed is not a spec.
func TestReadJUnit(t *testing.T) {
	runc, palisade := readSample(t)
	if len(runc) != 5 || len(palisade) != 5 {
		t.Fatalf("read %d and %d specs, want 5 each: %v", len(runc), len(palisade), runc)
	}
	if r := runc[specStart]; r.Status != Passed || r.Failing() {
		t.Errorf("%s = %+v, want passed", specStart, r)
	}
	if r := palisade[specHostPID]; !r.Failing() || !strings.Contains(r.Message, "[rule namespaces") {
		t.Errorf("%s = %+v, want failed with palisade's refusal", specHostPID, r)
	}
	if s := Summary(palisade[specHostPID].Message); s != "palisade: container k8s.io/abc: the host PID namespace is not allowed [rule namespaces, profile restricted]" {
		t.Errorf("summary of palisade's refusal: %q", s)
	}
	if r := runc[specSysctl]; r.Status != Skipped || r.Failing() || r.Message != "focus" {
		t.Errorf("%s = %+v, want skipped", specSysctl, r)
	}
}

// Each spec gets its verdict: a palisade-only failure is on purpose only
// when the reviewed list has it and, where the list asks, palisade's
// refusal is in the failure; otherwise it is unexpected.
func TestCompare(t *testing.T) {
	runc, palisade := readSample(t)
	deliberate := map[string]Reason{specHostPID: {Rule: "namespaces", Why: "host PID is refused", Message: "[rule namespaces"}}
	verdicts := func(d map[string]Reason) map[string]Verdict {
		v := map[string]Verdict{}
		for _, r := range Compare(runc, palisade, d) {
			v[r.Spec] = r.Verdict
		}
		return v
	}
	want := map[string]Verdict{specStart: Same, specHostPID: OnPurpose, specPort: Unexpected, specDigest: Environment, specSysctl: Same}
	got := verdicts(deliberate)
	for spec, w := range want {
		if got[spec] != w {
			t.Errorf("%s: verdict %q, want %q", spec, got[spec], w)
		}
	}
	if v := verdicts(nil)[specHostPID]; v != Unexpected {
		t.Errorf("unlisted palisade-only failure: verdict %q, want unexpected", v)
	}
	wrongMessage := map[string]Reason{specHostPID: {Rule: "namespaces", Message: "[rule privileged"}}
	if v := verdicts(wrongMessage)[specHostPID]; v != Unexpected {
		t.Errorf("failure without the listed refusal: verdict %q, want unexpected", v)
	}
	stale := map[string]Reason{specHostPID: deliberate[specHostPID], specStart: {Rule: "user"}}
	if s := Stale(Compare(runc, palisade, stale), stale); len(s) != 1 || s[0] != specStart {
		t.Errorf("stale entries = %v, want [%s]", s, specStart)
	}
}

// The table goes between the document's markers, replacing the old one and
// keeping everything around it; each spec has a row with both results.
func TestMarkdownSplice(t *testing.T) {
	runc, palisade := readSample(t)
	deliberate := map[string]Reason{specHostPID: {Rule: "namespaces", Why: "host PID is refused | use the default"}}
	md := Markdown(Run{Date: "2026-11-25", Duration: "30m0s", Versions: "critest v1.37.0", Profile: "restricted"}, Compare(runc, palisade, deliberate))
	for _, want := range []string{
		"- `runc`: 3 passed, 1 failed, 1 skipped",
		"- `palisade`: 1 passed, 3 failed, 1 skipped",
		"1 on purpose, **1 unexpected**",
		"| " + specHostPID + " | passed | **failed** | rule `namespaces`: host PID is refused \\| use the default |",
		"| " + specPort + " | passed | **failed** | **unexpected**: Timed out after 60.001s. |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	doc := "# Title\n\nbefore\n" + BeginMarker + "\nold table\n" + EndMarker + "\nafter\n"
	out, err := Splice(doc, md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "# Title\n\nbefore\n"+BeginMarker+"\n") || !strings.HasSuffix(out, md+EndMarker+"\nafter\n") || strings.Contains(out, "old table") {
		t.Errorf("spliced document:\n%s", out)
	}
	if _, err := Splice("no markers", md); err == nil {
		t.Error("a document without markers was accepted")
	}
}
