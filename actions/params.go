package actions

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Params are an action's parameters after validation and resolution: what
// is stored and what is executed, so an action approved or resumed later
// does exactly what was checked.
type Params struct {
	Charge          string     `json:"charge,omitempty"`
	PaymentIntent   string     `json:"payment_intent,omitempty"`
	Subscription    string     `json:"subscription,omitempty"`
	Invoice         string     `json:"invoice,omitempty"`
	Customer        string     `json:"customer,omitempty"`
	Dispute         string     `json:"dispute,omitempty"`
	Amount          int64      `json:"amount,omitempty"`
	Currency        string     `json:"currency,omitempty"`
	RefundReason    string     `json:"refund_reason,omitempty"`
	Mode            string     `json:"mode,omitempty"`
	Feedback        string     `json:"feedback,omitempty"`
	Comment         string     `json:"comment,omitempty"`
	RetentionOffer  string     `json:"retention_offer,omitempty"` // declined, accepted, not_offered
	ProratedRefund  int64      `json:"prorated_refund,omitempty"`
	RefundCharge    string     `json:"refund_charge,omitempty"`
	TrialEnd        *time.Time `json:"trial_end,omitempty"`
	ExtensionSecs   int64      `json:"extension_seconds,omitempty"`
	Behavior        string     `json:"behavior,omitempty"`
	ResumesAt       *time.Time `json:"resumes_at,omitempty"`
	Description     string     `json:"description,omitempty"`
	ParentAction    string     `json:"parent_action,omitempty"`
	ChargeCreatedAt *time.Time `json:"charge_created,omitempty"`
	// EvidenceVersion and EvidenceDigest pin the evidence package checked
	// at request time (submit_evidence, stage_evidence): the draft's
	// version and a SHA-256 of its fields and files. The text itself is
	// not stored here; it is read again, and must match, when sent.
	EvidenceVersion int64  `json:"evidence_version,omitempty"`
	EvidenceDigest  string `json:"evidence_digest,omitempty"`
}

// RequestParams is what a client may send in "params"; unknown fields are
// refused.
type RequestParams struct {
	Amount         *int64     `json:"amount"`
	Currency       string     `json:"currency"`
	Charge         string     `json:"charge"`
	RefundReason   string     `json:"refund_reason"` // duplicate, fraudulent, requested_by_customer
	Mode           string     `json:"mode"`          // now, period_end
	Feedback       string     `json:"feedback"`
	Comment        string     `json:"comment"`
	RetentionOffer string     `json:"retention_offer"` // declined, accepted, not_offered
	Refund         string     `json:"refund"`          // none, prorated (cancel_subscription)
	Days           *int       `json:"days"`
	TrialEnd       *time.Time `json:"trial_end"`
	Behavior       string     `json:"behavior"`
	ResumesAt      *time.Time `json:"resumes_at"`
	Invoice        string     `json:"invoice"`
	Description    string     `json:"description"`
	// EvidenceVersion / EvidenceDigest (optional, submit_evidence and
	// stage_evidence): the package the requester reviewed; a different
	// current package is refused with evidence_changed.
	EvidenceVersion *int64 `json:"evidence_version"`
	EvidenceDigest  string `json:"evidence_digest"`
}

func decodeParams(raw json.RawMessage) (RequestParams, error) {
	var p RequestParams
	if len(raw) == 0 || string(raw) == "null" {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, errs.Coded(errs.EINVALID, "invalid_params", "params are not valid for this action: %v", err)
	}
	return p, nil
}

var (
	refundReasons     = []string{"duplicate", "fraudulent", "requested_by_customer"}
	cancelFeedback    = []string{"too_expensive", "missing_features", "switched_service", "unused", "customer_service", "too_complex", "low_quality", "other"}
	pauseBehaviors    = []string{"keep_as_draft", "mark_uncollectible", "void"}
	retentionOutcomes = []string{"declined", "accepted", "not_offered"}
)

func oneOf(field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return errs.Coded(errs.EINVALID, "invalid_params", "%s must be one of %v (got %q)", field, allowed, v)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
