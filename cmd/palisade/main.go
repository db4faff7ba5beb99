// Command palisade is the developer and administrator CLI of palisade: it
// inspects the host and, in later commands, lints, renders, explains and runs
// containers through the very pipeline the shim uses.
package main

import (
	"os"

	"palisade.dev/palisade/libshim/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
