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
		"Stdin":            "the stdio rule: a FIFO the client made for this task",
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

// stdio is one request's stdio targets and whose they are.
type stdio struct {
	stdin, stdout, stderr string
	// id names the process the FIFOs belong to (the task's id, or the exec
	// process's); container is the task's id.
	id, container string
	// state is containerd's state directory ("" unknown).
	state string
	exec  bool
}

// stdioProblem says why stdio targets may not be used, or "". containerd's
// runc shim opens a plain path as a FIFO when it is one and otherwise
// appends to it as root (a client could name /etc/passwd, another
// container's stdin FIFO, or a host daemon's control FIFO), runs a
// binary:// target on the host as root, and creates a file:// target as
// root. So a plain path must be a FIFO the client made for this very
// process — named ID-STREAM, in a directory of its own directly inside a
// FIFO directory (containerd's client library and CRI lay them out so) —
// and URIs need the administrator's leave.
func stdioProblem(cfg *config.Config, io stdio) (string, string) {
	fifoFix := "give stdio as FIFOs the client created for this process (containerd's cio: FIFO_DIR/RANDOM/ID-stdout)"
	if io.stdin != "" {
		if why := io.fifoProblem(cfg, io.stdin, "stdin"); why != "" {
			return "stdin " + io.stdin + ": " + why, fifoFix
		}
	}
	u, err := url.Parse(io.stdout)
	if err != nil {
		return fmt.Sprintf("stdout %q is not a path or URI: %v", io.stdout, err), fifoFix
	}
	switch u.Scheme {
	case "":
		if io.stdout != "" {
			if why := io.fifoProblem(cfg, io.stdout, "stdout"); why != "" {
				return "stdout " + io.stdout + ": " + why, fifoFix
			}
		}
	case "binary", "binary-v2", "file":
		if io.exec && !cfg.Stdio.Exec {
			return fmt.Sprintf("stdout %s: %s:// targets are not allowed for exec processes", io.stdout, u.Scheme),
				"use FIFOs for exec, or ask the node administrator to set stdio.exec = true in " + cfg.Source
		}
		p := filepath.Clean(u.Path)
		if u.Scheme == "file" {
			if u.Host != "" || !filepath.IsAbs(u.Path) || !slices.ContainsFunc(cfg.Stdio.FileDirs, func(d string) bool { return strings.HasPrefix(p, d+"/") }) {
				return fmt.Sprintf("stdout %s: file:// targets must lie below stdio.file_dirs (%s)", io.stdout, strings.Join(cfg.Stdio.FileDirs, ", ")),
					"log to a FIFO, or ask the node administrator to add the directory to stdio.file_dirs in " + cfg.Source
			}
		} else if u.Host != "" || !slices.Contains(cfg.Stdio.AllowedBinaries, p) {
			return fmt.Sprintf("stdout %s: logging binary %s is not in stdio.allowed_binaries (it would run on the host as root)", io.stdout, p),
				"log to a FIFO, or ask the node administrator to add the binary to stdio.allowed_binaries in " + cfg.Source
		}
		if io.stderr != "" && io.stderr != io.stdout {
			return fmt.Sprintf("stderr %s differs from the stdout URI %s", io.stderr, io.stdout), "give both as the same URI"
		}
		return "", ""
	default:
		return fmt.Sprintf("stdout %s: scheme %q is not allowed", io.stdout, u.Scheme), fifoFix
	}
	if io.stderr != "" {
		if why := io.fifoProblem(cfg, io.stderr, "stderr"); why != "" {
			return "stderr " + io.stderr + ": " + why, fifoFix
		}
	}
	return "", ""
}

// criContainersDir holds CRI's per-container FIFO directories:
// STATE/io.containerd.grpc.v1.cri/containers/ID/io/RANDOM/ID-STREAM.
const criContainersDir = "io.containerd.grpc.v1.cri/containers"

// fifoProblem says why path is not a FIFO the client made for this
// process's stream, or "".
func (io stdio) fifoProblem(cfg *config.Config, path, stream string) string {
	var st unix.Stat_t
	if !filepath.IsAbs(path) || unix.Lstat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return "not an existing FIFO (the shim would append to it as root)"
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "cannot be resolved: " + err.Error()
	}
	if filepath.Base(resolved) != io.id+"-"+stream {
		return fmt.Sprintf("a FIFO of another process (this process's is named %s-%s)", io.id, stream)
	}
	dirs := slices.Clone(cfg.Stdio.FIFODirs)
	if io.state != "" {
		dirs = append(dirs, filepath.Join(io.state, criContainersDir, io.container, "io"))
	}
	home := filepath.Dir(filepath.Dir(resolved))
	for _, d := range dirs {
		if rd, err := filepath.EvalSymlinks(d); err == nil && rd == home {
			return ""
		}
	}
	return fmt.Sprintf("not in a directory of its own inside a FIFO directory (%s)", strings.Join(dirs, ", "))
}
