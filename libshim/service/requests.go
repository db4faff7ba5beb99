package service

import (
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/policy"
)

// Coverage by construction for the task API: every field of every request
// palisade intercepts has a named rule here, and a request with a value in
// a field that has none is refused (TestRequestFieldsCovered walks the
// generated types, so a new containerd API field fails the test first).
// The rules say where the field is decided.
var requestFields = map[reflect.Type]map[string]string{
	reflect.TypeOf(taskAPI.CreateTaskRequest{}): {
		"ID":               "the container's id, chosen by containerd",
		"Bundle":           "containerd's bundle directory; its spec goes through the pipeline and protects containerd's state",
		"Rootfs":           "the rootfs-mounts step: only snapshot mounts",
		"Terminal":         "a pseudo-terminal for the process",
		"Stdin":            "the stdio rule: an existing FIFO",
		"Stdout":           "the stdio rule: an existing FIFO, or a binary:// or file:// target the admin allowed",
		"Stderr":           "the stdio rule: an existing FIFO, or the same target as stdout",
		"Checkpoint":       "the restore rule: refused unless allow_restore",
		"ParentCheckpoint": "the restore rule: refused unless allow_restore",
		"Options":          "the runtime options: only an admin config path, translated into runc options from that config",
	},
	reflect.TypeOf(taskAPI.ExecProcessRequest{}): {
		"ID":       "a container palisade created",
		"ExecID":   "the exec process's id, chosen by containerd",
		"Terminal": "a pseudo-terminal for the process",
		"Stdin":    "the stdio rule: an existing FIFO",
		"Stdout":   "the stdio rule: an existing FIFO; binary:// and file:// only with stdio.exec",
		"Stderr":   "the stdio rule: an existing FIFO, or the same target as stdout",
		"Spec":     "the pipeline's process steps",
	},
	reflect.TypeOf(taskAPI.UpdateTaskRequest{}): {
		"ID":          "a container palisade created",
		"Resources":   "the resource field rules and the PID limit: an update may only tighten",
		"Annotations": "not used by runc's shim",
	},
	reflect.TypeOf(taskAPI.CheckpointTaskRequest{}): {
		"ID":      "a container palisade created",
		"Path":    "the checkpoint rule: refused unless allow_checkpoint (the shim writes the image there as root)",
		"Options": "the checkpoint rule: refused unless allow_checkpoint",
	},
}

// unruledField returns the first field of a request that has a value and no
// rule, or "".
func unruledField(req any) string {
	v := reflect.ValueOf(req).Elem()
	rules := requestFields[v.Type()]
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() || v.Field(i).IsZero() {
			continue
		}
		if _, ok := rules[f.Name]; !ok {
			return f.Name
		}
	}
	return ""
}

// checkFields refuses a request with a field palisade has no rule for.
func checkFields(container, what string, req any) error {
	if f := unruledField(req); f != "" {
		return policy.Invalid(container, "task-api-fields", "",
			fmt.Sprintf("the %s request sets %s, a field palisade has no rule for", what, f),
			"use a containerd release palisade supports, or a palisade that knows the field")
	}
	return nil
}

// stdioProblem says why stdio targets may not be used, or "". containerd's
// runc shim opens a plain path as a FIFO when it is one and otherwise
// appends to it as root (a client could name /etc/passwd), runs a
// binary:// target on the host as root, and creates a file:// target as
// root; so plain paths must be FIFOs that exist (ctr, CRI and nerdctl make
// them first), and URIs need the administrator's leave.
func stdioProblem(cfg *config.Config, stdin, stdout, stderr string, exec bool) (string, string) {
	if stdin != "" && !isFIFO(stdin) {
		return fmt.Sprintf("stdin %s is not an existing FIFO", stdin), "give stdio as FIFOs the client created"
	}
	u, err := url.Parse(stdout)
	if err != nil {
		return fmt.Sprintf("stdout %q is not a path or URI: %v", stdout, err), "give stdio as FIFOs the client created"
	}
	switch u.Scheme {
	case "":
		if stdout != "" && !isFIFO(stdout) {
			return fmt.Sprintf("stdout %s is not an existing FIFO (the shim would append to it as root)", stdout), "give stdio as FIFOs the client created"
		}
	case "binary", "binary-v2", "file":
		if exec && !cfg.Stdio.Exec {
			return fmt.Sprintf("stdout %s: %s:// targets are not allowed for exec processes", stdout, u.Scheme),
				"use FIFOs for exec, or ask the node administrator to set stdio.exec = true in " + cfg.Source
		}
		p := filepath.Clean(u.Path)
		if u.Scheme == "file" {
			if u.Host != "" || !filepath.IsAbs(u.Path) || !slices.ContainsFunc(cfg.Stdio.FileDirs, func(d string) bool { return strings.HasPrefix(p, d+"/") }) {
				return fmt.Sprintf("stdout %s: file:// targets must lie below stdio.file_dirs (%s)", stdout, strings.Join(cfg.Stdio.FileDirs, ", ")),
					"log to a FIFO, or ask the node administrator to add the directory to stdio.file_dirs in " + cfg.Source
			}
		} else if u.Host != "" || !slices.Contains(cfg.Stdio.AllowedBinaries, p) {
			return fmt.Sprintf("stdout %s: logging binary %s is not in stdio.allowed_binaries (it would run on the host as root)", stdout, p),
				"log to a FIFO, or ask the node administrator to add the binary to stdio.allowed_binaries in " + cfg.Source
		}
		if stderr != "" && stderr != stdout {
			return fmt.Sprintf("stderr %s differs from the stdout URI %s", stderr, stdout), "give both as the same URI"
		}
		return "", ""
	default:
		return fmt.Sprintf("stdout %s: scheme %q is not allowed", stdout, u.Scheme), "give stdio as FIFOs the client created"
	}
	if stderr != "" && !isFIFO(stderr) {
		return fmt.Sprintf("stderr %s is not an existing FIFO (the shim would append to it as root)", stderr), "give stdio as FIFOs the client created"
	}
	return "", ""
}

// isFIFO reports whether path names an existing FIFO (not through a
// symlink).
func isFIFO(path string) bool {
	var st unix.Stat_t
	return filepath.IsAbs(path) && unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO
}
