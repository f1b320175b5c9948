package disputes

import "testing"

// codeTable is every (brand, code) of DISPUTES.md's table and the Stripe
// reason it maps to. TestReasonForCodeCoversTable keeps it in step with
// networkReasons.
var codeTable = []struct {
	brand, code, reason string
}{
	// Visa
	{"visa", "10.1", ReasonFraudulent},
	{"visa", "10.2", ReasonFraudulent},
	{"visa", "10.3", ReasonFraudulent},
	{"visa", "10.4", ReasonFraudulent},
	{"visa", "10.5", ReasonFraudulent},
	{"visa", "11.1", ReasonGeneral},
	{"visa", "11.2", ReasonGeneral},
	{"visa", "11.3", ReasonGeneral},
	{"visa", "12.1", ReasonGeneral},
	{"visa", "12.2", ReasonGeneral},
	{"visa", "12.3", ReasonGeneral},
	{"visa", "12.4", ReasonGeneral},
	{"visa", "12.5", ReasonGeneral},
	{"visa", "12.6", ReasonDuplicate},
	{"visa", "12.6.1", ReasonDuplicate},
	{"visa", "12.6.2", ReasonDuplicate},
	{"visa", "12.7", ReasonGeneral},
	{"visa", "13.1", ReasonProductNotReceived},
	{"visa", "13.2", ReasonSubscriptionCanceled},
	{"visa", "13.3", ReasonProductUnacceptable},
	{"visa", "13.4", ReasonProductUnacceptable},
	{"visa", "13.5", ReasonProductUnacceptable},
	{"visa", "13.6", ReasonCreditNotProcessed},
	{"visa", "13.7", ReasonCreditNotProcessed},
	// Mastercard
	{"mastercard", "4837", ReasonFraudulent},
	{"mastercard", "4870", ReasonFraudulent},
	{"mastercard", "4871", ReasonFraudulent},
	{"mastercard", "4849", ReasonFraudulent},
	{"mastercard", "4853", ReasonProductUnacceptable},
	{"mastercard", "4834", ReasonDuplicate},
	{"mastercard", "4841", ReasonSubscriptionCanceled},
	{"mastercard", "4855", ReasonProductNotReceived},
	{"mastercard", "4860", ReasonCreditNotProcessed},
	{"mastercard", "4863", ReasonUnrecognized},
	// Amex
	{"amex", "F29", ReasonFraudulent},
	{"amex", "F10", ReasonFraudulent},
	{"amex", "F24", ReasonFraudulent},
	{"amex", "F30", ReasonFraudulent},
	{"amex", "F31", ReasonFraudulent},
	{"amex", "C08", ReasonProductNotReceived},
	{"amex", "C28", ReasonSubscriptionCanceled},
	{"amex", "C02", ReasonCreditNotProcessed},
	{"amex", "C04", ReasonCreditNotProcessed},
	{"amex", "C05", ReasonCreditNotProcessed},
	{"amex", "C14", ReasonDuplicate},
	{"amex", "C31", ReasonProductUnacceptable},
	{"amex", "C32", ReasonProductUnacceptable},
	{"amex", "127", ReasonUnrecognized},
	{"amex", "176", ReasonUnrecognized},
	// Discover
	{"discover", "7030", ReasonFraudulent},
	{"discover", "4866", ReasonFraudulent},
	{"discover", "4867", ReasonFraudulent},
	{"discover", "4541", ReasonSubscriptionCanceled},
	{"discover", "4755", ReasonProductNotReceived},
	{"discover", "8002", ReasonCreditNotProcessed},
	{"discover", "4534", ReasonDuplicate},
	{"discover", "4865", ReasonDuplicate},
}

func TestReasonForCodeTable(t *testing.T) {
	t.Parallel()
	for _, tc := range codeTable {
		t.Run(tc.brand+"_"+tc.code, func(t *testing.T) {
			t.Parallel()
			got, ok := ReasonForCode(tc.brand, tc.code)
			if !ok || got != tc.reason {
				t.Fatalf("ReasonForCode(%q, %q) = %q, %v; want %q, true", tc.brand, tc.code, got, ok, tc.reason)
			}
		})
	}
}

