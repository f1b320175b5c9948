package actions_test

import (
	"context"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// heldRefund holds the first refund call before it reaches the provider
// until released, as a Stripe that is slow to answer (or a client still
// retrying) would; later calls go straight through.
type heldRefund struct {
	billing.Provider
	entered, release chan struct{}
	calls            int
}

func (p *heldRefund) Refund(ctx context.Context, r billing.RefundRequest) (billing.Result, error) {
	p.calls++
	if p.calls == 1 {
		close(p.entered)
		<-p.release
	}
	return p.Provider.Refund(ctx, r)
}

func TestCallBudgetCoversRetries(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		timeout time.Duration
		retries int
		want    time.Duration
	}{
		{20 * time.Second, 2, 70 * time.Second}, // the defaults: 3 tries of 20 s, 2 sleeps of at most 5 s
		{time.Second, 0, time.Second},
		{time.Second, -1, time.Second}, // no retries
		{10 * time.Second, 5, 85 * time.Second},
	} {
		if got := actions.CallBudget(c.timeout, c.retries); got != c.want {
			t.Errorf("CallBudget(%v, %d) = %v, want %v", c.timeout, c.retries, got, c.want)
		}
	}
	if actions.DefaultCallBudget != 70*time.Second {
		t.Fatalf("default budget %v", actions.DefaultCallBudget)
	}
}

// An execution's lease outlasts its provider call: another execution (the
// resumer of another replica) does not take over a call still in flight at
// the lease's end or just before it, and does one second after.
func TestActionLeaseEdge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs, p := withFakeStripe(t)
		held := &heldRefund{Provider: p, entered: make(chan struct{}), release: make(chan struct{})}
		pol := actions.DefaultPolicy()
		pol.StuckAfter = actions.Duration(time.Second)
		budget := actions.CallBudget(3*time.Second, 2) // 19 s
		h := newHarnessBudget(t, d, held, nil, nil, pol, budget)
		lease := h.svc.Lease(actions.Refund)
		if lease <= budget || lease != budget+10*time.Second {
			t.Fatalf("lease %v for a budget of %v", lease, budget)
		}
		if ev := h.svc.Lease(actions.SubmitEvidence); ev < 120*time.Second {
			t.Fatalf("evidence lease %v: shorter than sending a package may take", ev)
		}
		c := h.seed("c1", "refund_request", 4900)
		first := make(chan resp, 1)
		go func() {
			first <- h.act(c.ID, "agent", "k1", "refund", map[string]any{"amount": 2000}, "double charge")
		}()
		<-held.entered // the first execution holds the lease and is at the provider

		attempts := func() (n int64) {
			t.Helper()
			if err := d.Gorm.Raw("SELECT attempts FROM actions WHERE case_id = ?", c.ID).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		// One second before the lease ends, and exactly at its end: not taken.
		for _, step := range []time.Duration{lease - time.Second, time.Second} {
			h.clock.Advance(step)
			if n, err := h.svc.ResumeStuck(context.Background()); err != nil || n != 1 {
				t.Fatalf("resume: %d %v", n, err)
			}
			if got := attempts(); got != 1 {
				t.Fatalf("%v into the lease: %d attempts, want the first only", h.clock.Now().Sub(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)), got)
			}
		}
		fs.mu.Lock()
		if len(fs.requests) != 0 {
			t.Fatalf("provider saw %v while the first call was held", fs.requests)
		}
		fs.mu.Unlock()
		// One second past: the resumer takes it over, with the same key.
		h.clock.Advance(time.Second)
		if n, err := h.svc.ResumeStuck(context.Background()); err != nil || n != 1 {
			t.Fatalf("resume: %d %v", n, err)
		}
		if got := attempts(); got != 2 {
			t.Fatalf("after the lease: %d attempts, want 2", got)
		}
		close(held.release)
		if r := <-first; r.status != 201 {
			t.Fatalf("first execution: %d %v", r.status, r.body)
		}
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if fs.created != 1 || len(fs.requests) != 2 || fs.requests[0] != fs.requests[1] {
			t.Fatalf("provider: %d created from %v", fs.created, fs.requests)
		}
	})
}
