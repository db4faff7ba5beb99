// Package critest runs the CRI conformance suite (critest, from
// sigs.k8s.io/cri-tools) against palisade and the stock runc handler of one
// private containerd, and turns the two JUnit reports into
// docs/kubernetes.md's conformance table: it builds the images critest
// pulls and serves them from a local read-only registry, compares the
// handlers spec by spec, and holds the reviewed list of specs palisade fails
// on purpose. A palisade-only failure outside that list is unexpected.
package critest

import (
	"encoding/xml"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Status is a spec's outcome as ginkgo's JUnit report gives it: passed,
// failed, skipped, … ("" when the spec is not in that report).
type Status string

// Outcomes that the table tells apart.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Result is one spec's outcome in one run.
type Result struct {
	Status  Status
	Message string // the failure's message and text, or why the spec skipped
}

// Failing reports whether the spec did not pass or skip (failed, panicked,
// timed out, …).
func (r Result) Failing() bool { return r.Status != Passed && r.Status != Skipped && r.Status != "" }

type junitCase struct {
	Name    string `xml:"name,attr"`
	Status  string `xml:"status,attr"`
	Failure *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"error"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

type junitSuites struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

// ReadJUnit reads a ginkgo JUnit report: the specs ("[It]" cases, named
// without that prefix) and their results. Suite-level nodes (BeforeSuite, …)
// count as specs too when they fail, so a broken run is never an empty pass.
func ReadJUnit(path string) (map[string]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s junitSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("junit report %s: %w", path, err)
	}
	out := map[string]Result{}
	for _, suite := range s.Suites {
		for _, c := range suite.Cases {
			r := Result{Status: Status(c.Status)}
			if c.Failure != nil {
				r.Message = c.Failure.Message + "\n" + c.Failure.Text
			}
			if c.Error != nil {
				r.Message += c.Error.Message + "\n" + c.Error.Text
			}
			if c.Skipped != nil {
				r.Message = strings.TrimPrefix(c.Skipped.Message, "skipped - ")
			}
			name, isSpec := strings.CutPrefix(c.Name, "[It] ")
			if !isSpec && !r.Failing() {
				continue
			}
			out[name] = r
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("junit report %s holds no specs", path)
	}
	return out, nil
}

// Verdict is what a spec's two results mean for palisade.
type Verdict string

// The verdicts, from best to worst.
const (
	Same        Verdict = "same"        // both passed, or both skipped
	OnPurpose   Verdict = "on purpose"  // fails only under palisade, as Deliberate says
	Environment Verdict = "environment" // fails under runc too: this machine or the built images
	Better      Verdict = "palisade only passes"
	Unexpected  Verdict = "unexpected"   // fails only under palisade, not on purpose
	Differs     Verdict = "skip differs" // skipped under one handler only
)

// Row is one spec of the table.
type Row struct {
	Spec           string
	Runc, Palisade Result
	Verdict        Verdict
	Why            *Reason // for OnPurpose
	MissingMessage bool    // on purpose, but palisade's refusal is not in the failure
}

// Compare judges every spec of the two runs against the deliberate list.
func Compare(runc, palisade map[string]Result, deliberate map[string]Reason) []Row {
	names := map[string]bool{}
	for n := range runc {
		names[n] = true
	}
	for n := range palisade {
		names[n] = true
	}
	rows := make([]Row, 0, len(names))
	for n := range names {
		r := Row{Spec: n, Runc: runc[n], Palisade: palisade[n]}
		switch {
		case r.Palisade.Failing() && r.Runc.Failing():
			r.Verdict = Environment
		case r.Palisade.Failing():
			r.Verdict = Unexpected
			if why, ok := deliberate[n]; ok {
				r.Why = &why
				r.Verdict = OnPurpose
				if why.Message != "" && !strings.Contains(r.Palisade.Message, why.Message) {
					r.Verdict, r.MissingMessage = Unexpected, true
				}
			}
		case r.Runc.Failing():
			r.Verdict = Better
		case r.Runc.Status != r.Palisade.Status:
			r.Verdict = Differs
		default:
			r.Verdict = Same
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Spec < rows[j].Spec })
	return rows
}

// Count returns how many rows have verdict v.
func Count(rows []Row, v Verdict) int {
	n := 0
	for _, r := range rows {
		if r.Verdict == v {
			n++
		}
	}
	return n
}

// Tally counts one handler's outcomes: passed, failed (any failing status),
// skipped.
func Tally(rows []Row, pick func(Row) Result) (passed, failed, skipped int) {
	for _, r := range rows {
		switch res := pick(r); {
		case res.Status == Passed:
			passed++
		case res.Status == Skipped:
			skipped++
		case res.Failing():
			failed++
		}
	}
	return passed, failed, skipped
}

// Stale lists deliberate entries whose spec no longer fails only under
// palisade (passes now, or was renamed): the list should lose them.
func Stale(rows []Row, deliberate map[string]Reason) []string {
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Verdict == OnPurpose || (r.Verdict == Unexpected && r.MissingMessage) {
			seen[r.Spec] = true
		}
	}
	var out []string
	for n := range deliberate {
		if !seen[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Summary shortens a failure message to what explains it: palisade's
// refusal when there is one (up to its rule), else the gRPC error's text,
// else the first line.
func Summary(msg string) string {
	out := msg
	if i := strings.Index(out, "palisade: container "); i >= 0 {
		out = out[i:]
		if j := strings.Index(out, "]"); j >= 0 {
			out = out[:j+1]
		}
	} else if i := strings.Index(out, "desc = "); i >= 0 {
		out = out[i+len("desc = "):]
	} else {
		out = strings.TrimSpace(out)
	}
	if i := strings.IndexByte(out, '\n'); i >= 0 {
		out = out[:i]
	}
	out = strings.TrimSpace(out)
	if len(out) > 240 {
		out = out[:240] + "…"
	}
	return out
}
