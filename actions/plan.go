package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// authorize is the role table for actions, checked on every request against
// the case it targets (object-level, not just the route).
func authorize(p auth.Principal, c CaseRef, t Type) error {
	switch {
	case t == AcceptDispute && !auth.Allowed(p.Role, auth.PermDisputeAccept):
		return errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not accept disputes; an analyst or supervisor can", p.Role)
	case (t == SubmitEvidence || t == StageEvidence) && !auth.Allowed(p.Role, auth.PermDisputesWork):
		return errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not send dispute evidence; an analyst or supervisor can", p.Role)
	case c.Kind == cases.KindDispute && t != Refund && !auth.Allowed(p.Role, auth.PermDisputesWork):
		// Refunds are decided in planRefund, after the double-loss check, so
		// anyone asking learns why a chargeback is never refunded.
		return errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not act on dispute cases", p.Role)
	case !auth.Allowed(p.Role, auth.PermActionsRequest):
		return errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not request actions", p.Role)
	}
	return nil
}

// admit checks who may act on the case, and that the case is still open.
func admit(p auth.Principal, c CaseRef, t Type) error {
	if err := authorize(p, c, t); err != nil {
		return err
	}
	if !c.IsOpen() {
		return errs.Coded(errs.ECONFLICT, "case_closed", "case %s is closed; reopen it before acting on it", c.ID)
	}
	return nil
}

// plan is a checked action: resolved parameters, the provider object it
// acts on, and why it needs approval, if it does.
type plan struct {
	params   Params
	subject  string
	amount   int64
	currency string
	approval []string
	// rules names, for each entry of approval, the policy setting that
	// asks for it (e.g. refund.agent_limit), so a preview can say which.
	rules   []string
	summary string
	// refund is what a refund was decided on (planRefund). It is set
	// also when the refund is refused over the amount left, so a preview
	// can show what is left.
	refund *refundFacts
}

// refundFacts are the amounts of the charge a refund is checked against,
// in its currency's minor units.
type refundFacts struct {
	charge   string
	currency string
	total    int64 // the charge's amount
	refunded int64 // refunded already (ours that succeeded, or the provider's figure if larger)
	inFlight int64 // our refunds waiting for approval or executing
	left     int64 // total - refunded - inFlight
}

// plan checks r against policy and the mirror as it is now. self is the id
// of an already recorded action being re-checked (see recheck), which must
// not count against itself ("amount left", trial cap, retry spacing); ""
// for a new request.
func (s *Service) plan(ctx context.Context, tx *gorm.DB, p auth.Principal, c CaseRef, r Request, self string) (plan, error) {
	rp, err := decodeParams(r.Params)
	if err != nil {
		return plan{}, err
	}
	reason := strings.TrimSpace(r.Reason)
	m := s.mirror(tx)
	if s.fetcher != nil {
		m = fallbackMirror{Mirror: m, f: s.fetcher}
	}
	switch r.Type {
	case Refund:
		return s.planRefund(ctx, tx, m, p, c, rp, reason, self)
	case CancelSubscription:
		return s.planCancel(ctx, tx, m, c, rp, reason)
	case ReactivateSubscription:
		return s.planReactivate(ctx, m, c)
	case ExtendTrial:
		return s.planExtendTrial(ctx, tx, m, c, rp, self)
	case PauseCollection:
		return s.planPause(ctx, m, c, rp, reason)
	case ResumeCollection:
		return s.planResume(ctx, m, c)
	case RetryPayment:
		return s.planRetry(ctx, tx, m, c, rp, self)
	case ApplyCredit:
		return s.planCredit(ctx, m, c, rp, reason)
	case AcceptDispute:
		return s.planAcceptDispute(ctx, tx, m, c, reason, self)
	case SubmitEvidence, StageEvidence:
		return s.planEvidence(ctx, tx, m, c, r.Type, rp, self)
	case "":
		return plan{}, errs.Coded(errs.EINVALID, "type_required", "type is required: one of %v", Types())
	}
	return plan{}, errs.Coded(errs.EINVALID, "unknown_action", "unknown action type %q: one of %v", r.Type, Types())
}

