package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/sweep"
)

// DisputeRuleKeyPrefix starts the idempotency key of every action a
// dispute subscription rule requests: dispute-rule/<case>/<trigger>.
const DisputeRuleKeyPrefix = "dispute-rule/"

// Dispute rule triggers: what happened to the dispute.
const (
	TriggerOpened = "opened"
	TriggerLost   = "lost"
	TriggerWon    = "won"
)

// admitRule is admit, except that the system acting for a dispute
// subscription rule (its key starts with DisputeRuleKeyPrefix) may act on a
// closed dispute case: a rule's triggers are the case closing as lost or won.
func admitRule(p auth.Principal, c CaseRef, t Type, clientKey string, system bool) error {
	if system && c.Kind == cases.KindDispute && strings.HasPrefix(clientKey, DisputeRuleKeyPrefix) {
		return authorize(p, c, t)
	}
	return admit(p, c, t)
}

// DisputeRules applies the policy's subscription rules (disputes.subscription_rules)
// when a dispute case opens, is lost or is won. See Sweep.
type DisputeRules struct {
	svc      *Service
	rules    []disputes.SubscriptionRule
	lookback time.Duration
}

// NewDisputeRules returns the rules component over svc. lookback bounds how
// far back a case's opening or closing is still acted on (7 days when ≤ 0),
// so that turning rules on never rewrites the history of old disputes.
func NewDisputeRules(svc *Service, rules []disputes.SubscriptionRule, lookback time.Duration) *DisputeRules {
	if lookback <= 0 {
		lookback = 7 * 24 * time.Hour
	}
	return &DisputeRules{svc: svc, rules: rules, lookback: lookback}
}

// ruleCandidate is a dispute case with a trigger not yet handled.
type ruleCandidate struct {
	ID             string
	CreatedAt      time.Time
	State          string
	Status         string
	SubscriptionID *string
	DisputeID      *string
}

// triggerRow is one handled (case, trigger).
type triggerRow struct {
	CaseID         string
	Trigger        string
	Rule           string
	Outcome        string
	SubscriptionID string
	ActionID       string
	Detail         string
	At             time.Time
}

func (triggerRow) TableName() string { return "dispute_rule_triggers" }

// Sweep handles every dispute case whose opening (a chargeback, not an
// inquiry), loss or win is within the lookback and not yet handled: the
// first rule whose plans/products match the case's subscription says what
// to do (on_open, on_lost, on_won), and the action is requested as the
// system actor, with the rule's name in its reason, under the idempotency
// key dispute-rule/<case>/<trigger> — so a replayed webhook, a second sweep
// or a second replica never requests it twice. The handled trigger is
// recorded in dispute_rule_triggers (with its action, or why nothing was
// done: leave, no matching rule, no subscription, refused by policy), on the
// case's timeline and in the audit log, and a
// dispute.subscription_rule_applied event is written. A case that is closed
// before its opening was handled skips on_open. Without a billing provider,
// or without rules, it does nothing. It returns how many triggers it handled.
func (r *DisputeRules) Sweep(ctx context.Context) (int, error) {
	if r.svc.provider == nil || len(r.rules) == 0 {
		return 0, nil
	}
	since := r.svc.clock.Now().Add(-r.lookback).UTC()
	n := 0
	for _, trig := range []string{TriggerOpened, TriggerLost, TriggerWon} {
		q := r.svc.db.WithContext(ctx).Table("cases").Select("id, created_at, state, status, subscription_id, dispute_id").
			Where("kind = ?", string(cases.KindDispute)).
			Where("NOT EXISTS (SELECT 1 FROM dispute_rule_triggers t WHERE t.case_id = cases.id AND t.trigger = ?)", trig)
		switch trig {
		case TriggerOpened:
			q = q.Where("created_at >= ? AND inquiry = ? AND state NOT IN ?", since, false,
				[]string{"warning_needs_response", "warning_under_review", "warning_closed"})
		default:
			q = q.Where("updated_at >= ? AND state = ?", since, trig)
		}
		var cands []ruleCandidate
		if err := q.Order("created_at, id").Limit(500).Find(&cands).Error; err != nil {
			return n, fmt.Errorf("dispute rules: candidates: %w", err)
		}
		for _, c := range cands {
			done, err := r.apply(ctx, c, trig)
			if err != nil {
				return n, err
			}
			if done {
				n++
			}
		}
	}
	return n, ctx.Err()
}

