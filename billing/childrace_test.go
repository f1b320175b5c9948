package billing

import (
	"context"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// TestChildAndChargeInOverlappingTransactions: two workers apply a dispute
// and the charge it disputes at the same time, on PostgreSQL, neither
// seeing the other's uncommitted row. Whichever transaction starts first
// and commits last, the dispute ends with the charge's customer. Without
// the charge's children lock the dispute read "no charge" and the charge
// attached "no children": the dispute (and its case) stayed unlinked.
func TestChildAndChargeInOverlappingTransactions(t *testing.T) {
	for _, first := range []string{"dispute", "charge"} {
		t.Run(first+" first", func(t *testing.T) {
			d := dbtest.Open(t, db.Postgres)
			f := newFixture(t, d)
			ctx := context.Background()
			cus, chID, dpID := "cus_race_"+first, "ch_race_"+first, "dp_race_"+first
			charge := f.event("charge.succeeded", f.gen.Charge(stripetest.ChargeParams{ID: chID, Customer: cus, Amount: 4200, Currency: "usd"}), t0)
			dispute := f.event("charge.dispute.created", f.gen.Dispute(stripetest.DisputeParams{ID: dpID, Charge: chID, Amount: 4200, Currency: "usd"}), t0.Add(time.Hour))
			held, other := dispute, charge
			if first == "charge" {
				held, other = charge, dispute
			}

			// The first worker applies its event and has not committed yet.
			tx := d.Gorm.Begin()
			if tx.Error != nil {
				t.Fatal(tx.Error)
			}
			defer tx.Rollback()
			if _, err := f.store.In(tx).Apply(ctx, providerEvent(held)); err != nil {
				t.Fatalf("apply %s: %v", held.Type, err)
			}
			// The second applies the other event in its own transaction.
			done := make(chan error, 1)
			go func() { _, err := f.tryApply(other); done <- err }()
			finished := false
			select {
			case err := <-done: // it need not wait for the first
				if err != nil {
					t.Fatalf("apply %s: %v", other.Type, err)
				}
				finished = true
			case <-time.After(300 * time.Millisecond):
			}
			if err := tx.Commit().Error; err != nil {
				t.Fatal(err)
			}
			if !finished {
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("apply %s: %v", other.Type, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("apply %s never finished", other.Type)
				}
			}
			var stored string
			if err := d.Gorm.Raw("SELECT customer_id FROM billing_disputes WHERE id = ?", dpID).Scan(&stored).Error; err != nil {
				t.Fatal(err)
			}
			if stored != cus {
				t.Fatalf("the dispute's row names customer %q, want %q", stored, cus)
			}
			if got := f.timeline(cus); len(got) != 2 {
				t.Fatalf("the customer's timeline has %d facts, want the charge's and the dispute's", len(got))
			}
		})
	}
}