// notMirrored explains that policy cannot be checked yet.
func notMirrored(kind, id string, err error) error {
	if errs.Is(err, errs.ENOTFOUND) {
		return errs.Coded(errs.EUNPROCESSABLE, "not_found", "%s %s is not known to Recourse or the billing provider, so policy cannot be checked", kind, id)
	}
	return err
}

func requireLink(kind, id string) error {
	if id == "" {
		return errs.Coded(errs.EUNPROCESSABLE, "missing_link", "this case is not linked to a %s", kind)
	}
	return nil
}

func (s *Service) planRefund(ctx context.Context, tx *gorm.DB, m Mirror, p auth.Principal, c CaseRef, rp RequestParams, reason, self string) (plan, error) {
	if reason == "" {
		return plan{}, errs.Coded(errs.EINVALID, "reason_required", "a refund needs a reason")
	}
	chargeID := c.Charge
	if rp.Charge != "" {
		chargeID = rp.Charge
	}
	if chargeID == "" && c.Invoice != "" {
		if inv, err := m.Invoice(ctx, c.Invoice); err == nil {
			chargeID = inv.ChargeID
		}
	}
	if err := requireLink("charge", chargeID); err != nil {
		return plan{}, err
	}
	if err := lockSubject(ctx, s.db, tx, chargeID); err != nil {
		return plan{}, err
	}
	ch, err := m.Charge(ctx, chargeID)
	if err != nil {
		return plan{}, notMirrored("charge", chargeID, err)
	}
	// Object-level check: a charge named in params must belong to this case.
	if rp.Charge != "" && rp.Charge != c.Charge && (c.Customer == "" || ch.CustomerID != c.Customer) {
		return plan{}, errs.Coded(errs.EFORBIDDEN, "forbidden", "charge %s does not belong to this case's customer", rp.Charge)
	}
	// Double loss: a charge in chargeback is not refunded; the dispute is worked instead.
	disputes, err := m.DisputesByCharge(ctx, chargeID)
	if err != nil {
		return plan{}, err
	}
	for _, d := range disputes {
		if !d.IsInquiry() {
			return plan{}, errs.Coded(errs.ECONFLICT, "charge_disputed",
				"charge %s is disputed (%s, %s): refunding it now would lose the money twice — the network already reverses it. Work dispute %s instead (submit evidence or accept it).",
				chargeID, d.ID, d.Status, d.ID).WithDetails(map[string]any{"dispute": d.ID, "dispute_status": d.Status})
		}
		if d.Status != "warning_closed" && !d.IsChargeRefundable {
			return plan{}, errs.Coded(errs.ECONFLICT, "charge_not_refundable", "charge %s has inquiry %s and the provider says it can no longer be refunded", chargeID, d.ID)
		}
	}
	if ch.Disputed && len(disputes) == 0 {
		return plan{}, errs.Coded(errs.ECONFLICT, "charge_disputed", "charge %s is marked disputed; refunding it would lose the money twice. Wait for the dispute to reach Recourse and work it instead.", chargeID)
	}
	if c.Kind == cases.KindDispute && !auth.Allowed(p.Role, auth.PermDisputesWork) {
		return plan{}, errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not act on dispute cases; an analyst decides whether to refund an inquiry", p.Role)
	}
	// An open early fraud warning is worked in its own case.
	if fw, open, err := s.cases.OpenRefFor(ctx, tx, cases.KindFraudWarning, chargeID); err != nil {
		return plan{}, err
	} else if open && fw.ID != c.ID {
		return plan{}, errs.Coded(errs.ECONFLICT, "fraud_warning_open",
			"charge %s has an open early fraud warning (case %s): refund it from that case, with reason fraudulent", chargeID, fw.ID).
			WithDetails(map[string]any{"fraud_warning_case": fw.ID})
	}
	refunded, inFlight, err := s.refundedSoFar(ctx, tx, chargeID, self)
	if err != nil {
		return plan{}, err
	}
	if ch.AmountRefunded > refunded {
		refunded = ch.AmountRefunded
	}
	left := ch.Amount - refunded - inFlight
	facts := &refundFacts{charge: chargeID, currency: ch.Currency, total: ch.Amount, refunded: refunded, inFlight: inFlight, left: left}
	amount := left
	if rp.Amount != nil {
		amount = *rp.Amount
	}
	if amount <= 0 && rp.Amount != nil {
		return plan{}, errs.Coded(errs.EINVALID, "invalid_amount", "amount must be positive")
	}
	if left <= 0 {
		return plan{refund: facts}, errs.Coded(errs.EUNPROCESSABLE, "nothing_to_refund", "charge %s has nothing left to refund (%s refunded or in flight)", chargeID, money(refunded+inFlight, ch.Currency))
	}
	if amount > left {
		return plan{refund: facts}, errs.Coded(errs.EUNPROCESSABLE, "amount_exceeds_refundable",
			"refund of %s is more than the %s left to refund on charge %s", money(amount, ch.Currency), money(left, ch.Currency), chargeID).
			WithDetails(map[string]any{"refundable": left, "currency": ch.Currency})
	}
	stripeReason := "requested_by_customer"
	if rp.RefundReason != "" {
		if err := oneOf("refund_reason", rp.RefundReason, refundReasons); err != nil {
			return plan{}, err
		}
		stripeReason = rp.RefundReason
	}
	if c.Kind == cases.KindFraudWarning {
		stripeReason = "fraudulent"
	}
	var approval, rules []string
	if p.Role == auth.RoleAgent && amount > s.policy.Refund.AgentLimit {
		approval = append(approval, fmt.Sprintf("over the agent limit of %s", money(s.policy.Refund.AgentLimit, ch.Currency)))
		rules = append(rules, "refund.agent_limit")
	}
	if amount > s.policy.Refund.ApprovalOver {
		approval = append(approval, fmt.Sprintf("over %s", money(s.policy.Refund.ApprovalOver, ch.Currency)))
		rules = append(rules, "refund.approval_over")
	}
	if age := s.clock.Now().Sub(ch.Created); !ch.Created.IsZero() && age > s.policy.Refund.Window.D() {
		approval = append(approval, fmt.Sprintf("charge is %d days old, outside the %d-day refund window", int(age.Hours()/24), int(s.policy.Refund.Window.D().Hours()/24)))
		rules = append(rules, "refund.window")
	}
	created := ch.Created
	kind := "full"
	if amount < left || refunded > 0 {
		kind = "partial"
	}
	return plan{
		params:  Params{Charge: chargeID, Amount: amount, Currency: ch.Currency, RefundReason: stripeReason, Comment: reason, ChargeCreatedAt: &created},
		subject: chargeID, amount: amount, currency: ch.Currency, approval: approval, rules: rules, refund: facts,
		summary: fmt.Sprintf("a %s refund of %s on charge %s", kind, money(amount, ch.Currency), chargeID),
	}, nil
}