// ruleLinkGrace is how long a dispute case with no subscription found
// behind its charge is looked at again before the rule records that there is
// none: the charge's invoice may arrive after the dispute.
const ruleLinkGrace = 10 * time.Minute

// subscriptionBehind follows dispute → charge → invoice → subscription in
// the mirror; "" when a link is missing.
func subscriptionBehind(ctx context.Context, m Mirror, disputeID string) string {
	if disputeID == "" {
		return ""
	}
	d, err := m.Dispute(ctx, disputeID)
	if err != nil || d.ChargeID == "" {
		return ""
	}
	ch, err := m.Charge(ctx, d.ChargeID)
	if err != nil || ch.InvoiceID == "" {
		return ""
	}
	inv, err := m.Invoice(ctx, ch.InvoiceID)
	if err != nil {
		return ""
	}
	return inv.SubscriptionID
}

// outcomeOf is the rule's answer for trig.
func outcomeOf(rule disputes.SubscriptionRule, trig string) string {
	switch trig {
	case TriggerOpened:
		return rule.OnOpen
	case TriggerLost:
		return rule.OnLost
	case TriggerWon:
		return rule.OnWon
	}
	return ""
}

// apply handles one (case, trigger); false when it must be tried again
// later (the subscription not mirrored yet, a concurrent request in flight).
func (r *DisputeRules) apply(ctx context.Context, c ruleCandidate, trig string) (bool, error) {
	rec := triggerRow{CaseID: c.ID, Trigger: trig, Outcome: disputes.SubLeave, SubscriptionID: deref(c.SubscriptionID), At: r.svc.clock.Now()}
	if trig == TriggerOpened && c.Status != string(cases.StatusOpen) {
		rec.Detail = "the case closed before its opening was handled"
		return r.record(ctx, rec, nil)
	}
	m := r.svc.mirror(r.svc.db.Gorm)
	if r.svc.fetcher != nil {
		m = fallbackMirror{Mirror: m, f: r.svc.fetcher}
	}
	if rec.SubscriptionID == "" {
		// The case opened before the mirror linked the charge to its
		// subscription (webhooks arrive in any order): look again now.
		rec.SubscriptionID = subscriptionBehind(ctx, m, deref(c.DisputeID))
		if rec.SubscriptionID != "" {
			// Link the case, as it would have been had the invoice come
			// first: the action is planned from the case's links.
			if err := r.svc.db.WithContext(ctx).Table("cases").Where("id = ? AND subscription_id IS NULL", c.ID).
				Update("subscription_id", rec.SubscriptionID).Error; err != nil {
				return false, fmt.Errorf("dispute rules: link case %s to %s: %w", c.ID, rec.SubscriptionID, err)
			}
		}
	}
	if rec.SubscriptionID == "" {
		if r.svc.clock.Now().Sub(c.CreatedAt) < ruleLinkGrace {
			return false, nil // the charge's invoice may not be mirrored yet: next sweep
		}
		rec.Detail = "no subscription behind the disputed charge"
		return r.record(ctx, rec, nil)
	}
	sub, err := m.Subscription(ctx, rec.SubscriptionID)
	if err != nil {
		if errs.Is(err, errs.ENOTFOUND) {
			return false, nil // not mirrored yet: next sweep
		}
		return false, fmt.Errorf("dispute rules: subscription %s: %w", rec.SubscriptionID, err)
	}
	var rule *disputes.SubscriptionRule
	for i := range r.rules {
		if r.rules[i].Matches(sub.PriceID, sub.ProductID) {
			rule = &r.rules[i]
			break
		}
	}
	if rule == nil {
		rec.Detail = fmt.Sprintf("no rule matches plan %q / product %q", sub.PriceID, sub.ProductID)
		return r.record(ctx, rec, nil)
	}
	rec.Rule = rule.Name
	rec.Outcome = outcomeOf(*rule, trig)
	req := Request{Reason: fmt.Sprintf("dispute rule %q: dispute %s %s", rule.Name, deref(c.DisputeID), trig)}
	switch rec.Outcome {
	case "", disputes.SubLeave:
		rec.Outcome = disputes.SubLeave
		rec.Detail = "the rule leaves the subscription as it is"
		return r.record(ctx, rec, nil)
	case disputes.SubCancelNow:
		req.Type, req.Params = CancelSubscription, json.RawMessage(`{"mode":"now"}`)
	case disputes.SubCancelAtPeriodEnd:
		req.Type, req.Params = CancelSubscription, json.RawMessage(`{"mode":"period_end"}`)
	case disputes.SubPauseCollection:
		req.Type, req.Params = PauseCollection, json.RawMessage(`{"behavior":"void"}`)
	case disputes.SubResume:
		switch {
		case sub.PauseCollection != "":
			req.Type = ResumeCollection
		case sub.CancelAtPeriodEnd:
			req.Type = ReactivateSubscription
		default:
			rec.Detail = "nothing to resume: collection is not paused and no cancellation is pending"
			return r.record(ctx, rec, nil)
		}
	default:
		return false, fmt.Errorf("dispute rules: rule %q: unknown outcome %q", rule.Name, rec.Outcome)
	}
	sys := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.ActorSystem, Name: cases.SystemActor, Role: auth.RoleSupervisor})
	out, err := r.svc.Request(sys, c.ID, DisputeRuleKeyPrefix+c.ID+"/"+trig, req)
	switch {
	case err == nil:
		rec.ActionID = out.Action.ID
		rec.Detail = fmt.Sprintf("%s requested: %s", req.Type, out.Action.Status)
		return r.record(ctx, rec, &out.Action)
	case errs.Is(err, errs.ECONFLICT) && errCode(err) == "idempotency_key_in_flight":
		return false, nil // another replica is requesting it right now
	case errs.Is(err, errs.ECONFLICT), errs.Is(err, errs.EUNPROCESSABLE), errs.Is(err, errs.EINVALID), errs.Is(err, errs.EFORBIDDEN):
		rec.Detail = fmt.Sprintf("%s refused by policy: %v", req.Type, err)
		return r.record(ctx, rec, nil)
	default:
		return false, fmt.Errorf("dispute rules: case %s %s: %w", c.ID, trig, err)
	}
}

