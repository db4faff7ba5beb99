package seccomp

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Intersect combines the node's filter with a filter the workload asked for
// (a pod's Localhost or RuntimeDefault profile, which CRI puts in the
// spec's linux.seccomp) into one filter under which a system call gets the
// stricter of the two verdicts — what the kernel would do with both
// installed. A workload can tighten the node's filter, never loosen it.
//
// Per system call name, each filter either decides unconditionally (a rule
// without argument conditions, or its default action) or by arguments.
// Both unconditional: the stricter action. One by arguments, the other
// allowing: the conditional rules as they are. Both by arguments and every
// rule an allow: an allow for each pair of rules whose conditions can be
// combined (the call must satisfy both); identical rule sets are kept as
// they are. Any other mix is decided conservatively: the strictest action
// either filter could give that call. A call no rule matches falls to the
// stricter of the two default actions, which is never weaker than what
// either filter alone would do.
//
// The architectures are those both filters admit (every filter admits the
// native one, as runc builds it); flags and the listener are the node's (a
// workload's listener would hand decisions to a process the node does not
// run, so a notify action becomes an EPERM error).
func Intersect(node, workload *specs.LinuxSeccomp, native specs.Arch) *specs.LinuxSeccomp {
	defAct, defErrno := stricter(node.DefaultAction, node.DefaultErrnoRet, denotify(workload.DefaultAction), workload.DefaultErrnoRet)
	out := &specs.LinuxSeccomp{
		DefaultAction:    defAct,
		DefaultErrnoRet:  defErrno,
		Architectures:    commonArches(node.Architectures, workload.Architectures, native),
		Flags:            slices.Clone(node.Flags),
		ListenerPath:     node.ListenerPath,
		ListenerMetadata: node.ListenerMetadata,
	}
	a, b := byName(node), byName(workload)
	names := make([]string, 0, len(a)+len(b))
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	uncond := map[string][]string{} // "action/errno" -> names
	keys := map[string]specs.LinuxSyscall{}
	for _, n := range names {
		for _, r := range combine(n, a[n], b[n], node, workload, out) {
			if len(r.Args) == 0 {
				k := fmt.Sprintf("%s/%v", r.Action, errnoValue(r.ErrnoRet))
				if r.Action == out.DefaultAction && errnoValue(r.ErrnoRet) == errnoValue(out.DefaultErrnoRet) {
					continue // the default says the same
				}
				uncond[k] = append(uncond[k], n)
				keys[k] = specs.LinuxSyscall{Action: r.Action, ErrnoRet: r.ErrnoRet}
				continue
			}
			out.Syscalls = append(out.Syscalls, r)
		}
	}
	ks := make([]string, 0, len(uncond))
	for k := range uncond {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	grouped := make([]specs.LinuxSyscall, 0, len(ks))
	for _, k := range ks {
		r := keys[k]
		r.Names = uncond[k]
		grouped = append(grouped, r)
	}
	out.Syscalls = append(grouped, out.Syscalls...)
	return out
}

// combine returns the rules for one system call name, each naming only it.
func combine(name string, ra, rb []specs.LinuxSyscall, fa, fb, out *specs.LinuxSeccomp) []specs.LinuxSyscall {
	ca, cb := conditional(ra), conditional(rb)
	oa, ob := outcome(ra, fa), outcome(rb, fb)
	one := func(act specs.LinuxSeccompAction, errno *uint) []specs.LinuxSyscall {
		return []specs.LinuxSyscall{{Names: []string{name}, Action: act, ErrnoRet: errno}}
	}
	switch {
	case !ca && !cb:
		act, errno := stricter(oa.Action, oa.ErrnoRet, denotify(ob.Action), ob.ErrnoRet)
		return one(act, errno)
	case ca && !cb && ob.Action == specs.ActAllow:
		return renamed(name, ra)
	case cb && !ca && oa.Action == specs.ActAllow:
		return renamed(name, denotifyRules(rb))
	case ca && cb && sameJSON(renamed(name, ra), renamed(name, rb)):
		return renamed(name, ra)
	case ca && cb && allAllow(ra) && allAllow(rb):
		var rules []specs.LinuxSyscall
		for _, x := range ra {
			for _, y := range rb {
				if args, ok := mergeArgs(x.Args, y.Args); ok {
					rules = append(rules, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args})
				}
			}
		}
		return rules
	}
	// conservative: the strictest verdict either filter could give
	act, errno := out.DefaultAction, out.DefaultErrnoRet
	for _, rs := range [][]specs.LinuxSyscall{ra, rb} {
		for _, r := range rs {
			act, errno = stricter(act, errno, denotify(r.Action), r.ErrnoRet)
		}
	}
	return one(act, errno)
}

