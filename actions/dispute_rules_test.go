package actions_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
)

// casesMirror lets the case service read the actions tests' fake mirror.
type casesMirror struct{ *fakeMirror }

func (casesMirror) InvoicesBySubscription(context.Context, string) ([]billing.Invoice, error) {
	return nil, nil
}

type ruleFixture struct {
	t      *testing.T
	db     *db.DB
	clock  *clock.Manual
	mirror *fakeMirror
	cases  *cases.Service
	svc    *actions.Service
	rules  []disputes.SubscriptionRule
	seq    int
}

func newRuleFixture(t *testing.T, d *db.DB, base string) *ruleFixture {
	t.Helper()
	f := &ruleFixture{t: t, db: d, clock: clock.NewManual(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)),
		mirror: &fakeMirror{subs: map[string]billing.Subscription{}, invoices: map[string]billing.Invoice{}, charges: map[string]billing.Charge{}, disputes: map[string]billing.Dispute{}}}
	var err error
	f.cases, err = cases.NewService(cases.Options{DB: d, Clock: f.clock, Billing: func(*gorm.DB) cases.BillingReader { return casesMirror{f.mirror} }})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = actions.NewService(actions.Config{DB: d, Clock: f.clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Provider: stripeClient(t, base), Mirror: func(*gorm.DB) actions.Mirror { return f.mirror }, Cases: f.cases,
		Audit: audit.New(d, f.clock), Policy: actions.DefaultPolicy()})
	f.rules = []disputes.SubscriptionRule{
		{Name: "pro: pause, cancel on loss, resume on win", Plans: []string{"price_pro"}, OnOpen: disputes.SubPauseCollection,
			OnLost: disputes.SubCancelNow, OnWon: disputes.SubResume},
		{Name: "basic: leave it", Products: []string{"prod_basic"}, OnOpen: disputes.SubLeave, OnLost: disputes.SubLeave},
	}
	return f
}

func (f *ruleFixture) sweeper() *actions.DisputeRules {
	return actions.NewDisputeRules(f.svc, f.rules, 0)
}

