package cli

import (
	"strings"
	"testing"
)

func TestProfileDiff(t *testing.T) {
	code, out, _ := run("profile", "diff", "restricted", "baseline")
	if code != ExitFailed || !strings.Contains(out, "LOOSER   capabilities.allowed         capability CAP_CHOWN: B allows it, A does not") ||
		!strings.Contains(out, "processes may run as root: A false, B true") {
		t.Errorf("restricted → baseline (%d):\n%s", code, out)
	}
	code, out, _ = run("profile", "diff", "baseline", "restricted")
	if code != ExitOK || strings.Contains(out, "LOOSER") || !strings.Contains(out, "capability CAP_CHOWN: A allows it, B does not") {
		t.Errorf("baseline → restricted (%d):\n%s", code, out)
	}
	if code, out, _ = run("profile", "diff", "restricted", "restricted"); code != ExitOK || !strings.Contains(out, "grant the same") {
		t.Errorf("restricted → restricted (%d):\n%s", code, out)
	}
}
