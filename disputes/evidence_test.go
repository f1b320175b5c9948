package disputes

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/recourse-hq/recourse/internal/errs"
)

func TestFields(t *testing.T) {
	t.Parallel()
	fields := Fields()
	if len(fields) != 27 {
		t.Fatalf("%d fields; Stripe has 27", len(fields))
	}
	if !slices.IsSorted(fields) {
		t.Error("Fields() not sorted")
	}
	files := []EvidenceField{FieldCancellationPolicy, FieldCustomerCommunication, FieldCustomerSignature,
		FieldDuplicateChargeDocumentation, FieldReceipt, FieldRefundPolicy, FieldServiceDocumentation,
		FieldShippingDocumentation, FieldUncategorizedFile}
	long := []EvidenceField{FieldAccessActivityLog, FieldCancellationPolicyDisclosure, FieldCancellationRebuttal,
		FieldDuplicateChargeExplanation, FieldProductDescription, FieldRefundPolicyDisclosure,
		FieldRefundRefusalExplanation, FieldUncategorizedText}
	for _, f := range fields {
		if !f.Known() {
			t.Errorf("%s not Known()", f)
		}
		switch {
		case slices.Contains(files, f):
			if f.Kind() != FieldKindFile || f.MaxChars() != 0 {
				t.Errorf("%s: kind %q max %d; want file, 0", f, f.Kind(), f.MaxChars())
			}
		case slices.Contains(long, f):
			if f.Kind() != FieldKindText || f.MaxChars() != 20_000 {
				t.Errorf("%s: kind %q max %d; want text, 20000", f, f.Kind(), f.MaxChars())
			}
		default:
			if f.Kind() != FieldKindText || f.MaxChars() != 5_000 {
				t.Errorf("%s: kind %q max %d; want text, 5000", f, f.Kind(), f.MaxChars())
			}
		}
	}
	unknown := EvidenceField("customer_phone")
	if unknown.Known() || unknown.Kind() != "" || unknown.MaxChars() != 0 {
		t.Errorf("unknown field: known %v kind %q max %d", unknown.Known(), unknown.Kind(), unknown.MaxChars())
	}
}

// fullEvidence returns a valid hash with every field set.
func fullEvidence() map[string]string {
	ev := map[string]string{}
	for _, f := range Fields() {
		if f.Kind() == FieldKindFile {
			ev[string(f)] = "file_1NXWPnCo6bFb1KQ" + strings.ToUpper(string(f[:1]))
		} else {
			ev[string(f)] = "Value for " + string(f)
		}
	}
	ev[string(FieldCustomerPurchaseIP)] = "203.0.113.7"
	return ev
}

// atTotal returns a hash of text fields totalling exactly n characters
// (n ≤ 8×20,000 + 10×5,000), each within its own limit.
func atTotal(n int) map[string]string {
	ev := map[string]string{}
	for _, f := range Fields() {
		if f.Kind() != FieldKindText || n == 0 {
			continue
		}
		k := min(n, f.MaxChars())
		ev[string(f)] = strings.Repeat("a", k)
		n -= k
	}
	if n != 0 {
		panic("atTotal: too many characters for the text fields")
	}
	return ev
}

// longFieldsFull returns the first n long text fields at 20,000 characters.
func longFieldsFull(n int) map[string]string {
	ev := map[string]string{}
	for _, f := range Fields() {
		if f.MaxChars() == MaxLongTextChars && len(ev) < n {
			ev[string(f)] = strings.Repeat("b", 20_000)
		}
	}
	return ev
}

func with(ev map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		ev[kv[i]] = kv[i+1]
	}
	return ev
}