// dispute mirrors a subscription (price, product), its paid invoice and
// charge, and opens a dispute case on the charge; it returns the case id
// and the dispute.
func (f *ruleFixture) dispute(price, product string) (string, billing.Dispute) {
	f.t.Helper()
	f.seq++
	sfx := fmt.Sprintf("r%d", f.seq)
	now := f.clock.Now()
	end := now.Add(20 * 24 * time.Hour)
	f.mirror.mu.Lock()
	f.mirror.subs["sub_"+sfx] = billing.Subscription{ID: "sub_" + sfx, CustomerID: "cus_" + sfx, Status: "active", PriceID: price, ProductID: product,
		Currency: "usd", Amount: 4900, CurrentPeriodEnd: &end}
	f.mirror.invoices["in_"+sfx] = billing.Invoice{ID: "in_" + sfx, CustomerID: "cus_" + sfx, SubscriptionID: "sub_" + sfx, ChargeID: "ch_" + sfx, Status: "paid"}
	f.mirror.charges["ch_"+sfx] = billing.Charge{ID: "ch_" + sfx, CustomerID: "cus_" + sfx, InvoiceID: "in_" + sfx, Amount: 4900, Currency: "usd",
		Status: "succeeded", Paid: true, Disputed: true, Created: now.Add(-24 * time.Hour)}
	f.mirror.mu.Unlock()
	due := now.Add(7 * 24 * time.Hour)
	dp := billing.Dispute{ID: "dp_" + sfx, ChargeID: "ch_" + sfx, CustomerID: "cus_" + sfx, Amount: 4900, Currency: "usd", Status: "needs_response",
		Reason: "fraudulent", CardBrand: "visa", EvidenceDueBy: &due, Created: now}
	f.change("evt_open_"+sfx, "charge.dispute.created", dp)
	var id string
	if err := f.db.Transact(context.Background(), func(tx *gorm.DB) error {
		c, ok, err := f.cases.OpenCaseFor(context.Background(), tx, cases.KindDispute, dp.ID)
		if err == nil && !ok {
			err = fmt.Errorf("no case for %s", dp.ID)
		}
		id = c.ID
		if err == nil && deref(c.Links.Subscription) != "sub_"+sfx {
			err = fmt.Errorf("case %s is not linked to its subscription: %+v", c.ID, c.Links)
		}
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return id, dp
}

func (f *ruleFixture) change(evtID, typ string, dp billing.Dispute) {
	f.t.Helper()
	ch := billing.Change{EventID: evtID, EventType: typ, EventCreated: f.clock.Now(), Summary: typ + " (test)", Object: billing.KindDispute,
		ObjectID: dp.ID, Dispute: &dp, CustomerID: dp.CustomerID}
	ctx := context.Background()
	if err := f.db.Transact(ctx, func(tx *gorm.DB) error { return f.cases.OnBillingChange(ctx, tx, ch) }); err != nil {
		f.t.Fatalf("apply %s: %v", typ, err)
	}
}

func (f *ruleFixture) sweep(rs *actions.DisputeRules) int {
	f.t.Helper()
	n, err := rs.Sweep(context.Background())
	if err != nil {
		f.t.Fatalf("sweep: %v", err)
	}
	return n
}

func (f *ruleFixture) actionsOf(caseID string) []actions.Action {
	f.t.Helper()
	as, err := f.svc.ForCase(context.Background(), caseID)
	if err != nil {
		f.t.Fatal(err)
	}
	return as
}

func TestDisputeSubscriptionRules(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newRuleFixture(t, d, m.URL)
		pro, proDispute := f.dispute("price_pro", "prod_pro")
		basic, _ := f.dispute("price_basic", "prod_basic")
		other, _ := f.dispute("price_other", "prod_other")

		if n := f.sweep(f.sweeper()); n != 3 {
			t.Fatalf("first sweep handled %d triggers, want 3 (one opening each)", n)
		}
		if n := f.sweep(f.sweeper()); n != 0 {
			t.Fatalf("second sweep handled %d triggers, want 0", n)
		}
		as := f.actionsOf(pro)
		if len(as) != 1 || as[0].Type != actions.PauseCollection || as[0].RequestedBy != cases.SystemActor {
			t.Fatalf("pro case actions after opening = %+v", as)
		}
		if as[0].Reason == "" || as[0].Status == actions.StatusFailed {
			t.Fatalf("pause action: reason %q status %s error %+v", as[0].Reason, as[0].Status, as[0].Error)
		}
		if got := f.actionsOf(basic); len(got) != 0 {
			t.Fatalf("leave requested actions: %+v", got)
		}
		if got := f.actionsOf(other); len(got) != 0 {
			t.Fatalf("a non-matching plan requested actions: %+v", got)
		}

		// The dispute is lost; the close event is delivered twice, and two
		// replicas sweep at once: one cancellation.
		proDispute.Status = "lost"
		f.change("evt_lost_pro", "charge.dispute.closed", proDispute)
		f.change("evt_lost_pro", "charge.dispute.closed", proDispute)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.sweeper().Sweep(context.Background()); err != nil {
					t.Errorf("sweep: %v", err)
				}
			}()
		}
		wg.Wait()
		f.sweep(f.sweeper()) // whatever a racing replica left for later
		as = f.actionsOf(pro)
		cancels := 0
		for _, a := range as {
			if a.Type == actions.CancelSubscription {
				cancels++
				if a.Status != actions.StatusSucceeded {
					t.Errorf("cancel: status %s error %+v", a.Status, a.Error)
				}
			}
		}
		if cancels != 1 || len(as) != 2 {
			t.Fatalf("pro case actions after loss = %+v", as)
		}
		var n int64
		if err := d.Gorm.Raw("SELECT count(*) FROM dispute_rule_triggers WHERE case_id = ?", pro).Scan(&n).Error; err != nil || n != 2 {
			t.Fatalf("triggers recorded for the pro case = %d (%v), want 2", n, err)
		}
		if err := d.Gorm.Raw("SELECT count(*) FROM audit_log WHERE case_id = ? AND action = 'dispute.rule_applied'", pro).Scan(&n).Error; err != nil || n != 2 {
			t.Fatalf("audit entries = %d (%v), want 2", n, err)
		}
		if err := d.Gorm.Raw("SELECT count(*) FROM events WHERE subject = ? AND type = 'dispute.subscription_rule_applied'", pro).Scan(&n).Error; err != nil || n != 2 {
			t.Fatalf("events = %d (%v), want 2", n, err)
		}

		// Another pro dispute is won after collection was paused: collection
		// resumes, once.
		won, wonDispute := f.dispute("price_pro", "prod_pro")
		f.sweep(f.sweeper())
		var subID string
		f.mirror.mu.Lock()
		for id, s := range f.mirror.subs {
			if s.PriceID == "price_pro" && f.mirror.invoices["in_"+id[len("sub_"):]].ChargeID == wonDispute.ChargeID {
				s.PauseCollection = "void"
				f.mirror.subs[id] = s
				subID = id
			}
		}
		f.mirror.mu.Unlock()
		if subID == "" {
			t.Fatal("no subscription for the won dispute")
		}
		wonDispute.Status = "won"
		f.change("evt_won_"+won, "charge.dispute.closed", wonDispute)
		if n := f.sweep(f.sweeper()); n != 1 {
			t.Fatalf("won: %d triggers handled, want 1", n)
		}
		as = f.actionsOf(won)
		if len(as) != 2 || as[1].Type != actions.ResumeCollection || as[1].Status != actions.StatusSucceeded {
			t.Fatalf("won case actions = %+v", as)
		}
	})
}

