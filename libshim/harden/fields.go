package harden

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/lsm"
)

// Coverage by construction. Every field of the runtime spec that can reach
// runc or the kernel has a named rule in specFields: allowed as is, handled
// by a pipeline step (which clamps or refuses it), decided here, or refused.
// The fields step walks the incoming spec by reflection; a field with a
// value and no rule refuses the container. TestSpecFieldsCovered walks the
// runtime-spec types, so a new runtime-spec release cannot add a field that
// passes silently: the test fails until the field gets a rule.

// ruleKind is how a field is treated.
type ruleKind int

const (
	ruleWalk   ruleKind = iota // a struct, slice or map whose fields have rules of their own
	ruleAllow                  // passed as is, with the reason why that is safe
	ruleStep                   // a pipeline step clamps or refuses it
	ruleCheck                  // decided here by check
	ruleRefuse                 // any value refuses the container
)

// fieldRule is the rule of one spec field (by its JSON path; "[]" stands
// for any element of a slice or map).
type fieldRule struct {
	kind  ruleKind
	why   string // allow: why it is safe; refuse: why it is not; step: the step's name
	check func(r *run, v reflect.Value) error
}

func allow(why string) fieldRule   { return fieldRule{kind: ruleAllow, why: why} }
func byStep(name string) fieldRule { return fieldRule{kind: ruleStep, why: name} }
func refuse(why string) fieldRule  { return fieldRule{kind: ruleRefuse, why: why} }
func walk() fieldRule              { return fieldRule{kind: ruleWalk} }
func decide(f func(*run, reflect.Value) error) fieldRule {
	return fieldRule{kind: ruleCheck, check: f}
}

const windowsOnly = "it is for Windows containers"

