// Package actions runs compliance-aware case actions at the billing
// provider — refund, cancel, reactivate, extend trial, pause and resume
// collection, retry a payment, apply a credit, accept a dispute, stage or
// submit dispute evidence — safely:
// policy is checked before the provider is touched, risky actions wait for a
// second person's approval, every action is idempotent end to end (the
// client's Idempotency-Key here, a key derived from the action id at the
// provider), and every step lands on the case timeline and in the audit log.
package actions

import (
	"context"
	"encoding/json"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
)

// Type is an action type.
type Type string

// Action types.
const (
	Refund                 Type = "refund"
	CancelSubscription     Type = "cancel_subscription"
	ReactivateSubscription Type = "reactivate_subscription"
	ExtendTrial            Type = "extend_trial"
	PauseCollection        Type = "pause_collection"
	ResumeCollection       Type = "resume_collection"
	RetryPayment           Type = "retry_payment"
	ApplyCredit            Type = "apply_credit"
	AcceptDispute          Type = "accept_dispute"
	// SubmitEvidence uploads the case's evidence package and submits it
	// (final: Stripe allows one submission).
	SubmitEvidence Type = "submit_evidence"
	// StageEvidence sends the package with submit=false: Stripe keeps a
	// draft the analyst can still change.
	StageEvidence Type = "stage_evidence"
)

// Types lists every action type.
func Types() []Type {
	return []Type{Refund, CancelSubscription, ReactivateSubscription, ExtendTrial, PauseCollection,
		ResumeCollection, RetryPayment, ApplyCredit, AcceptDispute, SubmitEvidence, StageEvidence}
}

// Status is where an action is.
type Status string

// Action statuses.
const (
	StatusPendingApproval Status = "pending_approval"
	StatusExecuting       Status = "executing"
	StatusSucceeded       Status = "succeeded"
	StatusFailed          Status = "failed"
	StatusRejected        Status = "rejected"
	// StatusRefused: policy, checked again on approval or right before the
	// provider call, refused the action; nothing was sent. The rule's code
	// and message are in Error.
	StatusRefused Status = "refused"
)

