package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Provider is what Recourse can do at the billing provider. Every call
// carries an idempotency key derived from the Recourse action that makes it,
// so a retried action never executes twice at the provider. Implementations
// return *ProviderError for anything the provider refused or could not do.
type Provider interface {
	// Refund refunds all (Amount 0) or part of a charge or payment intent.
	Refund(ctx context.Context, r RefundRequest) (Result, error)
	// CancelSubscription cancels now, or at period end when AtPeriodEnd.
	CancelSubscription(ctx context.Context, r CancelRequest) (Result, error)
	// SetCancelAtPeriodEnd sets or clears cancel_at_period_end (false reactivates).
	SetCancelAtPeriodEnd(ctx context.Context, subscriptionID string, cancel bool, key Key) (Result, error)
	// ExtendTrial moves the subscription's trial end, without proration.
	ExtendTrial(ctx context.Context, subscriptionID string, trialEnd time.Time, key Key) (Result, error)
	// PauseCollection pauses collection with behavior until resumesAt (nil: indefinitely).
	PauseCollection(ctx context.Context, subscriptionID, behavior string, resumesAt *time.Time, key Key) (Result, error)
	// ResumeCollection clears pause_collection.
	ResumeCollection(ctx context.Context, subscriptionID string, key Key) (Result, error)
	// PayInvoice attempts payment of an open invoice now.
	PayInvoice(ctx context.Context, invoiceID string, key Key) (Result, error)
	// CreditBalance credits amount (positive, minor units) to the customer's balance.
	CreditBalance(ctx context.Context, r CreditRequest) (Result, error)
	// CloseDispute accepts the dispute as lost. Irreversible.
	CloseDispute(ctx context.Context, disputeID string, key Key) (Result, error)
	// UpdateDisputeEvidence stages (submit false) or submits evidence.
	UpdateDisputeEvidence(ctx context.Context, disputeID string, evidence map[string]string, submit bool, key Key) (Result, error)
	// UploadFile uploads a file (PDF, JPEG or PNG) through the provider's
	// Files API; ObjectID is the file id (file_…).
	UploadFile(ctx context.Context, f FileUpload) (Result, error)
}

// FileUpload is a file for the provider's Files API.
type FileUpload struct {
	Key
	Purpose  string // dispute_evidence
	Name     string
	MIMEType string
	Content  []byte
}

// Key identifies one provider call: the idempotency key plus metadata that
// ties the provider object back to the Recourse action and case.
type Key struct {
	IdempotencyKey string
	ActionID       string
	CaseID         string
}

// RefundRequest asks for a refund.
type RefundRequest struct {
	Key
	ChargeID        string
	PaymentIntentID string
	Amount          int64  // minor units; 0 refunds what is left
	Reason          string // duplicate, fraudulent, requested_by_customer, or "" (the free-text reason goes to metadata)
	Note            string // the agent's reason, kept in metadata
}

// CancelRequest asks for a cancellation.
type CancelRequest struct {
	Key
	SubscriptionID string
	AtPeriodEnd    bool
	Prorate        bool
	InvoiceNow     bool
	Feedback       string // too_expensive, missing_features, switched_service, unused, customer_service, too_complex, low_quality, other
	Comment        string
}

// CreditRequest asks for a customer balance credit.
type CreditRequest struct {
	Key
	CustomerID  string
	Amount      int64 // positive; credited as a negative balance transaction
	Currency    string
	Description string
}

// Result is what the provider answered.
type Result struct {
	ObjectID  string // the provider object created or changed (re_…, sub_…, in_…, cbtxn_…, dp_…)
	Status    string // its status after the call, where it has one
	RequestID string // the provider's request id (req_…), for the audit log
	Amount    int64
	Currency  string
	Raw       map[string]any // selected fields, never card data
}

// ProviderError is a refusal or failure at the provider, in words an agent
// can act on.
type ProviderError struct {
	Type       string // card_error, invalid_request_error, idempotency_error, rate_limit, api_error, connection_error, authentication_error
	Code       string // e.g. charge_already_refunded, resource_missing
	Message    string
	RequestID  string
	HTTPStatus int
	Retryable  bool // a later retry with the same key may succeed
	Err        error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("provider %s (%s): %s", e.Type, e.Code, e.Message)
}

func (e *ProviderError) Unwrap() error { return e.Err }

// AsCoded turns a provider error into the error an agent sees: 422 for
// refusals (card errors, invalid requests), 429 for rate limits, 503 for an
// unreachable or failing provider. Never a 500.
func AsCoded(err error) error {
	var pe *ProviderError
	if !errors.As(err, &pe) {
		return err
	}
	msg := pe.Message
	if msg == "" {
		msg = "the billing provider refused the request"
	}
	details := map[string]any{"provider_error_type": pe.Type}
	if pe.Code != "" {
		details["provider_error_code"] = pe.Code
	}
	if pe.RequestID != "" {
		details["provider_request_id"] = pe.RequestID
	}
	var e *errs.Error
	switch pe.Type {
	case "rate_limit":
		e = errs.Coded(errs.ERATELIMIT, "provider_rate_limited", "the billing provider is rate limiting us; try again shortly: %s", msg)
	case "api_error", "connection_error", "authentication_error":
		e = errs.Coded(errs.EUNAVAILABLE, "provider_unavailable", "the billing provider could not complete the request: %s", msg)
	default:
		e = errs.Coded(errs.EUNPROCESSABLE, "provider_refused", "the billing provider refused: %s", msg)
	}
	e.Err = err
	return e.WithDetails(details)
}

// Fetcher reads objects from the provider, for policy checks on objects the
// mirror has never seen (older than the Recourse install, or whose webhooks
// have not arrived). Methods return an errs ENOTFOUND error when the
// provider has no such object.
type Fetcher interface {
	FetchCharge(ctx context.Context, id string) (Charge, error)
	FetchSubscription(ctx context.Context, id string) (Subscription, error)
	FetchInvoice(ctx context.Context, id string) (Invoice, error)
	FetchDispute(ctx context.Context, id string) (Dispute, error)
	FetchDisputesByCharge(ctx context.Context, chargeID string) ([]Dispute, error)
}