func TestValidateEvidence(t *testing.T) {
	t.Parallel()
	long, short := string(FieldUncategorizedText), string(FieldCustomerName)
	tests := []struct {
		name string
		ev   map[string]string
		// bad lists the offending fields; nil means valid.
		bad       []string
		overTotal bool
		msg       []string // substrings of the message
	}{
		{name: "nil", ev: nil},
		{name: "empty", ev: map[string]string{}},
		{name: "every field valid", ev: fullEvidence()},
		{name: "empty values are not provided", ev: map[string]string{"receipt": "", "customer_name": "", "uncategorized_text": ""}},

		{name: "long text at 20,000", ev: map[string]string{long: strings.Repeat("a", 20_000)}},
		{name: "long text at 20,001", ev: map[string]string{long: strings.Repeat("a", 20_001)}, bad: []string{long},
			msg: []string{"uncategorized_text: 20001 characters, more than the 20000 allowed"}},
		{name: "seven long fields at 20,000", ev: longFieldsFull(7)},
		// Each within its limit, 160,000 together.
		{name: "all eight long fields at 20,000", ev: longFieldsFull(8), overTotal: true,
			msg: []string{"all fields together: 160000 characters"}},
		{name: "long text counts characters not bytes", ev: map[string]string{long: strings.Repeat("é", 20_000)}},
		{name: "long text 20,001 multi-byte characters", ev: map[string]string{long: strings.Repeat("日", 20_001)}, bad: []string{long}},
		{name: "short text at 5,000", ev: map[string]string{short: strings.Repeat("a", 5_000)}},
		{name: "short text at 5,001", ev: map[string]string{short: strings.Repeat("a", 5_001)}, bad: []string{short},
			msg: []string{"customer_name: 5001 characters, more than the 5000 allowed"}},

		{name: "total at 150,000", ev: atTotal(150_000)},
		{name: "total at 150,001", ev: atTotal(150_001), overTotal: true,
			msg: []string{"all fields together: 150001 characters, more than the 150000 allowed"}},
		{name: "file ids count towards the total", ev: with(atTotal(150_000), "receipt", "file_x"), overTotal: true},

		{name: "unknown field", ev: map[string]string{"customer_phone": "555", "customer_name": "Ada"}, bad: []string{"customer_phone"},
			msg: []string{"customer_phone: unknown evidence field"}},
		{name: "field names are exact", ev: map[string]string{"Customer_Name": "Ada"}, bad: []string{"Customer_Name"}},
		{name: "unknown field even when empty", ev: map[string]string{"customer_phone": ""}, bad: []string{"customer_phone"}},

		{name: "https link", ev: map[string]string{long: "See https://example.com/terms for details"}, bad: []string{long},
			msg: []string{"contains a link (https://example.com/terms)"}},
		{name: "http link", ev: map[string]string{"product_description": "Plan at http://example.com"}, bad: []string{"product_description"}},
		{name: "link in upper case", ev: map[string]string{long: "HTTPS://EXAMPLE.COM"}, bad: []string{long}},
		{name: "link in a short field", ev: map[string]string{"billing_address": "https://maps.example.com/x"}, bad: []string{"billing_address"}},
		{name: "link at the very end", ev: map[string]string{long: "x http://"}, bad: []string{long}},
		{name: "domain without scheme is not a link", ev: map[string]string{long: "Signed up at example.com; email ada@example.com"}},
		{name: "the word http is not a link", ev: map[string]string{long: "GET /dashboard HTTP/1.1 200; https is used"}},

		{name: "file id", ev: map[string]string{"receipt": "file_1NXWPnCo6bFb1KQo"}},
		{name: "file field with a charge id", ev: map[string]string{"receipt": "ch_123"}, bad: []string{"receipt"},
			msg: []string{"receipt: must be a Stripe file id"}},
		{name: "file prefix alone", ev: map[string]string{"refund_policy": "file_"}, bad: []string{"refund_policy"}},
		{name: "file id with punctuation", ev: map[string]string{"refund_policy": "file_abc-def"}, bad: []string{"refund_policy"}},
		{name: "file id with spaces", ev: map[string]string{"refund_policy": " file_abc"}, bad: []string{"refund_policy"}},
		{name: "file field with a link", ev: map[string]string{"uncategorized_file": "https://example.com/a.pdf"}, bad: []string{"uncategorized_file"}},
		{name: "file field with text", ev: map[string]string{"customer_communication": "The customer wrote to us"}, bad: []string{"customer_communication"}},
		{name: "file id too long", ev: map[string]string{"receipt": "file_" + strings.Repeat("a", 251)}, bad: []string{"receipt"}},
		{name: "file id at 255", ev: map[string]string{"receipt": "file_" + strings.Repeat("a", 250)}},

		{name: "invalid UTF-8", ev: map[string]string{long: "ok \xff\xfe"}, bad: []string{long}, msg: []string{"not valid UTF-8"}},

		{name: "every offending field named", ev: map[string]string{
			"customer_name":       "Ada",
			"customer_phone":      "555",
			"receipt":             "ch_1",
			"uncategorized_text":  strings.Repeat("a", 20_001),
			"access_activity_log": "2026-01-02 login https://app.example.com",
		}, bad: []string{"access_activity_log", "customer_phone", "receipt", "uncategorized_text"},
			msg: []string{"access_activity_log: contains a link", "customer_phone: unknown", "receipt: must be", "uncategorized_text: 20001"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateEvidence(tc.ev)
			if tc.bad == nil && !tc.overTotal {
				if err != nil {
					t.Fatalf("ValidateEvidence: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ValidateEvidence accepted it")
			}
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.EINVALID || e.Code != "invalid_evidence" {
				t.Fatalf("error %#v; want EINVALID invalid_evidence", err)
			}
			fields, _ := e.Details["fields"].(map[string][]string)
			var got []string
			for name, problems := range fields {
				got = append(got, name)
				if len(problems) == 0 {
					t.Errorf("%s listed with no problem", name)
				}
				if !strings.Contains(e.Message, name+": ") {
					t.Errorf("message %q does not name %s", e.Message, name)
				}
			}
			slices.Sort(got)
			want := slices.Clone(tc.bad)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("offending fields %v; want %v", got, want)
			}
			_, hasTotal := e.Details["total_chars"]
			if hasTotal != tc.overTotal {
				t.Errorf("total_chars in details = %v; want %v (details %v)", hasTotal, tc.overTotal, e.Details)
			}
			if tc.overTotal && e.Details["max_total_chars"] != MaxTotalChars {
				t.Errorf("max_total_chars = %v", e.Details["max_total_chars"])
			}
			for _, m := range tc.msg {
				if !strings.Contains(e.Message, m) {
					t.Errorf("message %q lacks %q", e.Message, m)
				}
			}
		})
	}
}