func errCode(err error) string {
	if e, ok := errs.As(err); ok {
		return e.Code
	}
	return ""
}

// record writes rec once (a concurrent sweeper's row wins) with its
// timeline entry, audit entry and event.
func (r *DisputeRules) record(ctx context.Context, rec triggerRow, a *Action) (bool, error) {
	made := false
	err := r.svc.db.Transact(ctx, func(tx *gorm.DB) error {
		res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rec)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		made = true
		summary := fmt.Sprintf("Dispute %s: subscription rule %q → %s (%s)", rec.Trigger, rec.Rule, rec.Outcome, rec.Detail)
		if rec.Rule == "" {
			summary = fmt.Sprintf("Dispute %s: no subscription rule applied (%s)", rec.Trigger, rec.Detail)
		}
		if err := r.svc.cases.Record(ctx, tx, rec.CaseID, cases.SystemActor, "dispute_rule_applied", summary, ""); err != nil {
			return err
		}
		if err := r.svc.audit.Record(ctx, tx, audit.Entry{Actor: cases.SystemActor, ActorKind: auth.ActorSystem, Role: cases.SystemActor,
			Action: "dispute.rule_applied", CaseID: rec.CaseID, ObjectType: "case", ObjectID: rec.CaseID, After: audit.Marshal(rec), Detail: summary}); err != nil {
			return err
		}
		data := map[string]any{"case_id": rec.CaseID, "trigger": rec.Trigger, "rule": rec.Rule, "outcome": rec.Outcome,
			"subscription_id": rec.SubscriptionID, "action_id": rec.ActionID, "detail": rec.Detail}
		if a != nil {
			data["action_status"] = a.Status
		}
		_, err := events.Append(ctx, tx, events.TypeDisputeRuleApplied, DisputeRuleKeyPrefix+rec.CaseID+"/"+rec.Trigger, rec.CaseID, rec.At, data)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("dispute rules: record %s %s: %w", rec.CaseID, rec.Trigger, err)
	}
	return made, nil
}

// Run sweeps now and then every interval until ctx is cancelled, logging
// failures (retried at the next tick).
func (r *DisputeRules) Run(ctx context.Context, interval time.Duration) {
	sweep.Every(ctx, interval, r.svc.log, "actions: dispute rule sweep failed", "actions: dispute subscription rules handled", r.Sweep)
}