// refundedSoFar sums our own refunds on the charge, other than self:
// succeeded (the mirror may not have heard yet) and in flight (pending
// approval or executing).
func (s *Service) refundedSoFar(ctx context.Context, tx *gorm.DB, chargeID, self string) (int64, int64, error) {
	var rows []struct {
		Status string
		Total  int64
	}
	err := tx.WithContext(ctx).Model(&row{}).Select("status, COALESCE(SUM(amount), 0) AS total").
		Where("subject_id = ? AND type = ? AND status IN ? AND id <> ?", chargeID, string(Refund), []string{string(StatusSucceeded), string(StatusExecuting), string(StatusPendingApproval)}, self).
		Group("status").Scan(&rows).Error
	if err != nil {
		return 0, 0, fmt.Errorf("sum refunds of %s: %w", chargeID, err)
	}
	var done, inFlight int64
	for _, r := range rows {
		if r.Status == string(StatusSucceeded) {
			done += r.Total
		} else {
			inFlight += r.Total
		}
	}
	return done, inFlight, nil
}

func (s *Service) subscription(ctx context.Context, m Mirror, c CaseRef) (billing.Subscription, error) {
	if err := requireLink("subscription", c.Subscription); err != nil {
		return billing.Subscription{}, err
	}
	sub, err := m.Subscription(ctx, c.Subscription)
	if err != nil {
		return sub, notMirrored("subscription", c.Subscription, err)
	}
	return sub, nil
}

