// Package billing owns Recourse's provider-neutral view of billing: the
// mirrored objects (customers, subscriptions, invoices, charges, refunds,
// disputes, early fraud warnings), the store that keeps them current from
// provider events whatever order those arrive in, each customer's billing
// timeline, and the Provider interface through which Recourse acts.
//
// Money is always integer minor units plus a lowercase ISO currency code.
// Nothing that could hold a full card number, CVC or bank account number is
// stored: cards are kept as brand, last four and fingerprint only.
package billing

import (
	"encoding/json"
	"time"
)

// ObjectKind names a mirrored object type.
type ObjectKind string

// Mirrored object kinds.
const (
	KindCustomer     ObjectKind = "customer"
	KindSubscription ObjectKind = "subscription"
	KindInvoice      ObjectKind = "invoice"
	KindCharge       ObjectKind = "charge"
	KindRefund       ObjectKind = "refund"
	KindDispute      ObjectKind = "dispute"
	KindFraudWarning ObjectKind = "early_fraud_warning"
)

// Version is how the mirror orders the states it sees of one object: the
// provider event's created time and id of the event that last wrote it.
type Version struct {
	EventID      string    `json:"event_id"`
	EventCreated time.Time `json:"event_created"`
}

// Customer is a mirrored customer.
type Customer struct {
	ID                      string    `json:"id"`
	Email                   string    `json:"email"`
	Name                    string    `json:"name"`
	Livemode                bool      `json:"livemode"`
	HasDefaultPaymentMethod bool      `json:"has_default_payment_method"`
	Deleted                 bool      `json:"deleted"`
	Created                 time.Time `json:"created"`
	Version
}

// Subscription is a mirrored subscription.
type Subscription struct {
	ID                      string     `json:"id"`
	CustomerID              string     `json:"customer"`
	Status                  string     `json:"status"` // trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired, paused
	TrialStart              *time.Time `json:"trial_start"`
	TrialEnd                *time.Time `json:"trial_end"`
	CurrentPeriodStart      *time.Time `json:"current_period_start"`
	CurrentPeriodEnd        *time.Time `json:"current_period_end"`
	CancelAtPeriodEnd       bool       `json:"cancel_at_period_end"`
	CancelAt                *time.Time `json:"cancel_at"`
	CanceledAt              *time.Time `json:"canceled_at"`
	EndedAt                 *time.Time `json:"ended_at"`
	CancellationReason      string     `json:"cancellation_reason"`   // cancellation_requested, payment_failed, payment_disputed
	CancellationFeedback    string     `json:"cancellation_feedback"` // too_expensive, …
	CancellationComment     string     `json:"cancellation_comment"`
	PauseCollection         string     `json:"pause_collection"` // "" when not paused, else keep_as_draft, mark_uncollectible, void
	PauseResumesAt          *time.Time `json:"pause_resumes_at"`
	PriceID                 string     `json:"price"`
	ProductID               string     `json:"product"`
	Amount                  int64      `json:"amount"` // per period, minor units (unit amount × quantity)
	Currency                string     `json:"currency"`
	Interval                string     `json:"interval"` // month, year, …
	HasDefaultPaymentMethod bool       `json:"has_default_payment_method"`
	LatestInvoiceID         string     `json:"latest_invoice"`
	Created                 time.Time  `json:"created"`
	Version
}

// Invoice is a mirrored invoice.
type Invoice struct {
	ID                 string     `json:"id"`
	CustomerID         string     `json:"customer"`
	SubscriptionID     string     `json:"subscription"`
	ChargeID           string     `json:"charge"`
	PaymentIntentID    string     `json:"payment_intent"`
	Status             string     `json:"status"`         // draft, open, paid, uncollectible, void
	BillingReason      string     `json:"billing_reason"` // subscription_create, subscription_cycle, manual, …
	AttemptCount       int        `json:"attempt_count"`
	NextPaymentAttempt *time.Time `json:"next_payment_attempt"`
	AmountDue          int64      `json:"amount_due"`
	AmountPaid         int64      `json:"amount_paid"`
	AmountRemaining    int64      `json:"amount_remaining"`
	Currency           string     `json:"currency"`
	LastFailureCode    string     `json:"last_failure_code"` // from the latest payment_failed event, if known
	HostedInvoiceURL   string     `json:"hosted_invoice_url"`
	Created            time.Time  `json:"created"`
	Version
}

// Charge is a mirrored charge. Card details are brand and last four only
// (plus the network fingerprint, which identifies a card without revealing it).
type Charge struct {
	ID              string    `json:"id"`
	CustomerID      string    `json:"customer"`
	InvoiceID       string    `json:"invoice"`
	PaymentIntentID string    `json:"payment_intent"`
	Amount          int64     `json:"amount"`
	AmountRefunded  int64     `json:"amount_refunded"`
	Currency        string    `json:"currency"`
	Status          string    `json:"status"` // succeeded, pending, failed
	Paid            bool      `json:"paid"`
	Disputed        bool      `json:"disputed"`
	Refunded        bool      `json:"refunded"`
	FailureCode     string    `json:"failure_code"`
	FailureMessage  string    `json:"failure_message"`
	CardBrand       string    `json:"card_brand"`
	CardLast4       string    `json:"card_last4"`
	CardFingerprint string    `json:"card_fingerprint"`
	Created         time.Time `json:"created"`
	Version
}

// Refund is a mirrored refund.
type Refund struct {
	ID              string    `json:"id"`
	ChargeID        string    `json:"charge"`
	PaymentIntentID string    `json:"payment_intent"`
	CustomerID      string    `json:"customer"` // from the charge, when known
	Amount          int64     `json:"amount"`
	Currency        string    `json:"currency"`
	Status          string    `json:"status"` // pending, requires_action, succeeded, failed, canceled
	Reason          string    `json:"reason"`
	FailureReason   string    `json:"failure_reason"`
	Created         time.Time `json:"created"`
	Version
}

