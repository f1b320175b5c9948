package disputes

import (
	"slices"
	"strings"
	"testing"
)

// checkChecklist asserts what every checklist promises.
func checkChecklist(t *testing.T, cl Checklist) {
	t.Helper()
	if !cl.Contestable {
		if len(cl.Items) != 0 || cl.RebuttalField != "" {
			t.Errorf("not contestable but has items %v / rebuttal field %q", cl.Items, cl.RebuttalField)
		}
		if len(cl.Notes) == 0 {
			t.Error("not contestable and no note saying why")
		}
		return
	}
	seen := map[EvidenceField]bool{}
	recommendedSeen := false
	for _, it := range cl.Items {
		if !it.Field.Known() {
			t.Errorf("item field %q is not a Stripe evidence field", it.Field)
		}
		if seen[it.Field] {
			t.Errorf("field %s listed twice", it.Field)
		}
		seen[it.Field] = true
		if strings.TrimSpace(it.Proves) == "" {
			t.Errorf("item %s has no \"what it proves\"", it.Field)
		}
		switch it.Need {
		case NeedRequired:
			if recommendedSeen {
				t.Errorf("required item %s after a recommended one", it.Field)
			}
		case NeedRecommended:
			recommendedSeen = true
		default:
			t.Errorf("item %s has need %q", it.Field, it.Need)
		}
	}
	for _, f := range []EvidenceField{FieldCustomerName, FieldCustomerEmailAddress, FieldBillingAddress, FieldCustomerPurchaseIP, FieldCustomerCommunication} {
		if !seen[f] {
			t.Errorf("every checklist should hold %s", f)
		}
	}
	if it, ok := cl.Item(cl.RebuttalField); !ok || it.Need != NeedRequired {
		t.Errorf("rebuttal field %q not a required item (%v, %v)", cl.RebuttalField, it, ok)
	}
	if !hasNote(cl, "warning_") || !hasNote(cl, "prevents a chargeback") {
		t.Errorf("no inquiry note in %q", cl.Notes)
	}
	if !hasNote(cl, "Rebuttal letter") {
		t.Errorf("no rebuttal letter note in %q", cl.Notes)
	}
}

func hasNote(cl Checklist, substr string) bool {
	return slices.ContainsFunc(cl.Notes, func(n string) bool { return strings.Contains(n, substr) })
}

func TestRequirementsEveryCode(t *testing.T) {
	t.Parallel()
	for _, tc := range codeTable {
		t.Run(tc.brand+"_"+tc.code, func(t *testing.T) {
			t.Parallel()
			cl := Requirements(tc.brand, tc.code, "")
			if cl.Basis != BasisNetworkCode || cl.Reason != tc.reason {
				t.Fatalf("basis %q reason %q; want network_code %q", cl.Basis, cl.Reason, tc.reason)
			}
			if cl.Brand != tc.brand || cl.NetworkCode != tc.code {
				t.Errorf("brand/code %q %q; want %q %q", cl.Brand, cl.NetworkCode, tc.brand, tc.code)
			}
			wantContestable := !(tc.brand == BrandVisa && tc.code == "10.5")
			if cl.Contestable != wantContestable {
				t.Errorf("contestable = %v; want %v", cl.Contestable, wantContestable)
			}
			if cl.CE3 != (tc.brand == BrandVisa && tc.code == "10.4") {
				t.Errorf("CE3 = %v", cl.CE3)
			}
			if got := hasNote(cl, "19 pages"); got != (tc.brand == BrandMastercard) {
				t.Errorf("Mastercard page note present = %v", got)
			}
			checkChecklist(t, cl)
		})
	}
}

