// Package imageref parses and normalizes a container image reference
// ("busybox", "registry.example.com:5000/team/app:1.2@sha256:…") the way
// github.com/distribution/reference's ParseNormalizedNamed (v0.6.0) does:
// the same references are accepted, with the same normalized name
// ("busybox" is docker.io/library/busybox), tag and digest.
//
// That library compiles its grammar into regular expressions when its
// package is initialised: about 0.4 MB of heap and a millisecond or two in
// every shim process, kept for the process's whole life, for one call per
// container. This package scans the same grammar by hand and does nothing
// at init. Its tests hold it to the library, case by case and by fuzzing.
//
// The grammar (distribution/reference's regexp.go):
//
//	reference   := name [ ":" tag ] [ "@" digest ]
//	name        := [ domain "/" ] path
//	domain      := host [ ":" port ]
//	host        := component ( "." component )* | "[" [a-fA-F0-9:]+ "]"
//	component   := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
//	port        := [0-9]+
//	path        := path-comp ( "/" path-comp )*      (at most 255 bytes)
//	path-comp   := [a-z0-9]+ ( separator [a-z0-9]+ )*
//	separator   := "." | "_" | "__" | "-"+
//	tag         := [\w] [\w.-]{0,127}
//	digest      := algorithm ":" [0-9a-fA-F]{32,}   (then go-digest's own check)
//	algorithm   := alpha-comp ( [-_+.] alpha-comp )*
//	alpha-comp  := [A-Za-z] [A-Za-z0-9]*
//
// Before parsing, the name is normalized: a first path element that is not
// a registry ("localhost", or one holding a '.' or ':' or an uppercase
// letter) means Docker Hub, docker.io, with "library/" before a one-element
// path; index.docker.io is docker.io. A bare 64-digit hexadecimal string is
// an image ID, not a name, and is refused.
package imageref

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

const (
	defaultDomain       = "docker.io"
	legacyDefaultDomain = "index.docker.io"
	officialRepoPrefix  = "library/"
	// maxPath is the longest repository path (the name without its
	// domain) the grammar admits.
	maxPath = 255
	// maxTag is the longest tag.
	maxTag = 128
	// minHex is the fewest hexadecimal digits a digest's grammar admits.
	minHex = 32
)

// Reference is a parsed, normalized image reference.
type Reference struct {
	// Domain is the registry, host[:port] ("docker.io" for Docker Hub).
	// It is "" in the one odd case where the grammar reads the whole name
	// as a path: a first element with a '.' that is not a valid host but
	// is a valid path element ("a_b.example/app").
	Domain string
	// Path is the repository path within the registry ("library/busybox").
	Path string
	// Tag is the tag, "" when none was given (no default is filled in).
	Tag string
	// Digest is the digest the image is pinned by, "" when none.
	Digest digest.Digest
}

// Name is the normalized repository name, DOMAIN/PATH
// ("docker.io/library/busybox").
func (r Reference) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the normalized reference, NAME[:TAG][@DIGEST].
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Pinned reports whether the reference names its image by digest.
func (r Reference) Pinned() bool { return r.Digest != "" }

