// Package pan finds and masks payment card numbers (PANs) in free text, the
// one implementation every door into Recourse uses (PCI DSS 3.3/3.4: show at
// most the last four digits; never store a full card number). A card number
// is 13 to 19 digits passing the Luhn check, written together or in groups
// joined by single spaces or dashes.
package pan

import "strings"

// Card-number (PAN) lengths.
const (
	minPAN = 13
	maxPAN = 19
)

// Masked is what replaces a card number; its last four digits follow.
const Masked = "**** **** **** "

// Mask masks every card-number-like sequence in s to its last four digits,
// e.g. "4242 4242 4242 4242" → "**** **** **** 4242", so that what people
// type into notes and descriptions can never put a full card number into the
// database or the audit log (PCI DSS 3.4.1).
//
// A card-number-like sequence is 13 to 19 digits that pass the Luhn check,
// written together or as groups separated by single spaces or dashes
// ("4242-4242-4242-4242", "3782 822463 10005"). Within a longer run of
// groups (a card number followed by a CVC or expiry, two numbers pasted
// together) every span of whole groups that forms such a sequence is masked,
// longest first from the left. Digits inside a longer unbroken run are never
// a card number on their own, so "order 12345678901234567890" is left alone;
// a run of 13–19 digits that fails the Luhn check is left alone too.
//
// Mask is idempotent, and its result holds no card-number-like sequence:
// it masks until nothing is left to mask (the four digits a mask keeps could
// otherwise start a new sequence with the digits after it). Every pass
// removes at least nine digits, so it ends.
func Mask(s string) string {
	for {
		r := redactOnce(s)
		if r == s {
			return r
		}
		s = r
	}
}

func redactOnce(s string) string {
	runs := digitRuns(s)
	if len(runs) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, r := range runs {
		for _, sp := range cardSpans(s, r) {
			b.WriteString(s[last:sp.start])
			b.WriteString(Masked)
			b.WriteString(sp.last4)
			last = sp.end
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// group is one unbroken run of ASCII digits, s[start:end].
type group struct{ start, end int }

// digitRuns returns the runs of digit groups joined by single separators
// whose total digit count could hold a card number.
func digitRuns(s string) [][]group {
	var runs [][]group
	var cur []group
	digits := 0
	flush := func() {
		if digits >= minPAN {
			runs = append(runs, cur)
		}
		cur, digits = nil, 0
	}
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		// A group continues the current run only when exactly one separator
		// lies between it and the previous group.
		if len(cur) > 0 {
			prev := cur[len(cur)-1]
			if !(i == prev.end+1 && isSeparator(s[prev.end])) {
				flush()
			}
		}
		cur = append(cur, group{i, j})
		digits += j - i
		i = j
	}
	flush()
	return runs
}

type cardSpan struct {
	start, end int
	last4      string
}

// cardSpans finds, left to right and longest first, the spans of whole
// groups in run whose digits form a card number.
func cardSpans(s string, run []group) []cardSpan {
	var out []cardSpan
	for a := 0; a < len(run); {
		found := -1
		n := 0
		var ends []int // group index b where digits(a..b) is 13–19
		for b := a; b < len(run); b++ {
			n += run[b].end - run[b].start
			if n > maxPAN {
				break
			}
			if n >= minPAN {
				ends = append(ends, b)
			}
		}
		for k := len(ends) - 1; k >= 0; k-- {
			b := ends[k]
			if luhnSpan(s, run[a:b+1]) {
				found = b
				break
			}
		}
		if found < 0 {
			a++
			continue
		}
		end := run[found].end
		digits := collectDigits(s, run[a:found+1])
		out = append(out, cardSpan{start: run[a].start, end: end, last4: digits[len(digits)-4:]})
		a = found + 1
	}
	return out
}

func collectDigits(s string, gs []group) string {
	var b strings.Builder
	for _, g := range gs {
		b.WriteString(s[g.start:g.end])
	}
	return b.String()
}

// luhnSpan reports whether the digits of gs pass the Luhn check.
func luhnSpan(s string, gs []group) bool { return Luhn(collectDigits(s, gs)) }

// Luhn reports whether digits (ASCII digits only) pass the Luhn check.
func Luhn(digits string) bool {
	if digits == "" {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if !isDigit(c) {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isSeparator(c byte) bool { return c == ' ' || c == '-' }

// Find returns the card numbers in s, as written (with their separators),
// by the same definition Mask works to; nil when there are none.
func Find(s string) []string {
	var out []string
	for _, r := range digitRuns(s) {
		for _, sp := range cardSpans(s, r) {
			out = append(out, s[sp.start:sp.end])
		}
	}
	return out
}

// FindStandalone is Find without the card numbers that are part of a longer
// word of letters and digits: the digits inside a random identifier or a
// hex hash ("act_0193ab12614793317505cd") pass the Luhn check one time in
// ten and are not card numbers. Scanners of stored data use it; Mask is
// stricter and masks card numbers glued to letters too.
func FindStandalone(s string) []string {
	alnum := func(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	var out []string
	for _, r := range digitRuns(s) {
		for _, sp := range cardSpans(s, r) {
			if (sp.start == 0 || !alnum(s[sp.start-1])) && (sp.end == len(s) || !alnum(s[sp.end])) {
				out = append(out, s[sp.start:sp.end])
			}
		}
	}
	return out
}

// Contains reports whether s holds a card number.
func Contains(s string) bool { return len(Find(s)) > 0 }