// specFields is the rule of every runtime-spec field. docs/threat-model.md
// explains the choices.
var specFields = map[string]fieldRule{
	"ociVersion": allow("the spec's version; runc checks it"),
	"process":    walk(),

	"process.terminal":                    allow("a pseudo-terminal for the process"),
	"process.consoleSize":                 allow("the terminal's size"),
	"process.user":                        walk(),
	"process.user.uid":                    byStep("user"),
	"process.user.gid":                    byStep("user"),
	"process.user.additionalGids":         byStep("user"),
	"process.user.umask":                  allow("the process's own file creation mask"),
	"process.user.username":               refuse(windowsOnly),
	"process.args":                        byStep("exec-allowlist"),
	"process.commandLine":                 refuse(windowsOnly),
	"process.env":                         byStep("secrets"),
	"process.cwd":                         allow("a directory inside the container"),
	"process.capabilities":                byStep("capabilities"),
	"process.rlimits":                     decide(checkRlimits),
	"process.noNewPrivileges":             byStep("no-new-privileges"),
	"process.apparmorProfile":             byStep("lsm-labels"),
	"process.selinuxLabel":                byStep("lsm-labels"),
	"process.oomScoreAdj":                 decide(clampOOMScoreAdj),
	"process.scheduler":                   decide(checkScheduler),
	"process.ioPriority":                  decide(checkIOPriority),
	"process.execCPUAffinity":             allow("CPUs within the container's cpuset; the kernel bounds it"),
	"root":                                walk(),
	"root.path":                           byStep("process-required"),
	"root.readonly":                       byStep("readonly-rootfs"),
	"hostname":                            allow("set in the container's own UTS namespace (runc refuses it without one)"),
	"domainname":                          allow("set in the container's own UTS namespace (runc refuses it without one)"),
	"mounts":                              byStep("mounts"),
	"hooks":                               walk(),
	"hooks.prestart":                      byStep("hooks"),
	"hooks.createRuntime":                 byStep("hooks"),
	"hooks.createContainer":               byStep("hooks"),
	"hooks.startContainer":                byStep("hooks"),
	"hooks.poststart":                     byStep("hooks"),
	"hooks.poststop":                      byStep("hooks"),
	"annotations":                         decide(checkAnnotations),
	"linux":                               walk(),
	"linux.uidMappings":                   byStep("process-required"),
	"linux.gidMappings":                   byStep("process-required"),
	"linux.sysctl":                        byStep("sysctls"),
	"linux.resources":                     walk(),
	"linux.resources.devices":             byStep("devices"),
	"linux.resources.memory":              allow("memory limits only bound the container"),
	"linux.resources.cpu":                 walk(),
	"linux.resources.cpu.shares":          allow("a CPU weight"),
	"linux.resources.cpu.quota":           allow("a CPU bound"),
	"linux.resources.cpu.burst":           allow("a CPU bound"),
	"linux.resources.cpu.period":          allow("a CPU bound"),
	"linux.resources.cpu.cpus":            allow("a cpuset within the parent's"),
	"linux.resources.cpu.mems":            allow("a cpuset within the parent's"),
	"linux.resources.cpu.idle":            allow("a CPU weight"),
	"linux.resources.cpu.realtimeRuntime": refuse("real-time CPU time lets a container starve the node; palisade refuses real-time scheduling"),
	"linux.resources.cpu.realtimePeriod":  refuse("real-time CPU time lets a container starve the node; palisade refuses real-time scheduling"),
	"linux.resources.pids":                byStep("pids-limit"),
	"linux.resources.blockIO":             allow("I/O weights and throttles only bound the container"),
	"linux.resources.hugepageLimits":      allow("hugepage limits only bound the container"),
	"linux.resources.network":             allow("a traffic class and priorities for the container's own packets"),
	"linux.resources.rdma":                allow("RDMA limits only bound the container"),
	"linux.resources.unified":             decide(checkUnified),
	"linux.cgroupsPath":                   decide(checkCgroupsPath),
	"linux.namespaces":                    byStep("namespaces"),
	"linux.devices":                       byStep("devices"),
	"linux.netDevices":                    refuse("it would move a host network interface into the container (aimed at the node's uplink, it takes the node off the network)"),
	"linux.seccomp":                       byStep("seccomp"),
	"linux.rootfsPropagation":             decide(checkRootfsPropagation),
	"linux.maskedPaths":                   byStep("masked-paths"),
	"linux.readonlyPaths":                 byStep("readonly-paths"),
	"linux.mountLabel":                    decide(checkMountLabel), // and the lsm-labels step
	"linux.intelRdt":                      refuse("resctrl classes are shared with other workloads and palisade has no rule for them"),
	"linux.memoryPolicy":                  allow("NUMA placement of the container's own memory, within its cpuset"),
	"linux.personality":                   decide(checkPersonality),
	"linux.timeOffsets":                   allow("clock offsets of the container's own time namespace (runc refuses them without one)"),
	"solaris":                             refuse("it is for Solaris zones"),
	"windows":                             refuse(windowsOnly),
	"vm":                                  refuse("it is for virtual-machine runtimes"),
	"zos":                                 refuse("it is for z/OS"),
	"freebsd":                             refuse("it is for FreeBSD jails"),
}

// fields applies the field rules to a container spec.
func fields(r *run, s *specs.Spec) error {
	return walkFields(r, reflect.ValueOf(s).Elem(), "")
}

// processFields applies the process's field rules to an exec process.
func processFields(r *run, p *specs.Process) error {
	return walkFields(r, reflect.ValueOf(p).Elem(), "process")
}

