package actions_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
)

func withFakeStripe(t *testing.T) (*fakeStripe, billing.Provider) {
	fs := &fakeStripe{byKey: map[string][]byte{}}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return fs, stripeClient(t, srv.URL)
}

// Every action type, executed against the real stripe-mock.
func TestEveryActionAgainstStripeMock(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, stripeClient(t, m.URL))
		c := h.seed("c1", "billing_inquiry", 4900)
		trialEnd := h.clock.Now().Add(3 * 24 * time.Hour)
		h.mirror.mu.Lock()
		s := h.mirror.subs[c.Subscription]
		s.Status, s.TrialEnd = "trialing", &trialEnd
		h.mirror.subs[c.Subscription] = s
		h.mirror.mu.Unlock()

		steps := []struct {
			who, typ, reason string
			params           map[string]any
			mutate           func()
		}{
			{"agent", "refund", "charged twice", map[string]any{"amount": 1500}, nil},
			{"agent", "extend_trial", "onboarding delays", map[string]any{"days": 7}, nil},
			{"agent", "pause_collection", "customer travelling", map[string]any{"days": 30, "behavior": "keep_as_draft"}, nil},
			{"agent", "resume_collection", "back home", nil, func() {
				h.setSub(c.Subscription, func(s *billing.Subscription) { s.PauseCollection = "keep_as_draft" })
			}},
			{"agent", "apply_credit", "service outage goodwill", map[string]any{"amount": 500}, nil},
			{"agent", "cancel_subscription", "too expensive", map[string]any{"mode": "period_end", "feedback": "too_expensive", "retention_offer": "declined"}, func() {
				h.setSub(c.Subscription, func(s *billing.Subscription) { s.PauseCollection = ""; s.Status = "active" })
			}},
			{"agent", "reactivate_subscription", "changed their mind", nil, func() { h.setSub(c.Subscription, func(s *billing.Subscription) { s.CancelAtPeriodEnd = true }) }},
			{"agent", "retry_payment", "customer updated card", nil, func() {
				h.setInvoice(c.Invoice, func(i *billing.Invoice) { i.Status = "open"; i.AmountRemaining = 4900 })
			}},
		}
		for i, st := range steps {
			if st.mutate != nil {
				st.mutate()
			}
			r := h.act(c.ID, st.who, "k"+st.typ, st.typ, st.params, st.reason)
			if r.status != 201 || r.body["status"] != "succeeded" {
				t.Fatalf("step %d %s: %d %v", i, st.typ, r.status, r.body)
			}
			if id, _ := r.body["provider_object_id"].(string); id == "" {
				t.Fatalf("%s: no provider object id: %v", st.typ, r.body)
			}
			if !strings.HasPrefix(r.body["idempotency_key"].(string), "recourse_act_") {
				t.Fatalf("%s: provider key %v", st.typ, r.body["idempotency_key"])
			}
		}
		// Disputes: analysts accept them; agents may not.
		dc := h.seed("d1", "dispute", 4900)
		dc.Dispute = "dp_d1"
		h.cases.cases["d1"] = dc
		h.mirror.disputes["dp_d1"] = billing.Dispute{ID: "dp_d1", ChargeID: dc.Charge, Amount: 4900, Currency: "usd", Status: "needs_response", Reason: "subscription_canceled"}
		if r := h.act("d1", "agent", "acc1", "accept_dispute", nil, "no evidence"); r.status != 403 {
			t.Fatalf("agent accept_dispute: %d %v", r.status, r.body)
		}
		// Anyone asking to refund a chargeback learns why not (409), agents included.
		if r := h.act("d1", "agent", "ref1", "refund", nil, "customer asked"); r.status != 409 || r.code() != "charge_disputed" {
			t.Fatalf("agent refund on chargeback: %d %v", r.status, r.body)
		}
		if r := h.act("d1", "agent", "pause1", "pause_collection", map[string]any{"days": 3}, "x"); r.status != 403 {
			t.Fatalf("agent other action on dispute case: %d %v", r.status, r.body)
		}
		if r := h.act("d1", "analyst", "acc1", "accept_dispute", nil, "no evidence of delivery"); r.status != 201 || r.body["status"] != "succeeded" {
			t.Fatalf("analyst accept_dispute: %d %v", r.status, r.body)
		}
		tl := strings.Join(h.cases.entries("c1"), "\n")
		for _, want := range []string{"agent|action_requested|agent requested a partial refund of $15.00", "system|action_succeeded|Refund of $15.00 on ch_c1 done: re_", "declined a retention offer, and the cancellation is honoured"} {
			if !strings.Contains(tl, want) {
				t.Errorf("timeline lacks %q:\n%s", want, tl)
			}
		}
		au := strings.Join(h.auditActions("c1"), ",")
		if !strings.Contains(au, "action.request.refund") || !strings.Contains(au, "action.provider_call.refund") {
			t.Errorf("audit: %s", au)
		}
		var withReq int64
		d.Gorm.Raw("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'action.provider_call.%' AND provider_request_id IS NOT NULL").Scan(&withReq)
		if withReq == 0 {
			t.Error("provider calls audited without provider request id")
		}
	})
}

