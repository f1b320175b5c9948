package pan

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLuhn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"4242424242424242", true},
		{"4242424242424241", false},
		{"378282246310005", true}, // Amex, 15
		{"6011111111111117", true},
		{"4000056655665556", true},
		{"4222222222222", true}, // 13-digit Visa
		{"0", true},
		{"", false},
		{"42a2", false},
	} {
		if got := Luhn(tc.in); got != tc.want {
			t.Errorf("Luhn(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "card 4242424242424242 declined", "card **** **** **** 4242 declined"},
		{"spaces", "4242 4242 4242 4242", "**** **** **** 4242"},
		{"dashes", "it was 4242-4242-4242-4242.", "it was **** **** **** 4242."},
		{"amex groups", "amex 3782 822463 10005 ok", "amex **** **** **** 0005 ok"},
		{"13 digits", "old visa 4222222222222", "old visa **** **** **** 2222"},
		{"19 digits failing luhn", "6304000000000000001 x", "6304000000000000001 x"},
		{"19 digits luhn", "4000000000000000006", "**** **** **** 0006"},
		{"failing luhn kept", "ref 4242 4242 4242 4241", "ref 4242 4242 4242 4241"},
		{"with cvc after", "4111 1111 1111 1111 123", "**** **** **** 1111 123"},
		{"with expiry", "4111111111111111 12/29 cvc 123", "**** **** **** 1111 12/29 cvc 123"},
		{"two cards", "4242 4242 4242 4242 5555 5555 5555 4444", "**** **** **** 4242 **** **** **** 4444"},
		{"two cards unseparated groups", "4242424242424242 5555555555554444", "**** **** **** 4242 **** **** **** 4444"},
		{"inside letters", "pan:4242424242424242;", "pan:**** **** **** 4242;"},
		{"phone kept", "call +1 415 555 0100 today", "call +1 415 555 0100 today"},
		{"short kept", "order 123456789012", "order 123456789012"},
		{"long unbroken run kept", "order 12345678901234567890123", "order 12345678901234567890123"},
		{"double separator breaks", "4242  4242 4242 4242", "4242  4242 4242 4242"},
		{"leading digits group", "1234 4242424242424242", "1234 **** **** **** 4242"},
		{"unicode around", "carte № 4242 4242 4242 4242 — merci", "carte № **** **** **** 4242 — merci"},
		{"empty", "", ""},
		{"already masked", "**** **** **** 4242", "**** **** **** 4242"},
		{"multiline", "a\n4242424242424242\nb", "a\n**** **** **** 4242\nb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Mask(tc.in); got != tc.want {
				t.Errorf("Mask(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// cardLike reports whether s still holds a card-number-like sequence by the
// definition Redact works to: 13–19 digits in whole groups joined by single
// spaces or dashes, passing the Luhn check. It is written independently of
// Redact's scanner, by brute force over every span.
func cardLike(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || (i > 0 && isDigit(s[i-1])) {
			continue // spans start at a group boundary
		}
		var digits strings.Builder
		for j := i; j < len(s); j++ {
			c := s[j]
			switch {
			case isDigit(c):
				digits.WriteByte(c)
				n := digits.Len()
				endsGroup := j+1 == len(s) || !isDigit(s[j+1])
				if endsGroup && n >= minPAN && n <= maxPAN && Luhn(digits.String()) {
					return s[i : j+1], true
				}
				if n > maxPAN {
					j = len(s)
				}
			case isSeparator(c) && j+1 < len(s) && isDigit(s[j+1]) && isDigit(s[j-1]):
			default:
				j = len(s)
			}
		}
	}
	return "", false
}

func FuzzMask(f *testing.F) {
	for _, seed := range []string{
		"4242 4242 4242 4242", "4242-4242-4242-4242", "378282246310005", "card 4111111111111111 exp 12/29",
		"4242 4242 4242 4242 5555 5555 5555 4444", "1234 5678 9012 3456 7890", "no digits", "",
		"4242424242424242123", "9 4242424242424242 9", "**** **** **** 4242 4242 4242 4242",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Mask(in)
		if again := Mask(out); again != out {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
		if span, ok := cardLike(out); ok {
			t.Fatalf("card-like %q survives in Mask(%q) = %q", span, in, out)
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("Redact broke UTF-8: %q → %q", in, out)
		}
		if !strings.ContainsAny(in, "0123456789") && out != in {
			t.Fatalf("text without digits changed: %q → %q", in, out)
		}
		// Everything outside masked spans is kept, in order.
		if strings.Count(out, Masked) == 0 && out != in {
			t.Fatalf("changed without masking: %q → %q", in, out)
		}
	})
}

func TestFindStandalone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"card 4242 4242 4242 4242.":       "4242 4242 4242 4242",
		"4242424242424242@example.com":    "4242424242424242",
		"pan:4242-4242-4242-4242;":        "4242-4242-4242-4242",
		"act_0193ab4242424242424242cd":    "",
		"token hash f04242424242424242":   "",
		"recourse_act_4242424242424242":   "4242424242424242", // '_' is not a letter or digit
		"order 12345678901234567890 kept": "",
	} {
		got := strings.Join(FindStandalone(in), ",")
		if got != want {
			t.Errorf("FindStandalone(%q) = %q, want %q", in, got, want)
		}
		if want != "" && !Contains(in) {
			t.Errorf("Contains(%q) = false", in)
		}
	}
}
