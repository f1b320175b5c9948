package billing

import (
	"strings"

	"github.com/recourse-hq/recourse/internal/pan"
)

// redactPAN masks every card number in free text from a payload (names,
// comments, failure messages) to its last four digits, so it never reaches
// the mirror; see pan.Mask, the one implementation.
func redactPAN(s string) string { return pan.Mask(s) }

// singleLine collapses whitespace so a summary is one line.
func singleLine(s string) string { return strings.Join(strings.Fields(s), " ") }