// byName lists a filter's rules per system call name, in order.
func byName(f *specs.LinuxSeccomp) map[string][]specs.LinuxSyscall {
	m := map[string][]specs.LinuxSyscall{}
	for _, r := range f.Syscalls {
		for _, n := range r.Names {
			m[n] = append(m[n], r)
		}
	}
	return m
}

func conditional(rules []specs.LinuxSyscall) bool {
	return slices.ContainsFunc(rules, func(r specs.LinuxSyscall) bool { return len(r.Args) > 0 })
}

// outcome is an unconditional decision for a name: its first rule, or the
// filter's default.
func outcome(rules []specs.LinuxSyscall, f *specs.LinuxSeccomp) specs.LinuxSyscall {
	if len(rules) > 0 {
		return rules[0]
	}
	return specs.LinuxSyscall{Action: f.DefaultAction, ErrnoRet: f.DefaultErrnoRet}
}

func renamed(name string, rules []specs.LinuxSyscall) []specs.LinuxSyscall {
	out := make([]specs.LinuxSyscall, len(rules))
	for i, r := range rules {
		r.Names = []string{name}
		r.Args = slices.Clone(r.Args)
		out[i] = r
	}
	return out
}

func allAllow(rules []specs.LinuxSyscall) bool {
	return !slices.ContainsFunc(rules, func(r specs.LinuxSyscall) bool { return r.Action != specs.ActAllow })
}

// mergeArgs is the conjunction of two rules' conditions; false when both
// constrain one argument differently (libseccomp takes one comparison per
// argument), and the pair is dropped: conservative. A rule that constrains
// one argument twice is read by runc as the disjunction of all its
// conditions, each a rule of its own: appending the other rule's
// conditions would loosen both, so such a rule is never merged.
func mergeArgs(x, y []specs.LinuxSeccompArg) ([]specs.LinuxSeccompArg, bool) {
	if repeatsIndex(x) || repeatsIndex(y) {
		return nil, false
	}
	out := slices.Clone(x)
	for _, c := range y {
		i := slices.IndexFunc(out, func(o specs.LinuxSeccompArg) bool { return o.Index == c.Index })
		switch {
		case i < 0:
			out = append(out, c)
		case out[i] != c:
			return nil, false
		}
	}
	return out, true
}

func repeatsIndex(args []specs.LinuxSeccompArg) bool {
	seen := map[uint]bool{}
	for _, a := range args {
		if seen[a.Index] {
			return true
		}
		seen[a.Index] = true
	}
	return false
}

// rank orders actions as the kernel does when several filters decide one
// call: the higher wins.
var rank = map[specs.LinuxSeccompAction]int{
	specs.ActAllow: 0, specs.ActLog: 1, specs.ActTrace: 2, specs.ActNotify: 3,
	specs.ActErrno: 4, specs.ActTrap: 5, specs.ActKillThread: 6, specs.ActKill: 6, specs.ActKillProcess: 7,
}

// stricter returns the action (and errno) the kernel would apply of two.
func stricter(a specs.LinuxSeccompAction, ea *uint, b specs.LinuxSeccompAction, eb *uint) (specs.LinuxSeccompAction, *uint) {
	if rank[b] > rank[a] {
		return b, eb
	}
	return a, ea
}

// denotify turns a workload's notify action into an EPERM error: the node
// runs no listener for it.
func denotify(a specs.LinuxSeccompAction) specs.LinuxSeccompAction {
	if a == specs.ActNotify {
		return specs.ActErrno
	}
	return a
}

func denotifyRules(rules []specs.LinuxSyscall) []specs.LinuxSyscall {
	out := slices.Clone(rules)
	for i := range out {
		out[i].Action = denotify(out[i].Action)
	}
	return out
}

func errnoValue(p *uint) uint {
	if p == nil {
		return 1 // EPERM, runc's default
	}
	return *p
}

// commonArches are the architectures both filters admit, in the node's
// order. runc's filters always hold the native architecture (libseccomp
// adds it, runc never removes it): a list without it, or none, admits it
// too — a pod profile written for arm64 nodes filters amd64 calls there.
func commonArches(node, workload []specs.Arch, native specs.Arch) []specs.Arch {
	if !slices.Contains(workload, native) {
		workload = append(slices.Clone(workload), native)
	}
	if len(node) == 0 {
		node = []specs.Arch{native}
	}
	var out []specs.Arch
	for _, a := range node {
		if slices.Contains(workload, a) {
			out = append(out, a)
		}
	}
	return out
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
