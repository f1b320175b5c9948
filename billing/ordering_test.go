package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestOutOfOrderUpdateDoesNotRegress(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		older := f.event("customer.subscription.updated",
			f.gen.Subscription(stripetest.SubscriptionParams{ID: "sub_O", Customer: "cus_O", Plan: proPlan, Status: "past_due", Created: t0}),
			t0.Add(time.Hour), stripetest.WithPreviousAttributes(map[string]any{"status": "active"}))
		newer := f.event("customer.subscription.updated",
			f.gen.Subscription(stripetest.SubscriptionParams{ID: "sub_O", Customer: "cus_O", Plan: proPlan, Status: "active", Created: t0}),
			t0.Add(2*time.Hour), stripetest.WithPreviousAttributes(map[string]any{"status": "past_due"}))

		first := f.apply(newer)
		eq(t, "first seen", first.FirstSeen, true)
		eq(t, "stale", first.Stale, false)

		late := f.apply(older)
		eq(t, "stale", late.Stale, true)
		eq(t, "first seen", late.FirstSeen, false)
		eq(t, "duplicate", late.Duplicate, false)
		eq(t, "change carries current status", late.Subscription.Status, "active")
		eq(t, "change carries current version", late.Subscription.EventID, newer.ID)
		eq(t, "summary of the late fact", late.Summary, "Subscription past due: renewal payment failed")

		s := must[Subscription](t)(f.store.Subscription(ctx, "sub_O"))
		eq(t, "stored status", s.Status, "active")
		eq(t, "stored version", s.EventID, newer.ID)
		eq(t, "stored version time", s.EventCreated, newer.Created.UTC())

		tl := f.timeline("cus_O")
		if len(tl) != 2 {
			t.Fatalf("timeline has %d entries, want both facts: %+v", len(tl), tl)
		}
		eq(t, "newest first", tl[0].EventID, newer.ID)
		eq(t, "older second", tl[1].EventID, older.ID)
	})
}

func TestUpdateBeforeCreateCreatesTheRow(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		evs := f.gen.TrialConverts(t0)
		created := firstOf(t, evs, "customer.subscription.created")
		updated := lastOf(t, evs, "customer.subscription.updated")

		up := f.apply(updated)
		eq(t, "first seen on update", up.FirstSeen, true)
		eq(t, "status", up.Subscription.Status, "active")
		cr := f.apply(created)
		eq(t, "create after update is stale", cr.Stale, true)
		eq(t, "not first seen", cr.FirstSeen, false)
		eq(t, "status kept", cr.Subscription.Status, "active")
		if f.timelineRows(created.ID) != 1 || f.timelineRows(updated.ID) != 1 {
			t.Fatal("both facts must be on the timeline")
		}

		// The same for an invoice paid before it was created and finalized.
		paid := eventsOf(evs, "invoice.paid")
		last := paid[len(paid)-1]
		f.apply(last)
		for _, e := range eventsOf(evs, "invoice.created", "invoice.finalized", "invoice.paid") {
			if e.ID != last.ID {
				if ch := f.apply(e); ch.ObjectID == last.Object["id"] && !ch.Stale {
					t.Errorf("%s applied over the paid invoice", e.Type)
				}
			}
		}
		got := must[Invoice](t)(f.store.Invoice(context.Background(), last.Object["id"].(string)))
		eq(t, "invoice status", got.Status, "paid")
		eq(t, "invoice version", got.EventID, last.ID)
	})
}

