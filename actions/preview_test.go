package actions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
)

func as(role auth.Role) context.Context {
	return auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.ActorUser, Name: "p-" + string(role), Role: role})
}

func refundReq(amount int64) actions.Request {
	return actions.Request{Type: actions.Refund, Params: json.RawMessage(fmt.Sprintf(`{"amount":%d}`, amount)), Reason: "charged twice"}
}

// count returns how many rows table holds.
func count(t *testing.T, d *db.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := d.Gorm.Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// Preview at the edges of the refund rules, and what Request then does
// with the same body: the preview is the decision.
func TestPreviewRefundEdges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, prov := withFakeStripe(t)
		h := newHarness(t, d, prov)
		limit := actions.DefaultPolicy().Refund.AgentLimit
		c := h.seed("c1", "refund_request", 90_000)
		// 1,000 refunded elsewhere: 89,000 left.
		h.mirror.mu.Lock()
		ch := h.mirror.charges[c.Charge]
		ch.AmountRefunded = 1_000
		h.mirror.charges[c.Charge] = ch
		h.mirror.mu.Unlock()

		pv, err := h.svc.Preview(as(auth.RoleAgent), c.ID, refundReq(limit))
		if err != nil {
			t.Fatal(err)
		}
		if !pv.Allowed || pv.ApprovalRequired || pv.Amount != limit || pv.Currency != "usd" {
			t.Fatalf("refund exactly at the agent limit: %+v", pv)
		}
		if pv.Limit == nil || pv.Limit.Rule != "refund.agent_limit" || pv.Limit.Amount != limit {
			t.Fatalf("agent's limit: %+v", pv.Limit)
		}
		if r := pv.Refund; r == nil || r.Total != 90_000 || r.Refunded != 1_000 || r.Left != 89_000 || r.Charge != c.Charge {
			t.Fatalf("refund facts: %+v", pv.Refund)
		}

		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, refundReq(limit+1))
		if err != nil {
			t.Fatal(err)
		}
		if !pv.Allowed || !pv.ApprovalRequired || len(pv.ApprovalReasons) != 1 || pv.ApprovalReasons[0].Rule != "refund.agent_limit" {
			t.Fatalf("one minor unit over the agent limit: %+v", pv)
		}
		// The same amount from a supervisor is under their limit (approval_over).
		pv, err = h.svc.Preview(as(auth.RoleSupervisor), c.ID, refundReq(limit+1))
		if err != nil {
			t.Fatal(err)
		}
		if !pv.Allowed || pv.ApprovalRequired || pv.Limit.Rule != "refund.approval_over" {
			t.Fatalf("supervisor, over the agent limit: %+v", pv)
		}

		// Exactly what is left is allowed (it needs approval: over both limits);
		// one minor unit more is refused with Request's code.
		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, refundReq(89_000))
		if err != nil {
			t.Fatal(err)
		}
		if !pv.Allowed || pv.Refusal != nil || pv.Refund.Left != 89_000 {
			t.Fatalf("refund of exactly what is left: %+v", pv)
		}
		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, refundReq(89_001))
		if err != nil {
			t.Fatal(err)
		}
		if pv.Allowed || pv.Refusal == nil || pv.Refusal.Code != "amount_exceeds_refundable" || pv.Refusal.Kind != errs.EUNPROCESSABLE {
			t.Fatalf("one over what is left: %+v", pv)
		}
		if pv.Refund == nil || pv.Refund.Left != 89_000 || pv.Refund.Refunded != 1_000 {
			t.Fatalf("a refused refund still shows what is left: %+v", pv.Refund)
		}

		// Nothing was recorded, audited or sent by any preview.
		if n := count(t, d, "actions"); n != 0 {
			t.Fatalf("previews recorded %d actions", n)
		}
		if n := count(t, d, "audit_log"); n != 0 {
			t.Fatalf("previews wrote %d audit entries", n)
		}
		if len(h.cases.entries(c.ID)) != 0 || fs.count("POST") != 0 {
			t.Fatalf("previews touched the timeline %v or Stripe (%d calls)", h.cases.entries(c.ID), fs.count("POST"))
		}

		// Request agrees with each preview.
		ctx := as(auth.RoleAgent)
		out, err := h.svc.Request(ctx, c.ID, "k-over", refundReq(89_001))
		if e, ok := errs.As(err); !ok || e.Code != "amount_exceeds_refundable" {
			t.Fatalf("request one over what is left: %v %+v", err, out)
		}
		out, err = h.svc.Request(ctx, c.ID, "k-limit", refundReq(limit))
		if err != nil || out.Action.Status != actions.StatusSucceeded {
			t.Fatalf("request at the agent limit: %v %+v", err, out.Action)
		}
		out, err = h.svc.Request(ctx, c.ID, "k-limit+1", refundReq(limit+1))
		if err != nil || out.Action.Status != actions.StatusPendingApproval {
			t.Fatalf("request one over the agent limit: %v %+v", err, out.Action)
		}
		// Now our 10,000 is refunded (the mirror has not heard: the larger of
		// the two counts) and 10,001 waits: the preview counts both.
		pv, err = h.svc.Preview(ctx, c.ID, refundReq(1))
		if err != nil {
			t.Fatal(err)
		}
		if r := pv.Refund; r.Refunded != limit || r.InFlight != limit+1 || r.Left != 90_000-limit-(limit+1) {
			t.Fatalf("after two refunds: %+v", r)
		}
	})
}