func (s *Service) planCancel(ctx context.Context, tx *gorm.DB, m Mirror, c CaseRef, rp RequestParams, reason string) (plan, error) {
	if s.policy.Cancel.RequireReason && reason == "" {
		return plan{}, errs.Coded(errs.EINVALID, "reason_required", "record the customer's cancellation reason")
	}
	sub, err := s.subscription(ctx, m, c)
	if err != nil {
		return plan{}, err
	}
	mode := rp.Mode
	if mode == "" {
		mode = "period_end"
	}
	if err := oneOf("mode", mode, []string{"now", "period_end"}); err != nil {
		return plan{}, err
	}
	if rp.Feedback != "" {
		if err := oneOf("feedback", rp.Feedback, cancelFeedback); err != nil {
			return plan{}, err
		}
	}
	if rp.RetentionOffer != "" {
		if err := oneOf("retention_offer", rp.RetentionOffer, retentionOutcomes); err != nil {
			return plan{}, err
		}
	}
	if sub.Status == "canceled" || sub.Status == "incomplete_expired" {
		return plan{}, errs.Coded(errs.ECONFLICT, "already_canceled", "subscription %s is already %s", sub.ID, sub.Status)
	}
	if mode == "period_end" && sub.CancelAtPeriodEnd {
		return plan{}, errs.Coded(errs.ECONFLICT, "already_canceling", "subscription %s is already set to cancel at the end of its period", sub.ID)
	}
	pp := Params{Subscription: sub.ID, Mode: mode, Feedback: rp.Feedback, Comment: reason, RetentionOffer: rp.RetentionOffer}
	summary := fmt.Sprintf("cancellation of subscription %s (%s)", sub.ID, map[string]string{"now": "now", "period_end": "at period end"}[mode])
	if rp.RetentionOffer == "declined" {
		summary += "; the customer declined a retention offer, and the cancellation is honoured"
	}
	switch rp.Refund {
	case "", "none":
	case "prorated":
		if mode != "now" {
			return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "a prorated refund goes with mode now")
		}
		amount, chargeID := s.proratedRefund(ctx, m, sub)
		if amount > 0 {
			pp.ProratedRefund, pp.RefundCharge = amount, chargeID
			summary += fmt.Sprintf(", then a prorated refund of %s (refund rules apply)", money(amount, sub.Currency))
		}
	default:
		return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "refund must be none or prorated")
	}
	return plan{params: pp, subject: sub.ID, summary: summary}, nil
}

// proratedRefund is the unused share of the current period of the latest
// paid invoice's charge.
func (s *Service) proratedRefund(ctx context.Context, m Mirror, sub billing.Subscription) (int64, string) {
	if sub.LatestInvoiceID == "" || sub.CurrentPeriodStart == nil || sub.CurrentPeriodEnd == nil {
		return 0, ""
	}
	inv, err := m.Invoice(ctx, sub.LatestInvoiceID)
	if err != nil || inv.ChargeID == "" || inv.AmountPaid <= 0 {
		return 0, ""
	}
	total := sub.CurrentPeriodEnd.Sub(*sub.CurrentPeriodStart)
	left := sub.CurrentPeriodEnd.Sub(s.clock.Now())
	if total <= 0 || left <= 0 {
		return 0, ""
	}
	return int64(float64(inv.AmountPaid) * float64(left) / float64(total)), inv.ChargeID
}

func (s *Service) planReactivate(ctx context.Context, m Mirror, c CaseRef) (plan, error) {
	sub, err := s.subscription(ctx, m, c)
	if err != nil {
		return plan{}, err
	}
	if sub.Status == "canceled" || sub.Status == "incomplete_expired" {
		return plan{}, errs.Coded(errs.ECONFLICT, "already_canceled", "subscription %s has ended; it cannot be reactivated, only replaced", sub.ID)
	}
	if !sub.CancelAtPeriodEnd {
		return plan{}, errs.Coded(errs.ECONFLICT, "not_canceling", "subscription %s is not set to cancel", sub.ID)
	}
	if sub.CurrentPeriodEnd != nil && !s.clock.Now().Before(*sub.CurrentPeriodEnd) {
		return plan{}, errs.Coded(errs.ECONFLICT, "period_ended", "the period of subscription %s ended %s; it can only be reactivated before then", sub.ID, sub.CurrentPeriodEnd.Format("2006-01-02"))
	}
	return plan{params: Params{Subscription: sub.ID}, subject: sub.ID, summary: fmt.Sprintf("reactivation of subscription %s (undo cancel at period end)", sub.ID)}, nil
}

