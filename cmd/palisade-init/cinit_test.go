package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/arch"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/testing/require"
)

// goParse is how palisade-init parsed exec's arguments when it was Go: the
// reference init.c's parser is held to.
func goParse(argv []string) (allow, command []string, ok bool) {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("allow", "", func(v string) error { allow = append(allow, v); return nil })
	if err := fs.Parse(argv[2:]); err != nil || fs.NArg() == 0 || len(allow) == 0 {
		return nil, nil, false
	}
	return allow, fs.Args(), true
}

func checkParse(t *testing.T, argv []string) {
	t.Helper()
	wantAllow, wantCmd, wantOK := goParse(argv)
	allow, cmd, ok := cParse(argv)
	if ok != wantOK || !slices.Equal(allow, wantAllow) || !slices.Equal(cmd, wantCmd) {
		t.Fatalf("argv %q: C parsed ok=%v allow=%q command=%q, Go's flag package ok=%v allow=%q command=%q", argv, ok, allow, cmd, wantOK, wantAllow, wantCmd)
	}
}

var parseCases = [][]string{
	{"--allow", "/bin/true", "--", "/bin/true"},
	{"-allow", "/bin/true", "/bin/true", "-x"},
	{"--allow=/bin/true", "-allow=/usr/", "--", "true", "--allow", "x"},
	{"--allow", "--", "--", "cmd"},
	{"--allow", "/bin/true"},
	{"--allow", "/bin/true", "--"},
	{"--", "/bin/true"},
	{"/bin/true"},
	{},
	{"--allow"},
	{"-allow="},
	{"-allow=", "x"},
	{"---allow", "x", "y"},
	{"-=x", "y"},
	{"-h"},
	{"-help", "x"},
	{"--allowed", "x", "y"},
	{"-x", "--allow", "a", "b"},
	{"-", "--allow", "a"},
	{"--allow", "a", "-", "b"},
	{"--allow", "a", "", "b"},
	{"--ALLOW", "a", "b"},
}

// TestParseMatchesGoFlag: init.c parses exec's arguments exactly as the Go
// flag package did (the Go fuzz test below searches further).
func TestParseMatchesGoFlag(t *testing.T) {
	for _, c := range parseCases {
		checkParse(t, append([]string{"palisade-init", "exec"}, c...))
	}
}

// FuzzExecArgs: any argv, split from the input on NUL bytes.
func FuzzExecArgs(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(strings.Join(c, "\x00")))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		argv := []string{"palisade-init", "exec"}
		if len(in) > 0 {
			argv = append(argv, strings.Split(string(in), "\x00")...)
		}
		checkParse(t, argv)
	})
}

// TestLoadersMatchArch: init.c's dynamic loaders are libshim/arch's.
func TestLoadersMatchArch(t *testing.T) {
	goarch, loaders := cLoaders()
	native := arch.Native()
	if goarch != native.GoArch || !slices.Equal(loaders, native.Loaders) {
		t.Fatalf("init.c knows %s loaders %q; libshim/arch says %s %q", goarch, loaders, native.GoArch, native.Loaders)
	}
}

// elfFile builds an ELF file of the native class with the given program
// headers (type, file contents) for the ruleset and ELF-reader tests.
func elfFile(big bool, class elf.Class, progs ...elfProg) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	data := elf.ELFDATA2LSB
	if big {
		bo, data = binary.BigEndian, elf.ELFDATA2MSB
	}
	ehsize, phsize := 64, 56
	if class == elf.ELFCLASS32 {
		ehsize, phsize = 52, 32
	}
	buf := make([]byte, ehsize+phsize*len(progs))
	copy(buf, elf.ELFMAG)
	buf[4], buf[5], buf[6] = byte(class), byte(data), byte(elf.EV_CURRENT)
	off := len(buf)
	for i, p := range progs {
		ph := buf[ehsize+i*phsize:]
		bo.PutUint32(ph, uint32(p.typ))
		if class == elf.ELFCLASS64 {
			bo.PutUint64(ph[8:], uint64(off))
			bo.PutUint64(ph[32:], uint64(len(p.data)))
		} else {
			bo.PutUint32(ph[4:], uint32(off))
			bo.PutUint32(ph[16:], uint32(len(p.data)))
		}
		off += len(p.data)
	}
	bo.PutUint16(buf[16:], uint16(elf.ET_EXEC))
	if class == elf.ELFCLASS64 {
		bo.PutUint32(buf[20:], 1)
		bo.PutUint64(buf[32:], 64)
		bo.PutUint16(buf[52:], 64)
		bo.PutUint16(buf[54:], uint16(phsize))
		bo.PutUint16(buf[56:], uint16(len(progs)))
	} else {
		bo.PutUint32(buf[20:], 1)
		bo.PutUint32(buf[28:], 52)
		bo.PutUint16(buf[40:], 52)
		bo.PutUint16(buf[42:], uint16(phsize))
		bo.PutUint16(buf[44:], uint16(len(progs)))
	}
	for _, p := range progs {
		buf = append(buf, p.data...)
	}
	return buf
}

