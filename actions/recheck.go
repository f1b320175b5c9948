package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/events"
)

// Policy is evaluated when an action is requested, and again — against the
// mirror as it is then — when a supervisor approves it and right before
// every provider call (the client's retry and the resumer included): a
// chargeback, a refund from elsewhere, an open fraud warning or a closed
// case that arrived while the action waited must stop it. The re-check runs
// the same plan functions as the request, so each rule has one
// implementation; it does not count the action against itself and does not
// ask for approval again. A refusal ends the action `refused`, with the
// rule's code and message on the action, the timeline and the audit log.

// recheck evaluates policy again for the recorded action r inside tx, as
// its requester. It returns the plan when every rule still passes (its
// approval reasons say whether the action would need approval now), the
// rule's refusal (a coded error), or another error when policy could not be
// evaluated (database, an unreachable provider behind the mirror).
func (s *Service) recheck(ctx context.Context, tx *gorm.DB, r row) (plan, error) {
	c, err := s.cases.Lookup(ctx, tx, r.CaseID)
	if err != nil {
		return plan{}, err
	}
	p := auth.Principal{Name: r.RequestedBy, Role: auth.Role(r.RequestedRole)}
	if err := admitRule(p, c, Type(r.Type), r.ClientKey, r.RequestedByUserID == nil && r.RequestedBy == cases.SystemActor); err != nil {
		return plan{}, err
	}
	req, err := requestOf(r)
	if err != nil {
		return plan{}, err
	}
	return s.plan(ctx, tx, p, c, req, r.ID)
}

// needsApprovalNow parks an action that never needed approval, has not been
// sent yet, and that policy would now send for approval (a stuck refund
// resumed after its charge left the refund window): it waits for a
// supervisor like a new request would. An approved action is never asked
// again.
func (s *Service) needsApprovalNow(ctx context.Context, tx *gorm.DB, r row, pl plan) (row, bool, error) {
	if r.DecidedBy != nil || r.Attempts > 1 || len(pl.approval) == 0 {
		return r, false, nil
	}
	b, _ := json.Marshal(pl.approval)
	res := tx.WithContext(ctx).Model(&row{}).Where("id = ? AND status = ?", r.ID, string(StatusExecuting)).
		Updates(map[string]any{"status": string(StatusPendingApproval), "approval_reasons": string(b), "lease_until": nil, "updated_at": s.clock.Now()})
	if res.Error != nil || res.RowsAffected == 0 {
		return r, false, res.Error
	}
	var out row
	if err := tx.WithContext(ctx).Where("id = ?", r.ID).Take(&out).Error; err != nil {
		return r, false, err
	}
	summary := fmt.Sprintf("%s (%s) now needs a supervisor's approval before it is sent (%s)", capitalize(describe(out.action())), r.ID, strings.Join(pl.approval, "; "))
	if err := s.cases.Record(ctx, tx, r.CaseID, cases.SystemActor, "action_requested", summary, ""); err != nil {
		return out, false, err
	}
	if err := s.cases.Announce(ctx, tx, events.TypeApprovalRequested, "approval-requested/"+r.ID, r.CaseID, r.Type, r.Amount, r.Currency); err != nil {
		return out, false, err
	}
	return out, true, s.audit.Record(ctx, tx, audit.Entry{Action: "action.approval_required." + r.Type, CaseID: r.CaseID, ObjectType: "action", ObjectID: r.ID,
		Before: audit.Marshal(r.action()), After: audit.Marshal(out.action()), Detail: summary})
}