// Who may preview: the permission gate is an error, a rule about the action
// or the case is a refusal with Request's code.
func TestPreviewRoles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		_, prov := withFakeStripe(t)
		h := newHarness(t, d, prov)
		dc := h.seed("d1", "dispute", 4900)
		dc.Dispute = "dp_d1"
		h.cases.cases["d1"] = dc
		h.mirror.disputes["dp_d1"] = billing.Dispute{ID: "dp_d1", ChargeID: "ch_other", Amount: 4900, Currency: "usd", Status: "needs_response", Reason: "fraudulent"}
		accept := actions.Request{Type: actions.AcceptDispute, Reason: "no proof of delivery"}

		// A role without actions:request (none of ours lacks it; a token of
		// an unknown role does).
		_, err := h.svc.Preview(as(auth.Role("viewer")), "d1", accept)
		if !errs.Is(err, errs.EFORBIDDEN) {
			t.Fatalf("role without actions:request: %v", err)
		}
		if _, err := h.svc.Preview(context.Background(), "d1", accept); !errs.Is(err, errs.EUNAUTHORIZED) {
			t.Fatalf("no principal: %v", err)
		}
		// An agent may request actions but not accept disputes.
		pv, err := h.svc.Preview(as(auth.RoleAgent), "d1", accept)
		if err != nil || pv.Allowed || pv.Refusal == nil || pv.Refusal.Code != "forbidden" || pv.Refusal.Kind != errs.EFORBIDDEN {
			t.Fatalf("agent accepting a dispute: %v %+v", err, pv)
		}
		pv, err = h.svc.Preview(as(auth.RoleAnalyst), "d1", accept)
		if err != nil || !pv.Allowed || pv.Amount != 4900 || pv.Subject != "dp_d1" {
			t.Fatalf("analyst accepting a dispute: %v %+v", err, pv)
		}
		if _, err := h.svc.Preview(as(auth.RoleAgent), "nope", refundReq(1)); !errs.Is(err, errs.ENOTFOUND) {
			t.Fatalf("unknown case: %v", err)
		}
		pv, err = h.svc.Preview(as(auth.RoleAgent), "d1", actions.Request{Type: "launch_rocket"})
		if err != nil || pv.Allowed || pv.Refusal.Code != "unknown_action" {
			t.Fatalf("unknown type: %v %+v", err, pv)
		}
	})
}