func TestDuplicateEventChangesNothing(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		ev := f.event("invoice.payment_failed",
			f.gen.Invoice(stripetest.InvoiceParams{ID: "in_D", Customer: "cus_D", Subscription: "sub_D", Plan: proPlan, Status: "open", AttemptCount: 1,
				NextPaymentAttempt: t0.Add(72 * time.Hour)}), t0)
		first := f.apply(ev)
		before := must[Invoice](t)(f.store.Invoice(ctx, "in_D"))
		var updatedAt time.Time
		d.Gorm.Model(&invoiceRow{}).Where("id = ?", "in_D").Pluck("updated_at", &updatedAt)

		f.clock.Advance(time.Hour)
		again := f.apply(ev)
		eq(t, "duplicate", again.Duplicate, true)
		eq(t, "stale", again.Stale, false)
		eq(t, "first seen", again.FirstSeen, false)
		eq(t, "summary", again.Summary, first.Summary)
		eq(t, "state", currentOf(again), currentOf(first))
		eq(t, "timeline rows", f.timelineRows(ev.ID), int64(1))
		after := must[Invoice](t)(f.store.Invoice(ctx, "in_D"))
		eq(t, "stored state", jsonString(after), jsonString(before))
		var updatedAt2 time.Time
		d.Gorm.Model(&invoiceRow{}).Where("id = ?", "in_D").Pluck("updated_at", &updatedAt2)
		eq(t, "row not rewritten", updatedAt2.UTC(), updatedAt.UTC())
		eq(t, "timeline length", len(f.timeline("cus_D")), 1)

		// invoice.upcoming has no object id: a redelivery is still one fact.
		up := f.gen.Invoice(stripetest.InvoiceParams{Customer: "cus_D", Subscription: "sub_D", Plan: proPlan, Status: "draft"})
		delete(up, "id")
		upcoming := f.event("invoice.upcoming", up, t0.Add(time.Hour))
		f.apply(upcoming)
		again = f.apply(upcoming)
		eq(t, "upcoming duplicate", again.Duplicate, true)
		if again.Invoice == nil || again.Invoice.AmountDue != 4900 {
			t.Errorf("upcoming duplicate carries %+v", again.Invoice)
		}
		eq(t, "upcoming timeline rows", f.timelineRows(upcoming.ID), int64(1))
	})
}