type elfProg struct {
	typ  elf.ProgType
	data []byte
}

func interpProg(p string) elfProg { return elfProg{elf.PT_INTERP, append([]byte(p), 0)} }

// goInterp is execguard's reading of PT_INTERP with Go's debug/elf. parsed
// is false when debug/elf does not take the file for ELF at all.
func goInterp(data []byte) (interp string, parsed bool, err error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", false, nil
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		if p.Filesz >= 4096 {
			return "", true, errors.New("too long")
		}
		buf := make([]byte, p.Filesz)
		if _, err := p.ReadAt(buf, 0); err != nil {
			return "", true, err
		}
		return strings.TrimRight(string(buf), "\x00"), true, nil
	}
	return "", true, nil
}

// checkInterp holds init.c's ELF reader to debug/elf's answer wherever the
// file is one the kernel would load the same way (program header entries of
// the standard size, no extended numbering); elsewhere it must only not
// crash.
func checkInterp(t *testing.T, dir string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, cerr := cInterp(p)
	want, parsed, gerr := goInterp(data)
	if !parsed {
		return
	}
	f, _ := elf.NewFile(bytes.NewReader(data))
	std := 56
	if f.Class == elf.ELFCLASS32 {
		std = 32
	}
	var phentsize, phnum uint16
	if f.Class == elf.ELFCLASS64 {
		phentsize, phnum = f.ByteOrder.Uint16(data[54:]), f.ByteOrder.Uint16(data[56:])
	} else {
		phentsize, phnum = f.ByteOrder.Uint16(data[42:]), f.ByteOrder.Uint16(data[44:])
	}
	if int(phentsize) != std || phnum == 0xffff {
		return
	}
	switch {
	case gerr != nil || strings.Contains(want, "\x00"):
		if cerr == nil {
			t.Fatalf("%x: debug/elf: %v (%q), init.c read %q", data, gerr, want, got)
		}
	case cerr != nil || got != want:
		t.Fatalf("%x: init.c read %q (%v), debug/elf %q", data, got, cerr, want)
	}
}

var interpCases = [][]byte{
	elfFile(false, elf.ELFCLASS64, interpProg("/lib64/ld-linux-x86-64.so.2")),
	elfFile(true, elf.ELFCLASS64, elfProg{elf.PT_LOAD, nil}, interpProg("/lib/ld-linux-aarch64.so.1")),
	elfFile(false, elf.ELFCLASS32, interpProg("/lib/ld-linux.so.2")),
	elfFile(true, elf.ELFCLASS32, interpProg("/x\x00\x00")),
	elfFile(false, elf.ELFCLASS64, elfProg{elf.PT_LOAD, []byte("abc")}),
	elfFile(false, elf.ELFCLASS64, interpProg("/a\x00b")),
	elfFile(false, elf.ELFCLASS64, interpProg(strings.Repeat("/x", 3000))),
	elfFile(false, elf.ELFCLASS64),
	[]byte("#!/bin/sh\necho hi\n"),
	[]byte("\x7fELF"),
	{},
}

// TestInterpMatchesDebugElf runs init.c's ELF reader on this test binary,
// on true(1) and on hand-made files against Go's debug/elf.
func TestInterpMatchesDebugElf(t *testing.T) {
	dir := t.TempDir()
	for _, c := range interpCases {
		checkInterp(t, dir, c)
	}
	for _, p := range []string{os.Args[0], "/bin/true", "/bin/busybox"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		checkInterp(t, dir, data)
	}
}

// FuzzInterp: any file, read by init.c and by debug/elf.
func FuzzInterp(f *testing.F) {
	for _, c := range interpCases {
		f.Add(c)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) { checkInterp(t, dir, data) })
}