// TestRequirementsByReason pins the evidence that wins each reason
// (DISPUTES.md "Evidence that wins").
func TestRequirementsByReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason      string
		rebuttal    EvidenceField
		required    []EvidenceField
		recommended []EvidenceField
		basis       Basis
	}{
		{ReasonFraudulent, FieldUncategorizedText,
			[]EvidenceField{FieldAccessActivityLog, FieldCustomerPurchaseIP, FieldCustomerName, FieldCustomerEmailAddress},
			[]EvidenceField{FieldReceipt, FieldBillingAddress, FieldCustomerCommunication}, BasisReason},
		{ReasonUnrecognized, FieldUncategorizedText,
			[]EvidenceField{FieldAccessActivityLog, FieldCustomerPurchaseIP},
			[]EvidenceField{FieldReceipt}, BasisReason},
		{ReasonSubscriptionCanceled, FieldCancellationRebuttal,
			[]EvidenceField{FieldCancellationPolicy, FieldCancellationPolicyDisclosure, FieldCancellationRebuttal},
			[]EvidenceField{FieldCustomerCommunication, FieldAccessActivityLog}, BasisReason},
		{ReasonCreditNotProcessed, FieldRefundRefusalExplanation,
			[]EvidenceField{FieldRefundPolicy, FieldRefundPolicyDisclosure, FieldRefundRefusalExplanation},
			[]EvidenceField{FieldUncategorizedFile, FieldAccessActivityLog, FieldCustomerCommunication}, BasisReason},
		{ReasonDuplicate, FieldDuplicateChargeExplanation,
			[]EvidenceField{FieldDuplicateChargeID, FieldDuplicateChargeExplanation},
			[]EvidenceField{FieldDuplicateChargeDocumentation}, BasisReason},
		{ReasonProductNotReceived, FieldUncategorizedText,
			[]EvidenceField{FieldAccessActivityLog, FieldServiceDate},
			[]EvidenceField{FieldServiceDocumentation, FieldProductDescription}, BasisReason},
		{ReasonProductUnacceptable, FieldRefundRefusalExplanation,
			[]EvidenceField{FieldProductDescription, FieldRefundPolicy, FieldRefundRefusalExplanation, FieldCustomerCommunication},
			[]EvidenceField{FieldRefundPolicyDisclosure, FieldAccessActivityLog}, BasisReason},
		{ReasonGeneral, FieldUncategorizedText,
			[]EvidenceField{FieldUncategorizedText},
			[]EvidenceField{FieldReceipt, FieldProductDescription}, BasisReason},
		{ReasonBankCannotProcess, FieldUncategorizedText,
			[]EvidenceField{FieldUncategorizedText}, []EvidenceField{FieldReceipt}, BasisGeneric},
		{ReasonNoncompliant, FieldUncategorizedText,
			[]EvidenceField{FieldUncategorizedText}, []EvidenceField{FieldReceipt}, BasisGeneric},
		{"some_future_reason", FieldUncategorizedText,
			[]EvidenceField{FieldUncategorizedText}, []EvidenceField{FieldReceipt}, BasisGeneric},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			cl := Requirements("", "", tc.reason)
			checkChecklist(t, cl)
			if cl.Reason != tc.reason || cl.Basis != tc.basis {
				t.Errorf("reason %q basis %q; want %q %q", cl.Reason, cl.Basis, tc.reason, tc.basis)
			}
			if cl.RebuttalField != tc.rebuttal {
				t.Errorf("rebuttal field %q; want %q", cl.RebuttalField, tc.rebuttal)
			}
			for _, f := range tc.required {
				if it, ok := cl.Item(f); !ok || it.Need != NeedRequired {
					t.Errorf("%s: got %+v, %v; want required", f, it, ok)
				}
			}
			for _, f := range tc.recommended {
				if it, ok := cl.Item(f); !ok || it.Need != NeedRecommended {
					t.Errorf("%s: got %+v, %v; want recommended", f, it, ok)
				}
			}
			if tc.basis == BasisGeneric && !hasNote(cl, "generic checklist") {
				t.Errorf("generic checklist without a note: %q", cl.Notes)
			}
		})
	}
}

func TestRequirementsFallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		brand, code, reason string
		wantReason          string
		wantBasis           Basis
		wantNote            string // substring of a note; "" for none checked
		noNote              string // substring no note may contain
	}{
		{"code wins over reason", "visa", "13.2", ReasonGeneral, ReasonSubscriptionCanceled, BasisNetworkCode,
			"Stripe reports reason general but visa code 13.2 is subscription_canceled", ""},
		{"code agrees with reason", "mastercard", "4841", "subscription_canceled", ReasonSubscriptionCanceled, BasisNetworkCode,
			"", "Stripe reports"},
		{"unknown code falls back to reason", "visa", "13.9", ReasonProductUnacceptable, ReasonProductUnacceptable, BasisReason,
			"Network code 13.9 (visa) is not in our table", ""},
		{"unknown brand falls back to reason", "jcb", "10.4", ReasonFraudulent, ReasonFraudulent, BasisReason,
			"Network code 10.4 (jcb) is not in our table", ""},
		{"no brand falls back to reason", "", "4837", ReasonFraudulent, ReasonFraudulent, BasisReason,
			"(unknown brand) is not in our table", ""},
		{"no code, reason only", "visa", "", ReasonDuplicate, ReasonDuplicate, BasisReason,
			"", "not in our table"},
		{"reason normalised", "", "", "  Subscription_Canceled ", ReasonSubscriptionCanceled, BasisReason, "", ""},
		{"unknown code and unknown reason", "visa", "99.9", "brand_new_reason", "brand_new_reason", BasisGeneric,
			"No specific guidance for reason brand_new_reason", ""},
		{"nothing given", "", "", "", "", BasisGeneric, "No reason given", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cl := Requirements(tc.brand, tc.code, tc.reason)
			checkChecklist(t, cl)
			if cl.Reason != tc.wantReason || cl.Basis != tc.wantBasis {
				t.Errorf("reason %q basis %q; want %q %q", cl.Reason, cl.Basis, tc.wantReason, tc.wantBasis)
			}
			if tc.wantNote != "" && !hasNote(cl, tc.wantNote) {
				t.Errorf("no note containing %q in %q", tc.wantNote, cl.Notes)
			}
			if tc.noNote != "" && hasNote(cl, tc.noNote) {
				t.Errorf("unexpected note containing %q in %q", tc.noNote, cl.Notes)
			}
		})
	}
}

