// Command bench is the containerd half of `make bench`: a private
// containerd, the stock runc shim and palisade side by side, interleaved
// A/B pairs, ratios with bootstrap confidence intervals. It prints a
// Markdown report and writes it into docs/benchmarks.md between markers.
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"palisade.dev/palisade/testing/bench"
	"palisade.dev/palisade/testing/harness"
)

const (
	begin = "<!-- BEGIN make bench -->"
	end   = "<!-- END make bench -->"
)

func main() {
	pairs := flag.Int("pairs", 60, "rounds of the start rows and of -phases (a multiple of their variants: 6 and 5), pairs of the exec rows")
	doc := flag.String("doc", "docs/benchmarks.md", "Markdown file to write the report into (between markers); empty: print only")
	memory := flag.Bool("memory", false, "only measure shim memory (with a breakdown), print it and write nothing")
	execOnly := flag.Bool("exec", false, "only measure exec (stock against palisade restricted), print it and write nothing")
	detail := flag.Bool("maps", false, "with -memory: also list every resident mapping (anonymous ones have no name) and the thread count")
	settleFlag := flag.Duration("settle", 0, "with -memory: wait this long after the execs before reading the shims' memory")
	phases := flag.Bool("phases", false, "only time each step of a start (stock against palisade, with and without seccomp; restricted against fully hardened), print it and write nothing")
	flag.Parse()
	mode := ""
	switch {
	case *phases:
		mode = "phases"
	case *memory:
		mode = "memory"
	case *execOnly:
		mode = "exec"
	}
	if err := run(*pairs, *doc, mode, memoryOptions{listMaps: *detail, settle: *settleFlag}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run measures everything and writes doc, or with mode "memory" or "exec"
// only that part, printed.
func run(pairs int, doc, mode string, mo memoryOptions) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: this starts containerd and runc")
	}
	ctx := context.Background()
	env, closeEnv, err := harness.Launch(nil)
	if err != nil {
		return err
	}
	defer func() { _ = closeEnv() }()
	tools := env.Tools()
	b, err := bench.New(ctx, env)
	if err != nil {
		return err
	}

	// An admin profile with an exec allow-list, a secret, and a config
	// that lets a workload drop seccomp (for the no-seccomp comparison).
	profDir := filepath.Join(env.Dir, "bench-profiles")
	if err := os.MkdirAll(profDir, 0o700); err != nil {
		return err
	}
	prof := "name = \"bench-exec\"\n[pids]\nlimit = 256\n[[filesystem.tmpfs]]\npath = \"/tmp\"\nsize = \"64m\"\n[exec]\nmode = \"enforce\"\nallow = [\"/bin/busybox\"]\n"
	if err := os.WriteFile(filepath.Join(profDir, "bench-exec.toml"), []byte(prof), 0o600); err != nil {
		return err
	}
	// restricted as it was before filters became native-only: the same
	// rules with the compat ABIs (x86 and x32 on amd64) admitted.
	prof = "name = \"bench-compat\"\n[capabilities]\nallowed = [\"NET_BIND_SERVICE\"]\n[pids]\nlimit = 256\n[[filesystem.tmpfs]]\npath = \"/tmp\"\nsize = \"64m\"\n[seccomp]\ncompat_abi = true\n"
	if err := os.WriteFile(filepath.Join(profDir, "bench-compat.toml"), []byte(prof), 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(env.SecretStore, "containerd", env.Namespace), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(env.SecretStore, "containerd", env.Namespace, "bench"), []byte("bench-secret-value"), 0o600); err != nil {
		return err
	}
	cfg, err := env.WriteAdminConfig("bench.toml", fmt.Sprintf("profiles_dir = %q\nselectable_profiles = [\"bench-exec\", \"bench-compat\"]\n[overrides.restricted]\nseccomp_unconfined = true\n", profDir))
	if err != nil {
		return err
	}
	stockRoot := filepath.Join(env.Dir, "runc-stock")
	stockSeccomp := bench.Stock(stockRoot, true)
	stockSeccomp.Name = "stock runc shim + containerd's default seccomp"
	stockPlain := bench.Stock(stockRoot, false)
	stockPlain.Name = "stock runc shim, no seccomp"
	restricted := bench.Palisade("palisade, restricted (seccomp palisade-default)", cfg, nil)
	full := bench.Palisade("palisade, restricted + exec allow-list (Landlock helper) + 1 secret", cfg,
		map[string]string{"palisade.dev/profile": "bench-exec", "palisade.dev/secrets": "bench"})
	unconfined := bench.Palisade("palisade, restricted, seccomp unconfined", cfg, map[string]string{"palisade.dev/seccomp-profile": "unconfined"})
	compat := bench.Palisade("palisade, restricted with compat ABIs admitted (compat_abi = true)", cfg, map[string]string{"palisade.dev/profile": "bench-compat"})

	var report strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&report, format, a...) }
	switch mode {
	case "exec":
		return execPairs(ctx, b, pairs, stockSeccomp, restricted)
	case "phases":
		return phaseRounds(ctx, b, pairs, [][2]bench.Variant{{stockPlain, unconfined}, {stockSeccomp, restricted}, {restricted, full}},
			[][2]bench.Variant{{stockPlain, stockSeccomp}, {unconfined, restricted}})
	case "memory":
		if err := bench.DropCached(tools.RuncShim, env.Binary("containerd-shim-palisade-v2")); err != nil {
			return err
		}
		return memoryBreakdown(ctx, b, mo, stockSeccomp, restricted, full)
	}
	w("Measured by `make bench` on %s. Machine: %s, %d vCPUs, %s. containerd %s, runc %s (libseccomp), Go %s.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), kernel(), tools.Versions["containerd"], tools.Versions["runc"], strings.TrimPrefix(runtime.Version(), "go"))
	w("Method: one private containerd; containers of the test image created, started, waited for and deleted with containerd's Go client. Start-to-exit: after 3 warm-up runs of each variant, %d rounds in which every variant starts once, in an order that rotates from round to round, so that all rows are measured under the same conditions and share their stock samples; ratio = median(B)/median(A) with a 95%% bootstrap interval over the rounds. Exec: A and B alternate, which goes first alternates too, %d pairs.\n\n", pairs, pairs)

	for _, v := range []bench.Variant{stockSeccomp, stockPlain, restricted, full, unconfined, compat} {
		for i := 0; i < 3; i++ {
			if _, err := b.StartToExit(ctx, v); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}

	w("### Start-to-exit of `/bin/true`\n\n| A | B | A median | A p90 | B median | B p90 | ratio B/A (95%% CI) |\n|---|---|---|---|---|---|---|\n")
	variants := []bench.Variant{stockSeccomp, stockPlain, restricted, full, unconfined, compat}
	samples, err := startRounds(ctx, b, pairs, variants...)
	if err != nil {
		return err
	}
	for _, cmp := range [][2]bench.Variant{{stockSeccomp, restricted}, {stockSeccomp, full}, {stockPlain, unconfined}, {stockSeccomp, compat}} {
		a, c := cmp[0], cmp[1]
		as, bs := samples[a.Name], samples[c.Name]
		sa, sb := bench.Summarize(as), bench.Summarize(bs)
		r, lo, hi := bench.RatioCI(as, bs)
		w("| %s | %s | %s | %s | %s | %s | **%.3f** (%.3f–%.3f) |\n", a.Name, c.Name, ms(sa.Median), ms(sa.P90), ms(sb.Median), ms(sb.P90), r, lo, hi)
	}

	w("\n### 20 containers started at once (3 rounds each, alternating)\n\n| variant | p50 | p99 |\n|---|---|---|\n")
	conc := map[string][]time.Duration{}
	for round := 0; round < 3; round++ {
		order := []bench.Variant{stockSeccomp, restricted}
		if round%2 == 1 {
			order = []bench.Variant{restricted, stockSeccomp}
		}
		for _, v := range order {
			d, err := b.Concurrent(ctx, v, 20)
			if err != nil {
				return err
			}
			conc[v.Name] = append(conc[v.Name], d...)
		}
	}
	sa, sb := bench.Summarize(conc[stockSeccomp.Name]), bench.Summarize(conc[restricted.Name])
	w("| %s | %s | %s |\n| %s | %s | %s |\n", stockSeccomp.Name, ms(sa.Median), ms(sa.P99), restricted.Name, ms(sb.Median), ms(sb.P99))
	w("\nRatios: p50 **%.3f**, p99 **%.3f**.\n", float64(sb.Median)/float64(sa.Median), float64(sb.P99)/float64(sa.P99))

	w("\n### Exec of `/bin/true` in a running container\n\n")
	// The shims measured for memory below are these: both binaries are
	// read back from disk the same way (see DropCached).
	if err := bench.DropCached(tools.RuncShim, env.Binary("containerd-shim-palisade-v2")); err != nil {
		return err
	}
	ra, err := b.Start(ctx, stockSeccomp)
	if err != nil {
		return err
	}
	defer ra.Stop(ctx)
	rb, err := b.Start(ctx, restricted)
	if err != nil {
		return err
	}
	defer rb.Stop(ctx)
	rc, err := b.Start(ctx, full)
	if err != nil {
		return err
	}
	defer rc.Stop(ctx)
	w("| A | B | A median | B median | B − A | ratio (95%% CI) |\n|---|---|---|---|---|---|\n")
	for _, cmp := range []struct {
		va, vb bench.Variant
		a, b   *bench.Running
	}{{stockSeccomp, restricted, ra, rb}, {stockSeccomp, full, ra, rc}} {
		as, bs, err := bench.Pairs(pairs, func() (time.Duration, error) { return b.Exec(ctx, cmp.a) }, func() (time.Duration, error) { return b.Exec(ctx, cmp.b) })
		if err != nil {
			return err
		}
		sa, sb := bench.Summarize(as), bench.Summarize(bs)
		r, lo, hi := bench.RatioCI(as, bs)
		w("| %s | %s | %s | %s | %s | %.3f (%.3f–%.3f) |\n", cmp.va.Name, cmp.vb.Name, ms(sa.Median), ms(sb.Median), ms(sb.Median-sa.Median), r, lo, hi)
	}

	w("\n### Shim memory with one sleeping container\n\nBoth shim binaries evicted from the page cache first, so that both are read back from disk alike (a binary the linker has just written is mapped in 2 MB folios and looks larger). Read %s after the exec rows' last exec, when each container is asleep and its shim idle.\n\n| variant | RSS | PSS |\n|---|---|---|\n", memorySettle)
	time.Sleep(memorySettle)
	for _, x := range []struct {
		v bench.Variant
		r *bench.Running
	}{{stockSeccomp, ra}, {restricted, rb}, {full, rc}} {
		rss, pss, err := b.Memory(x.r)
		if err != nil {
			return err
		}
		w("| %s | %.1f MB | %.1f MB |\n", x.v.Name, float64(rss)/1024, float64(pss)/1024)
	}

	w("\n### crun as the OCI runtime\n\n%s\n", crunReport(ctx, b, env))

	out := report.String()
	fmt.Print(out)
	if doc != "" {
		return bench.WriteBetween(doc, begin, end, out)
	}
	return nil
}

// startRounds measures start-to-exit of each variant in n rounds
// (bench.Rounds) and returns the samples by variant name.
func startRounds(ctx context.Context, b *bench.Bench, n int, vs ...bench.Variant) (map[string][]time.Duration, error) {
	var runs []func() (time.Duration, error)
	for _, v := range vs {
		runs = append(runs, func() (time.Duration, error) { return b.StartToExit(ctx, v) })
	}
	got, err := bench.Rounds(n, runs...)
	if err != nil {
		return nil, err
	}
	out := map[string][]time.Duration{}
	for i, v := range vs {
		out[v.Name] = got[i]
	}
	return out, nil
}

// execPairs measures exec in a running container of each variant, n
// interleaved pairs: a quick loop for work on the exec path.
func execPairs(ctx context.Context, b *bench.Bench, n int, va, vb bench.Variant) error {
	ra, err := b.Start(ctx, va)
	if err != nil {
		return err
	}
	defer ra.Stop(ctx)
	rb, err := b.Start(ctx, vb)
	if err != nil {
		return err
	}
	defer rb.Stop(ctx)
	as, bs, err := bench.Pairs(n, func() (time.Duration, error) { return b.Exec(ctx, ra) }, func() (time.Duration, error) { return b.Exec(ctx, rb) })
	if err != nil {
		return err
	}
	sa, sb := bench.Summarize(as), bench.Summarize(bs)
	r, lo, hi := bench.RatioCI(as, bs)
	fmt.Printf("exec, %d pairs: %s %s, %s %s, B - A %s, ratio %.3f (%.3f-%.3f)\n", n, va.Name, ms(sa.Median), vb.Name, ms(sb.Median), ms(sb.Median-sa.Median), r, lo, hi)
	return nil
}

// phaseRounds times each step of a start of every variant, in 3 warm-up
// rounds and n measured ones (bench.Rounds), and prints, for each pair of
// variants, the medians of the steps side by side and the ratio of the
// whole starts: where a difference in start-to-exit comes from. All the
// variants share the rounds, so rows can be compared with each other: with
// each side's run with and without seccomp among them, it also prints what
// a filter costs each side (the median over rounds of the difference).
func phaseRounds(ctx context.Context, b *bench.Bench, n int, cmps [][2]bench.Variant, filters [][2]bench.Variant) error {
	var vs []bench.Variant
	for _, cmp := range cmps {
		for _, v := range cmp {
			if !slices.ContainsFunc(vs, func(x bench.Variant) bool { return x.Name == v.Name }) {
				vs = append(vs, v)
			}
		}
	}
	var runs []func() (map[string]time.Duration, error)
	for _, v := range vs {
		runs = append(runs, func() (map[string]time.Duration, error) { return b.StartToExitPhases(ctx, v) })
	}
	if _, err := bench.Rounds(3, runs...); err != nil { // warm-up
		return err
	}
	got, err := bench.Rounds(n, runs...)
	if err != nil {
		return err
	}
	phases, totals := map[string]map[string][]time.Duration{}, map[string][]time.Duration{}
	for i, v := range vs {
		phases[v.Name] = map[string][]time.Duration{}
		for _, p := range got[i] {
			var whole time.Duration
			for name, d := range p {
				phases[v.Name][name] = append(phases[v.Name][name], d)
				whole += d
			}
			totals[v.Name] = append(totals[v.Name], whole)
		}
	}
	med := func(d []time.Duration) time.Duration { return bench.Summarize(d).Median }
	for _, cmp := range cmps {
		a, c := cmp[0].Name, cmp[1].Name
		fmt.Printf("%d rounds: A = %s, B = %s\n%-18s %10s %10s %10s\n", n, a, c, "phase", "A median", "B median", "B - A")
		var ta, tb time.Duration
		for _, name := range bench.Phases {
			x, y := med(phases[a][name]), med(phases[c][name])
			ta, tb = ta+x, tb+y
			fmt.Printf("%-18s %10s %10s %10s\n", name, ms(x), ms(y), ms(y-x))
		}
		fmt.Printf("%-18s %10s %10s %10s\n", "sum of medians", ms(ta), ms(tb), ms(tb-ta))
		r, lo, hi := bench.RatioCI(totals[a], totals[c])
		fmt.Printf("%-18s %10s %10s %10s   ratio %.3f (95%% CI %.3f–%.3f)\n\n", "median start", ms(med(totals[a])), ms(med(totals[c])), ms(med(totals[c])-med(totals[a])), r, lo, hi)
	}
	for _, f := range filters {
		without, with := totals[f[0].Name], totals[f[1].Name]
		diff := make([]time.Duration, len(with))
		for i := range with {
			diff[i] = with[i] - without[i]
		}
		fmt.Printf("what the filter costs a start: %s against %s: %s (median over the rounds)\n", f[1].Name, f[0].Name, ms(med(diff)))
	}
	return nil
}

// memoryOptions are -memory's options.
type memoryOptions struct {
	listMaps bool          // list anonymous mappings one by one, with the thread count
	settle   time.Duration // wait this long after the execs before reading
}

// memorySettle is how long the memory rows wait after the exec rows: a
// sleeping container's shim is idle, not in the middle of an exec's
// garbage (palisade's gives it back a second after its last request).
const memorySettle = 2 * time.Second

// memoryBreakdown starts one sleeping container per variant, runs three
// execs in each, and prints the shim's smaps_rollup figures: a quick loop
// for work on the shim's memory.
func memoryBreakdown(ctx context.Context, b *bench.Bench, mo memoryOptions, vs ...bench.Variant) error {
	fields := []string{"Rss", "Pss", "Anonymous", "Shared_Clean", "Private_Clean", "Private_Dirty"}
	fmt.Printf("%-70s", "variant (kB)")
	for _, f := range fields {
		fmt.Printf(" %13s", f)
	}
	fmt.Println()
	for _, v := range vs {
		r, err := b.Start(ctx, v)
		if err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			if _, err := b.Exec(ctx, r); err != nil {
				r.Stop(ctx)
				return err
			}
		}
		time.Sleep(mo.settle)
		m, err := b.Smaps(r)
		if err != nil {
			r.Stop(ctx)
			return err
		}
		mapped, err := b.Mappings(r)
		var detail []bench.Mapping
		threads := 0
		if err == nil && mo.listMaps {
			detail, threads, err = b.Detail(r)
		}
		r.Stop(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("%-70s", v.Name)
		for _, f := range fields {
			fmt.Printf(" %13d", m[f])
		}
		fmt.Println()
		names := slices.SortedFunc(maps.Keys(mapped), func(a, b string) int { return mapped[b] - mapped[a] })
		for _, n := range names[:min(8, len(names))] {
			fmt.Printf("    %7d kB  %s\n", mapped[n], n)
		}
		if mo.listMaps {
			fmt.Printf("  threads: %d; resident mappings, in address order (Rss / Size kB):\n", threads)
			for _, m := range detail {
				if m.Rss > 0 {
					fmt.Printf("    %6d / %7d  %s %s %s\n", m.Rss, m.Size, m.Perms, m.Range, m.Name)
				}
			}
		}
	}
	return nil
}

func crunReport(ctx context.Context, b *bench.Bench, env *harness.Env) string {
	path, err := exec.LookPath("crun")
	if err != nil {
		return "Not measured: crun is not installed on this machine (`apt-get install crun` gives crun 1.8.1 on Debian 12)."
	}
	ver, _ := exec.Command(path, "--version").Output()
	cfg, err := env.WriteAdminConfig("bench-crun.toml", "runc.binary_name = \""+path+"\"\n")
	if err != nil {
		return err.Error()
	}
	v := bench.Palisade("palisade with crun", cfg, nil)
	if _, err := b.StartToExit(ctx, v); err != nil {
		return fmt.Sprintf("Not measured: %s (%s) fails here: `%v`.", path, strings.SplitN(string(ver), "\n", 2)[0], err)
	}
	return fmt.Sprintf("%s (%s) works as palisade's backend here; see the start-to-exit method above to compare it.", path, strings.SplitN(string(ver), "\n", 2)[0])
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(data))
}
