package main

// The exec subcommand is C (init.c), run as an ELF constructor before the
// Go runtime starts; this file links it in and gives the tests a way to
// call its parser and ELF reader.

/*
#cgo CFLAGS: -Os -std=gnu11 -Wall -Wextra -Werror -fno-common -fstack-protector-strong -D_FORTIFY_SOURCE=2
#include <stdlib.h>
#include "init.h"
*/
import "C"

import (
	"errors"
	"os"
	"unsafe"
)

// cStrings copies ss into a C array of C strings; free releases it.
func cStrings(ss []string) (arr **C.char, free func()) {
	n := len(ss)
	p := (**C.char)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	s := unsafe.Slice(p, n+1)
	for i, v := range ss {
		s[i] = C.CString(v)
	}
	return p, func() {
		for i := range n {
			C.free(unsafe.Pointer(s[i]))
		}
		C.free(unsafe.Pointer(p))
	}
}

// cParse runs init.c's argument parser on a whole argv (argv[0] and
// "exec" included): the allow-list and the command, or ok false.
func cParse(argv []string) (allow, command []string, ok bool) {
	arr, free := cStrings(argv)
	defer free()
	n := len(argv)
	out := (**C.char)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(out))
	var nallow, cmd C.int
	errbuf := make([]C.char, 256)
	if C.pi_parse(C.int(n), arr, out, &nallow, &cmd, &errbuf[0], C.size_t(len(errbuf))) != 0 {
		return nil, nil, false
	}
	for _, s := range unsafe.Slice(out, n)[:nallow] {
		allow = append(allow, C.GoString(s))
	}
	return allow, argv[cmd:], true
}

// cInterp runs init.c's ELF reader on a file: its PT_INTERP, "" if none.
func cInterp(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	out := make([]C.char, 4096)
	errbuf := make([]C.char, 256)
	if C.pi_interp_fd(C.int(f.Fd()), &out[0], &errbuf[0], C.size_t(len(errbuf))) != 0 {
		return "", errors.New(C.GoString(&errbuf[0]))
	}
	return C.GoString(&out[0]), nil
}

// cRuleset runs init.c's ruleset (execguard.Ruleset in C).
func cRuleset(allow []string) ([]string, error) {
	arr, free := cStrings(allow)
	defer free()
	out := (**C.char)(C.calloc(C.size_t(2*len(allow)+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(out))
	var n C.int
	errbuf := make([]C.char, 8192)
	r := C.pi_ruleset(arr, C.int(len(allow)), out, &n, &errbuf[0], C.size_t(len(errbuf)))
	var paths []string
	for _, s := range unsafe.Slice(out, 2*len(allow)+1)[:n] {
		paths = append(paths, C.GoString(s))
		C.free(unsafe.Pointer(s))
	}
	if r != 0 {
		return nil, errors.New(C.GoString(&errbuf[0]))
	}
	return paths, nil
}

// cLoaders is init.c's list of this architecture's dynamic loaders.
func cLoaders() (goarch string, loaders []string) {
	for p := C.pi_loader_list(); *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(p))) {
		loaders = append(loaders, C.GoString(*p))
	}
	return C.GoString(C.pi_goarch()), loaders
}

// cPID runs init.c's PID parser (memfd-noexec's argument): the PID, or 0.
func cPID(s string) int {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return int(C.pi_pid(cs))
}

// cProgram runs init.c's seccomp program decoder: the raw program, or ok
// false.
func cProgram(hex string) (prog []byte, ok bool) {
	cs := C.CString(hex)
	defer C.free(unsafe.Pointer(cs))
	out := make([]C.struct_sock_filter, C.PI_MAX_INSNS)
	errbuf := make([]C.char, 256)
	n := C.pi_program(cs, &out[0], &errbuf[0], C.size_t(len(errbuf)))
	if n < 0 {
		return nil, false
	}
	return C.GoBytes(unsafe.Pointer(&out[0]), n*8), true
}