func (h *harness) setSub(id string, f func(*billing.Subscription)) {
	h.mirror.mu.Lock()
	defer h.mirror.mu.Unlock()
	s := h.mirror.subs[id]
	f(&s)
	h.mirror.subs[id] = s
}

func (h *harness) setInvoice(id string, f func(*billing.Invoice)) {
	h.mirror.mu.Lock()
	defer h.mirror.mu.Unlock()
	s := h.mirror.invoices[id]
	f(&s)
	h.mirror.invoices[id] = s
}

func TestRefundPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		h := newHarness(t, d, p)
		c := h.seed("c1", "refund_request", 4900)

		// A disputed charge is refused, with the reason, and nothing reaches the provider.
		h.mirror.disputes["dp_1"] = billing.Dispute{ID: "dp_1", ChargeID: c.Charge, Status: "needs_response", Amount: 4900, Currency: "usd"}
		r := h.act(c.ID, "agent", "r1", "refund", map[string]any{"amount": 1000}, "customer asked")
		if r.status != 409 || r.code() != "charge_disputed" || !strings.Contains(r.body["error"].(map[string]any)["message"].(string), "twice") {
			t.Fatalf("disputed: %d %v", r.status, r.body)
		}
		if n := fs.count("POST"); n != 0 {
			t.Fatalf("%d provider calls for a refused refund", n)
		}
		// An inquiry that can still be refunded may be refunded to head off a chargeback.
		h.mirror.disputes["dp_1"] = billing.Dispute{ID: "dp_1", ChargeID: c.Charge, Status: "warning_needs_response", IsChargeRefundable: true}
		if r := h.act(c.ID, "agent", "r2", "refund", map[string]any{"amount": 1000}, "stop the inquiry"); r.status != 201 {
			t.Fatalf("inquiry refund: %d %v", r.status, r.body)
		}
		// More than what is left: 422, and our own refund counts even before its webhook.
		if r := h.act(c.ID, "agent", "r3", "refund", map[string]any{"amount": 3901}, "rest"); r.status != 422 || r.code() != "amount_exceeds_refundable" {
			t.Fatalf("over refundable: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "r4", "refund", map[string]any{"amount": 3900}, "rest"); r.status != 201 {
			t.Fatalf("exact rest: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "r5", "refund", nil, "again"); r.status != 422 || r.code() != "nothing_to_refund" {
			t.Fatalf("nothing left: %d %v", r.status, r.body)
		}
		// Reason required; unknown params refused; missing key refused.
		if r := h.act(c.ID, "agent", "r6", "refund", map[string]any{"amount": 1}, ""); r.status != 400 || r.code() != "reason_required" {
			t.Fatalf("no reason: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "r7", "refund", map[string]any{"amount": 1, "card_number": "4242"}, "x"); r.status != 400 {
			t.Fatalf("unknown param: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "", "refund", map[string]any{"amount": 1}, "x"); r.status != 400 || r.code() != "idempotency_key_required" {
			t.Fatalf("no key: %d %v", r.status, r.body)
		}
		if r := h.act("nope", "agent", "r8", "refund", nil, "x"); r.status != 404 {
			t.Fatalf("unknown case: %d", r.status)
		}
	})
}

func TestIdempotencyKeyExecutesOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		h := newHarness(t, d, p)
		c := h.seed("c1", "refund_request", 4900)
		first := h.act(c.ID, "agent", "same-key", "refund", map[string]any{"amount": 700}, "late delivery")
		second := h.act(c.ID, "agent", "same-key", "refund", map[string]any{"amount": 700}, "late delivery")
		if first.status != 201 || second.status != 201 || first.body["id"] != second.body["id"] || second.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %v / %d %v", first.status, first.body, second.status, second.body)
		}
		if n := fs.count("POST /v1/refunds"); n != 1 {
			t.Fatalf("%d refund calls, want 1", n)
		}
		if r := h.act(c.ID, "agent", "same-key", "refund", map[string]any{"amount": 800}, "late delivery"); r.status != 422 || r.code() != "idempotency_key_reused" {
			t.Fatalf("key reuse: %d %v", r.status, r.body)
		}
	})
}

