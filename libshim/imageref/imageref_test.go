package imageref

import (
	_ "crypto/sha256" // the shim links both, so go-digest knows sha256, sha384 and sha512 there as here
	_ "crypto/sha512"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sha256 = "sha256:" + hex64
)

// cases are references with what distribution/reference v0.6.0 makes of
// them: the normalized reference, or "" where it refuses.
var cases = []struct{ in, want string }{
	// Docker Hub normalization.
	{"busybox", "docker.io/library/busybox"},
	{"busybox:latest", "docker.io/library/busybox:latest"},
	{"library/busybox", "docker.io/library/busybox"},
	{"docker.io/busybox", "docker.io/library/busybox"},
	{"docker.io/library/busybox", "docker.io/library/busybox"},
	{"index.docker.io/busybox", "docker.io/library/busybox"},
	{"index.docker.io/library/busybox", "docker.io/library/busybox"},
	{"index.docker.io/team/app", "docker.io/team/app"},
	{"team/app", "docker.io/team/app"},
	{"team/app/sub/deep", "docker.io/team/app/sub/deep"},
	// Registries, ports, localhost.
	{"registry.example.com/team/app:1.2", "registry.example.com/team/app:1.2"},
	{"registry.example.com:5000/team/app:1.2", "registry.example.com:5000/team/app:1.2"},
	{"registry.example.com:/app", ""},
	{"registry.example.com:50a/app", ""},
	{"registry.example.com:5000", "docker.io/library/registry.example.com:5000"}, // a tag, not a port
	{"registry.example.com:5000:tag", ""},
	{"registry.example.com:5000/app:5000", "registry.example.com:5000/app:5000"},
	{"localhost/app", "localhost/app"},
	{"localhost:5000/app:v1", "localhost:5000/app:v1"},
	{"localhost:5000", "docker.io/library/localhost:5000"},
	{"localhost", "docker.io/library/localhost"},
	{"localhost:", ""},
	{"1.2.3.4:80/app", "1.2.3.4:80/app"},
	// IPv6 hosts.
	{"[::1]/app", "[::1]/app"},
	{"[::1]:5000/app", "[::1]:5000/app"},
	{"[2001:db8::1]:5000/team/app:tag", "[2001:db8::1]:5000/team/app:tag"},
	{"[fe80::1%eth0]/app", ""},
	{"[]/app", ""},
	{"[::1/app", ""},
	{"[::g]/app", ""},
	{"[::1]:/app", ""},
	{"[::1]x/app", ""},
	{"[::1]", ""},
	// Uppercase: allowed in a registry and a tag, not in a path.
	{"Registry.Example.COM/app", "Registry.Example.COM/app"},
	{"REGISTRY/app", "REGISTRY/app"},
	{"Team/app", "Team/app"},
	{"team/App", ""},
	{"BusyBox", ""},
	{"team/app:TAG", "docker.io/team/app:TAG"},
	// Path separators.
	{"a__b", "docker.io/library/a__b"},
	{"a___b", ""},
	{"a--b", "docker.io/library/a--b"},
	{"a---------b", "docker.io/library/a---------b"},
	{"a-_b", ""},
	{"a._b", ""},
	{"a..b", ""},
	{"a.b", "docker.io/library/a.b"},
	{"a_b", "docker.io/library/a_b"},
	{"a-", ""},
	{"-a", ""},
	{"a_", ""},
	{"_a", ""},
	{"a.", ""},
	{".a", ""},
	{"team/app/", ""},
	{"/team/app", ""},
	{"team//app", ""},
	// Host names, and the one first element read as a path, not a host.
	{"a_b.example/app", "a_b.example/app"},
	{"a_b.example:5000/app", ""},
	{"-bad.example/app", ""},
	{"bad-.example/app", ""},
	{"ba-d.example/app", "ba-d.example/app"},
	{".example/app", ""},
	{"example./app", ""},
	{"ex..ample/app", ""},
	// 64-digit hexadecimal identifiers.
	{hex64, ""},
	{hex64 + ":tag", "docker.io/library/" + hex64 + ":tag"},
	{strings.ToUpper(hex64), ""},
	{hex64[:63], "docker.io/library/" + hex64[:63]},
	{hex64 + "0", "docker.io/library/" + hex64 + "0"},
	{"library/" + hex64, "docker.io/library/" + hex64},
	// Path length: at most 255 bytes, the domain not counted.
	{"a/" + strings.Repeat("b", 253), "docker.io/a/" + strings.Repeat("b", 253)},
	{"a/" + strings.Repeat("b", 254), ""},
	{strings.Repeat("b", 247), "docker.io/library/" + strings.Repeat("b", 247)},
	{strings.Repeat("b", 248), ""},
	{"example.com/" + strings.Repeat("b", 255), "example.com/" + strings.Repeat("b", 255)},
	{"example.com/" + strings.Repeat("b", 256), ""},
	// Tags.
	{"busybox:" + strings.Repeat("t", 128), "docker.io/library/busybox:" + strings.Repeat("t", 128)},
	{"busybox:" + strings.Repeat("t", 129), ""},
	{"busybox:_tag", "docker.io/library/busybox:_tag"},
	{"busybox:-tag", ""},
	{"busybox:.tag", ""},
	{"busybox:", ""},
	{"busybox::tag", ""},
	{"busybox:tag:tag", ""},
	{"busybox:t@g", ""},
	{":tag", ""},
	// Digests.
	{"busybox@" + sha256, "docker.io/library/busybox@" + sha256},
	{"a/b@" + sha256, "docker.io/a/b@" + sha256},
	{"busybox:1.36@" + sha256, "docker.io/library/busybox:1.36@" + sha256},
	{"busybox@sha384:" + hex64 + hex64[:32], "docker.io/library/busybox@sha384:" + hex64 + hex64[:32]},
	{"busybox@sha512:" + hex64 + hex64, "docker.io/library/busybox@sha512:" + hex64 + hex64},
	{"busybox@sha256:" + strings.ToUpper(hex64), ""},
	{"busybox@sha256:" + hex64[:32], ""},
	{"busybox@sha256:" + hex64[:31], ""},
	{"busybox@sha256:" + hex64[:63], ""},
	{"busybox@sha256:" + hex64 + "0", ""},
	{"busybox@md5:" + hex64[:32], ""},
	{"busybox@foo+bar.baz-q_x:" + hex64[:32], ""},
	{"busybox@SHA256:" + hex64, ""},
	{"busybox@sha256:", ""},
	{"busybox@:" + hex64, ""},
	{"busybox@sha256", ""},
	{"busybox@", ""},
	{"@" + sha256, ""},
	{"busybox@@" + sha256, ""},
	{"busybox@" + sha256 + "@" + sha256, ""},
	{"busybox@" + sha256 + ":latest", ""},
	{"a@b/c", ""},
	{"a:b/c", ""},
	{"a:b:c/d", ""},
	// Empty, spaces, control bytes, beyond ASCII.
	{"", ""},
	{" busybox", ""},
	{"busybox ", ""},
	{"busybox\n", ""},
	{"busybox\x00", ""},
	{"busybox:\xff", ""},
	{"bücher", ""},
	{"registry.exämple.com/app", ""},
	{"app:tägg", ""},
}

