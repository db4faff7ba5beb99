package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/secrets"
)

// AuditRecords reads palisade's audit file and returns the records keep
// accepts; a line that is not a record is an error.
func (e *Env) AuditRecords(keep func(audit.Record) bool) ([]audit.Record, error) {
	f, err := os.Open(e.AuditLog)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("audit log line is not a record: %w: %s", err, sc.Text())
		}
		if keep(r) {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// FindRecord returns the first record of event ev, or nil.
func FindRecord(recs []audit.Record, ev audit.Event) *audit.Record {
	for i := range recs {
		if recs[i].Event == ev {
			return &recs[i]
		}
	}
	return nil
}

// SecretMounts lists palisade's secrets tmpfs mounts of this environment.
func (e *Env) SecretMounts(t testing.TB) []string {
	t.Helper()
	all, err := secrets.Mounted()
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(m string) bool { return !strings.HasPrefix(m, e.SecretMount+"/") })
}