func TestFourEyesApproval(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		h := newHarness(t, d, p)
		c := h.seed("c1", "refund_request", 90000)
		// Over the agent's limit: waits, nothing sent.
		r := h.act(c.ID, "agent", "big", "refund", map[string]any{"amount": 20000}, "annual plan refund")
		if r.status != 202 || r.body["status"] != "pending_approval" || r.body["approval_required"] != true {
			t.Fatalf("pending: %d %v", r.status, r.body)
		}
		id := r.body["id"].(string)
		if fs.count("POST") != 0 {
			t.Fatal("provider called before approval")
		}
		if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "agent", "", map[string]any{"reason": "ok"}); r.status != 403 {
			t.Fatalf("agent approving: %d", r.status)
		}
		// A supervisor's own large refund needs another supervisor.
		r2 := h.act(c.ID, "sup1", "bigger", "refund", map[string]any{"amount": 60000}, "enterprise credit")
		if r2.status != 202 {
			t.Fatalf("supervisor over threshold: %d %v", r2.status, r2.body)
		}
		id2 := r2.body["id"].(string)
		if r := h.call("POST", "/api/v1/actions/"+id2+"/approve", "sup1", "", map[string]any{"reason": "mine"}); r.status != 403 || r.code() != "four_eyes" {
			t.Fatalf("self-approval: %d %v", r.status, r.body)
		}
		if r := h.call("POST", "/api/v1/actions/"+id2+"/reject", "sup2", "", map[string]any{"reason": "use a credit instead"}); r.status != 200 || r.body["status"] != "rejected" {
			t.Fatalf("reject: %d %v", r.status, r.body)
		}
		if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "sup1", "", map[string]any{}); r.status != 400 {
			t.Fatalf("approve without reason: %d", r.status)
		}
		if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "sup1", "", map[string]any{"reason": "verified with finance"}); r.status != 200 || r.body["status"] != "succeeded" || r.body["decided_by"] != "sup1" {
			t.Fatalf("approve: %d %v", r.status, r.body)
		}
		if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "sup2", "", map[string]any{"reason": "again"}); r.status != 409 {
			t.Fatalf("approve twice: %d", r.status)
		}
		if n := fs.count("POST /v1/refunds"); n != 1 {
			t.Fatalf("%d refund calls, want 1", n)
		}
		if r := h.call("GET", "/api/v1/actions/"+id, "agent", "", nil); r.status != 200 || r.body["provider_object_id"] == nil {
			t.Fatalf("get: %d %v", r.status, r.body)
		}
		// Roles: agents cannot read the audit log; supervisors can.
		if r := h.call("GET", "/api/v1/audit?case=c1", "agent", "", nil); r.status != 403 {
			t.Fatalf("agent audit: %d", r.status)
		}
		r = h.call("GET", "/api/v1/audit?case=c1", "sup2", "", nil)
		if r.status != 200 || len(r.body["data"].([]any)) < 5 {
			t.Fatalf("audit: %d %v", r.status, r.body)
		}
		if r := h.call("GET", "/api/v1/policy", "agent", "", nil); r.status != 200 || r.body["policy"] == nil {
			t.Fatalf("policy: %d %v", r.status, r.body)
		}
	})
}