// TestTiebreaksOnEqualCreated applies two states of one object created in
// the same second, in both orders: the later one (by the documented rules)
// must win either way.
func TestTiebreaksOnEqualCreated(t *testing.T) {
	t.Parallel()
	type pair struct {
		name          string
		kind          ObjectKind
		id            string
		earlier       func(g *stripetest.Generator) (string, map[string]any, map[string]any)
		later         func(g *stripetest.Generator) (string, map[string]any, map[string]any)
		fieldOfWinner func(ch Change) string
		want          string
	}
	subP := func(status string) stripetest.SubscriptionParams {
		return stripetest.SubscriptionParams{ID: "sub_T", Customer: "cus_T", Plan: proPlan, Status: status, Created: t0, CurrentPeriodStart: t0}
	}
	pairs := []pair{
		{name: "subscription: previous_attributes name the other status (unpaid → active beats rank)", kind: KindSubscription,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.subscription.updated", g.Subscription(subP("unpaid")), map[string]any{"status": "past_due"}
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.subscription.updated", g.Subscription(subP("active")), map[string]any{"status": "unpaid"}
			},
			fieldOfWinner: func(ch Change) string { return ch.Subscription.Status }, want: "active"},
		{name: "subscription: a cycle in previous_attributes falls back to rank (past_due beats active)", kind: KindSubscription,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.subscription.updated", g.Subscription(subP("active")), map[string]any{"status": "past_due"}
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.subscription.updated", g.Subscription(subP("past_due")), map[string]any{"status": "active"}
			},
			fieldOfWinner: func(ch Change) string { return ch.Subscription.Status }, want: "past_due"},
		{name: "subscription: later lifecycle status (canceled beats active)", kind: KindSubscription,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.subscription.updated", g.Subscription(subP("active")), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.subscription.deleted", g.Subscription(subP("canceled")), nil
			},
			fieldOfWinner: func(ch Change) string { return ch.Subscription.Status }, want: "canceled"},
		{name: "invoice: higher attempt_count", kind: KindInvoice,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "invoice.payment_failed", g.Invoice(stripetest.InvoiceParams{ID: "in_T", Customer: "cus_T", Plan: proPlan, Status: "open", AttemptCount: 1, Charge: "ch_1"}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "invoice.payment_failed", g.Invoice(stripetest.InvoiceParams{ID: "in_T", Customer: "cus_T", Plan: proPlan, Status: "open", AttemptCount: 2, Charge: "ch_2"}), nil
			},
			fieldOfWinner: func(ch Change) string { return fmt.Sprint(ch.Invoice.AttemptCount) }, want: "2"},
		{name: "invoice: paid beats open", kind: KindInvoice,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "invoice.finalized", g.Invoice(stripetest.InvoiceParams{ID: "in_T2", Customer: "cus_T", Plan: proPlan, Status: "open"}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "invoice.paid", g.Invoice(stripetest.InvoiceParams{ID: "in_T2", Customer: "cus_T", Plan: proPlan, Status: "paid"}), nil
			},
			fieldOfWinner: func(ch Change) string { return ch.Invoice.Status }, want: "paid"},
		{name: "charge: higher amount_refunded", kind: KindCharge,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "charge.refunded", g.Charge(stripetest.ChargeParams{ID: "ch_T", Customer: "cus_T", Amount: 4900, AmountRefunded: 1000}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "charge.refunded", g.Charge(stripetest.ChargeParams{ID: "ch_T", Customer: "cus_T", Amount: 4900, AmountRefunded: 4900}), nil
			},
			fieldOfWinner: func(ch Change) string { return fmt.Sprint(ch.Charge.AmountRefunded) }, want: "4900"},
		{name: "dispute: higher submission_count", kind: KindDispute,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "charge.dispute.updated", g.Dispute(stripetest.DisputeParams{ID: "dp_T", Charge: "ch_T", Status: "under_review", SubmissionCount: 1, HasEvidence: true}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "charge.dispute.updated", g.Dispute(stripetest.DisputeParams{ID: "dp_T", Charge: "ch_T", Status: "under_review", SubmissionCount: 2, HasEvidence: true}), nil
			},
			fieldOfWinner: func(ch Change) string { return fmt.Sprint(ch.Dispute.SubmissionCount) }, want: "2"},
		{name: "dispute: closed beats needs_response", kind: KindDispute,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "charge.dispute.created", g.Dispute(stripetest.DisputeParams{ID: "dp_T2", Charge: "ch_T", Status: "needs_response"}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "charge.dispute.closed", g.Dispute(stripetest.DisputeParams{ID: "dp_T2", Charge: "ch_T", Status: "lost"}), nil
			},
			fieldOfWinner: func(ch Change) string { return ch.Dispute.Status }, want: "lost"},
		{name: "refund: failed beats succeeded", kind: KindRefund,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "refund.updated", g.Refund(stripetest.RefundParams{ID: "re_T", Charge: "ch_T", Status: "succeeded"}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "refund.updated", g.Refund(stripetest.RefundParams{ID: "re_T", Charge: "ch_T", Status: "failed"}), nil
			},
			fieldOfWinner: func(ch Change) string { return ch.Refund.Status }, want: "failed"},
		{name: "early fraud warning: not actionable beats actionable", kind: KindFraudWarning,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "radar.early_fraud_warning.created", g.EarlyFraudWarning(stripetest.EarlyFraudWarningParams{ID: "issfr_T", Charge: "ch_T"}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "radar.early_fraud_warning.updated", g.EarlyFraudWarning(stripetest.EarlyFraudWarningParams{ID: "issfr_T", Charge: "ch_T", Actioned: true}), nil
			},
			fieldOfWinner: func(ch Change) string { return fmt.Sprint(ch.FraudWarning.Actionable) }, want: "false"},
		{name: "customer: deleted beats updated", kind: KindCustomer,
			earlier: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.updated", g.Customer(stripetest.CustomerParams{ID: "cus_T", Name: "A", Email: "a@example.com"}), nil
			},
			later: func(g *stripetest.Generator) (string, map[string]any, map[string]any) {
				return "customer.deleted", g.Customer(stripetest.CustomerParams{ID: "cus_T", Name: "A", Email: "a@example.com"}), nil
			},
			fieldOfWinner: func(ch Change) string { return fmt.Sprint(ch.Customer.Deleted) }, want: "true"},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for i, p := range pairs {
			t.Run(p.name, func(t *testing.T) {
				for _, laterFirst := range []bool{false, true} {
					at := t0.Add(time.Duration(i) * time.Hour)
					typA, objA, prevA := p.earlier(f.gen)
					typB, objB, prevB := p.later(f.gen)
					// Fresh object ids per run so the runs do not see each other.
					suffix := fmt.Sprintf("_%t", laterFirst)
					objA["id"] = objA["id"].(string) + suffix
					objB["id"] = objB["id"].(string) + suffix
					a := f.event(typA, objA, at, stripetest.WithPreviousAttributes(prevA))
					b := f.event(typB, objB, at, stripetest.WithPreviousAttributes(prevB))
					order := []stripetest.Event{a, b}
					if laterFirst {
						order = []stripetest.Event{b, a}
					}
					f.apply(order[0])
					last := f.apply(order[1])
					eq(t, fmt.Sprintf("winner (later first=%t)", laterFirst), p.fieldOfWinner(last), p.want)
					eq(t, fmt.Sprintf("stale (later first=%t)", laterFirst), last.Stale, laterFirst)
					eq(t, "timeline rows", f.timelineRows(a.ID)+f.timelineRows(b.ID), int64(2))
				}
			})
		}
	})
}

