// Command palisade-init is the tiny static helper palisade bind-mounts into
// containers that have an exec allow-list. It confines itself with Landlock
// to executing only the allowed files (and their ELF interpreters), then
// execs the workload, so neither the workload nor anything it starts can
// execute anything else.
//
//	palisade-init exec --allow PATH... -- COMMAND ARGS...   (inside a container)
//	palisade-init memfd-noexec PID                           (on the host, run by the shim)
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"palisade.dev/palisade"
	"palisade.dev/palisade/libshim/execguard"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: palisade-init exec --allow PATH... -- COMMAND... | memfd-noexec PID | version")
	}
	switch os.Args[1] {
	case "exec":
		fs := flag.NewFlagSet("exec", flag.ContinueOnError)
		var allow list
		fs.Var(&allow, "allow", "an executable (or directory tree, ending in /) the process may execute")
		if err := fs.Parse(os.Args[2:]); err != nil || fs.NArg() == 0 || len(allow) == 0 {
			fail(2, "usage: palisade-init exec --allow PATH... -- COMMAND...")
		}
		paths, err := execguard.Ruleset(allow)
		if err != nil {
			fail(126, err.Error())
		}
		if err := execguard.RestrictAndExec(paths, fs.Args(), os.Environ()); err != nil {
			fail(126, err.Error())
		}
	case "memfd-noexec":
		pid, err := strconv.Atoi(arg(2))
		if err != nil {
			fail(2, "usage: palisade-init memfd-noexec PID")
		}
		self, err := os.Executable()
		if err != nil {
			fail(1, err.Error())
		}
		if err := execguard.SetMemfdNoexec(pid, self); err != nil {
			fail(1, err.Error())
		}
	case "memfd-noexec-write":
		if err := execguard.WriteMemfdNoexec(); err != nil {
			fail(1, err.Error())
		}
	case "version":
		fmt.Println("palisade-init", palisade.Full())
	default:
		fail(2, "unknown command "+os.Args[1])
	}
}

func arg(i int) string {
	if len(os.Args) > i {
		return os.Args[i]
	}
	return ""
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, "palisade-init:", msg)
	os.Exit(code)
}