// A dispute case opened before the mirror linked its charge to an invoice
// has no subscription on the case: the rule looks again through the mirror
// on each sweep, acts once the link arrives, and records "no subscription"
// only after the grace period (10 minutes) has passed without one.
func TestDisputeRuleFindsALateSubscriptionLink(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newRuleFixture(t, d, m.URL)
		ctx := context.Background()
		now := f.clock.Now()
		end := now.Add(20 * 24 * time.Hour)
		due := now.Add(7 * 24 * time.Hour)
		open := func(sfx string) (string, billing.Dispute) {
			f.mirror.mu.Lock()
			f.mirror.subs["sub_"+sfx] = billing.Subscription{ID: "sub_" + sfx, CustomerID: "cus_" + sfx, Status: "active", PriceID: "price_pro",
				Currency: "usd", Amount: 4900, CurrentPeriodEnd: &end}
			// The charge is mirrored, its invoice not yet.
			f.mirror.charges["ch_"+sfx] = billing.Charge{ID: "ch_" + sfx, CustomerID: "cus_" + sfx, Amount: 4900, Currency: "usd",
				Status: "succeeded", Paid: true, Disputed: true, Created: now.Add(-24 * time.Hour)}
			dp := billing.Dispute{ID: "dp_" + sfx, ChargeID: "ch_" + sfx, CustomerID: "cus_" + sfx, Amount: 4900, Currency: "usd", Status: "needs_response",
				Reason: "fraudulent", CardBrand: "visa", EvidenceDueBy: &due, Created: now}
			f.mirror.disputes[dp.ID] = dp
			f.mirror.mu.Unlock()
			f.change("evt_open_"+sfx, "charge.dispute.created", dp)
			var id string
			if err := f.db.Transact(ctx, func(tx *gorm.DB) error {
				c, _, err := f.cases.OpenCaseFor(ctx, tx, cases.KindDispute, dp.ID)
				id = c.ID
				if err == nil && c.Links.Subscription != nil {
					err = fmt.Errorf("case linked to %s already", *c.Links.Subscription)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return id, dp
		}
		late, _ := open("late")
		never, _ := open("never")

		if n := f.sweep(f.sweeper()); n != 0 {
			t.Fatalf("a sweep before the link handled %d triggers, want 0 (try again later)", n)
		}
		// The invoice arrives: the charge now leads to the subscription.
		f.mirror.mu.Lock()
		f.mirror.invoices["in_late"] = billing.Invoice{ID: "in_late", CustomerID: "cus_late", SubscriptionID: "sub_late", ChargeID: "ch_late", Status: "paid"}
		ch := f.mirror.charges["ch_late"]
		ch.InvoiceID = "in_late"
		f.mirror.charges["ch_late"] = ch
		f.mirror.mu.Unlock()
		if n := f.sweep(f.sweeper()); n != 1 {
			t.Fatalf("the sweep after the link handled %d triggers, want 1", n)
		}
		if as := f.actionsOf(late); len(as) != 1 || as[0].Type != actions.PauseCollection {
			t.Fatalf("late-linked case actions = %+v", as)
		}
		// Just before the grace period ends, still waiting; just after, recorded.
		f.clock.Advance(10*time.Minute - time.Second)
		if n := f.sweep(f.sweeper()); n != 0 {
			t.Fatalf("before the grace period ended: %d triggers handled", n)
		}
		f.clock.Advance(2 * time.Second)
		if n := f.sweep(f.sweeper()); n != 1 {
			t.Fatalf("after the grace period: %d triggers handled, want 1", n)
		}
		var detail string
		if err := d.Gorm.Raw("SELECT detail FROM dispute_rule_triggers WHERE case_id = ?", never).Scan(&detail).Error; err != nil || detail != "no subscription behind the disputed charge" {
			t.Fatalf("never-linked case recorded %q (%v)", detail, err)
		}
		if as := f.actionsOf(never); len(as) != 0 {
			t.Fatalf("never-linked case actions = %+v", as)
		}
	})
}