// TestConcurrentApplyEndsAtNewestState applies many events of one object
// from several goroutines, each in its own transaction, on PostgreSQL.
func TestConcurrentApplyEndsAtNewestState(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.Postgres)
	f := newFixture(t, d)
	const n = 60
	var evs []stripetest.Event
	for i := 0; i < n; i++ {
		status := []string{"active", "past_due", "active", "unpaid"}[i%4]
		evs = append(evs, f.event("customer.subscription.updated",
			f.gen.Subscription(stripetest.SubscriptionParams{ID: "sub_C", Customer: "cus_C", Plan: proPlan, Status: status, Created: t0,
				Quantity: int64(i + 1)}), t0.Add(time.Duration(i)*time.Minute)))
		evs = append(evs, f.event("invoice.payment_failed",
			f.gen.Invoice(stripetest.InvoiceParams{ID: "in_C", Customer: "cus_C", Plan: proPlan, Status: "open", AttemptCount: int64(i + 1)}),
			t0.Add(time.Duration(i)*time.Minute)))
	}
	// Half the events twice, to mix duplicates into the race.
	work := append(append([]stripetest.Event(nil), evs...), evs[:n]...)
	rand.Shuffle(len(work), func(i, j int) { work[i], work[j] = work[j], work[i] })

	var wg sync.WaitGroup
	jobs := make(chan stripetest.Event)
	errc := make(chan error, len(work))
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				if _, err := f.tryApply(e); err != nil {
					errc <- fmt.Errorf("%s: %w", e.ID, err)
				}
			}
		}()
	}
	for _, e := range work {
		jobs <- e
	}
	close(jobs)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	ctx := context.Background()
	s := must[Subscription](t)(f.store.Subscription(ctx, "sub_C"))
	eq(t, "subscription version", s.EventID, evs[2*(n-1)].ID)
	eq(t, "subscription amount", s.Amount, int64(n*4900))
	inv := must[Invoice](t)(f.store.Invoice(ctx, "in_C"))
	eq(t, "invoice version", inv.EventID, evs[2*n-1].ID)
	eq(t, "invoice attempts", inv.AttemptCount, n)
	eq(t, "timeline", len(f.timeline("cus_C")), 2*n)
}

