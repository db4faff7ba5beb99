// Package audit records every security decision palisade takes: one JSON
// object per decision, written to an append-only file (mode 0600) and to the
// shim's log. A record answers "what did palisade change in this container,
// what did it refuse, and why" after the fact.
//
// Records carry names and rule outcomes only; callers must never put secret
// values into a Change.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containerd/log"
)

// Event is the operation a record is about.
type Event string

// The operations palisade audits.
const (
	EventCreate     Event = "create"
	EventExec       Event = "exec"
	EventUpdate     Event = "update"
	EventCheckpoint Event = "checkpoint"
	EventDelete     Event = "delete"
	// EventSeccompWouldDeny lists the system calls a container in alert
	// mode made that its seccomp profile would deny, with counts.
	EventSeccompWouldDeny Event = "seccomp-would-deny"
	// EventExecWouldRefuse lists the programs processes inside a container
	// in alert mode executed that its exec allow-list does not hold.
	EventExecWouldRefuse Event = "exec-would-refuse"
)

// Result is the outcome of the operation.
type Result string

// Results.
const (
	ResultAllowed Result = "allowed"
	ResultRefused Result = "refused"
)

// Change is one modification the pipeline made: which rule, the value before
// and after.
type Change struct {
	Rule   string `json:"rule"`
	Before any    `json:"before"`
	After  any    `json:"after"`
	// Note marks an observation that changed nothing (a would-be refusal in
	// audit mode, a secret-looking variable left alone).
	Note bool `json:"note,omitempty"`
	// WouldRefuse is set in alert mode: what enforce mode would have
	// refused, in a form `palisade profile learn` and `palisade report` read.
	WouldRefuse *WouldRefuse `json:"would_refuse,omitempty"`
}

// WouldRefuse is a refusal that alert mode turned into a record: the rule,
// the reason and fix enforce mode would have given, and what was asked for
// (a capability, an executable, an image, a sysctl, a device).
type WouldRefuse struct {
	Reason  string `json:"reason"`
	Fix     string `json:"fix,omitempty"`
	Subject string `json:"subject"` // capability, executable, image, sysctl, device, env
	Value   string `json:"value"`
}

// Subjects of would-be refusals.
const (
	SubjectCapability = "capability"
	SubjectExecutable = "executable"
	SubjectImage      = "image"
	SubjectSysctl     = "sysctl"
	SubjectDevice     = "device"
	SubjectEnv        = "env"
)

// Schema is the version of the record's JSON form (docs/rollout.md).
// Version 2 added schema, mode, image and would_refuse; version 3 the
// seccomp-would-deny and exec-would-refuse records (syscalls, executables,
// dropped) and exit on delete records.
const Schema = 3

// Exit is how a container's init process ended, on its delete record.
type Exit struct {
	Status uint32    `json:"status"`
	At     time.Time `json:"at"`
}

// SyscallSeen is a system call a container in alert mode made that its
// seccomp profile would deny: how often, and when first and last, in the
// period the record covers.
type SyscallSeen struct {
	Name  string    `json:"name"` // "#NR" when libseccomp does not know the number
	Arch  string    `json:"arch"` // the OCI architecture: SCMP_ARCH_X86_64, ...
	Count uint64    `json:"count"`
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
}

// ExecSeen is a program a process inside a container in alert mode
// executed that its exec allow-list does not hold.
type ExecSeen struct {
	Path     string    `json:"path"`               // as the process named it (execve's filename)
	Resolved string    `json:"resolved,omitempty"` // inside the container, symbolic links followed
	Count    uint64    `json:"count"`
	First    time.Time `json:"first_seen"`
	Last     time.Time `json:"last_seen"`
}

// Record is one audit entry.
type Record struct {
	Schema    int       `json:"schema"`
	Time      time.Time `json:"time"`
	Event     Event     `json:"event"`
	Namespace string    `json:"namespace"`
	Container string    `json:"container"`
	ExecID    string    `json:"exec_id,omitempty"`
	// CRI names, present when the container comes from Kubernetes.
	Pod           string `json:"pod,omitempty"`
	PodNamespace  string `json:"pod_namespace,omitempty"`
	ContainerName string `json:"container_name,omitempty"`

	Profile string `json:"profile,omitempty"`
	// Mode is "alert" when the container's policy records what it would
	// refuse instead of refusing it; absent in enforce mode.
	Mode string `json:"mode,omitempty"`
	// Image is the container's image reference, when known.
	Image   string   `json:"image,omitempty"`
	Config  string   `json:"config,omitempty"` // the admin config's source
	Changes []Change `json:"changes,omitempty"`
	// Syscalls and Executables are what alert mode saw at run time
	// (seccomp-would-deny and exec-would-refuse records); Dropped counts
	// calls that were not attributed because the record's bounded table
	// was full.
	Syscalls    []SyscallSeen `json:"syscalls,omitempty"`
	Executables []ExecSeen    `json:"executables,omitempty"`
	Dropped     uint64        `json:"dropped,omitempty"`
	Result      Result        `json:"result"`
	Reason      string        `json:"reason,omitempty"` // why it was refused
	// Exit is set on a container's delete record: its init's exit status
	// and time, so that `palisade explain --container` can relate an early
	// exit to what palisade changed.
	Exit *Exit `json:"exit,omitempty"`
}

// CRI annotation keys containerd's CRI plugin sets on every container.
const (
	annotationPodName      = "io.kubernetes.cri.sandbox-name"
	annotationPodNamespace = "io.kubernetes.cri.sandbox-namespace"
	annotationContainer    = "io.kubernetes.cri.container-name"
)

// SetCRI fills the Kubernetes names from a spec's annotations when the
// record's containerd namespace is one of criNamespaces (where containerd's
// CRI plugin sets them). Elsewhere any containerd client could name its
// container after a pod and have its records taken for the pod's (palisade
// profile learn --pod, report).
func (r *Record) SetCRI(annotations map[string]string, criNamespaces []string) {
	if !slices.Contains(criNamespaces, r.Namespace) {
		return
	}
	r.Pod = annotations[annotationPodName]
	r.PodNamespace = annotations[annotationPodNamespace]
	r.ContainerName = annotations[annotationContainer]
}

// Sink receives records.
type Sink interface {
	Write(ctx context.Context, r *Record) error
}

// LogSink writes records to the logger carried by the context (the shim log).
type LogSink struct{}

// Write logs the record as one structured line.
func (LogSink) Write(ctx context.Context, r *Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit: encode record: %w", err)
	}
	entry := log.G(ctx).WithField("palisade.audit", string(data))
	if r.Result == ResultRefused {
		entry.Warn("palisade refused " + string(r.Event))
	} else {
		entry.Info("palisade " + string(r.Event))
	}
	return nil
}

// FileSink appends records as JSON lines to a file created with mode 0600.
// Each record is one write(2) on an O_APPEND descriptor, so concurrent shims
// appending to the same file do not interleave within a record.
type FileSink struct {
	Path string
}

// Write appends the record.
func (s *FileSink) Write(_ context.Context, r *Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit: encode record: %w", err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return fmt.Errorf("audit: create directory for %s: %w", s.Path, err)
	}
	f, err := os.OpenFile(s.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.Path, err)
	}
	_, werr := f.Write(data)
	return errors.Join(werr, f.Close())
}

// Multi writes to every sink and joins their errors.
type Multi []Sink

// Write sends the record to all sinks.
func (m Multi) Write(ctx context.Context, r *Record) error {
	var errs []error
	for _, s := range m {
		if err := s.Write(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
