package actions_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// An approval re-checks policy against the mirror as it is now: whatever
// changed while the action waited decides, nothing reaches the provider
// when a rule refuses, and the action ends refused with the rule's code on
// the action, the timeline and the audit log.
func TestApprovalRechecksPolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		change   func(h *harness, c actions.CaseRef) // what happens while the action waits
		status   int
		code     string
		executes bool
	}{
		{name: "nothing changed", status: 200, executes: true},
		{name: "chargeback arrived", status: 409, code: "charge_disputed", change: func(h *harness, c actions.CaseRef) {
			h.mirror.mu.Lock()
			h.mirror.disputes["dp_"+c.ID] = billing.Dispute{ID: "dp_" + c.ID, ChargeID: c.Charge, Status: "needs_response", Amount: 20000, Currency: "usd"}
			h.mirror.mu.Unlock()
		}},
		{name: "inquiry that can still be refunded", status: 200, executes: true, change: func(h *harness, c actions.CaseRef) {
			h.mirror.mu.Lock()
			h.mirror.disputes["dp_"+c.ID] = billing.Dispute{ID: "dp_" + c.ID, ChargeID: c.Charge, Status: "warning_needs_response", IsChargeRefundable: true}
			h.mirror.mu.Unlock()
		}},
		{name: "refunded elsewhere up to exactly the amount left", status: 200, executes: true, change: func(h *harness, c actions.CaseRef) {
			setRefunded(h, c, 5000) // 20000 - 5000 = 15000 left, the amount waiting
		}},
		{name: "refunded elsewhere one past the amount left", status: 422, code: "amount_exceeds_refundable", change: func(h *harness, c actions.CaseRef) {
			setRefunded(h, c, 5001)
		}},
		{name: "early fraud warning opened", status: 409, code: "fraud_warning_open", change: func(h *harness, c actions.CaseRef) {
			h.cases.mu.Lock()
			h.cases.cases["fw_"+c.ID] = actions.CaseRef{ID: "fw_" + c.ID, Kind: "fraud_warning", Status: "open", Charge: c.Charge}
			h.cases.mu.Unlock()
		}},
		{name: "case closed", status: 409, code: "case_closed", change: func(h *harness, c actions.CaseRef) {
			h.cases.mu.Lock()
			c.Status = "closed"
			h.cases.cases[c.ID] = c
			h.cases.mu.Unlock()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				fs, p := withFakeStripe(t)
				h := newHarness(t, d, p)
				c := h.seed("c1", "refund_request", 20000)
				// Over the agent's limit ($100): waits for a supervisor.
				r := h.act(c.ID, "agent", "k1", "refund", map[string]any{"amount": 15000}, "annual plan refund")
				if r.status != 202 || r.body["status"] != "pending_approval" {
					t.Fatalf("request: %d %v", r.status, r.body)
				}
				id := r.body["id"].(string)
				if tc.change != nil {
					tc.change(h, c)
				}
				r = h.call("POST", "/api/v1/actions/"+id+"/approve", "sup1", "", map[string]any{"reason": "checked with finance"})
				a, err := h.svc.Get(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				refunds := fs.count("POST /v1/refunds")
				if tc.executes {
					if r.status != 200 || a.Status != actions.StatusSucceeded || refunds != 1 {
						t.Fatalf("approve: %d %v; status %s; %d refunds", r.status, r.body, a.Status, refunds)
					}
					return
				}
				if r.status != tc.status || r.code() != tc.code {
					t.Fatalf("approve: %d %v, want %d %s", r.status, r.body, tc.status, tc.code)
				}
				if refunds != 0 {
					t.Fatalf("%d refunds reached the provider after a refusal", refunds)
				}
				if a.Status != actions.StatusRefused || a.Error == nil || a.Error.Code != tc.code || a.Error.Message == "" || deref(a.DecidedBy) != "sup1" {
					t.Fatalf("action after refusal: %+v", a)
				}
				details, _ := r.body["error"].(map[string]any)["details"].(map[string]any)
				if act, _ := details["action"].(map[string]any); act["status"] != "refused" {
					t.Fatalf("approver was not shown the refused action: %v", r.body)
				}
				tl := strings.Join(h.cases.entries(c.ID), "\n")
				if !strings.Contains(tl, "action_refused") || !strings.Contains(tl, tc.code) {
					t.Fatalf("timeline lacks the refusal:\n%s", tl)
				}
				if au := strings.Join(h.auditActions(c.ID), " "); !strings.Contains(au, "action.refused.refund") {
					t.Fatalf("audit lacks the refusal: %s", au)
				}
				// Refused is final: a second approval is not pending any more.
				if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "sup2", "", map[string]any{"reason": "again"}); r.status != 409 || r.code() != "not_pending" {
					t.Fatalf("approve a refused action: %d %v", r.status, r.body)
				}
				if fs.count("POST /v1/refunds") != 0 {
					t.Fatal("a refund reached the provider")
				}
			})
		})
	}
}