func TestRequirementsNetworkSpecific(t *testing.T) {
	t.Parallel()

	t.Run("visa 10.5 no recourse", func(t *testing.T) {
		cl := Requirements("Visa", "10.5", "fraudulent")
		if cl.Contestable || len(cl.Items) != 0 || !hasNote(cl, "no recourse — accept") {
			t.Fatalf("got %+v", cl)
		}
	})
	t.Run("visa 10.4 CE 3.0", func(t *testing.T) {
		cl := Requirements("visa", "10.4", "fraudulent")
		if !cl.CE3 || !hasNote(cl, "CE 3.0") || !hasNote(cl, "120–365 days") {
			t.Fatalf("got CE3 %v notes %q", cl.CE3, cl.Notes)
		}
	})
	t.Run("other visa fraud has no CE 3.0", func(t *testing.T) {
		cl := Requirements("visa", "10.3", "fraudulent")
		if cl.CE3 || hasNote(cl, "CE 3.0") {
			t.Fatalf("got CE3 %v notes %q", cl.CE3, cl.Notes)
		}
	})
	t.Run("visa 13.2 trial rules", func(t *testing.T) {
		cl := Requirements("visa", "13.2", "subscription_canceled")
		if !hasNote(cl, "at least 7 days before a trial converts") {
			t.Fatalf("notes %q", cl.Notes)
		}
		if hasNote(Requirements("mastercard", "4841", ""), "trial converts") {
			t.Error("trial note on Mastercard 4841")
		}
	})
	t.Run("visa 12.6.2 paid by other means", func(t *testing.T) {
		if !hasNote(Requirements("visa", "12.6.2", ""), "paid by other means") {
			t.Error("no 12.6.2 note")
		}
		if hasNote(Requirements("visa", "12.6.1", ""), "paid by other means") {
			t.Error("12.6.2 note on 12.6.1")
		}
	})
	t.Run("mastercard 4853 sub-types", func(t *testing.T) {
		cl := Requirements("mastercard", "4853", "product_unacceptable")
		checkChecklist(t, cl)
		for _, f := range []EvidenceField{FieldServiceDate, FieldCancellationPolicy, FieldCancellationPolicyDisclosure} {
			if it, ok := cl.Item(f); !ok || it.Need != NeedRecommended {
				t.Errorf("%s: %+v %v; want recommended", f, it, ok)
			}
		}
		if !hasNote(cl, "4853 covers several claims") {
			t.Errorf("notes %q", cl.Notes)
		}
		// Amex C31 is product_unacceptable too, without the 4853 extras.
		if _, ok := Requirements("amex", "C31", "").Item(FieldCancellationPolicy); ok {
			t.Error("4853 extras on Amex C31")
		}
	})
}

func TestRequirementsIndependentResults(t *testing.T) {
	t.Parallel()
	a := Requirements("visa", "13.2", "")
	a.Items[0].Proves = "changed"
	a.Notes[0] = "changed"
	b := Requirements("visa", "13.2", "")
	if b.Items[0].Proves == "changed" || b.Notes[0] == "changed" {
		t.Fatal("Requirements results share memory")
	}
}

func TestChecklistMissing(t *testing.T) {
	t.Parallel()
	cl := Requirements("visa", "13.2", "")
	all := map[string]string{}
	for _, it := range cl.Items {
		all[string(it.Field)] = "x"
	}
	if got := cl.Missing(all); len(got) != 0 {
		t.Errorf("Missing(all) = %v", got)
	}
	ev := map[string]string{
		"customer_name":                  "Ada Lovelace",
		"customer_email_address":         "ada@example.com",
		"cancellation_policy":            "file_abc",
		"cancellation_policy_disclosure": "   ", // blank counts as missing
	}
	var got []EvidenceField
	for _, it := range cl.Missing(ev) {
		got = append(got, it.Field)
	}
	want := []EvidenceField{FieldCancellationPolicyDisclosure, FieldCancellationRebuttal}
	if !slices.Equal(got, want) {
		t.Errorf("Missing = %v; want %v", got, want)
	}
	if got := Requirements("visa", "10.5", "").Missing(nil); len(got) != 0 {
		t.Errorf("Missing on a no-recourse checklist = %v", got)
	}
}
