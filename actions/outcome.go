package actions

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/cases"
)

// outcomeMoves is the one table of what an action's outcome does to its
// case: for each action type, the transition fired on success and on
// failure, per case kind. The case moves through its FSM (the same path as
// webhook-driven moves), with the person who requested the action as
// actor; a move that cannot fire in the case's state (a webhook or a
// person moved it first) changes nothing. No row means none: the case
// waits for the provider's webhooks or a person.
//
// A failure moves nothing: the failure is on the timeline, and the case is
// still the work to do.
var outcomeMoves = map[Type]struct{ OnSuccess, OnFailure []cases.Move }{
	// The refund asked for was made: the request is answered; a fraud
	// warning is headed off.
	Refund: {OnSuccess: []cases.Move{{Kind: cases.KindRefundRequest, Event: "refund"}, {Kind: cases.KindFraudWarning, Event: "refund"}}},
	// The cancellation was honoured (now or at period end).
	CancelSubscription: {OnSuccess: []cases.Move{{Kind: cases.KindCancellation, Event: "cancel"}}},
	// cancel_at_period_end back to false: the customer stays.
	ReactivateSubscription: {OnSuccess: []cases.Move{{Kind: cases.KindCancellation, Event: "retain"}}},
	// The retried invoice was paid.
	RetryPayment: {OnSuccess: []cases.Move{{Kind: cases.KindPaymentFailure, Event: "recover"}}},
	// The loss was accepted at Stripe: the dispute case closes as accepted
	// and moves on to lost when Stripe's charge.dispute.closed arrives.
	AcceptDispute: {OnSuccess: []cases.Move{{Kind: cases.KindDispute, Event: "accept"}}},
	// Evidence went to Stripe with submit=true: the case waits for the
	// issuer (under_review, its SLA clock paused) until the outcome webhook
	// closes it won or lost. An inquiry's case answers the inquiry instead
	// (see inquiryMoves).
	SubmitEvidence: {OnSuccess: []cases.Move{{Kind: cases.KindDispute, Event: "submit_evidence"}}},
	// Evidence staged (Stripe keeps a draft): the case is being prepared;
	// nothing moves when it already is.
	StageEvidence: {OnSuccess: []cases.Move{{Kind: cases.KindDispute, Event: "start_evidence"}}},
	// Extending a trial, pausing or resuming collection and crediting a
	// balance help the customer but do not by themselves settle a case.
	ExtendTrial:      {},
	PauseCollection:  {},
	ResumeCollection: {},
	ApplyCredit:      {},
}

// OutcomeMoves returns the moves an action of type t fires on its case on
// success or on failure (for documentation and tests).
func OutcomeMoves(t Type, succeeded bool) []cases.Move {
	row := outcomeMoves[t]
	if succeeded {
		return row.OnSuccess
	}
	return row.OnFailure
}

// moveCase fires the outcome's move on a's case inside tx, the transaction
// that records the outcome.
//
// One exception to the table: a cancellation with a prorated refund is
// settled by that refund. The cancellation case stays open (so the refund,
// filed right after on the same case, passes the open-case rule, and a
// person sees it if the refund waits for approval or fails) and closes
// `canceled` when the refund succeeds.
func (s *Service) moveCase(ctx context.Context, tx *gorm.DB, a Action, succeeded bool) error {
	moves := OutcomeMoves(a.Type, succeeded)
	if succeeded && a.Type == CancelSubscription && proratedRefundFollows(a) {
		return nil
	}
	if succeeded && a.Type == Refund {
		settles, err := settlesCancellation(ctx, tx, a.CaseID)
		if err != nil {
			return err
		}
		if settles {
			moves = append(moves, cases.Move{Kind: cases.KindCancellation, Event: "cancel"})
		}
	}
	if succeeded && a.Type == SubmitEvidence {
		c, err := s.cases.Lookup(ctx, tx, a.CaseID)
		if err != nil {
			return err
		}
		if m, ok := inquiryMoves[c.State]; ok {
			moves = m
		}
	}
	if len(moves) == 0 {
		return nil
	}
	verb := "succeeded"
	if !succeeded {
		verb = "failed"
	}
	reason := fmt.Sprintf("%s %s", capitalize(describe(a)), verb)
	if err := s.cases.ApplyActionOutcome(ctx, tx, a.CaseID, moves, a.RequestedBy, reason); err != nil {
		return fmt.Errorf("move case %s after action %s: %w", a.CaseID, a.ID, err)
	}
	return nil
}

// proratedRefundFollows reports whether a is a cancellation that files a
// prorated refund once it succeeds.
func proratedRefundFollows(a Action) bool {
	var p Params
	return json.Unmarshal(a.Params, &p) == nil && p.ProratedRefund > 0
}

// settlesCancellation reports whether a refund on caseID is the prorated
// refund of a cancellation that succeeded there.
func settlesCancellation(ctx context.Context, tx *gorm.DB, caseID string) (bool, error) {
	var rows []row
	if err := tx.WithContext(ctx).Where("case_id = ? AND type = ? AND status = ?", caseID, string(CancelSubscription), string(StatusSucceeded)).
		Find(&rows).Error; err != nil {
		return false, fmt.Errorf("find the cancellation behind a refund on case %s: %w", caseID, err)
	}
	for _, r := range rows {
		if proratedRefundFollows(r.action()) {
			return true, nil
		}
	}
	return false, nil
}

// inquiryMoves replaces submit_evidence's move for a case still answering
// an inquiry (warning_needs_response): the response is with the issuer.
var inquiryMoves = map[string][]cases.Move{
	"warning_needs_response": {{Kind: cases.KindDispute, Event: "submit_inquiry_response"}},
}