func setRefunded(h *harness, c actions.CaseRef, amount int64) {
	h.mirror.mu.Lock()
	defer h.mirror.mu.Unlock()
	ch := h.mirror.charges[c.Charge]
	ch.AmountRefunded = amount
	h.mirror.charges[c.Charge] = ch
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// unreachable fails every refund as a network error, before Stripe is reached.
type unreachable struct {
	billing.Provider
	down bool
}

func (u *unreachable) Refund(ctx context.Context, r billing.RefundRequest) (billing.Result, error) {
	if u.down {
		return billing.Result{}, &billing.ProviderError{Type: "connection_error", Message: "connection refused", Retryable: true, Err: errors.New("refused")}
	}
	return u.Provider.Refund(ctx, r)
}

// The resumer re-checks too: an approved refund left executing (Stripe was
// unreachable) is not sent once a chargeback has arrived, while one whose
// charge is still clean completes.
func TestResumerRechecksPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		prov := &unreachable{Provider: p, down: true}
		h := newHarness(t, d, prov)
		disputed := h.seed("c1", "refund_request", 20000)
		clean := h.seed("c2", "refund_request", 20000)
		var ids []string
		for _, c := range []actions.CaseRef{disputed, clean} {
			r := h.act(c.ID, "agent", "k-"+c.ID, "refund", map[string]any{"amount": 15000}, "annual plan refund")
			if r.status != 202 {
				t.Fatalf("request: %d %v", r.status, r.body)
			}
			id := r.body["id"].(string)
			if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "sup1", "", map[string]any{"reason": "ok"}); r.status != 503 {
				t.Fatalf("approve with Stripe down: %d %v", r.status, r.body)
			}
			ids = append(ids, id)
		}
		// While Stripe is away, a chargeback on the first charge reaches the mirror.
		h.mirror.mu.Lock()
		h.mirror.disputes["dp_1"] = billing.Dispute{ID: "dp_1", ChargeID: disputed.Charge, Status: "needs_response"}
		h.mirror.mu.Unlock()
		prov.down = false
		h.clock.Advance(2 * time.Minute)
		if n, err := h.svc.ResumeStuck(context.Background()); err != nil || n != 2 {
			t.Fatalf("resume: %d %v", n, err)
		}
		a, _ := h.svc.Get(context.Background(), ids[0])
		if a.Status != actions.StatusRefused || a.Error == nil || a.Error.Code != "charge_disputed" {
			t.Fatalf("resumed disputed refund: %+v", a)
		}
		b, _ := h.svc.Get(context.Background(), ids[1])
		if b.Status != actions.StatusSucceeded {
			t.Fatalf("resumed clean refund: %+v", b)
		}
		fs.mu.Lock()
		reqs := append([]string(nil), fs.requests...)
		fs.mu.Unlock()
		if len(reqs) != 1 || !strings.HasSuffix(reqs[0], "recourse_"+ids[1]) {
			t.Fatalf("provider saw %v, want only the clean refund", reqs)
		}
		if tl := strings.Join(h.cases.entries(disputed.ID), "\n"); !strings.Contains(tl, "system|action_refused|") {
			t.Fatalf("timeline:\n%s", tl)
		}
		// The resumer does not try it again.
		h.clock.Advance(2 * time.Minute)
		if n, _ := h.svc.ResumeStuck(context.Background()); n != 0 {
			t.Fatalf("resumer picked up %d actions after the refusal", n)
		}
	})
}