func TestParseNormalizedCases(t *testing.T) {
	for _, c := range cases {
		got, err := ParseNormalized(c.in)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("ParseNormalized(%q) = %s, want a refusal", c.in, got)
		case c.want != "" && err != nil:
			t.Errorf("ParseNormalized(%q): %v, want %s", c.in, err, c.want)
		case c.want != "" && got.String() != c.want:
			t.Errorf("ParseNormalized(%q) = %s, want %s", c.in, got, c.want)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseNormalized(%q): %v is not an invalid-argument error", c.in, err)
		}
		agree(t, c.in)
	}
}

// agree fails unless ParseNormalized and the library accept or refuse s
// alike and, where they accept, agree on its domain, path, tag and digest.
func agree(t *testing.T, s string) {
	t.Helper()
	want, wantErr := reference.ParseNormalizedNamed(s)
	got, err := ParseNormalized(s)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: ParseNormalized says %v (%v), the library %v", s, got, err, wantErr)
	}
	if err != nil {
		return
	}
	var tag, dig string
	if tagged, ok := want.(reference.Tagged); ok {
		tag = tagged.Tag()
	}
	if digested, ok := want.(reference.Digested); ok {
		dig = digested.Digest().String()
	}
	if got.Name() != want.Name() || got.Domain != reference.Domain(want) || got.Path != reference.Path(want) ||
		got.Tag != tag || got.Digest.String() != dig || got.Pinned() != (dig != "") || got.String() != want.String() {
		t.Fatalf("%q: ParseNormalized says domain %q path %q tag %q digest %q, the library domain %q path %q tag %q digest %q",
			s, got.Domain, got.Path, got.Tag, got.Digest, reference.Domain(want), reference.Path(want), tag, dig)
	}
}

