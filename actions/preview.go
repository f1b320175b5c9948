package actions

import (
	"context"
	"errors"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Preview is what a request would do if it were sent now: decided by the
// same admission and plan functions as Request (one implementation of each
// rule), so what an agent sees before clicking is what Request decides.
// Amounts are minor units of Currency.
type Preview struct {
	Type Type `json:"type"`
	// Allowed: Request would record the action now (to execute, or to wait
	// for approval). When false, Refusal says why.
	Allowed bool     `json:"allowed"`
	Refusal *Refusal `json:"refusal,omitempty"`
	// Summary is how the action would read on the case timeline.
	Summary  string `json:"summary,omitempty"`
	Subject  string `json:"subject,omitempty"` // the provider object acted on
	Amount   int64  `json:"amount,omitempty"`  // the money it would move, if any
	Currency string `json:"currency,omitempty"`
	// ApprovalRequired: the action would wait for a supervisor's approval;
	// ApprovalReasons name the policy rules that ask for it.
	ApprovalRequired bool             `json:"approval_required"`
	ApprovalReasons  []ApprovalReason `json:"approval_reasons"`
	// Limit is the most this requester moves without approval (refunds,
	// credits), from the policy in force.
	Limit *Limit `json:"limit,omitempty"`
	// Refund (refunds): the charge's amounts the refund is checked against,
	// also when the refund is refused for being over what is left.
	Refund *RefundPreview `json:"refund,omitempty"`
	// ProratedRefund (cancel_subscription with refund prorated) is the
	// refund that would follow the cancellation, under the refund rules.
	ProratedRefund *int64 `json:"prorated_refund,omitempty"`
	RefundCharge   string `json:"refund_charge,omitempty"`
	// TrialEnd (extend_trial) is the new end of the trial.
	TrialEnd *time.Time `json:"trial_end,omitempty"`
	// Invoice (retry_payment) is the invoice that would be paid; Amount is
	// what is due on it.
	Invoice string `json:"invoice,omitempty"`
}

// Refusal is why Request would refuse: the error code and message it
// would answer with, and its kind (ECONFLICT → 409, EUNPROCESSABLE → 422,
// EINVALID → 400, EFORBIDDEN → 403, EUNAVAILABLE → 503).
type Refusal struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Kind    errs.Kind      `json:"kind"`
	Details map[string]any `json:"details,omitempty"`
}

// ApprovalReason is one rule that sends an action for approval.
type ApprovalReason struct {
	Rule   string `json:"rule"` // the policy setting, e.g. refund.agent_limit
	Reason string `json:"reason"`
}

