package critest

// Reason is why palisade fails a conformance spec on purpose.
type Reason struct {
	Rule string // the pipeline step that decides (libshim/harden), as refusals name it
	// Why says what palisade does and what a pod author does about it.
	Why string
	// Message, when set, must appear in the spec's failure: palisade's own
	// refusal ("[rule namespaces"). Silent overrides have none.
	Message string
}

// Deliberate is the reviewed list of critest v1.37.0 specs that fail under
// palisade's restricted profile and pass under runc, by full spec name.
// Everything else that fails only under palisade is a bug to fix.
var Deliberate = map[string]Reason{}