func (s *Service) planExtendTrial(ctx context.Context, tx *gorm.DB, m Mirror, c CaseRef, rp RequestParams, self string) (plan, error) {
	sub, err := s.subscription(ctx, m, c)
	if err != nil {
		return plan{}, err
	}
	if sub.Status != "trialing" || sub.TrialEnd == nil {
		return plan{}, errs.Coded(errs.ECONFLICT, "not_trialing", "subscription %s is %s, not in a trial", sub.ID, sub.Status)
	}
	var newEnd time.Time
	switch {
	case rp.Days != nil && rp.TrialEnd != nil:
		return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "give days or trial_end, not both")
	case rp.Days != nil:
		if *rp.Days < 1 {
			return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "days must be at least 1")
		}
		newEnd = sub.TrialEnd.Add(time.Duration(*rp.Days) * 24 * time.Hour)
	case rp.TrialEnd != nil:
		newEnd = rp.TrialEnd.UTC()
		if !newEnd.After(*sub.TrialEnd) {
			return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "trial_end must be after the current trial end %s", sub.TrialEnd.Format(time.RFC3339))
		}
	default:
		return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "days or trial_end is required")
	}
	ext := newEnd.Sub(*sub.TrialEnd)
	var prior int64
	var prev []row
	if err := tx.WithContext(ctx).Where("subject_id = ? AND type = ? AND status IN ? AND id <> ?", sub.ID, string(ExtendTrial),
		[]string{string(StatusSucceeded), string(StatusExecuting), string(StatusPendingApproval)}, self).Find(&prev).Error; err != nil {
		return plan{}, err
	}
	for _, r := range prev {
		var pp Params
		if err := jsonUnmarshal(r.Params, &pp); err == nil {
			prior += pp.ExtensionSecs
		}
	}
	total := time.Duration(prior)*time.Second + ext
	if limit := s.policy.Trial.MaxExtension.D(); total > limit {
		return plan{}, errs.Coded(errs.EUNPROCESSABLE, "extension_limit",
			"extending by %s would extend this trial by %s in total; policy allows %s", days(ext), days(total), days(limit)).
			WithDetails(map[string]any{"already_extended_days": prior / 86400, "max_days": int(limit.Hours() / 24)})
	}
	return plan{params: Params{Subscription: sub.ID, TrialEnd: &newEnd, ExtensionSecs: int64(ext.Seconds())}, subject: sub.ID,
		summary: fmt.Sprintf("a trial extension of %s for subscription %s (new trial end %s)", days(ext), sub.ID, newEnd.Format("2006-01-02"))}, nil
}

func (s *Service) planPause(ctx context.Context, m Mirror, c CaseRef, rp RequestParams, reason string) (plan, error) {
	if reason == "" {
		return plan{}, errs.Coded(errs.EINVALID, "reason_required", "pausing collection needs a reason")
	}
	sub, err := s.subscription(ctx, m, c)
	if err != nil {
		return plan{}, err
	}
	if sub.PauseCollection != "" {
		return plan{}, errs.Coded(errs.ECONFLICT, "already_paused", "collection on subscription %s is already paused", sub.ID)
	}
	if sub.Status == "canceled" || sub.Status == "incomplete_expired" {
		return plan{}, errs.Coded(errs.ECONFLICT, "already_canceled", "subscription %s has ended", sub.ID)
	}
	behavior := rp.Behavior
	if behavior == "" {
		behavior = "void"
	}
	if err := oneOf("behavior", behavior, pauseBehaviors); err != nil {
		return plan{}, err
	}
	now := s.clock.Now()
	limit := now.Add(s.policy.Pause.MaxLength.D())
	resumes := limit
	switch {
	case rp.ResumesAt != nil && rp.Days != nil:
		return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "give days or resumes_at, not both")
	case rp.ResumesAt != nil:
		resumes = rp.ResumesAt.UTC()
	case rp.Days != nil:
		resumes = now.Add(time.Duration(*rp.Days) * 24 * time.Hour)
	}
	if !resumes.After(now) {
		return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "the pause must end in the future")
	}
	if resumes.After(limit) {
		return plan{}, errs.Coded(errs.EUNPROCESSABLE, "pause_too_long", "a pause may last at most %s (until %s)", days(s.policy.Pause.MaxLength.D()), limit.Format("2006-01-02"))
	}
	return plan{params: Params{Subscription: sub.ID, Behavior: behavior, ResumesAt: &resumes, Comment: reason}, subject: sub.ID,
		summary: fmt.Sprintf("a pause of collection on subscription %s (%s) until %s", sub.ID, behavior, resumes.Format("2006-01-02"))}, nil
}

