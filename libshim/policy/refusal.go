package policy

import (
	"fmt"
	"strings"
)

// Refusal is the error for a container (or exec, or update) palisade will
// not allow. Its message names the container, what is wrong, the rule and
// profile that decided, and what to do about it.
type Refusal struct {
	Container string
	Rule      string
	Profile   string
	Reason    string
	Fix       string
	Kind      error // an errdefs category
}

func (e *Refusal) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "palisade: container %s: %s [rule %s", e.Container, e.Reason, e.Rule)
	if e.Profile != "" {
		fmt.Fprintf(&b, ", profile %s", e.Profile)
	}
	b.WriteString("]")
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Unwrap returns the errdefs category.
func (e *Refusal) Unwrap() error { return e.Kind }