// Error says why a string is not a valid image reference. It is an
// errdefs invalid-argument error.
type Error struct {
	Reason string
	// Err is go-digest's error when the digest is what is wrong, else nil.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

// Unwrap returns go-digest's error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is makes every Error an errdefs invalid argument.
func (e *Error) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

func invalid(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// ParseNormalized parses an image reference and normalizes its name, as
// distribution/reference's ParseNormalizedNamed does.
func ParseNormalized(s string) (Reference, error) {
	if s == "" {
		return Reference{}, invalid("the reference is empty")
	}
	if isIdentifier(s) {
		return Reference{}, invalid("%s is a 64-digit hexadecimal image ID, not a repository name", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i >= 0 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return Reference{}, invalid("repository name %q must be lowercase", remote)
	}
	return parse(domain + "/" + remainder)
}

// parse parses a whole reference, name [":" tag] ["@" digest], whose name
// holds a domain (the grammar's Parse).
func parse(s string) (Reference, error) {
	var r Reference
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		dig := rest[i+1:]
		if err := digestGrammar(dig); err != nil {
			return Reference{}, err
		}
		d, err := digest.Parse(dig)
		if err != nil {
			return Reference{}, &Error{Reason: fmt.Sprintf("digest %q is not valid", dig), Err: err}
		}
		r.Digest = d
		rest = rest[:i]
	}
	// A name holds ':' only in its domain, which ends at a '/': a ':' after
	// the last '/' starts the tag.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, '/') {
		r.Tag = rest[i+1:]
		if err := checkTag(r.Tag); err != nil {
			return Reference{}, err
		}
		rest = rest[:i]
	}
	// The domain is optional and tried first: the name's first element is
	// the domain if it is a valid one and the rest a valid path; otherwise
	// the whole name must be a path.
	domain, path, found := strings.Cut(rest, "/")
	var err error
	if found {
		if err = checkDomain(domain); err == nil {
			err = checkPath(path)
		}
	}
	if !found || err != nil {
		if whole := checkPath(rest); whole != nil {
			if !found {
				err = whole
			}
			return Reference{}, err
		}
		domain, path = "", rest
	}
	if len(path) > maxPath {
		return Reference{}, invalid("repository path is %d bytes long, more than the %d allowed", len(path), maxPath)
	}
	r.Domain, r.Path = domain, path
	return r, nil
}

// splitDockerDomain splits a name into its registry and the rest,
// supplying Docker Hub where the first element is not a registry.
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok {
		return defaultDomain, officialRepoPrefix + name
	}
	switch {
	case first == "localhost":
		domain, remainder = first, rest
	case first == legacyDefaultDomain:
		domain, remainder = defaultDomain, rest
	case strings.ContainsAny(first, ".:"):
		domain, remainder = first, rest
	case strings.ToLower(first) != first:
		domain, remainder = first, rest
	default:
		domain, remainder = defaultDomain, name
	}
	if domain == defaultDomain && !strings.Contains(remainder, "/") {
		remainder = officialRepoPrefix + remainder
	}
	return domain, remainder
}

// isIdentifier reports whether s is exactly 64 lowercase hexadecimal digits.
func isIdentifier(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

// checkDomain checks host[:port], the host a dotted name or an IPv6
// address in brackets.
func checkDomain(d string) error {
	host, port := d, ""
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return invalid("registry %q: an IPv6 address has no closing ']'", d)
		}
		host, port = d[:end+1], d[end+1:]
		addr := host[1:end]
		if addr == "" {
			return invalid("registry %q: the IPv6 address is empty", d)
		}
		for i := 0; i < len(addr); i++ {
			if c := addr[i]; !isHex(c) && c != ':' {
				return invalid("registry %q: %q is not allowed in an IPv6 address", d, c)
			}
		}
	} else {
		if i := strings.IndexByte(d, ':'); i >= 0 {
			host, port = d[:i], d[i:]
		}
		for _, c := range strings.Split(host, ".") {
			if err := checkHostComponent(c); err != nil {
				return invalid("registry %q: %v", d, err)
			}
		}
	}
	if port == "" {
		return nil
	}
	if port[0] != ':' || len(port) == 1 || strings.TrimLeft(port[1:], "0123456789") != "" {
		return invalid("registry %q: the port must be ':' and digits", d)
	}
	return nil
}

// checkHostComponent checks one dot-separated element of a host name:
// letters, digits and '-', not at either end.
func checkHostComponent(c string) error {
	if c == "" {
		return errors.New("the host name has an empty element")
	}
	for i := 0; i < len(c); i++ {
		if !isAlnum(c[i]) && c[i] != '-' {
			return fmt.Errorf("%q is not allowed in a host name", c[i])
		}
	}
	if c[0] == '-' || c[len(c)-1] == '-' {
		return fmt.Errorf("host name element %q starts or ends with '-'", c)
	}
	return nil
}

