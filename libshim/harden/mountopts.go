package harden

import (
	"slices"
)

// A mount's options are read the way runc applies them, not compared as
// strings: runc first mounts with the plain flags (later options win over
// earlier ones: "ro" then "rw" is writable), then applies the recursive
// "r*" attributes with mount_setattr(AT_RECURSIVE), which win over the
// plain flags ("nosuid" then "rsuid" leaves the mount suid). The transforms
// remove every option that would weaken a protection and the verification
// pass checks the effective result. TestMountOptionsCoverRunc keeps the
// table in step with the options runc knows.

// attr is a mount attribute palisade cares about.
type attr int

const (
	attrRO attr = iota
	attrNoSUID
	attrNoDev
	attrNoExec
	attrNoSymfollow
	attrCount
)

var attrName = [attrCount]string{"ro", "nosuid", "nodev", "noexec", "nosymfollow"}

// optionEffect says what one option does to an attribute: set or clear,
// plainly or recursively.
type optionEffect struct {
	attr      attr
	clear     bool
	recursive bool
}

// attrOptions are the options that change an attribute palisade checks.
var attrOptions = map[string]optionEffect{
	"ro": {attrRO, false, false}, "rw": {attrRO, true, false},
	"rro": {attrRO, false, true}, "rrw": {attrRO, true, true},
	"nosuid": {attrNoSUID, false, false}, "suid": {attrNoSUID, true, false},
	"rnosuid": {attrNoSUID, false, true}, "rsuid": {attrNoSUID, true, true},
	"nodev": {attrNoDev, false, false}, "dev": {attrNoDev, true, false},
	"rnodev": {attrNoDev, false, true}, "rdev": {attrNoDev, true, true},
	"noexec": {attrNoExec, false, false}, "exec": {attrNoExec, true, false},
	"rnoexec": {attrNoExec, false, true}, "rexec": {attrNoExec, true, true},
	"nosymfollow": {attrNoSymfollow, false, false}, "symfollow": {attrNoSymfollow, true, false},
	"rnosymfollow": {attrNoSymfollow, false, true}, "rsymfollow": {attrNoSymfollow, true, true},
}

// neutralOptions change nothing palisade checks (timestamps, sync modes,
// bind itself, "defaults").
var neutralOptions = []string{
	"async", "atime", "bind", "defaults", "diratime", "dirsync", "iversion", "lazytime", "loud",
	"mand", "noatime", "nodiratime", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
	"rbind", "relatime", "silent", "strictatime", "sync",
	"rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime", "rstrictatime", "rnostrictatime",
	"tmpcopyup", "private", "rprivate", "slave", "rslave", "unbindable", "runbindable",
}

// refusedOptions have no safe meaning in a container spec: remount would
// change a mount that already exists; shared propagation would let mounts
// made inside the container appear on the host; idmap mounts are what
// palisade does not yet check (a mapping onto host root would let the
// container own the host's files).
var refusedOptions = map[string]string{
	"remount": "it changes an existing mount instead of making one",
	"shared":  "mounts made inside the container would propagate to the host",
	"rshared": "mounts made inside the container would propagate to the host",
	"idmap":   "id-mapped mounts are not allowed by palisade",
	"ridmap":  "id-mapped mounts are not allowed by palisade",
}

// mountAttrs is the effective state of each attribute after runc applied
// every option.
type mountAttrs [attrCount]bool

// effectiveAttrs computes what a mount ends up with. Options runc does not
// know are filesystem data (size=, mode=) and change no attribute.
func effectiveAttrs(options []string) mountAttrs {
	var plain, recSet, recClr mountAttrs
	for _, o := range options {
		e, ok := attrOptions[o]
		switch {
		case !ok:
		case e.recursive && e.clear:
			recClr[e.attr], recSet[e.attr] = true, false
		case e.recursive:
			recSet[e.attr], recClr[e.attr] = true, false
		default:
			plain[e.attr] = !e.clear
		}
	}
	var out mountAttrs
	for a := range out {
		out[a] = recSet[a] || (plain[a] && !recClr[a])
	}
	return out
}

// lacking names the attributes of want that the options do not end up with.
func lacking(options []string, want ...attr) []string {
	have := effectiveAttrs(options)
	var out []string
	for _, a := range want {
		if !have[a] {
			out = append(out, attrName[a])
		}
	}
	return out
}

// enforceAttrs makes the options end with every attribute of want: every
// option that would clear one of them (plainly or recursively) is removed,
// and the plain option added when missing.
func enforceAttrs(options []string, want ...attr) []string {
	options = slices.DeleteFunc(slices.Clone(options), func(o string) bool {
		e, ok := attrOptions[o]
		return ok && e.clear && slices.Contains(want, e.attr)
	})
	for _, a := range want {
		if !slices.Contains(options, attrName[a]) {
			options = append(options, attrName[a])
		}
	}
	return options
}

// refusedOption returns the first option that has no safe meaning, and why.
func refusedOption(options []string) (string, string) {
	for _, o := range options {
		if why, ok := refusedOptions[o]; ok {
			return o, why
		}
	}
	return "", ""
}
