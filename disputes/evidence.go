package disputes

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/recourse-hq/recourse/internal/errs"
)

// EvidenceField names one of the 27 fields of Stripe's dispute evidence
// hash (dispute.evidence, API 2023-10-16).
type EvidenceField string

// The evidence fields. File fields hold the id of a file uploaded with
// purpose dispute_evidence; text fields hold text.
const (
	FieldAccessActivityLog            EvidenceField = "access_activity_log"
	FieldBillingAddress               EvidenceField = "billing_address"
	FieldCancellationPolicy           EvidenceField = "cancellation_policy"
	FieldCancellationPolicyDisclosure EvidenceField = "cancellation_policy_disclosure"
	FieldCancellationRebuttal         EvidenceField = "cancellation_rebuttal"
	FieldCustomerCommunication        EvidenceField = "customer_communication"
	FieldCustomerEmailAddress         EvidenceField = "customer_email_address"
	FieldCustomerName                 EvidenceField = "customer_name"
	FieldCustomerPurchaseIP           EvidenceField = "customer_purchase_ip"
	FieldCustomerSignature            EvidenceField = "customer_signature"
	FieldDuplicateChargeDocumentation EvidenceField = "duplicate_charge_documentation"
	FieldDuplicateChargeExplanation   EvidenceField = "duplicate_charge_explanation"
	FieldDuplicateChargeID            EvidenceField = "duplicate_charge_id"
	FieldProductDescription           EvidenceField = "product_description"
	FieldReceipt                      EvidenceField = "receipt"
	FieldRefundPolicy                 EvidenceField = "refund_policy"
	FieldRefundPolicyDisclosure       EvidenceField = "refund_policy_disclosure"
	FieldRefundRefusalExplanation     EvidenceField = "refund_refusal_explanation"
	FieldServiceDate                  EvidenceField = "service_date"
	FieldServiceDocumentation         EvidenceField = "service_documentation"
	FieldShippingAddress              EvidenceField = "shipping_address"
	FieldShippingCarrier              EvidenceField = "shipping_carrier"
	FieldShippingDate                 EvidenceField = "shipping_date"
	FieldShippingDocumentation        EvidenceField = "shipping_documentation"
	FieldShippingTrackingNumber       EvidenceField = "shipping_tracking_number"
	FieldUncategorizedFile            EvidenceField = "uncategorized_file"
	FieldUncategorizedText            EvidenceField = "uncategorized_text"
)

// FieldKind says what an evidence field holds.
type FieldKind string

// Field kinds.
const (
	// FieldKindFile fields hold a Stripe file id (file_…) of a PDF, JPEG or
	// PNG uploaded with purpose dispute_evidence.
	FieldKindFile FieldKind = "file"
	// FieldKindText fields hold text.
	FieldKindText FieldKind = "text"
)

// Stripe's evidence limits, in characters (Unicode code points).
const (
	// MaxLongTextChars is the limit of each long text field (explanations,
	// disclosures, rebuttals, logs, descriptions).
	MaxLongTextChars = 20_000
	// MaxShortTextChars is the limit of each short text field (name, email,
	// addresses, IP, dates, ids, carrier, tracking number).
	MaxShortTextChars = 5_000
	// MaxTotalChars is the limit of all fields together.
	MaxTotalChars = 150_000
	// maxFileIDChars bounds a file id (Stripe ids are at most 255 characters).
	maxFileIDChars = 255
)

// fieldSpec is what Stripe accepts in one field.
type fieldSpec struct {
	kind     FieldKind
	maxChars int // text fields only
}

// fieldSpecs holds every field, from stripe-mock v0.180.0's OpenAPI spec
// (dispute_evidence_params): long text fields are maxLength 20000, short
// ones 5000, file fields are file ids.
var fieldSpecs = map[EvidenceField]fieldSpec{
	FieldAccessActivityLog:            {FieldKindText, MaxLongTextChars},
	FieldBillingAddress:               {FieldKindText, MaxShortTextChars},
	FieldCancellationPolicy:           {FieldKindFile, 0},
	FieldCancellationPolicyDisclosure: {FieldKindText, MaxLongTextChars},
	FieldCancellationRebuttal:         {FieldKindText, MaxLongTextChars},
	FieldCustomerCommunication:        {FieldKindFile, 0},
	FieldCustomerEmailAddress:         {FieldKindText, MaxShortTextChars},
	FieldCustomerName:                 {FieldKindText, MaxShortTextChars},
	FieldCustomerPurchaseIP:           {FieldKindText, MaxShortTextChars},
	FieldCustomerSignature:            {FieldKindFile, 0},
	FieldDuplicateChargeDocumentation: {FieldKindFile, 0},
	FieldDuplicateChargeExplanation:   {FieldKindText, MaxLongTextChars},
	FieldDuplicateChargeID:            {FieldKindText, MaxShortTextChars},
	FieldProductDescription:           {FieldKindText, MaxLongTextChars},
	FieldReceipt:                      {FieldKindFile, 0},
	FieldRefundPolicy:                 {FieldKindFile, 0},
	FieldRefundPolicyDisclosure:       {FieldKindText, MaxLongTextChars},
	FieldRefundRefusalExplanation:     {FieldKindText, MaxLongTextChars},
	FieldServiceDate:                  {FieldKindText, MaxShortTextChars},
	FieldServiceDocumentation:         {FieldKindFile, 0},
	FieldShippingAddress:              {FieldKindText, MaxShortTextChars},
	FieldShippingCarrier:              {FieldKindText, MaxShortTextChars},
	FieldShippingDate:                 {FieldKindText, MaxShortTextChars},
	FieldShippingDocumentation:        {FieldKindFile, 0},
	FieldShippingTrackingNumber:       {FieldKindText, MaxShortTextChars},
	FieldUncategorizedFile:            {FieldKindFile, 0},
	FieldUncategorizedText:            {FieldKindText, MaxLongTextChars},
}