// Dispute is a mirrored dispute (inquiries included: status warning_*).
type Dispute struct {
	ID                 string     `json:"id"`
	ChargeID           string     `json:"charge"`
	PaymentIntentID    string     `json:"payment_intent"`
	CustomerID         string     `json:"customer"` // from the charge, when known
	Amount             int64      `json:"amount"`
	Currency           string     `json:"currency"`
	Status             string     `json:"status"` // warning_needs_response, warning_under_review, warning_closed, needs_response, under_review, won, lost (open string: newer APIs add more)
	Reason             string     `json:"reason"`
	NetworkReasonCode  string     `json:"network_reason_code"`
	CardBrand          string     `json:"card_brand"`
	EvidenceDueBy      *time.Time `json:"evidence_due_by"`
	HasEvidence        bool       `json:"has_evidence"`
	PastDue            bool       `json:"past_due"`
	SubmissionCount    int        `json:"submission_count"`
	IsChargeRefundable bool       `json:"is_charge_refundable"`
	FundsWithdrawn     bool       `json:"funds_withdrawn"`
	FundsReinstated    bool       `json:"funds_reinstated"`
	Created            time.Time  `json:"created"`
	Version
}

// IsInquiry reports whether the dispute is an inquiry (retrieval/warning),
// not yet a chargeback.
func (d Dispute) IsInquiry() bool { return len(d.Status) > 8 && d.Status[:8] == "warning_" }

// FraudWarning is a mirrored Radar early fraud warning.
type FraudWarning struct {
	ID              string    `json:"id"`
	ChargeID        string    `json:"charge"`
	PaymentIntentID string    `json:"payment_intent"`
	CustomerID      string    `json:"customer"` // from the charge, when known
	FraudType       string    `json:"fraud_type"`
	Actionable      bool      `json:"actionable"`
	Created         time.Time `json:"created"`
	Version
}

// ProviderEvent is a provider event as the mirror consumes it (the webhooks
// package converts its inbox events to this).
type ProviderEvent struct {
	ID         string
	Type       string
	Created    time.Time
	Livemode   bool
	APIVersion string
	Payload    json.RawMessage // the whole event body
}

// Change is what applying one event did: the state of the event's object in
// the mirror afterwards (the current truth, which may be newer than the
// event when events arrive out of order), and the fact recorded on the
// customer's timeline. Exactly one of the object pointers is set.
type Change struct {
	EventID      string
	EventType    string
	EventCreated time.Time
	// RequestID and IdempotencyKey come from event.request: set when the
	// event was caused by an API call (ours included); used to link events
	// to the action that caused them.
	RequestID      string
	IdempotencyKey string

	Object     ObjectKind
	ObjectID   string
	CustomerID string // resolved customer, "" when unknown
	// FirstSeen is true when this event created the object in the mirror.
	FirstSeen bool
	// Stale is true when the mirror already held a newer state: the object
	// was not overwritten (the fact is still on the timeline).
	Stale bool
	// Duplicate is true when this event id had already been applied: nothing
	// changed, no second timeline fact was recorded, and Summary is the fact
	// recorded the first time.
	Duplicate bool
	// Previous holds the previous_attributes (updated events) that case
	// handling reads, typed.
	Previous Previous
	// EventSubscription is the subscription exactly as this event carried it
	// (subscription events only): its state at the time of the event, which
	// for a stale event is older than the mirror's (e.g. whether a trial
	// reminder went out without a payment method).
	EventSubscription *Subscription
	// ChargeLookup is set when the event's object (a dispute, refund or
	// early fraud warning) is on a charge the mirror has never seen and the
	// provider was asked for it.
	ChargeLookup *ChargeLookup
	// Upcoming is true for invoice.upcoming: a preview of the next renewal
	// (Invoice carries it, without an id), a notice rather than an object.
	Upcoming bool

	Customer     *Customer
	Subscription *Subscription
	Invoice      *Invoice
	Charge       *Charge
	Refund       *Refund
	Dispute      *Dispute
	FraudWarning *FraudWarning

	// Summary is the timeline sentence an agent reads, e.g. "Renewal failed
	// (attempt 2 of 4, card_declined), next retry 2026-11-25".
	Summary string
}

// ChargeLookup is how the customer of a charge the mirror has never seen
// was looked up at the provider.
type ChargeLookup struct {
	ChargeID string
	// Fetched is true when the provider answered; CustomerID is then the
	// charge's customer ("" for a charge without one).
	Fetched    bool
	CustomerID string
	// Err says why the provider could not be asked (unreachable, timeout,
	// refused) when Fetched is false.
	Err string
}

// Previous is what an updated event's previous_attributes said about the
// fields Recourse reacts to. A nil pointer means the field did not change.
type Previous struct {
	// Status is the status the object left ("" when it did not change).
	Status string
	// CancelAtPeriodEnd is a subscription's cancel_at_period_end before
	// the event.
	CancelAtPeriodEnd *bool
}

// TimelineEntry is one fact on a customer's billing timeline.
type TimelineEntry struct {
	ID         int64      `json:"id"`
	CustomerID string     `json:"customer"`
	At         time.Time  `json:"at"` // when it happened at the provider (event created)
	EventID    string     `json:"event_id"`
	EventType  string     `json:"event_type"`
	Object     ObjectKind `json:"object"`
	ObjectID   string     `json:"object_id"`
	Summary    string     `json:"summary"`
	Severity   string     `json:"severity"` // info, warning, critical
}
