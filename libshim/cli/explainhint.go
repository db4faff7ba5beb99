package cli

import (
	"fmt"
	"strings"
	"time"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/profiles"
)

// earlyExit is how soon after its create an init's failure counts as
// "exited shortly after start": long enough for a server to read its config
// and write its pid or cache files, short enough not to blame the root
// filesystem for a failure an hour later.
const earlyExit = 2 * time.Minute

// readOnlyRootHint is what `palisade explain --container` says first when
// the records show a container that failed shortly after start and whose
// root filesystem palisade made read-only although its spec asked for a
// writable one: the most likely cause, and what a pod author does about it.
// It is "" when the records do not show that.
func readOnlyRootHint(recs []audit.Record, set profiles.Set) string {
	var created *audit.Record
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Event == audit.EventCreate && r.ExecID == "" && r.Result == audit.ResultAllowed:
			created = nil
			if forcedReadOnly(r) {
				created = r
			}
		case r.Event == audit.EventDelete && r.ExecID == "" && created != nil && r.Exit != nil:
			after := r.Exit.At.Sub(created.Time)
			if r.Exit.Status == 0 || after < 0 || after > earlyExit {
				created = nil
				continue
			}
			return hintText(created.Profile, r.Exit.Status, after, set[created.Profile])
		}
	}
	return ""
}

// forcedReadOnly reports whether the create made the root read-only
// against the spec (root.readonly false before).
func forcedReadOnly(r *audit.Record) bool {
	for _, c := range r.Changes {
		if c.Rule == "readonly-rootfs" && !c.Note && c.Before == false && c.After == true {
			return true
		}
	}
	return false
}

func hintText(profile string, status uint32, after time.Duration, p *profiles.Profile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Likely cause: palisade made this container's root filesystem read-only (rule readonly-rootfs, profile %s) although it asked for a writable one, and it exited with status %d %s after it was created.\n", profile, status, after.Round(time.Second))
	b.WriteString("Programs that write outside their writable directories fail there with \"read-only file system\"; look for that in the container's log.\n")
	if p != nil {
		var dirs []string
		for _, t := range p.Filesystem.Tmpfs {
			dirs = append(dirs, t.Path)
		}
		if len(dirs) > 0 {
			fmt.Fprintf(&b, "Writable under this profile: %s (noexec tmpfs).\n", strings.Join(dirs, ", "))
		}
	}
	b.WriteString("To fix: mount a volume (an emptyDir in Kubernetes) at the directory it writes")
	if p != nil && len(p.Filesystem.WritableAllowed) > 0 {
		fmt.Fprintf(&b, ", or ask for it with the annotation palisade.dev/writable-paths (this profile allows directories at or below %s)", strings.Join(p.Filesystem.WritableAllowed, ", "))
	}
	b.WriteString(", or move the file to one of the writable directories; see docs/kubernetes.md.\n")
	return b.String()
}