// Fields returns the 27 evidence fields in alphabetical order (Stripe's).
func Fields() []EvidenceField {
	out := make([]EvidenceField, 0, len(fieldSpecs))
	for f := range fieldSpecs {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Known reports whether f is one of Stripe's evidence fields.
func (f EvidenceField) Known() bool {
	_, ok := fieldSpecs[f]
	return ok
}

// Kind returns whether f holds a file id or text; "" when f is not a known
// field.
func (f EvidenceField) Kind() FieldKind { return fieldSpecs[f].kind }

// MaxChars returns the most characters f may hold: [MaxLongTextChars] or
// [MaxShortTextChars] for text fields, 0 for file fields (which hold a file
// id) and unknown fields.
func (f EvidenceField) MaxChars() int { return fieldSpecs[f].maxChars }

// ValidateEvidence checks an evidence hash (field name → value, as it will
// be sent to Stripe) against Stripe's rules before it is staged or
// submitted: every name must be a known [EvidenceField]; text must be valid
// UTF-8, within the field's limit ([MaxLongTextChars] or
// [MaxShortTextChars]) and contain no http:// or https:// link (banks read
// nothing external — write log entries with paths, not URLs); file fields
// must hold a Stripe file id (file_ followed by letters and digits); and all
// values together must be at most [MaxTotalChars] characters. Empty values
// mean "not provided" and are always accepted.
//
// It returns nil when the hash is acceptable, else an EINVALID error with
// code invalid_evidence whose message and details name every offending
// field: details "fields" maps each field to its problems ([]string), and
// when the total is over the limit "total_chars" and "max_total_chars" say
// by how much.
func ValidateEvidence(ev map[string]string) error {
	problems := map[string][]string{}
	total := 0
	for name, value := range ev {
		n := utf8.RuneCountInString(value)
		total += n
		spec, known := fieldSpecs[EvidenceField(name)]
		if !known {
			problems[name] = append(problems[name], "unknown evidence field")
			continue
		}
		if value == "" {
			continue
		}
		if !utf8.ValidString(value) {
			problems[name] = append(problems[name], "not valid UTF-8")
		}
		switch spec.kind {
		case FieldKindFile:
			if !isFileID(value) {
				problems[name] = append(problems[name], "must be a Stripe file id (file_…) of a file uploaded with purpose dispute_evidence")
			}
		case FieldKindText:
			if n > spec.maxChars {
				problems[name] = append(problems[name], fmt.Sprintf("%d characters, more than the %d allowed", n, spec.maxChars))
			}
			if link, ok := findLink(value); ok {
				problems[name] = append(problems[name], fmt.Sprintf("contains a link (%s): banks read nothing external, include the content instead", link))
			}
		}
	}
	overTotal := total > MaxTotalChars
	if len(problems) == 0 && !overTotal {
		return nil
	}

	names := make([]string, 0, len(problems))
	for name := range problems {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names)+1)
	for _, name := range names {
		parts = append(parts, name+": "+strings.Join(problems[name], "; "))
	}
	details := map[string]any{"fields": problems}
	if overTotal {
		parts = append(parts, fmt.Sprintf("all fields together: %d characters, more than the %d allowed", total, MaxTotalChars))
		details["total_chars"] = total
		details["max_total_chars"] = MaxTotalChars
	}
	return errs.Coded(errs.EINVALID, "invalid_evidence", "evidence is not acceptable to Stripe: %s", strings.Join(parts, "; ")).
		WithDetails(details)
}

// isFileID reports whether s looks like a Stripe file id: "file_" followed
// by ASCII letters and digits, at most 255 characters in all.
func isFileID(s string) bool {
	rest, ok := strings.CutPrefix(s, "file_")
	if !ok || rest == "" || len(s) > maxFileIDChars {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// findLink returns the first http:// or https:// link in s (ASCII case
// insensitive), cut to at most 60 bytes for messages.
func findLink(s string) (string, bool) {
	at := -1
	for i := 0; i < len(s); i++ {
		if hasPrefixFoldASCII(s[i:], "http://") || hasPrefixFoldASCII(s[i:], "https://") {
			at = i
			break
		}
	}
	if at < 0 {
		return "", false
	}
	link := s[at:]
	if end := strings.IndexAny(link, " \t\r\n\"'<>()[]"); end >= 0 {
		link = link[:end]
	}
	if len(link) > 60 {
		cut := 60
		for cut > 0 && !utf8.RuneStart(link[cut]) {
			cut--
		}
		link = link[:cut] + "…"
	}
	return strings.ToValidUTF8(link, "\uFFFD"), true
}

// hasPrefixFoldASCII reports whether s starts with prefix, ignoring ASCII
// case; prefix must be lower-case ASCII.
func hasPrefixFoldASCII(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