// Limit is an amount a policy rule sets.
type Limit struct {
	Rule     string `json:"rule"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// RefundPreview is where a charge stands for refunds.
type RefundPreview struct {
	Charge   string `json:"charge"`
	Total    int64  `json:"charge_amount"`
	Refunded int64  `json:"refunded"`  // already refunded
	InFlight int64  `json:"in_flight"` // our refunds waiting for approval or executing
	Left     int64  `json:"left"`      // what may still be refunded
	Currency string `json:"currency"`
}

// errPreviewRollback ends the preview's transaction: nothing it did is kept.
var errPreviewRollback = errors.New("preview: roll back")

// Preview evaluates r on the case as Request would, as the principal in
// ctx, without recording, auditing or sending anything: the plan runs
// inside a transaction that is always rolled back (it takes the same
// locks as a request, so it sees what a request would). It asks the
// provider nothing to act; like Request's policy check it may read an
// object the mirror lacks from the provider. A request Request would
// refuse (policy, bad parameters, a role the action or case is not for) is
// a Preview with Allowed false and the Refusal — not an error. Errors:
// EUNAUTHORIZED, EFORBIDDEN (the role may not request actions at all),
// ENOTFOUND (case), and errors that kept policy from being decided
// (database, an unreachable provider behind the mirror).
func (s *Service) Preview(ctx context.Context, caseID string, r Request) (Preview, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return Preview{}, errs.New(errs.EUNAUTHORIZED, "authentication required")
	}
	if !auth.Allowed(p.Role, auth.PermActionsRequest) {
		return Preview{}, errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not request actions", p.Role)
	}
	out := Preview{Type: r.Type, ApprovalReasons: []ApprovalReason{}}
	// The same checks, in the same order, as Request before it plans.
	switch {
	case s.provider == nil:
		return refused(out, errs.Coded(errs.EUNAVAILABLE, "provider_not_configured", "no billing provider is configured (RECOURSE_STRIPE_API_KEY)")), nil
	case r.Type == "":
		return refused(out, errs.Coded(errs.EINVALID, "type_required", "type is required: one of %v", Types())), nil
	case !slices.Contains(Types(), r.Type):
		return refused(out, errs.Coded(errs.EINVALID, "unknown_action", "unknown action type %q: one of %v", r.Type, Types())), nil
	}
	var pl plan
	var refusal error
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		c, err := s.cases.Lookup(ctx, tx, caseID)
		if err != nil {
			return err
		}
		if refusal = admitRule(p, c, r.Type, "", p.ActorKind() == auth.ActorSystem); refusal == nil {
			pl, refusal = s.plan(ctx, tx, p, c, r, "")
		}
		return errPreviewRollback
	})
	if !errors.Is(err, errPreviewRollback) {
		return Preview{}, err
	}
	if refusal != nil && !isPreviewRefusal(refusal) {
		return Preview{}, refusal
	}
	out.Summary, out.Subject, out.Amount, out.Currency = pl.summary, pl.subject, pl.amount, pl.currency
	if f := pl.refund; f != nil {
		out.Refund = &RefundPreview{Charge: f.charge, Total: f.total, Refunded: f.refunded, InFlight: f.inFlight, Left: f.left, Currency: f.currency}
		if out.Currency == "" {
			out.Currency = f.currency
		}
	}
	out.Limit = s.limitFor(p, r.Type, out.Currency)
	if refusal != nil {
		return refused(out, refusal), nil
	}
	out.Allowed = true
	for i, why := range pl.approval {
		rule := ""
		if i < len(pl.rules) {
			rule = pl.rules[i]
		}
		out.ApprovalReasons = append(out.ApprovalReasons, ApprovalReason{Rule: rule, Reason: why})
	}
	out.ApprovalRequired = len(pl.approval) > 0
	switch r.Type {
	case CancelSubscription:
		if pl.params.ProratedRefund > 0 {
			out.ProratedRefund, out.RefundCharge = ptr(pl.params.ProratedRefund), pl.params.RefundCharge
		}
	case ExtendTrial:
		out.TrialEnd = pl.params.TrialEnd
	case RetryPayment:
		out.Invoice = pl.params.Invoice
	}
	return out, nil
}

// refused is out with err as its refusal.
func refused(out Preview, err error) Preview {
	out.Allowed = false
	if e, ok := errs.As(err); ok {
		out.Refusal = &Refusal{Code: e.Code, Message: e.Message, Kind: e.Kind, Details: e.Details}
	}
	return out
}

// isPreviewRefusal reports whether err is Request's answer to this request
// (a rule refused it) rather than a failure to decide. The workbench not
// being wired is an answer too: Request would refuse the same way.
func isPreviewRefusal(err error) bool {
	if _, ok := asRefusal(err); ok {
		return true
	}
	e, ok := errs.As(err)
	return ok && e.Code == "evidence_unavailable"
}

// limitFor is the most p moves with an action of type t without approval.
func (s *Service) limitFor(p auth.Principal, t Type, currency string) *Limit {
	switch t {
	case Refund:
		l := &Limit{Rule: "refund.approval_over", Amount: s.policy.Refund.ApprovalOver, Currency: currency}
		if p.Role == auth.RoleAgent && s.policy.Refund.AgentLimit < l.Amount {
			l.Rule, l.Amount = "refund.agent_limit", s.policy.Refund.AgentLimit
		}
		return l
	case ApplyCredit:
		return &Limit{Rule: "credit.approval_over", Amount: s.policy.Credit.ApprovalOver, Currency: currency}
	}
	return nil
}

// Permitted reports whether a principal of role may request an action of
// type t on a case of kind: the role table Request checks first (policy
// aside), for the console to offer only the actions the API would take
// from this person.
func Permitted(role auth.Role, kind cases.Kind, t Type) bool {
	return authorize(auth.Principal{Role: role}, CaseRef{Kind: kind}, t) == nil
}