// What each kind of action shows before it is sent.
func TestPreviewShowsWhatItWouldDo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		_, prov := withFakeStripe(t)
		h := newHarness(t, d, prov)
		c := h.seed("c1", "cancellation", 3000)

		pv, err := h.svc.Preview(as(auth.RoleAgent), c.ID, actions.Request{Type: actions.CancelSubscription,
			Params: json.RawMessage(`{"mode":"now","refund":"prorated","feedback":"unused"}`), Reason: "not using it"})
		if err != nil || !pv.Allowed || pv.ProratedRefund == nil || pv.RefundCharge != c.Charge {
			t.Fatalf("cancel now with a prorated refund: %v %+v", err, pv)
		}
		// 20 of 30 days left of a 30.00 period: 20.00.
		if *pv.ProratedRefund != 2000 {
			t.Fatalf("prorated refund %d, want 2000", *pv.ProratedRefund)
		}
		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, actions.Request{Type: actions.CancelSubscription, Params: json.RawMessage(`{"mode":"period_end"}`)})
		if err != nil || pv.Allowed || pv.Refusal.Code != "reason_required" {
			t.Fatalf("cancel without a reason: %v %+v", err, pv)
		}

		trialEnd := h.clock.Now().Add(3 * 24 * time.Hour)
		h.setSub(c.Subscription, func(s *billing.Subscription) { s.Status, s.TrialEnd = "trialing", &trialEnd })
		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, actions.Request{Type: actions.ExtendTrial, Params: json.RawMessage(`{"days":7}`), Reason: "onboarding"})
		if err != nil || !pv.Allowed || pv.TrialEnd == nil || !pv.TrialEnd.Equal(trialEnd.Add(7*24*time.Hour)) {
			t.Fatalf("extend trial: %v %+v", err, pv)
		}
		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, actions.Request{Type: actions.ExtendTrial, Params: json.RawMessage(`{"days":31}`), Reason: "onboarding"})
		if err != nil || pv.Allowed || pv.Refusal.Code != "extension_limit" {
			t.Fatalf("extend trial past the policy maximum: %v %+v", err, pv)
		}

		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, actions.Request{Type: actions.RetryPayment, Reason: "new card"})
		if err != nil || pv.Allowed || pv.Refusal.Code != "invoice_not_open" {
			t.Fatalf("retry of a paid invoice: %v %+v", err, pv)
		}
		h.setInvoice(c.Invoice, func(i *billing.Invoice) { i.Status, i.AmountRemaining = "open", 3000 })
		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, actions.Request{Type: actions.RetryPayment, Reason: "new card"})
		if err != nil || !pv.Allowed || pv.Invoice != c.Invoice || pv.Amount != 3000 || pv.Currency != "usd" {
			t.Fatalf("retry: %v %+v", err, pv)
		}

		pv, err = h.svc.Preview(as(auth.RoleAgent), c.ID, actions.Request{Type: actions.ApplyCredit, Params: json.RawMessage(`{"amount":5001}`), Reason: "outage"})
		if err != nil || !pv.Allowed || !pv.ApprovalRequired || pv.ApprovalReasons[0].Rule != "credit.approval_over" || pv.Limit.Amount != 5000 {
			t.Fatalf("credit over the approval threshold: %v %+v", err, pv)
		}
		if n := count(t, d, "actions"); n != 0 {
			t.Fatalf("previews recorded %d actions", n)
		}
	})
}

// POST /api/v1/cases/:id/actions/preview: no Idempotency-Key, 200 with the
// decision, nothing recorded, audited or sent; 401/404 as the API does.
func TestPreviewHTTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, prov := withFakeStripe(t)
		h := newHarness(t, d, prov)
		c := h.seed("c1", "refund_request", 90_000)
		path := "/api/v1/cases/" + c.ID + "/actions/preview"
		body := func(amount int64) map[string]any {
			return map[string]any{"type": "refund", "params": map[string]any{"amount": amount}, "reason": "charged twice"}
		}

		r := h.call("POST", path, "agent", "", body(10_001))
		if r.status != 200 || r.body["allowed"] != true || r.body["approval_required"] != true {
			t.Fatalf("preview over the agent limit: %d %v", r.status, r.body)
		}
		reasons, _ := r.body["approval_reasons"].([]any)
		if len(reasons) != 1 || reasons[0].(map[string]any)["rule"] != "refund.agent_limit" {
			t.Fatalf("approval reasons: %v", r.body["approval_reasons"])
		}
		if lim, _ := r.body["limit"].(map[string]any); lim["amount"] != float64(10_000) {
			t.Fatalf("limit: %v", r.body["limit"])
		}
		r = h.call("POST", path, "agent", "", body(90_001))
		if r.status != 200 || r.body["allowed"] != false {
			t.Fatalf("preview over the charge: %d %v", r.status, r.body)
		}
		if ref, _ := r.body["refusal"].(map[string]any); ref["code"] != "amount_exceeds_refundable" {
			t.Fatalf("refusal: %v", r.body["refusal"])
		}
		if r := h.call("POST", path, "", "", body(1)); r.status != 401 {
			t.Fatalf("unauthenticated: %d", r.status)
		}
		if r := h.call("POST", "/api/v1/cases/nope/actions/preview", "agent", "", body(1)); r.status != 404 {
			t.Fatalf("unknown case: %d %v", r.status, r.body)
		}
		if r := h.call("POST", path, "agent", "", map[string]any{"type": "refund", "bogus": 1}); r.status != 400 {
			t.Fatalf("unknown field: %d %v", r.status, r.body)
		}
		if n := count(t, d, "actions"); n != 0 {
			t.Fatalf("previews recorded %d actions", n)
		}
		if n := count(t, d, "audit_log"); n != 0 {
			t.Fatalf("previews wrote %d audit entries", n)
		}
		if n := fs.count("POST"); n != 0 {
			t.Fatalf("previews called Stripe %d times", n)
		}
	})
}
