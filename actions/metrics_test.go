package actions_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// scriptedRefunds answers each refund as the next word of its script says:
// "ok" (the provider's answer), "decline" (a final refusal) or "lost" (a
// retryable error: the outcome is unknown).
type scriptedRefunds struct {
	billing.Provider
	mu     sync.Mutex
	script []string
}

func (s *scriptedRefunds) Refund(ctx context.Context, r billing.RefundRequest) (billing.Result, error) {
	s.mu.Lock()
	next := "ok"
	if len(s.script) > 0 {
		next, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	switch next {
	case "decline":
		return declines{}.Refund(ctx, r)
	case "lost":
		return billing.Result{}, &billing.ProviderError{Type: "connection_error", Message: "connection reset", Retryable: true, Err: errors.New("reset")}
	}
	return s.Provider.Refund(ctx, r)
}

// gathered reads one series of a registry: the counter's value, or the
// histogram's sample count, of the metric name with exactly labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// Every outcome an action can have moves recourse_actions_total once, and
// approvals and provider calls are counted as they happen.
func TestActionMetricsMove(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		_, p := withFakeStripe(t)
		prov := &scriptedRefunds{Provider: p, script: []string{"ok", "decline", "lost"}}
		h := newHarness(t, d, prov)
		reg := prometheus.NewRegistry()
		reg.MustRegister(h.svc.Collectors()...)
		c := h.seed("c1", "refund_request", 90000)

		if r := h.act(c.ID, "agent", "a", "refund", map[string]any{"amount": 5000}, "double charge"); r.status != 201 {
			t.Fatalf("refund: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "b", "refund", map[string]any{"amount": 5000}, "declined"); r.status != 422 {
			t.Fatalf("declined refund: %d %v", r.status, r.body)
		}
		if r := h.act(c.ID, "agent", "c", "refund", map[string]any{"amount": 5000}, "lost answer"); r.status != 503 {
			t.Fatalf("lost answer: %d %v", r.status, r.body)
		}
		approved := h.act(c.ID, "agent", "d", "refund", map[string]any{"amount": 20000}, "annual plan")
		rejected := h.act(c.ID, "agent", "e", "refund", map[string]any{"amount": 20000}, "annual plan again")
		refused := h.act(c.ID, "agent", "f", "refund", map[string]any{"amount": 20000}, "and again")
		for _, r := range []resp{approved, rejected, refused} {
			if r.status != 202 {
				t.Fatalf("pending: %d %v", r.status, r.body)
			}
		}
		if r := h.call("POST", "/api/v1/actions/"+actionID(t, approved)+"/approve", "sup1", "", map[string]any{"reason": "ok"}); r.status != 200 {
			t.Fatalf("approve: %d %v", r.status, r.body)
		}
		if r := h.call("POST", "/api/v1/actions/"+actionID(t, rejected)+"/reject", "sup1", "", map[string]any{"reason": "no"}); r.status != 200 {
			t.Fatalf("reject: %d %v", r.status, r.body)
		}
		h.mirror.mu.Lock()
		h.mirror.disputes["dp_1"] = billing.Dispute{ID: "dp_1", ChargeID: c.Charge, Status: "needs_response", Amount: 4900, Currency: "usd"}
		h.mirror.mu.Unlock()
		if r := h.call("POST", "/api/v1/actions/"+actionID(t, refused)+"/approve", "sup2", "", map[string]any{"reason": "ok"}); r.status != 409 {
			t.Fatalf("approve a disputed refund: %d %v", r.status, r.body)
		}

		for outcome, want := range map[string]float64{"succeeded": 2, "failed": 1, "in_doubt": 1, "pending_approval": 3, "rejected": 1, "refused": 1} {
			if got := gathered(t, reg, "recourse_actions_total", map[string]string{"type": "refund", "outcome": outcome}); got != want {
				t.Errorf("recourse_actions_total{type=refund,outcome=%s} = %v, want %v", outcome, got, want)
			}
		}
		if got := gathered(t, reg, "recourse_actions_total", map[string]string{"type": "extend_trial", "outcome": "failed"}); got != 0 {
			t.Errorf("extend_trial failed = %v, want a zero series", got)
		}
		if got := gathered(t, reg, "recourse_action_approvals_requested_total", map[string]string{"type": "refund"}); got != 3 {
			t.Errorf("approvals requested = %v, want 3", got)
		}
		for decision, want := range map[string]float64{"approved": 2, "rejected": 1} {
			if got := gathered(t, reg, "recourse_action_approvals_decided_total", map[string]string{"type": "refund", "decision": decision}); got != want {
				t.Errorf("approvals decided %s = %v, want %v", decision, got, want)
			}
		}
		// c, whose answer was lost, is still executing; its age is read
		// from the service's clock at scrape time.
		h.clock.Advance(10 * time.Minute)
		if got := gathered(t, reg, "recourse_actions_executing", nil); got != 1 {
			t.Errorf("recourse_actions_executing = %v, want 1", got)
		}
		if got := gathered(t, reg, "recourse_actions_executing_oldest_age_seconds", nil); got != 600 {
			t.Errorf("oldest executing age = %v, want 600", got)
		}
		// a, b, c and the approved d reached the provider; e and f never did.
		if got := gathered(t, reg, "recourse_action_provider_duration_seconds", map[string]string{"type": "refund"}); got != 4 {
			t.Errorf("provider calls observed = %v, want 4", got)
		}
	})
}
