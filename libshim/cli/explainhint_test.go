package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/profiles"
)

// The hint reads records as `explain` does: decoded from the audit file's
// JSON, where before/after are plain JSON values.
func decodeRecords(t *testing.T, recs ...audit.Record) []audit.Record {
	t.Helper()
	data, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadOnlyRootHint(t *testing.T) {
	set, err := profiles.Load("")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	create := func(before bool) audit.Record {
		c := audit.Record{Event: audit.EventCreate, Result: audit.ResultAllowed, Profile: "restricted", Time: t0}
		if !before {
			c.Changes = []audit.Change{{Rule: "readonly-rootfs", Before: false, After: true}}
		}
		return c
	}
	exit := func(status uint32, after time.Duration) audit.Record {
		return audit.Record{Event: audit.EventDelete, Result: audit.ResultAllowed, Profile: "restricted", Time: t0.Add(after + time.Second),
			Exit: &audit.Exit{Status: status, At: t0.Add(after)}}
	}
	for _, tc := range []struct {
		name string
		recs []audit.Record
		want bool
	}{
		{"forced read-only, failed after 3s", []audit.Record{create(false), exit(1, 3*time.Second)}, true},
		{"forced read-only, exited 0", []audit.Record{create(false), exit(0, 3*time.Second)}, false},
		{"forced read-only, failed an hour later", []audit.Record{create(false), exit(1, time.Hour)}, false},
		{"spec asked for read-only itself", []audit.Record{create(true), exit(1, 3*time.Second)}, false},
		{"still running", []audit.Record{create(false)}, false},
		{"delete without exit (schema 2)", []audit.Record{create(false), {Event: audit.EventDelete, Result: audit.ResultAllowed}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hint := readOnlyRootHint(decodeRecords(t, tc.recs...), set)
			if (hint != "") != tc.want {
				t.Fatalf("hint = %q, want a hint: %v", hint, tc.want)
			}
			if !tc.want {
				return
			}
			for _, s := range []string{"read-only (rule readonly-rootfs, profile restricted)", "status 1 3s after", "/tmp", "/var/run", "palisade.dev/writable-paths", "emptyDir"} {
				if !strings.Contains(hint, s) {
					t.Errorf("hint does not say %q:\n%s", s, hint)
				}
			}
		})
	}
}