// Action is one requested action and what became of it.
type Action struct {
	ID                string          `json:"id"`
	CaseID            string          `json:"case_id"`
	Type              Type            `json:"type"`
	Params            json.RawMessage `json:"params"`
	Reason            string          `json:"reason"`
	Status            Status          `json:"status"`
	RequestedBy       string          `json:"requested_by"`
	RequestedByUserID *int64          `json:"requested_by_user_id"`
	RequestedRole     string          `json:"requested_role"`
	ApprovalRequired  bool            `json:"approval_required"`
	ApprovalReasons   []string        `json:"approval_reasons"`
	DecidedBy         *string         `json:"decided_by"`
	DecidedByUserID   *int64          `json:"decided_by_user_id"`
	DecidedAt         *time.Time      `json:"decided_at"`
	DecisionNote      *string         `json:"decision_note"`
	SubjectID         string          `json:"subject"` // the provider object acted on
	Amount            *int64          `json:"amount"`
	Currency          *string         `json:"currency"`
	ProviderKey       string          `json:"idempotency_key"` // sent to the provider
	ProviderObjectID  *string         `json:"provider_object_id"`
	ProviderRequestID *string         `json:"provider_request_id"`
	ProviderStatus    *string         `json:"provider_status"`
	Result            json.RawMessage `json:"result"`
	Error             *ActionError    `json:"error"`
	Attempts          int             `json:"attempts"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	ExecutedAt        *time.Time      `json:"executed_at"`
}

// ActionError is why an action failed, in the provider's words.
type ActionError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type row struct {
	ID                string
	CaseID            string
	Type              string
	Params            string
	Reason            string
	Status            string
	RequestedBy       string
	RequestedByUserID *int64
	RequestedRole     string
	ClientKey         string
	RequestHash       string
	ProviderKey       string
	ApprovalReasons   *string
	DecidedBy         *string
	DecidedByUserID   *int64
	DecidedAt         *time.Time
	DecisionNote      *string
	SubjectID         *string
	Amount            *int64
	Currency          *string
	ProviderObjectID  *string
	ProviderRequestID *string
	ProviderStatus    *string
	Result            *string
	ErrorCode         *string
	ErrorMessage      *string
	Attempts          int
	LeaseUntil        *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	ExecutedAt        *time.Time
}

func (row) TableName() string { return "actions" }

func (r row) action() Action {
	a := Action{ID: r.ID, CaseID: r.CaseID, Type: Type(r.Type), Params: json.RawMessage(r.Params), Reason: r.Reason,
		Status: Status(r.Status), RequestedBy: r.RequestedBy, RequestedByUserID: r.RequestedByUserID, RequestedRole: r.RequestedRole, DecidedBy: r.DecidedBy, DecidedByUserID: r.DecidedByUserID,
		DecidedAt: r.DecidedAt, DecisionNote: r.DecisionNote, Amount: r.Amount, Currency: r.Currency,
		ProviderKey: r.ProviderKey, ProviderObjectID: r.ProviderObjectID, ProviderRequestID: r.ProviderRequestID,
		ProviderStatus: r.ProviderStatus, Attempts: r.Attempts, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		ExecutedAt: r.ExecutedAt, ApprovalReasons: []string{}}
	if r.SubjectID != nil {
		a.SubjectID = *r.SubjectID
	}
	if r.ApprovalReasons != nil && *r.ApprovalReasons != "" {
		_ = json.Unmarshal([]byte(*r.ApprovalReasons), &a.ApprovalReasons)
	}
	a.ApprovalRequired = len(a.ApprovalReasons) > 0
	if r.Result != nil {
		a.Result = json.RawMessage(*r.Result)
	}
	if r.ErrorCode != nil {
		a.Error = &ActionError{Code: *r.ErrorCode, Message: deref(r.ErrorMessage)}
	}
	return a
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr[T any](v T) *T { return &v }

// CaseRef is what actions need to know about a case: the case package's
// own view (one vocabulary; the alias keeps this package's signatures short).
type CaseRef = cases.Ref

// Cases is the slice of the case service that actions use
// (*cases.Service). Every method works inside tx, the action's transaction.
type Cases interface {
	// Lookup returns the case; errs ENOTFOUND when unknown.
	Lookup(ctx context.Context, tx *gorm.DB, caseID string) (cases.Ref, error)
	// Record appends a timeline entry to the case. actor is a person's name,
	// cases.SystemActor or cases.StripeActor; a person's entry counts as
	// the case's first response.
	Record(ctx context.Context, tx *gorm.DB, caseID, actor, entryType, summary, eventID string) error
	// OpenRefFor returns the open case of kind on subject, if any.
	OpenRefFor(ctx context.Context, tx *gorm.DB, kind cases.Kind, subjectID string) (cases.Ref, bool, error)
	// ApplyActionOutcome fires, through the case's FSM, the move of moves
	// that fits the case (see outcomeMoves), on behalf of actor.
	ApplyActionOutcome(ctx context.Context, tx *gorm.DB, caseID string, moves []cases.Move, actor, reason string) error
	// Announce appends an outbox event about the case (approval requested,
	// action failed) inside tx; amount and currency are the action's.
	Announce(ctx context.Context, tx *gorm.DB, typ, key, caseID, detail string, amount *int64, currency *string) error
}

// Mirror is the slice of the billing mirror that policy checks read.
type Mirror interface {
	Customer(ctx context.Context, id string) (billing.Customer, error)
	Subscription(ctx context.Context, id string) (billing.Subscription, error)
	Invoice(ctx context.Context, id string) (billing.Invoice, error)
	Charge(ctx context.Context, id string) (billing.Charge, error)
	Dispute(ctx context.Context, id string) (billing.Dispute, error)
	DisputesByCharge(ctx context.Context, chargeID string) ([]billing.Dispute, error)
	FraudWarningsByCharge(ctx context.Context, chargeID string) ([]billing.FraudWarning, error)
}