// TestReasonForCodeCoversTable fails when networkReasons gains a code that
// codeTable (and so the checklist tests) does not exercise.
func TestReasonForCodeCoversTable(t *testing.T) {
	t.Parallel()
	tested := map[string]bool{}
	for _, tc := range codeTable {
		tested[tc.brand+" "+tc.code] = true
	}
	for brand, codes := range networkReasons {
		for code := range codes {
			if !tested[brand+" "+code] {
				t.Errorf("%s %s is in networkReasons but not in codeTable", brand, code)
			}
		}
	}
}

func TestReasonForCodeNormalises(t *testing.T) {
	t.Parallel()
	tests := []struct {
		brand, code, want string
	}{
		{" Visa ", " 10.4 ", ReasonFraudulent},
		{"VISA", "13.2", ReasonSubscriptionCanceled},
		{"visa", "12.6.1\n", ReasonDuplicate},
		{"visa", "12.6.9", ReasonDuplicate},                // 12.6.x
		{"visa", "11.9", ReasonGeneral},                    // 11.x
		{"visa", "11.12", ReasonGeneral},                   // 11.x, two digits
		{"MasterCard", "4841", ReasonSubscriptionCanceled}, // legacy Card.brand spelling
		{"master_card", "4863", ReasonUnrecognized},
		{"American Express", "c28", ReasonSubscriptionCanceled},
		{"american_express", " f29 ", ReasonFraudulent},
		{"AMEX", "c08", ReasonProductNotReceived},
		{"Discover", "4541", ReasonSubscriptionCanceled},
	}
	for _, tc := range tests {
		got, ok := ReasonForCode(tc.brand, tc.code)
		if !ok || got != tc.want {
			t.Errorf("ReasonForCode(%q, %q) = %q, %v; want %q, true", tc.brand, tc.code, got, ok, tc.want)
		}
	}
}

func TestReasonForCodeUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, brand, code string
	}{
		{"empty code", "visa", ""},
		{"blank code", "visa", "   "},
		{"empty brand", "", "10.4"},
		{"other brand", "jcb", "10.4"},
		{"unknown brand", "diners", "4837"},
		{"visa 10.6", "visa", "10.6"},
		{"visa 12.8", "visa", "12.8"},
		{"visa 13.8", "visa", "13.8"},
		{"visa 13.9", "visa", "13.9"},
		{"visa bare 11", "visa", "11"},
		{"visa 11 with dot only", "visa", "11."},
		{"visa 11 with letters", "visa", "11.a"},
		{"visa 12.6 with dot only", "visa", "12.6."},
		{"visa 12.6 sub-sub", "visa", "12.6.1.1"},
		{"visa 10.4 sub-code", "visa", "10.4.1"},
		{"mastercard code on visa", "visa", "4837"},
		{"visa code on mastercard", "mastercard", "10.4"},
		{"mastercard 4808", "mastercard", "4808"},
		{"mastercard 4853 on amex", "amex", "4853"},
		{"amex F99", "amex", "F99"},
		{"amex C2 without zero", "amex", "C2"},
		{"discover 9999", "discover", "9999"},
		{"amex code on discover", "discover", "C08"},
	}
	for _, tc := range tests {
		got, ok := ReasonForCode(tc.brand, tc.code)
		if ok || got != "" {
			t.Errorf("%s: ReasonForCode(%q, %q) = %q, %v; want \"\", false", tc.name, tc.brand, tc.code, got, ok)
		}
	}
}

func TestNormalizeBrand(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"visa":             BrandVisa,
		" Visa ":           BrandVisa,
		"MasterCard":       BrandMastercard,
		"mastercard":       BrandMastercard,
		"American Express": BrandAmex,
		"american-express": BrandAmex,
		"amex":             BrandAmex,
		"Discover":         BrandDiscover,
		"Diners Club":      "diners club",
		"JCB":              "jcb",
		"unionpay":         "unionpay",
		"":                 "",
	}
	for in, want := range tests {
		if got := NormalizeBrand(in); got != want {
			t.Errorf("NormalizeBrand(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		" 10.4 ": "10.4",
		"c08":    "C08",
		"f29\t":  "F29",
		"4837":   "4837",
		"":       "",
	}
	for in, want := range tests {
		if got := NormalizeCode(in); got != want {
			t.Errorf("NormalizeCode(%q) = %q; want %q", in, got, want)
		}
	}
}