func TestValidateEvidenceLinkMessageIsShort(t *testing.T) {
	t.Parallel()
	err := ValidateEvidence(map[string]string{"uncategorized_text": "see https://example.com/" + strings.Repeat("é", 100)})
	e, _ := errs.As(err)
	if e == nil || !strings.Contains(e.Message, "…") || !utf8.ValidString(e.Message) || len(e.Message) > 300 {
		t.Fatalf("message %q", e)
	}
}

func TestValidateEvidenceProblemsPerField(t *testing.T) {
	t.Parallel()
	// One field, two problems: both reported.
	err := ValidateEvidence(map[string]string{"product_description": "http://x " + strings.Repeat("a", 20_000)})
	e, _ := errs.As(err)
	if e == nil {
		t.Fatal("accepted")
	}
	if got := e.Details["fields"].(map[string][]string)["product_description"]; len(got) != 2 {
		t.Errorf("problems %q; want length and link", got)
	}
}

// FuzzValidateEvidence checks that ValidateEvidence never panics and that
// whatever it accepts is within Stripe's limits.
func FuzzValidateEvidence(f *testing.F) {
	f.Add("uncategorized_text", "see https://example.com", "receipt", "file_abc")
	f.Add("customer_name", "Ada", "customer_phone", "x")
	f.Add("access_activity_log", "\xff", "refund_policy", "file_")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		ev := map[string]string{k1: v1, k2: v2}
		err := ValidateEvidence(ev)
		if err != nil {
			if e, ok := errs.As(err); !ok || e.Kind != errs.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		for k, v := range ev {
			f := EvidenceField(k)
			if !f.Known() {
				t.Fatalf("accepted unknown field %q", k)
			}
			if v == "" {
				continue
			}
			if f.Kind() == FieldKindText && (utf8.RuneCountInString(v) > f.MaxChars() || strings.Contains(strings.ToLower(v), "http://") || strings.Contains(strings.ToLower(v), "https://")) {
				t.Fatalf("accepted %s = %q", k, v)
			}
			if f.Kind() == FieldKindFile && !strings.HasPrefix(v, "file_") {
				t.Fatalf("accepted file field %s = %q", k, v)
			}
		}
	})
}

func ExampleValidateEvidence() {
	err := ValidateEvidence(map[string]string{
		"customer_name":      "Ada Lovelace",
		"receipt":            "ch_3NXW",
		"uncategorized_text": "Our terms: https://example.com/terms",
	})
	fmt.Println(err)
	// Output: invalid_evidence: evidence is not acceptable to Stripe: receipt: must be a Stripe file id (file_…) of a file uploaded with purpose dispute_evidence; uncategorized_text: contains a link (https://example.com/terms): banks read nothing external, include the content instead
}