func FuzzParseNormalizedNamed(f *testing.F) {
	for _, c := range cases {
		f.Add(c.in)
	}
	f.Fuzz(agree)
}

func TestDigestError(t *testing.T) {
	_, err := ParseNormalized("busybox@sha256:" + hex64[:63])
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("a short digest gave %v, want an invalid-argument error about the digest", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Err == nil {
		t.Fatalf("a short digest gave %v, want go-digest's error inside", err)
	}
}

// TestNoInitWork holds the package to its point: no package-level variable
// (whose initializer would run when the shim starts) and no init function.
func TestNoInitWork(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				if d.Tok == token.VAR {
					t.Errorf("%s: package-level var, initialized when the shim starts", fset.Position(d.Pos()))
				}
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == "init" {
					t.Errorf("%s: init function", fset.Position(d.Pos()))
				}
			}
		}
	}
}

// TestShimDoesNotLinkDistributionReference: the library stays a test
// dependency; its regexps cost every shim process at start. The CLI links
// it only through containerd's client (core/images/archive), which the shim
// does not use; no palisade package may import it.
func TestShimDoesNotLinkDistributionReference(t *testing.T) {
	const lib = "github.com/distribution/reference"
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the binaries' dependencies: %v", err)
	}
	for _, bin := range []string{"containerd-shim-palisade-v2", "palisade"} {
		pkg := "palisade.dev/palisade/cmd/" + bin
		out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}:{{range .Imports}} {{.}}{{end}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		imports := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			p, list, _ := strings.Cut(line, ":")
			imports[p] = strings.Fields(list)
		}
		if !slices.Contains(imports["palisade.dev/palisade/libshim/harden"], "palisade.dev/palisade/libshim/imageref") {
			t.Fatalf("go list -deps %s does not show libshim/harden importing this package:\n%s", pkg, out)
		}
		if _, linked := imports[lib]; linked && bin == "containerd-shim-palisade-v2" {
			t.Errorf("%s links %s", bin, lib)
		}
		for p, list := range imports {
			if strings.HasPrefix(p, "palisade.dev/") && slices.Contains(list, lib) {
				t.Errorf("%s imports %s", p, lib)
			}
		}
	}
}

// TestAgreesOnGrammarPieces: references glued together at random from the
// grammar's own pieces (hosts, ports, separators, tags, digests, case
// changes), where a disagreement would be, rather than from random bytes.
func TestAgreesOnGrammarPieces(t *testing.T) {
	pieces := []string{
		"a", "b", "z", "0", "9", "A", "Z", "ab", "x9", "A1", ".", "..", "_", "__", "___", "-", "--", "/", "//", ":", "::",
		"@", "[", "]", "[::1]", "[a:B:0]", ":5000", ":0", "localhost", "index.docker.io", "docker.io", "library/",
		"example.com", "Ex-ample.COM", "sha256:", "sha512:", "sha384:", "sha256+b64.x-y_z:", hex64, hex64[:32], strings.ToUpper(hex64[:32]),
		"@" + sha256, ":latest", ":" + strings.Repeat("t", 127), strings.Repeat("p", 120), "é", "\xff", " ",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for range 200000 {
		b.Reset()
		for n := 1 + rng.IntN(7); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		agree(t, b.String())
	}
}