// A refund executed at once is re-checked before the call without counting
// itself: a refund of everything that is left still goes through.
func TestRecheckDoesNotCountTheActionItself(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		h := newHarness(t, d, p)
		c := h.seed("c1", "refund_request", 9000)
		setRefunded(h, c, 1000)
		if r := h.act(c.ID, "agent", "k1", "refund", map[string]any{"amount": 8000}, "rest of it"); r.status != 201 || r.body["status"] != "succeeded" {
			t.Fatalf("refund of all that is left: %d %v", r.status, r.body)
		}
		if n := fs.count("POST /v1/refunds"); n != 1 {
			t.Fatalf("%d refunds", n)
		}
	})
}

// down fails every subscription and invoice call as a network error.
type down struct {
	billing.Provider
	on bool
}

func (d *down) ExtendTrial(ctx context.Context, sub string, end time.Time, k billing.Key) (billing.Result, error) {
	if d.on {
		return billing.Result{}, &billing.ProviderError{Type: "connection_error", Message: "connection refused", Retryable: true, Err: errors.New("refused")}
	}
	return d.Provider.ExtendTrial(ctx, sub, end, k)
}

func (d *down) PayInvoice(ctx context.Context, inv string, k billing.Key) (billing.Result, error) {
	if d.on {
		return billing.Result{}, &billing.ProviderError{Type: "connection_error", Message: "connection refused", Retryable: true, Err: errors.New("refused")}
	}
	return d.Provider.PayInvoice(ctx, inv, k)
}

// diedBeforeCall puts an action back as a process that died between
// recording it and calling the provider leaves it: executing, never leased.
func diedBeforeCall(t *testing.T, h *harness, id string) {
	t.Helper()
	if err := h.db.Gorm.Exec("UPDATE actions SET attempts = 0, lease_until = NULL, error_code = NULL, error_message = NULL WHERE id = ?", id).Error; err != nil {
		t.Fatal(err)
	}
}

func actionID(t *testing.T, r resp) string {
	t.Helper()
	if id, ok := r.body["id"].(string); ok {
		return id
	}
	details, _ := r.body["error"].(map[string]any)["details"].(map[string]any)
	a, _ := details["action"].(map[string]any)
	id, _ := a["id"].(string)
	if id == "" {
		t.Fatalf("no action in %d %v", r.status, r.body)
	}
	return id
}

// Before the resumer calls the provider for an action that never reached
// it, every rule is checked again: retry spacing against a retry made
// meanwhile, and a trial that is no longer a trial.
func TestResumerRechecksSubscriptionRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		prov := &down{Provider: p, on: true}
		h := newHarness(t, d, prov)

		// Retry spacing: retry A is left executing; a day later retry B goes
		// through; A, resumed now, would retry within minutes of B.
		c := h.seed("c1", "payment_failure", 4900)
		h.mirror.mu.Lock()
		inv := h.mirror.invoices[c.Invoice]
		inv.Status, inv.AmountRemaining = "open", 4900
		h.mirror.invoices[c.Invoice] = inv
		h.mirror.mu.Unlock()
		ra := h.act(c.ID, "agent", "ra", "retry_payment", nil, "card updated")
		if ra.status != 503 {
			t.Fatalf("retry with Stripe down: %d %v", ra.status, ra.body)
		}
		idA := actionID(t, ra)
		diedBeforeCall(t, h, idA)
		h.clock.Advance(25 * time.Hour)
		prov.on = false
		if rb := h.act(c.ID, "agent", "rb", "retry_payment", nil, "second try"); rb.status != 201 {
			t.Fatalf("retry B: %d %v", rb.status, rb.body)
		}
		if n, err := h.svc.ResumeStuck(context.Background()); err != nil || n != 1 {
			t.Fatalf("resume: %d %v", n, err)
		}
		if a, _ := h.svc.Get(context.Background(), idA); a.Status != actions.StatusRefused || a.Error == nil || a.Error.Code != "retry_too_soon" {
			t.Fatalf("resumed retry A: %+v", a)
		}
		if n := fs.count("POST /v1/invoices/"); n != 1 {
			t.Fatalf("%d invoice payments reached the provider, want 1 (B)", n)
		}

		// Trial: the extension waits, the trial converts meanwhile.
		c2 := h.seed("c2", "trial_conversion", 4900)
		end := h.clock.Now().Add(48 * time.Hour)
		h.setSub(c2.Subscription, func(s *billing.Subscription) { s.Status = "trialing"; s.TrialEnd = &end })
		prov.on = true
		rt := h.act(c2.ID, "agent", "t1", "extend_trial", map[string]any{"days": 7}, "needs more time")
		if rt.status != 503 {
			t.Fatalf("extend with Stripe down: %d %v", rt.status, rt.body)
		}
		idT := actionID(t, rt)
		diedBeforeCall(t, h, idT)
		h.setSub(c2.Subscription, func(s *billing.Subscription) { s.Status = "active" })
		prov.on = false
		h.clock.Advance(2 * time.Minute)
		if _, err := h.svc.ResumeStuck(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a, _ := h.svc.Get(context.Background(), idT); a.Status != actions.StatusRefused || a.Error == nil || a.Error.Code != "not_trialing" {
			t.Fatalf("resumed extension: %+v", a)
		}
		if n := fs.count("POST /v1/subscriptions/"); n != 0 {
			t.Fatalf("%d subscription updates reached the provider", n)
		}
	})
}

