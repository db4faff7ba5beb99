// Command critest is `make critest`: the CRI conformance suite against the
// runc and palisade handlers of one private containerd (testing/critest),
// then the conformance table in docs/kubernetes.md. It exits non-zero when a
// spec fails only under palisade and is not in the reviewed list of
// deliberate refusals. With -focus (a ginkgo regexp) it runs those specs
// only and leaves the document alone.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"palisade.dev/palisade/testing/critest"
	"palisade.dev/palisade/testing/harness"
)

func main() {
	start := time.Now()
	focus := flag.String("focus", "", "ginkgo regexp of the specs to run (the document is then not written)")
	skip := flag.String("skip", "", "ginkgo regexp of specs to leave out (the document is then not written)")
	out := flag.String("out", "bin/critest", "directory for the JUnit reports and critest's logs")
	doc := flag.String("doc", "docs/kubernetes.md", "document whose conformance table is rewritten")
	started := flag.Int64("started", 0, "when make critest started (Unix seconds): the recorded run time counts from there")
	reportsOnly := flag.Bool("reports-only", false, "do not run: judge the reports of the last run in -out again (and write the document if that run was complete)")
	flag.Parse()
	if *started > 0 {
		start = time.Unix(*started, 0)
	}
	say := func(s string) { fmt.Fprintf(os.Stderr, "critest: %s\n", s) }
	if err := run(start, *focus, *skip, *out, *doc, *reportsOnly, say); err != nil {
		say(err.Error())
		os.Exit(1)
	}
}

func run(start time.Time, focus, skip, out, doc string, reportsOnly bool, say func(string)) error {
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	reports := critest.Reports{}
	runFile := filepath.Join(out, "run.json")
	var info critest.Run
	if reportsOnly {
		for _, h := range critest.Handlers {
			reports[h] = filepath.Join(out, h+".xml")
		}
		if err := readJSON(runFile, &info); err != nil {
			return err
		}
	} else {
		var versions string
		if reports, versions, err = critest.Conformance(critest.Options{OutDir: out, Focus: focus, Skip: skip, Say: say}); err != nil {
			return err
		}
		info = critest.Run{
			Date: time.Now().UTC().Format("2006-01-02"), Duration: time.Since(start).Round(10 * time.Second).String(),
			Versions: versions, Profile: "restricted", Complete: focus == "" && skip == "",
		}
		if err := writeJSON(runFile, info); err != nil {
			return err
		}
	}
	results := map[string]map[string]critest.Result{}
	for h, p := range reports {
		if results[h], err = critest.ReadJUnit(p); err != nil {
			return err
		}
	}
	rows := critest.Compare(results["runc"], results[harness.CRIHandlerNoOptions], critest.Deliberate)
	for _, r := range rows {
		if r.Verdict == critest.Unexpected {
			say(fmt.Sprintf("UNEXPECTED: %s\n    palisade: %s", r.Spec, critest.Summary(r.Palisade.Message)))
		}
	}
	if info.Complete {
		for _, s := range critest.Stale(rows, critest.Deliberate) {
			say("listed as deliberate but not failing only under palisade: " + s)
		}
		if err := critest.WriteDoc(doc, critest.Markdown(info, rows)); err != nil {
			return err
		}
		say("wrote the conformance table into " + doc)
	}
	if n := critest.Count(rows, critest.Unexpected); n > 0 {
		return fmt.Errorf("%d specs fail only under palisade and are not deliberate refusals (reports in %s)", n, out)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
