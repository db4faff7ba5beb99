package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/seccomp"
)

// maxFilterJSON bounds what compile reads: the largest filter a profile
// can produce is far below it.
const maxFilterJSON = 4 << 20

// compile reads a seccomp filter (the JSON of an OCI spec's
// linux.seccomp) on stdin and writes its program for this host's
// architecture on stdout, as seccomp.NewProgram builds it. The shim runs
// it on the host, once per filter and node (libshim/launch): the shim
// itself is built without libseccomp, which this binary links statically.
func compile(stdin io.Reader, stdout io.Writer) error {
	data, err := io.ReadAll(io.LimitReader(stdin, maxFilterJSON+1))
	if err != nil {
		return err
	}
	if len(data) > maxFilterJSON {
		return fmt.Errorf("the filter is larger than %d bytes", maxFilterJSON)
	}
	var sc specs.LinuxSeccomp
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return fmt.Errorf("not a seccomp filter: %w", err)
	}
	prog, err := seccomp.NewProgram(&sc, runtime.GOARCH)
	if err != nil {
		return err
	}
	_, err = stdout.Write(prog)
	return err
}

func runCompile() {
	if len(os.Args) != 2 {
		fail(2, "usage: palisade-init compile < FILTER.json > PROGRAM")
	}
	if err := compile(os.Stdin, os.Stdout); err != nil {
		fail(1, "compile: "+err.Error())
	}
}