// requestOf rebuilds, from a recorded action's resolved parameters, the
// request that plan checks: the same objects, amounts and dates that will be
// sent to the provider.
func requestOf(r row) (Request, error) {
	var p Params
	if err := json.Unmarshal([]byte(r.Params), &p); err != nil {
		return Request{}, fmt.Errorf("action %s params: %w", r.ID, err)
	}
	var rp RequestParams
	switch Type(r.Type) {
	case Refund:
		rp.Charge, rp.Amount, rp.RefundReason = p.Charge, ptr(p.Amount), p.RefundReason
	case CancelSubscription:
		rp.Mode, rp.Feedback, rp.RetentionOffer = p.Mode, p.Feedback, p.RetentionOffer
		if p.ProratedRefund > 0 {
			rp.Refund = "prorated"
		}
	case ExtendTrial:
		rp.TrialEnd = p.TrialEnd
	case PauseCollection:
		rp.Behavior, rp.ResumesAt = p.Behavior, p.ResumesAt
	case RetryPayment:
		rp.Invoice = p.Invoice
	case ApplyCredit:
		rp.Amount, rp.Currency, rp.Description = ptr(p.Amount), p.Currency, p.Description
	case SubmitEvidence, StageEvidence:
		rp.EvidenceVersion, rp.EvidenceDigest = ptr(p.EvidenceVersion), p.EvidenceDigest
	}
	b, err := json.Marshal(rp)
	if err != nil {
		return Request{}, err
	}
	return Request{Type: Type(r.Type), Params: b, Reason: r.Reason}, nil
}

// asRefusal returns err as a policy refusal, or false when err is not one
// (nil, a database error, an unreachable provider: policy was not decided).
func asRefusal(err error) (*errs.Error, bool) {
	e, ok := errs.As(err)
	if !ok {
		return nil, false
	}
	switch e.Kind {
	case errs.ECONFLICT, errs.EUNPROCESSABLE, errs.EFORBIDDEN, errs.EINVALID, errs.ENOTFOUND:
		return e, true
	}
	return nil, false
}

// standsInDoubt lists the refusals that hold even for an action whose
// earlier attempt may already have reached the provider (its answer was
// lost): conditions the action's own effect cannot have caused. Refusals
// such as "nothing left to refund" or "already canceling" may be the
// action's own effect showing in the mirror; such an action is completed
// with its own idempotency key instead, and the provider answers with its
// first result (or refuses, e.g. a refund over what is left).
// A closed case is not among them: a successful action may close its own
// case (a full refund resolves a refund request).
var standsInDoubt = map[string]bool{
	"charge_disputed":       true,
	"charge_not_refundable": true,
	"fraud_warning_open":    true,
	"forbidden":             true,
}

// refuse ends the action r `refused` by the rule e, inside tx: the rule's
// code and message on the action (with any extra columns, e.g. the approver's
// decision), on the case timeline and in the audit log. It returns the
// action as stored, or ECONFLICT when r left status from meanwhile.
func (s *Service) refuse(ctx context.Context, tx *gorm.DB, r row, from Status, actor, lead string, e *errs.Error, extra map[string]any) (row, error) {
	now := s.clock.Now()
	upd := map[string]any{"status": string(StatusRefused), "error_code": e.Code, "error_message": e.Message, "lease_until": nil, "updated_at": now}
	for k, v := range extra {
		upd[k] = v
	}
	res := tx.WithContext(ctx).Model(&row{}).Where("id = ? AND status = ?", r.ID, string(from)).Updates(upd)
	if res.Error != nil {
		return r, fmt.Errorf("refuse action %s: %w", r.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return r, errs.Coded(errs.ECONFLICT, "not_pending", "action %s changed concurrently", r.ID)
	}
	var out row
	if err := tx.WithContext(ctx).Where("id = ?", r.ID).Take(&out).Error; err != nil {
		return r, err
	}
	summary := fmt.Sprintf("%sPolicy now refuses %s (%s), so nothing was sent to the provider — %s: %s", lead, describe(out.action()), r.ID, e.Code, e.Message)
	if err := s.cases.Record(ctx, tx, r.CaseID, actor, "action_refused", summary, ""); err != nil {
		return out, err
	}
	return out, s.audit.Record(ctx, tx, audit.Entry{Action: "action.refused." + r.Type, CaseID: r.CaseID, ObjectType: "action", ObjectID: r.ID,
		Before: audit.Marshal(r.action()), After: audit.Marshal(out.action()), Detail: e.Code + ": " + e.Message})
}