// walkFields applies the rules to every field of v (a struct at path)
// that has a value.
func walkFields(r *run, v reflect.Value, path string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous {
			if err := walkFields(r, fv, path); err != nil {
				return err
			}
			continue
		}
		if fv.IsZero() {
			continue
		}
		p := jsonPath(path, f)
		rule, ok := specFields[p]
		if !ok {
			return r.refuse(fmt.Sprintf("the spec sets %s, a field palisade has no rule for", p),
				"remove the field; palisade refuses what it cannot judge (a newer runtime-spec field needs a palisade that knows it)")
		}
		switch rule.kind {
		case ruleStep:
			if r.update && rule.why != "pids-limit" {
				return r.refuse(fmt.Sprintf("an update may not change %s: it is fixed at create by rule %s", p, rule.why), "create the container with it instead")
			}
		case ruleRefuse:
			return r.refuse(fmt.Sprintf("the spec sets %s, which is not allowed: %s", p, rule.why), "remove "+p+" from the spec")
		case ruleCheck:
			if err := rule.check(r, fv); err != nil {
				return err
			}
		case ruleWalk:
			for fv.Kind() == reflect.Pointer {
				fv = fv.Elem()
			}
			if err := walkFields(r, fv, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonPath names a field as the spec's JSON does.
func jsonPath(parent string, f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		name = f.Name
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// rlimitTypes are the resource limits runc knows.
var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// checkRlimits allows resource limits only up to the shim's own: runc sets
// them as root before dropping privileges, so a spec could otherwise raise a
// hard limit (RLIMIT_MEMLOCK, RLIMIT_RTPRIO, RLIMIT_NICE) beyond what any
// process of the node has.
func checkRlimits(r *run, v reflect.Value) error {
	for _, l := range v.Interface().([]specs.POSIXRlimit) {
		res, ok := rlimitTypes[l.Type]
		if !ok {
			return r.refuse(fmt.Sprintf("resource limit %q is unknown", l.Type), "use the RLIMIT_* names")
		}
		var own unix.Rlimit
		if err := unix.Getrlimit(res, &own); err != nil {
			return r.refuse(fmt.Sprintf("cannot read the shim's own %s: %v", l.Type, err), "")
		}
		if l.Soft > l.Hard || l.Hard > own.Max {
			return r.refuse(fmt.Sprintf("resource limit %s soft %d hard %d is above what the node allows (hard %d)", l.Type, l.Soft, l.Hard, own.Max),
				"ask for a limit no higher than the node's")
		}
	}
	return nil
}

// clampOOMScoreAdj raises an OOM score adjustment below the shim's own to
// the shim's: a lower one would make the container the last process the
// kernel kills when the node runs out of memory (containerd's
// restrict_oom_score_adj, enforced for every client).
func clampOOMScoreAdj(r *run, v reflect.Value) error {
	own, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return r.refuse(fmt.Sprintf("cannot read the shim's own OOM score adjustment: %v", err), "")
	}
	floor, err := strconv.Atoi(strings.TrimSpace(string(own)))
	if err != nil {
		return r.refuse(fmt.Sprintf("cannot read the shim's own OOM score adjustment: %v", err), "")
	}
	p := v.Interface().(*int)
	if *p < floor || *p > 1000 {
		clamped := max(min(*p, 1000), floor)
		r.record(fmt.Sprintf("oomScoreAdj %d", *p), fmt.Sprintf("oomScoreAdj %d (not below the shim's own)", clamped))
		v.Set(reflect.ValueOf(&clamped))
	}
	return nil
}

// checkScheduler refuses real-time and deadline scheduling and negative
// nice values: they let a container starve the node's own processes.
func checkScheduler(r *run, v reflect.Value) error {
	sch := v.Interface().(*specs.Scheduler)
	if !slices.Contains([]specs.LinuxSchedulerPolicy{specs.SchedOther, specs.SchedBatch, specs.SchedIdle}, sch.Policy) {
		return r.refuse(fmt.Sprintf("scheduling policy %s is not allowed: real-time and deadline policies let a container starve the node", sch.Policy),
			"use SCHED_OTHER, SCHED_BATCH or SCHED_IDLE")
	}
	if sch.Nice < 0 || sch.Priority != 0 || sch.Runtime != 0 || sch.Deadline != 0 || sch.Period != 0 {
		return r.refuse("a negative nice value or real-time parameters are not allowed", "leave nice at 0 or above and the real-time fields unset")
	}
	for _, f := range sch.Flags {
		if f != specs.SchedFlagResetOnFork {
			return r.refuse(fmt.Sprintf("scheduler flag %s is not allowed", f), "remove it")
		}
	}
	return nil
}

// checkIOPriority refuses the real-time I/O class.
func checkIOPriority(r *run, v reflect.Value) error {
	io := v.Interface().(*specs.LinuxIOPriority)
	if io.Class != specs.IOPRIO_CLASS_BE && io.Class != specs.IOPRIO_CLASS_IDLE {
		return r.refuse(fmt.Sprintf("I/O priority class %s is not allowed: the real-time class lets a container starve the node's disks", io.Class),
			"use IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE")
	}
	return nil
}

// maxAnnotations bounds a spec's annotations: they are workload input that
// palisade parses and copies into audit records.
const maxAnnotations = 256 << 10

func checkAnnotations(r *run, v reflect.Value) error {
	n := 0
	for k, val := range v.Interface().(map[string]string) {
		n += len(k) + len(val)
	}
	if n > maxAnnotations {
		return r.refuse(fmt.Sprintf("the annotations total %d bytes, more than %d", n, maxAnnotations), "shorten them")
	}
	return nil
}

// unifiedPrefixes are the cgroup v2 files a spec may set directly: limits
// of controllers that bound the container. pids.* is the PID limit's
// (pids-limit step); cgroup.* would reshape the hierarchy.
var unifiedPrefixes = []string{"cpu.", "cpuset.", "io.", "memory.", "hugetlb.", "rdma.", "misc."}

func checkUnified(r *run, v reflect.Value) error {
	for k := range v.Interface().(map[string]string) {
		if strings.HasPrefix(k, "pids.") {
			continue // the pids-limit step refuses it with its own message
		}
		if strings.ContainsAny(k, "/\x00") || !slices.ContainsFunc(unifiedPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			return r.refuse(fmt.Sprintf("cgroup v2 setting %q is not allowed (only %s files)", k, strings.Join(unifiedPrefixes, "*, ")+"*"),
				"remove it from linux.resources.unified")
		}
	}
	return nil
}

// checkCgroupsPath requires a cgroup of the container's own: a path that
// names an existing cgroup (a parent such as /kubepods, or another
// container's) would put palisade's limits and the container's processes
// there.
func checkCgroupsPath(r *run, v reflect.Value) error {
	p := v.String()
	fix := "leave linux.cgroupsPath to the runtime (it names a new cgroup per container)"
	if strings.ContainsRune(p, ':') {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[2] == "" || strings.ContainsAny(p, "/\x00") {
			return r.refuse(fmt.Sprintf("cgroups path %q is not of the systemd form slice:prefix:name", p), fix)
		}
		return nil
	}
	clean := filepath.Clean("/" + p)
	if slices.Contains(strings.Split(p, "/"), "..") || clean == "/" {
		return r.refuse(fmt.Sprintf("cgroups path %q does not name a cgroup of its own", p), fix)
	}
	for _, root := range cgroupRoots() {
		if _, err := os.Lstat(filepath.Join(root, clean)); err == nil {
			return r.refuse(fmt.Sprintf("cgroup %s already exists: a container gets a new cgroup of its own, never an existing one", clean), fix)
		}
	}
	return nil
}

// cgroupRoots are the hierarchies where a container's cgroup is created.
func cgroupRoots() []string {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return []string{"/sys/fs/cgroup"}
	case cgroups.Hybrid:
		return []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}
	default:
		return []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory"}
	}
}

// checkRootfsPropagation refuses shared propagation: mounts made inside the
// container would appear on the host.
func checkRootfsPropagation(r *run, v reflect.Value) error {
	switch p := v.String(); p {
	case "private", "rprivate", "slave", "rslave", "unbindable", "runbindable":
		return nil
	default:
		return r.refuse(fmt.Sprintf("root filesystem propagation %q is not allowed: mounts would propagate between the container and the host", p),
			"use rprivate or rslave")
	}
}

func checkMountLabel(r *run, v reflect.Value) error {
	if why := lsm.ConfinementProblem("", v.String()); why != "" {
		return r.refuse("mount label: "+why, "leave the mount label to the runtime")
	}
	return nil
}

// checkPersonality allows the Linux and 32-bit Linux execution domains and
// refuses flags (ADDR_NO_RANDOMIZE and friends weaken the process).
func checkPersonality(r *run, v reflect.Value) error {
	p := v.Interface().(*specs.LinuxPersonality)
	if p.Domain != specs.PerLinux && p.Domain != specs.PerLinux32 {
		return r.refuse(fmt.Sprintf("personality domain %q is not allowed", p.Domain), "use LINUX or LINUX32")
	}
	if len(p.Flags) > 0 {
		return r.refuse(fmt.Sprintf("personality flags %v are not allowed", p.Flags), "remove them")
	}
	return nil
}
