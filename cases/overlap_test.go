package cases

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// overlap applies events through the real mirror and the cases, as the
// worker does, on PostgreSQL.
type overlap struct {
	*fixture
	store *billing.Store
	gen   *stripetest.Generator
}

func newOverlap(t *testing.T) *overlap {
	d := dbtest.Open(t, db.Postgres)
	f := newFixture(t, d)
	store := billing.NewStore(d, f.clock)
	f.svc.billing = func(tx *gorm.DB) BillingReader { return store.In(tx) }
	return &overlap{fixture: f, store: store, gen: stripetest.New(5, stripetest.WithClock(f.clock.Now))}
}

func (o *overlap) applyIn(tx *gorm.DB, e stripetest.Event) error {
	ctx := context.Background()
	ch, err := o.store.In(tx).Apply(ctx, billing.ProviderEvent{ID: e.ID, Type: e.Type, Created: e.Created,
		APIVersion: stripetest.APIVersion, Payload: e.Payload})
	if errors.Is(err, billing.ErrNotBillingEvent) || ch.Duplicate {
		return err
	}
	if err != nil {
		return err
	}
	return o.svc.OnBillingChange(ctx, tx, ch)
}

func (o *overlap) commit(e stripetest.Event) {
	o.t.Helper()
	if err := o.db.Transact(context.Background(), func(tx *gorm.DB) error { return o.applyIn(tx, e) }); err != nil {
		o.t.Fatalf("apply %s: %v", e.Type, err)
	}
}

// race applies held in a transaction left open while another worker
// applies other in its own; then held commits. other may finish first
// (when it need not see held) or wait for held's commit.
func (o *overlap) race(held, other stripetest.Event) {
	o.t.Helper()
	tx := o.db.Gorm.Begin()
	if tx.Error != nil {
		o.t.Fatal(tx.Error)
	}
	defer tx.Rollback()
	if err := o.applyIn(tx, held); err != nil {
		o.t.Fatalf("apply %s: %v", held.Type, err)
	}
	done := make(chan error, 1)
	go func() {
		done <- o.db.Transact(context.Background(), func(tx *gorm.DB) error { return o.applyIn(tx, other) })
	}()
	finished := false
	select {
	case err := <-done:
		if err != nil {
			o.t.Fatalf("apply %s: %v", other.Type, err)
		}
		finished = true
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit().Error; err != nil {
		o.t.Fatal(err)
	}
	if !finished {
		select {
		case err := <-done:
			if err != nil {
				o.t.Fatalf("apply %s: %v", other.Type, err)
			}
		case <-time.After(10 * time.Second):
			o.t.Fatalf("apply %s never finished", other.Type)
		}
	}
}

func (o *overlap) ev(typ string, obj map[string]any, at time.Time) stripetest.Event {
	return o.gen.NewEvent(typ, obj, stripetest.WithCreated(at))
}

// inBothOrders runs a story twice: once with its first event held in an
// open transaction while the second applies, once the other way round;
// check then sees how it ended.
func inBothOrders(t *testing.T, names [2]string, story func(o *overlap) (first, second stripetest.Event), check func(t *testing.T, o *overlap)) {
	for i, name := range names {
		t.Run(name+" first", func(t *testing.T) {
			o := newOverlap(t)
			a, b := story(o)
			if i == 1 {
				a, b = b, a
			}
			o.race(a, b)
			check(t, o)
		})
	}
}

// A dispute and the charge it disputes, applied at once by two workers
// (they are sharded apart: a dispute names no customer), in either order:
// the dispute's case ends linked to the customer, the invoice and the
// subscription, as it is when they arrive one after the other.
func TestDisputeBesideItsChargeIsLinked(t *testing.T) {
	cus, sub, inv, chID, dpID := "cus_o", "sub_o", "in_o", "ch_o", "dp_o"
	inBothOrders(t, [2]string{"dispute", "charge"}, func(o *overlap) (stripetest.Event, stripetest.Event) {
		o.commit(o.ev("invoice.paid", o.gen.Invoice(stripetest.InvoiceParams{ID: inv, Customer: cus, Subscription: sub, Status: "paid"}), t0))
		return o.ev("charge.dispute.created", o.gen.Dispute(stripetest.DisputeParams{ID: dpID, Charge: chID, Amount: 4200, Currency: "usd"}), t0.Add(time.Hour)),
			o.ev("charge.succeeded", o.gen.Charge(stripetest.ChargeParams{ID: chID, Customer: cus, Invoice: inv, Amount: 4200, Currency: "usd"}), t0)
	}, func(t *testing.T, o *overlap) {
		c := o.only(KindDispute, dpID)
		wantLink(t, "customer", c.Links.Customer, cus)
		wantLink(t, "invoice", c.Links.Invoice, inv)
		wantLink(t, "subscription", c.Links.Subscription, sub)
	})
}

// An early fraud warning and its charge's refund, applied at once by two
// workers, in either order: the warning's case ends resolved as refunded,
// never left open on a refunded charge.
func TestFraudWarningBesideItsRefundIsResolved(t *testing.T) {
	cus, chID, wID := "cus_f", "ch_f", "issfr_f"
	inBothOrders(t, [2]string{"warning", "refund"}, func(o *overlap) (stripetest.Event, stripetest.Event) {
		o.commit(o.ev("charge.succeeded", o.gen.Charge(stripetest.ChargeParams{ID: chID, Customer: cus, Amount: 4200, Currency: "usd"}), t0))
		return o.ev("radar.early_fraud_warning.created", o.gen.EarlyFraudWarning(stripetest.EarlyFraudWarningParams{ID: wID, Charge: chID,
				Created: t0.Add(time.Hour)}), t0.Add(time.Hour)),
			o.ev("charge.refunded", o.gen.Charge(stripetest.ChargeParams{ID: chID, Customer: cus, Amount: 4200, Currency: "usd",
				AmountRefunded: 4200}), t0.Add(2*time.Hour))
	}, func(t *testing.T, o *overlap) {
		wantState(t, o.only(KindFraudWarning, chID), "refunded", StatusClosed)
	})
}

// A renewal's payment failure and its subscription's churn, applied at once
// by two processes (replicas run the same worker loops), in either order:
// the failure's case ends churned, never left open on a canceled
// subscription.
func TestPaymentFailureBesideTheChurnIsChurned(t *testing.T) {
	cus, sub, inv := "cus_p", "sub_p", "in_p"
	inBothOrders(t, [2]string{"failure", "churn"}, func(o *overlap) (stripetest.Event, stripetest.Event) {
		o.commit(o.ev("customer.subscription.created", o.gen.Subscription(stripetest.SubscriptionParams{ID: sub, Customer: cus, Created: t0}), t0))
		return o.ev("invoice.payment_failed", o.gen.Invoice(stripetest.InvoiceParams{ID: inv, Customer: cus, Subscription: sub, Status: "open",
				AttemptCount: 1}), t0.Add(time.Hour)),
			o.ev("customer.subscription.updated", o.gen.Subscription(stripetest.SubscriptionParams{ID: sub, Customer: cus, Created: t0,
				Status: "canceled"}), t0.Add(2*time.Hour))
	}, func(t *testing.T, o *overlap) {
		wantState(t, o.only(KindPaymentFailure, inv), "churned", StatusClosed)
	})
}