// TestStoriesConverge applies every built-in story in order on one database
// and shuffled, with every event delivered twice, on another: the mirrors
// must end the same.
func TestStoriesConverge(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			gen := stripetest.New(7, stripetest.WithClock(func() time.Time { return t0 }))
			var evs []stripetest.Event
			for i, sc := range stripetest.Scenarios() {
				evs = append(evs, sc.Run(gen, t0.Add(time.Duration(i)*time.Hour))...)
			}
			stripetest.SortEvents(evs)
			inOrder := newFixture(t, dbtest.Open(t, dialect))
			inOrder.applyAll(evs)

			shuffled := newFixture(t, dbtest.Open(t, dialect))
			twice := append(append([]stripetest.Event(nil), evs...), evs...)
			r := rand.New(rand.NewPCG(1, 2))
			r.Shuffle(len(twice), func(i, j int) { twice[i], twice[j] = twice[j], twice[i] })
			shuffled.applyAll(twice)

			a, b := mirrorSnapshot(t, inOrder), mirrorSnapshot(t, shuffled)
			if len(a) == 0 {
				t.Fatal("nothing mirrored")
			}
			for k, v := range a {
				if b[k] != v {
					t.Errorf("%s differs:\n in order: %s\n shuffled: %s", k, v, b[k])
				}
			}
			eq(t, "objects", len(b), len(a))
			var na, nb int64
			inOrder.d.Gorm.Model(&timelineRow{}).Count(&na)
			shuffled.d.Gorm.Model(&timelineRow{}).Count(&nb)
			eq(t, "timeline facts", na, int64(len(evs)))
			eq(t, "timeline facts (shuffled, twice)", nb, int64(len(evs)))
			var orphans int64
			shuffled.d.Gorm.Model(&timelineRow{}).Where("customer_id = ''").Count(&orphans)
			eq(t, "facts without a customer", orphans, int64(0))
		})
	}
}

// mirrorSnapshot renders every mirrored object as the store returns it,
// except LastFailureCode, which is best effort and depends on whether the
// failed charge arrived before the invoice event.
func mirrorSnapshot(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	ids := func(table string) []string {
		var ids []string
		if err := f.d.Gorm.Table(table).Order("id").Pluck("id", &ids).Error; err != nil {
			t.Fatal(err)
		}
		return ids
	}
	for _, id := range ids("billing_customers") {
		out["customer "+id] = jsonString(must[Customer](t)(f.store.Customer(ctx, id)))
	}
	for _, id := range ids("billing_subscriptions") {
		out["subscription "+id] = jsonString(must[Subscription](t)(f.store.Subscription(ctx, id)))
	}
	for _, id := range ids("billing_invoices") {
		inv := must[Invoice](t)(f.store.Invoice(ctx, id))
		inv.LastFailureCode = ""
		out["invoice "+id] = jsonString(inv)
	}
	for _, id := range ids("billing_charges") {
		out["charge "+id] = jsonString(must[Charge](t)(f.store.Charge(ctx, id)))
	}
	for _, id := range ids("billing_refunds") {
		out["refund "+id] = jsonString(must[Refund](t)(f.store.Refund(ctx, id)))
	}
	for _, id := range ids("billing_disputes") {
		out["dispute "+id] = jsonString(must[Dispute](t)(f.store.Dispute(ctx, id)))
	}
	for _, id := range ids("billing_fraud_warnings") {
		out["fraud warning "+id] = jsonString(must[FraudWarning](t)(f.store.FraudWarning(ctx, id)))
	}
	return out
}

func TestApplyWithoutBoundTransaction(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ev := f.event("customer.created", f.gen.Customer(stripetest.CustomerParams{ID: "cus_U"}), t0)
		ch, err := f.store.Apply(context.Background(), providerEvent(ev))
		if err != nil || !ch.FirstSeen {
			t.Fatalf("Apply = %+v, %v", ch, err)
		}
		// A failing handler after Apply in the same transaction rolls the
		// mirror back with it.
		ev2 := f.event("customer.created", f.gen.Customer(stripetest.CustomerParams{ID: "cus_RolledBack"}), t0)
		_ = d.Transact(context.Background(), func(tx *gorm.DB) error {
			if _, err := f.store.In(tx).Apply(context.Background(), providerEvent(ev2)); err != nil {
				return err
			}
			return fmt.Errorf("later handler failed")
		})
		if _, err := f.store.Customer(context.Background(), "cus_RolledBack"); err == nil {
			t.Fatal("mirror change survived a rolled-back transaction")
		}
		eq(t, "timeline rows of rolled back event", f.timelineRows(ev2.ID), int64(0))
	})
}