// crashAfterCall performs the provider call and then loses the answer, as a
// process killed between calling Stripe and recording the result would.
type crashAfterCall struct {
	billing.Provider
	crashes int
}

func (c *crashAfterCall) Refund(ctx context.Context, r billing.RefundRequest) (billing.Result, error) {
	res, err := c.Provider.Refund(ctx, r)
	if c.crashes > 0 {
		c.crashes--
		return billing.Result{}, &billing.ProviderError{Type: "connection_error", Message: "connection reset", Retryable: true, Err: errors.New("reset")}
	}
	return res, err
}

func TestCrashBetweenRecordAndAnswerEndsWithOneRefund(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		crashy := &crashAfterCall{Provider: p, crashes: 1}
		h := newHarness(t, d, crashy)
		c := h.seed("c1", "refund_request", 4900)
		r := h.act(c.ID, "agent", "k1", "refund", map[string]any{"amount": 2000}, "double charge")
		if r.status != 503 {
			t.Fatalf("lost answer: %d %v", r.status, r.body)
		}
		// The client retries with the same key after the lease: same idempotency key at the provider.
		h.clock.Advance(time.Minute)
		r = h.act(c.ID, "agent", "k1", "refund", map[string]any{"amount": 2000}, "double charge")
		if r.status != 201 || r.body["status"] != "succeeded" {
			t.Fatalf("retry: %d %v", r.status, r.body)
		}
		fs.mu.Lock()
		created, reqs := fs.created, append([]string(nil), fs.requests...)
		fs.mu.Unlock()
		if created != 1 || len(reqs) != 2 || reqs[0] != reqs[1] {
			t.Fatalf("provider saw %d creations from %v", created, reqs)
		}
		// The case is consistent: one request, one success, and the amount still counts.
		tl := strings.Join(h.cases.entries("c1"), "\n")
		if strings.Count(tl, "action_requested") != 1 || strings.Count(tl, "action_succeeded") != 1 {
			t.Fatalf("timeline:\n%s", tl)
		}
		if r := h.act(c.ID, "agent", "k2", "refund", map[string]any{"amount": 3000}, "rest"); r.status != 422 {
			t.Fatalf("refundable after crash recovery: %d %v", r.status, r.body)
		}

		// The same, recovered by the background resumer instead of a client retry.
		crashy.crashes = 1
		r = h.act(c.ID, "agent", "k3", "refund", map[string]any{"amount": 500}, "partial")
		if r.status != 503 {
			t.Fatalf("second crash: %d", r.status)
		}
		h.clock.Advance(2 * time.Minute)
		if n, err := h.svc.ResumeStuck(context.Background()); err != nil || n != 1 {
			t.Fatalf("resume: %d %v", n, err)
		}
		a, err := h.svc.Get(context.Background(), r.body["error"].(map[string]any)["details"].(map[string]any)["action"].(map[string]any)["id"].(string))
		if err != nil || a.Status != "succeeded" {
			t.Fatalf("resumed action: %+v %v", a, err)
		}
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if fs.created != 2 {
			t.Fatalf("refunds created at provider = %d, want 2", fs.created)
		}
	})
}

