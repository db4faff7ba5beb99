// Command palisade-init is the tiny static helper palisade bind-mounts into
// containers that have an exec allow-list. It confines itself with Landlock
// to executing only the allowed files (and their ELF interpreters), then
// execs the workload, so neither the workload nor anything it starts can
// execute anything else.
//
// exec runs at every start of such a container, and memfd-noexec (run by the
// shim on the host) at every start too, so both are written in C (init.c)
// and run as an ELF constructor before the Go runtime starts, as runc's
// nsexec does: the binary is linked statically with cgo, and neither ever
// reaches main.
//
//	palisade-init exec --allow PATH... -- COMMAND ARGS...   (inside a container)
//	palisade-init seccomp PROGRAM -- COMMAND ARGS...         (inside a container)
//	palisade-init seccomp PROGRAM exec --allow PATH... -- COMMAND ARGS...
//	palisade-init memfd-noexec PID                           (on the host, run by the shim)
//	palisade-init compile < FILTER.json > PROGRAM            (on the host, run by the shim)
//
// seccomp loads the container's seccomp filter, compiled ahead by compile,
// just before execve: runc then neither compiles it nor carries its rules.
// compile is Go and links libseccomp, which the shim does not.
package main

import (
	"fmt"
	"os"

	"palisade.dev/palisade"
)

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: palisade-init exec --allow PATH... -- COMMAND... | seccomp PROGRAM -- COMMAND... | memfd-noexec PID | compile | version")
	}
	switch os.Args[1] {
	case "exec", "seccomp", "memfd-noexec":
		// init.c's constructor runs these to the end (execve or exit)
		// before main: reaching here means it was not linked in.
		fail(126, os.Args[1]+": this palisade-init was built without its C part (build it with cgo, as make build does)")
	case "compile":
		runCompile()
	case "version":
		fmt.Println("palisade-init", palisade.Full())
	default:
		fail(2, "unknown command "+os.Args[1])
	}
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, "palisade-init:", msg)
	os.Exit(code)
}