// checkPath checks a repository path: '/'-separated components of
// lowercase letters and digits, joined within a component by one
// separator ('.', '_', "__" or a run of '-').
func checkPath(p string) error {
	for _, comp := range strings.Split(p, "/") {
		if err := checkPathComponent(comp); err != nil {
			return invalid("repository path %q: %v", p, err)
		}
	}
	return nil
}

func checkPathComponent(c string) error {
	if c == "" {
		return errors.New("an element is empty")
	}
	for i := 0; i < len(c); {
		j := i
		for j < len(c) && (isDigit(c[j]) || (c[j] >= 'a' && c[j] <= 'z')) {
			j++
		}
		if j == i {
			if i == 0 || isSeparatorByte(c[i]) {
				return fmt.Errorf("element %q must start and end with a lowercase letter or digit", c)
			}
			return fmt.Errorf("%q is not allowed (lowercase letters, digits and the separators '.', '_', \"__\" and '-')", c[i])
		}
		if j == len(c) {
			return nil
		}
		k := j
		for k < len(c) && isSeparatorByte(c[k]) {
			k++
		}
		if k == j {
			return fmt.Errorf("%q is not allowed (lowercase letters, digits and the separators '.', '_', \"__\" and '-')", c[j])
		}
		if !isSeparator(c[j:k]) {
			return fmt.Errorf("%q in element %q is not a separator ('.', '_', \"__\" or a run of '-')", c[j:k], c)
		}
		if k == len(c) {
			return fmt.Errorf("element %q must start and end with a lowercase letter or digit", c)
		}
		i = k
	}
	return nil
}

func isSeparatorByte(c byte) bool { return c == '.' || c == '_' || c == '-' }

// isSeparator reports whether a run of separator bytes is one separator.
func isSeparator(s string) bool {
	switch s {
	case ".", "_", "__":
		return true
	}
	return strings.Trim(s, "-") == ""
}

// checkTag checks a tag: a letter, digit or '_', then up to 127 of those,
// '.' and '-'.
func checkTag(t string) error {
	if t == "" {
		return invalid("the tag after ':' is empty")
	}
	if len(t) > maxTag {
		return invalid("tag is %d bytes long, more than the %d allowed", len(t), maxTag)
	}
	if !isWord(t[0]) {
		return invalid("tag %q must start with a letter, digit or '_'", t)
	}
	for i := 1; i < len(t); i++ {
		if c := t[i]; !isWord(c) && c != '.' && c != '-' {
			return invalid("tag %q: %q is not allowed (letters, digits, '_', '.' and '-')", t, c)
		}
	}
	return nil
}

// digestGrammar checks the reference grammar's own digest pattern,
// ALGORITHM:HEX with at least 32 hexadecimal digits; go-digest checks the
// rest (a known algorithm, the right length, lowercase).
func digestGrammar(d string) error {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return invalid("digest %q has no ':' between algorithm and hexadecimal value", d)
	}
	if err := checkAlgorithm(alg); err != nil {
		return invalid("digest %q: %v", d, err)
	}
	if len(hex) < minHex {
		return invalid("digest %q: the value must have at least %d hexadecimal digits", d, minHex)
	}
	for i := 0; i < len(hex); i++ {
		if !isHex(hex[i]) {
			return invalid("digest %q: %q is not a hexadecimal digit", d, hex[i])
		}
	}
	return nil
}

// checkAlgorithm checks a digest algorithm: components of a letter then
// letters and digits, joined by one of '-', '_', '+' and '.'.
func checkAlgorithm(a string) error {
	start := true
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case start && isLetter(c):
			start = false
		case !start && isAlnum(c):
		case !start && (c == '-' || c == '_' || c == '+' || c == '.'):
			start = true
		default:
			return fmt.Errorf("algorithm %q is not letters and digits joined by '-', '_', '+' or '.'", a)
		}
	}
	if start {
		return fmt.Errorf("algorithm %q is not letters and digits joined by '-', '_', '+' or '.'", a)
	}
	return nil
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }
func isWord(c byte) bool   { return isAlnum(c) || c == '_' }
func isHex(c byte) bool    { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