func TestSubscriptionPolicies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		h := newHarness(t, d, p)
		c := h.seed("c1", "billing_inquiry", 4900)
		// Not trialing.
		if r := h.act(c.ID, "agent", "t0", "extend_trial", map[string]any{"days": 3}, "x"); r.status != 409 || r.code() != "not_trialing" {
			t.Fatalf("extend non-trial: %d %v", r.status, r.body)
		}
		end := h.clock.Now().Add(48 * time.Hour)
		h.setSub(c.Subscription, func(s *billing.Subscription) { s.Status = "trialing"; s.TrialEnd = &end })
		if r := h.act(c.ID, "agent", "t1", "extend_trial", map[string]any{"days": 20}, "x"); r.status != 201 {
			t.Fatalf("extend 20: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "t2", "extend_trial", map[string]any{"days": 11}, "x"); r.status != 422 || r.code() != "extension_limit" {
			t.Fatalf("extend beyond total: %d %v", r.status, r.body)
		}
		// Reactivation only before the period ends.
		h.setSub(c.Subscription, func(s *billing.Subscription) {
			s.Status = "active"
			s.CancelAtPeriodEnd = true
			past := h.clock.Now().Add(-time.Hour)
			s.CurrentPeriodEnd = &past
		})
		if r := h.act(c.ID, "agent", "ra", "reactivate_subscription", nil, "x"); r.status != 409 || r.code() != "period_ended" {
			t.Fatalf("reactivate after end: %d %v", r.status, r.body)
		}
		// Retry: only open invoices, not too often.
		if r := h.act(c.ID, "agent", "p0", "retry_payment", nil, "x"); r.status != 409 || r.code() != "invoice_not_open" {
			t.Fatalf("retry paid invoice: %d %v", r.status, r.body)
		}
		h.setInvoice(c.Invoice, func(i *billing.Invoice) { i.Status = "open" })
		if r := h.act(c.ID, "agent", "p1", "retry_payment", nil, "new card"); r.status != 201 {
			t.Fatalf("retry: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "p2", "retry_payment", nil, "again"); r.status != 409 || r.code() != "retry_too_soon" {
			t.Fatalf("retry too soon: %d %v", r.status, r.body)
		}
		// Pause length bounded; cancellation needs a reason; credit bounds and approval.
		if r := h.act(c.ID, "agent", "pz", "pause_collection", map[string]any{"days": 365}, "long trip"); r.status != 422 || r.code() != "pause_too_long" {
			t.Fatalf("long pause: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "cx", "cancel_subscription", map[string]any{"mode": "now"}, ""); r.status != 400 {
			t.Fatalf("cancel without reason: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "cr1", "apply_credit", map[string]any{"amount": 10_000_000}, "x"); r.status != 422 {
			t.Fatalf("huge credit: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "cr2", "apply_credit", map[string]any{"amount": 6000}, "outage"); r.status != 202 {
			t.Fatalf("credit over threshold: %d %v", r.status, r.body)
		}
		_ = fs
	})
}

// A charge the mirror has never seen is checked against the provider's
// copy (stripe-mock's charge: $1.00, created in 2009).
func TestUnmirroredObjectsAreReadFromTheProvider(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarnessWithFetcher(t, d, m.URL)
		h.cases.mu.Lock()
		h.cases.cases["c9"] = actions.CaseRef{ID: "c9", Kind: "refund_request", Status: "open", Charge: "ch_unmirrored"}
		h.cases.mu.Unlock()
		if r := h.act("c9", "agent", "u1", "refund", map[string]any{"amount": 101}, "x"); r.status != 422 || r.code() != "amount_exceeds_refundable" {
			t.Fatalf("over the provider's amount: %d %v", r.status, r.body)
		}
		r := h.act("c9", "agent", "u2", "refund", map[string]any{"amount": 50}, "goodwill")
		if r.status != 202 || !strings.Contains(fmt.Sprint(r.body["approval_reasons"]), "refund window") {
			t.Fatalf("old charge from provider: %d %v", r.status, r.body)
		}
	})
}