// TestRulesetMatchesGo: init.c's ruleset and execguard.Ruleset give the
// same paths for the same allow-lists, and refuse the same ones (with the
// same message where init.c does not have to word a system error its own
// way).
func TestRulesetMatchesGo(t *testing.T) {
	dir := t.TempDir()
	native := arch.Native()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	loader := filepath.Join(dir, "loader")
	must(os.WriteFile(loader, []byte("not really"), 0o755))
	mk := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, data, 0o755))
		return p
	}
	static := mk("static", elfFile(false, elf.ELFCLASS64))
	sneaky := mk("sneaky", elfFile(false, elf.ELFCLASS64, interpProg(loader)))
	knownMissing := mk("known", elfFile(false, elf.ELFCLASS64, interpProg(native.Loaders[len(native.Loaders)-1])))
	script := mk("script", []byte("#!/bin/sh\n"))
	must(os.Mkdir(filepath.Join(dir, "tree"), 0o755))
	must(os.Symlink("tree", filepath.Join(dir, "treelink")))
	must(os.Symlink("static", filepath.Join(dir, "staticlink")))
	must(os.Symlink(loader, filepath.Join(dir, "loaderlink")))
	sneakyViaLink := mk("sneaky2", elfFile(false, elf.ELFCLASS64, interpProg(filepath.Join(dir, "loaderlink"))))
	cases := []struct {
		allow   []string
		sameMsg bool
	}{
		{[]string{static, script, dir + "/tree/"}, true},
		{[]string{filepath.Join(dir, "staticlink"), static}, true},
		{[]string{dir + "/treelink/"}, true},
		{[]string{sneaky}, true},
		{[]string{sneaky, loader}, true},
		{[]string{sneakyViaLink, filepath.Join(dir, "loaderlink")}, true},
		{[]string{filepath.Join(dir, "missing")}, false},
		{[]string{dir + "/missing/"}, false},
		{[]string{knownMissing}, false},
		{[]string{os.Args[0]}, true},
		{[]string{"/bin/true", "/bin/busybox", "/usr/bin/"}, true},
	}
	for _, c := range cases {
		want, werr := execguard.Ruleset(c.allow)
		got, gerr := cRuleset(c.allow)
		if (werr == nil) != (gerr == nil) || !slices.Equal(got, want) {
			t.Errorf("allow %q: init.c %q (%v), execguard %q (%v)", c.allow, got, gerr, want, werr)
			continue
		}
		if c.sameMsg && werr != nil && werr.Error() != gerr.Error() {
			t.Errorf("allow %q: init.c says %q, execguard %q", c.allow, gerr, werr)
		}
	}
}

// TestExec runs the built helper: what it allows runs, anything else is
// refused by the kernel (126), bad arguments are usage errors (2); version
// and the Go subcommands still work.
func TestExec(t *testing.T) {
	if _, err := execguard.LandlockABI(); err != nil {
		require.Skipf(t, "Landlock is not available here (%v): the helper cannot run", err)
	}
	helper := startableHelper(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		require.Skipf(t, "no sh(1) here")
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		require.Skipf(t, "no true(1) here")
	}
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"exec", "--allow", truePath, "--", truePath}, 0, ""},
		{[]string{"exec", "--allow", sh, "--", "sh", "-c", "echo ran; " + truePath}, 126, "ran"}, // a descendant is confined too
		{[]string{"exec", "--allow", sh, "--", "sh", "-c", "echo ran; exit 7"}, 7, "ran"},
		{[]string{"exec", "--allow", truePath, "--", sh, "-c", "echo ran"}, 126, "palisade-init: permission denied"},
		{[]string{"exec", "--allow", truePath, "--", "no-such-command-here"}, 126, `palisade-init: "no-such-command-here" not found in the container`},
		{[]string{"exec", "--allow", "/no/such/file", "--", truePath}, 126, "palisade-init: allow-list entry /no/such/file:"},
		{[]string{"exec", "--allow", truePath}, 2, "usage: palisade-init exec"},
		{[]string{"exec", "--deny", truePath, truePath}, 2, "flag provided but not defined: -deny"},
		{[]string{"exec"}, 2, "usage"},
		{[]string{"version"}, 0, "palisade-init "},
		{[]string{"memfd-noexec", "x"}, 2, "usage: palisade-init memfd-noexec PID"},
		{[]string{"memfd-noexec"}, 2, "usage: palisade-init memfd-noexec PID"},
		{[]string{"memfd-noexec", "0"}, 2, "usage: palisade-init memfd-noexec PID"},
		{[]string{"memfd-noexec", "-1"}, 2, "usage: palisade-init memfd-noexec PID"},
		{[]string{"memfd-noexec", "4194305"}, 2, "usage: palisade-init memfd-noexec PID"},
		{[]string{"memfd-noexec", "1", "2"}, 2, "usage: palisade-init memfd-noexec PID"},
		{[]string{"nope"}, 2, "unknown command nope"},
	}
	for _, c := range cases {
		code, out := exitOf(t, exec.Command(helper, c.args...))
		if code != c.code || !strings.Contains(out, c.out) {
			t.Errorf("palisade-init %q: exit %d, output %q; want exit %d and %q", c.args, code, out, c.code, c.out)
		}
	}
}

// exitOf runs cmd and returns its exit code and combined output.
func exitOf(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}
