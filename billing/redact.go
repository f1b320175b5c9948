package billing

import "strings"

// minPANDigits is the shortest card number (PAN) length.
const minPANDigits = 13

// redactPAN masks every run of 13 or more digits in s (digits may be
// separated by single spaces or dashes, as people type card numbers) except
// its last four digits, so free text from a payload (names, comments,
// failure messages) can never put a full card number into the mirror.
// Unlike note redaction it does not require a valid Luhn check digit: the
// mirror has no legitimate use for such a run at all.
func redactPAN(s string) string {
	if len(s) < minPANDigits {
		return s
	}
	b := []byte(s)
	changed := false
	for i := 0; i < len(b); {
		if !isDigit(b[i]) {
			i++
			continue
		}
		// Extend the run over digits and single separators between digits.
		end, digits := i, 0
		for j := i; j < len(b); {
			if isDigit(b[j]) {
				digits++
				j++
				end = j
				continue
			}
			if (b[j] == ' ' || b[j] == '-') && j+1 < len(b) && isDigit(b[j+1]) {
				j++
				continue
			}
			break
		}
		if digits >= minPANDigits {
			keep := 4
			for k := end - 1; k >= i; k-- {
				if !isDigit(b[k]) {
					continue
				}
				if keep > 0 {
					keep--
					continue
				}
				b[k] = '*'
			}
			changed = true
		}
		i = end
	}
	if !changed {
		return s
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// singleLine collapses whitespace so a summary is one line.
func singleLine(s string) string { return strings.Join(strings.Fields(s), " ") }