func (s *Service) planResume(ctx context.Context, m Mirror, c CaseRef) (plan, error) {
	sub, err := s.subscription(ctx, m, c)
	if err != nil {
		return plan{}, err
	}
	if sub.PauseCollection == "" {
		return plan{}, errs.Coded(errs.ECONFLICT, "not_paused", "collection on subscription %s is not paused", sub.ID)
	}
	return plan{params: Params{Subscription: sub.ID}, subject: sub.ID, summary: fmt.Sprintf("resuming collection on subscription %s", sub.ID)}, nil
}

func (s *Service) planRetry(ctx context.Context, tx *gorm.DB, m Mirror, c CaseRef, rp RequestParams, self string) (plan, error) {
	invID := c.Invoice
	if rp.Invoice != "" {
		invID = rp.Invoice
	}
	if err := requireLink("invoice", invID); err != nil {
		return plan{}, err
	}
	if err := lockSubject(ctx, s.db, tx, invID); err != nil {
		return plan{}, err
	}
	inv, err := m.Invoice(ctx, invID)
	if err != nil {
		return plan{}, notMirrored("invoice", invID, err)
	}
	if rp.Invoice != "" && rp.Invoice != c.Invoice && (c.Customer == "" || inv.CustomerID != c.Customer) {
		return plan{}, errs.Coded(errs.EFORBIDDEN, "forbidden", "invoice %s does not belong to this case's customer", invID)
	}
	if inv.Status != "open" {
		return plan{}, errs.Coded(errs.ECONFLICT, "invoice_not_open", "invoice %s is %s; only open invoices can be retried", invID, inv.Status)
	}
	var prev []row
	if err := tx.WithContext(ctx).Where("subject_id = ? AND type = ? AND status IN ? AND id <> ?", invID, string(RetryPayment),
		[]string{string(StatusSucceeded), string(StatusExecuting), string(StatusFailed), string(StatusPendingApproval)}, self).Order("created_at DESC").Find(&prev).Error; err != nil {
		return plan{}, err
	}
	if len(prev) >= s.policy.Retry.MaxPerInvoice {
		return plan{}, errs.Coded(errs.ECONFLICT, "retry_limit", "invoice %s has been retried %d times from Recourse; policy allows %d", invID, len(prev), s.policy.Retry.MaxPerInvoice)
	}
	if len(prev) > 0 {
		next := prev[0].CreatedAt.Add(s.policy.Retry.MinInterval.D())
		if s.clock.Now().Before(next) {
			return plan{}, errs.Coded(errs.ECONFLICT, "retry_too_soon", "invoice %s was retried at %s; the next retry is allowed from %s", invID,
				prev[0].CreatedAt.Format(time.RFC3339), next.Format(time.RFC3339)).WithDetails(map[string]any{"next_allowed_at": next})
		}
	}
	return plan{params: Params{Invoice: invID}, subject: invID, amount: inv.AmountRemaining, currency: inv.Currency,
		summary: fmt.Sprintf("a payment retry of invoice %s (%s due)", invID, money(inv.AmountRemaining, inv.Currency))}, nil
}