// An action that needed no approval, left unsent until its charge is
// outside the refund window, waits for a supervisor instead of executing;
// once approved, the window is not asked about again.
func TestResumedRefundOutsideTheWindowWaitsForApproval(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		prov := &unreachable{Provider: p, down: true}
		h := newHarness(t, d, prov)
		c := h.seed("c1", "refund_request", 4900)
		r := h.act(c.ID, "agent", "k1", "refund", map[string]any{"amount": 2000}, "double charge")
		if r.status != 503 {
			t.Fatalf("refund with Stripe down: %d %v", r.status, r.body)
		}
		id := actionID(t, r)
		diedBeforeCall(t, h, id)
		prov.down = false
		h.clock.Advance(175 * 24 * time.Hour) // the charge is now 185 days old; the window is 180
		if _, err := h.svc.ResumeStuck(context.Background()); err != nil {
			t.Fatal(err)
		}
		a, _ := h.svc.Get(context.Background(), id)
		if a.Status != actions.StatusPendingApproval || !strings.Contains(strings.Join(a.ApprovalReasons, ";"), "refund window") {
			t.Fatalf("resumed outside the window: %+v", a)
		}
		if n := fs.count("POST /v1/refunds"); n != 0 {
			t.Fatalf("%d refunds sent before approval", n)
		}
		h.cases.mu.Lock()
		got := slices.Clone(h.cases.announced)
		h.cases.mu.Unlock()
		if want := []string{"approval.requested approval-requested/" + id}; !slices.Equal(got, want) {
			t.Fatalf("announced %v, want %v", got, want)
		}
		if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "sup1", "", map[string]any{"reason": "customer was travelling"}); r.status != 200 || r.body["status"] != "succeeded" {
			t.Fatalf("approve: %d %v", r.status, r.body)
		}
		if n := fs.count("POST /v1/refunds"); n != 1 {
			t.Fatalf("%d refunds, want 1", n)
		}
	})
}

// A refund whose answer was lost after Stripe made it shows in the mirror
// (the webhook came first): "nothing left to refund" may be its own effect,
// so it is completed with its idempotency key — Stripe replays the first
// result — rather than refused.
func TestInDoubtRefundIsNotRefusedForItsOwnEffect(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		h := newHarness(t, d, &crashAfterCall{Provider: p, crashes: 1})
		c := h.seed("c1", "refund_request", 4900)
		r := h.act(c.ID, "agent", "k1", "refund", map[string]any{"amount": 4900}, "double charge")
		if r.status != 503 {
			t.Fatalf("lost answer: %d %v", r.status, r.body)
		}
		id := actionID(t, r)
		setRefunded(h, c, 4900) // charge.refunded arrived
		h.clock.Advance(2 * time.Minute)
		if _, err := h.svc.ResumeStuck(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a, _ := h.svc.Get(context.Background(), id); a.Status != actions.StatusSucceeded {
			t.Fatalf("in-doubt refund after its own effect: %+v", a)
		}
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if fs.created != 1 {
			t.Fatalf("Stripe created %d refunds, want 1", fs.created)
		}
	})
}
