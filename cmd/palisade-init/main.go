// Command palisade-init is the tiny static helper palisade bind-mounts into
// containers that have an exec allow-list. It confines itself with Landlock
// to executing only the allowed files (and their ELF interpreters), then
// execs the workload, so neither the workload nor anything it starts can
// execute anything else.
//
// exec runs at every start of such a container, so it is written in C
// (init.c) and runs as an ELF constructor before the Go runtime starts, as
// runc's nsexec does: the binary is linked statically with cgo, and exec
// never reaches main. The host-side subcommands stay in Go.
//
//	palisade-init exec --allow PATH... -- COMMAND ARGS...   (inside a container)
//	palisade-init memfd-noexec PID                           (on the host, run by the shim)
package main

import (
	"fmt"
	"os"
	"strconv"

	"palisade.dev/palisade"
	"palisade.dev/palisade/libshim/execguard"
)

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: palisade-init exec --allow PATH... -- COMMAND... | memfd-noexec PID | version")
	}
	switch os.Args[1] {
	case "exec":
		// init.c's constructor runs exec to the end (execve or exit)
		// before main: reaching here means it was not linked in.
		fail(126, "exec: this palisade-init was built without its C part (build it with cgo, as make build does)")
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