func (s *Service) planCredit(ctx context.Context, m Mirror, c CaseRef, rp RequestParams, reason string) (plan, error) {
	if reason == "" {
		return plan{}, errs.Coded(errs.EINVALID, "reason_required", "a credit needs a reason")
	}
	if err := requireLink("customer", c.Customer); err != nil {
		return plan{}, err
	}
	if rp.Amount == nil {
		return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "amount (minor units) is required")
	}
	amount := *rp.Amount
	currency := strings.ToLower(rp.Currency)
	if currency == "" && c.Subscription != "" {
		if sub, err := m.Subscription(ctx, c.Subscription); err == nil {
			currency = sub.Currency
		}
	}
	if currency == "" {
		return plan{}, errs.Coded(errs.EINVALID, "invalid_params", "currency is required (the case has no subscription to take it from)")
	}
	if amount < s.policy.Credit.Min || amount > s.policy.Credit.Max {
		return plan{}, errs.Coded(errs.EUNPROCESSABLE, "amount_out_of_bounds", "a credit must be between %s and %s",
			money(s.policy.Credit.Min, currency), money(s.policy.Credit.Max, currency))
	}
	var approval, rules []string
	if amount > s.policy.Credit.ApprovalOver {
		approval = append(approval, fmt.Sprintf("credit over %s", money(s.policy.Credit.ApprovalOver, currency)))
		rules = append(rules, "credit.approval_over")
	}
	desc := rp.Description
	if desc == "" {
		desc = reason
	}
	return plan{params: Params{Customer: c.Customer, Amount: amount, Currency: currency, Description: desc}, subject: c.Customer,
		amount: amount, currency: currency, approval: approval, rules: rules,
		summary: fmt.Sprintf("a balance credit of %s for customer %s", money(amount, currency), c.Customer)}, nil
}

func (s *Service) planAcceptDispute(ctx context.Context, tx *gorm.DB, m Mirror, c CaseRef, reason, self string) (plan, error) {
	if reason == "" {
		return plan{}, errs.Coded(errs.EINVALID, "reason_required", "accepting a dispute needs a reason")
	}
	if err := requireLink("dispute", c.Dispute); err != nil {
		return plan{}, err
	}
	// Evidence and acceptance are alternatives: not both.
	if err := lockSubject(ctx, s.db, tx, c.Dispute); err != nil {
		return plan{}, err
	}
	if id, found, err := s.liveActionOn(ctx, tx, c.Dispute, SubmitEvidence, self); err != nil {
		return plan{}, err
	} else if found {
		return plan{}, errs.Coded(errs.ECONFLICT, "evidence_submitted", "evidence for dispute %s is submitted or being submitted (action %s); it can no longer be accepted", c.Dispute, id).
			WithDetails(map[string]any{"action": id})
	}
	d, err := m.Dispute(ctx, c.Dispute)
	if err != nil {
		return plan{}, notMirrored("dispute", c.Dispute, err)
	}
	if d.Status != "needs_response" && d.Status != "warning_needs_response" {
		return plan{}, errs.Coded(errs.ECONFLICT, "dispute_not_open", "dispute %s is %s; only a dispute that needs a response can be accepted", d.ID, d.Status)
	}
	return plan{params: Params{Dispute: d.ID, Amount: d.Amount, Currency: d.Currency}, subject: d.ID, amount: d.Amount, currency: d.Currency,
		summary: fmt.Sprintf("acceptance of dispute %s as a loss of %s (%s)", d.ID, money(d.Amount, d.Currency), d.Reason)}, nil
}

// describe names an action for timelines.
func describe(a Action) string {
	var p Params
	_ = jsonUnmarshal(string(a.Params), &p)
	switch a.Type {
	case Refund:
		return fmt.Sprintf("refund of %s on %s", money(p.Amount, p.Currency), p.Charge)
	case CancelSubscription:
		return fmt.Sprintf("cancellation of %s (%s)", p.Subscription, p.Mode)
	case ApplyCredit:
		return fmt.Sprintf("credit of %s to %s", money(p.Amount, p.Currency), p.Customer)
	case AcceptDispute:
		return fmt.Sprintf("acceptance of dispute %s", p.Dispute)
	case RetryPayment:
		return fmt.Sprintf("payment retry of %s", p.Invoice)
	case SubmitEvidence:
		return fmt.Sprintf("submission of evidence for dispute %s (draft version %d)", p.Dispute, p.EvidenceVersion)
	case StageEvidence:
		return fmt.Sprintf("staging of evidence for dispute %s (draft version %d)", p.Dispute, p.EvidenceVersion)
	}
	return strings.ReplaceAll(string(a.Type), "_", " ") + " on " + a.SubjectID
}

func days(d time.Duration) string {
	n := int(d.Round(time.Hour).Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	if d%(24*time.Hour) != 0 && d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", n)
}

// money formats minor units for people ($49.00, €12.50, 12.50 SEK).
func money(amount int64, currency string) string { return billing.FormatMoney(amount, currency) }
