package privacy_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
	"github.com/recourse-hq/recourse/privacy"
)

// An event being applied while the erasure runs read "not erased" before
// the erasure committed and commits after it, with a charge the erasure
// could not see: the customer's name and the card's fingerprint must not
// survive it. On PostgreSQL the erasure waits for such transactions and
// sweeps again; on SQLite the two cannot overlap.
func TestErasureRacingApply(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
		store := billing.NewStore(d, clk)
		gen := stripetest.New(11, stripetest.WithClock(func() time.Time { return clk.Now() }))
		evs := gen.Chargeback(clk.Now().Add(-40*24*time.Hour), stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent"})
		apply := func(s *billing.Store, e stripetest.Event) {
			t.Helper()
			if _, err := s.Apply(ctx, billing.ProviderEvent{ID: e.ID, Type: e.Type, Created: e.Created.UTC(),
				APIVersion: stripetest.APIVersion, Payload: e.Payload}); err != nil {
				t.Fatalf("apply %s: %v", e.Type, err)
			}
		}
		var held *stripetest.Event
		var customer map[string]any
		for i, e := range evs {
			switch {
			case e.Type == "customer.created":
				customer = e.Object
			case e.Type == "charge.succeeded" && held == nil:
				held = &evs[i]
				continue
			}
			if held != nil && strings.HasPrefix(e.Type, "charge.dispute") {
				continue // the dispute would name the held charge
			}
			apply(store, e)
		}
		if held == nil || customer == nil {
			t.Fatal("the story has no customer or no charge")
		}
		id, name := customer["id"].(string), customer["name"].(string)
		card, _ := held.Object["payment_method_details"].(map[string]any)["card"].(map[string]any)
		fingerprint, _ := card["fingerprint"].(string)
		if name == "" || fingerprint == "" {
			t.Fatalf("the story's customer has no name (%q) or its charge no fingerprint (%q)", name, fingerprint)
		}

		erasedCommitted := func() bool {
			var n int64
			if err := d.Gorm.Table("erased_customers").Where("customer_id = ?", id).Count(&n).Error; err != nil {
				t.Error(err)
			}
			return n > 0
		}
		started, overlapped := make(chan struct{}), false
		applied := make(chan error, 1)
		var appliedAt time.Time
		go func() {
			applied <- d.Transact(ctx, func(tx *gorm.DB) error {
				s := store.In(tx)
				ch, err := s.Apply(ctx, billing.ProviderEvent{ID: held.ID, Type: held.Type, Created: held.Created.UTC(),
					APIVersion: stripetest.APIVersion, Payload: held.Payload})
				if err != nil {
					return err
				}
				// As the webhook handler does: not erased yet, so the
				// personal data stays.
				if erased, err := s.IsErased(ctx, ch.CustomerID); err != nil || erased {
					t.Errorf("erased before the erasure: %v %v", erased, err)
				}
				close(started)
				// Commit only after the erasure's own commit where the
				// database lets the two overlap (PostgreSQL); SQLite's one
				// connection is this transaction's until it ends.
				for deadline := time.Now().Add(3 * time.Second); d.Dialect.OverlappingWriters() && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					if erasedCommitted() {
						overlapped = true
						break
					}
				}
				time.Sleep(50 * time.Millisecond)
				appliedAt = time.Now()
				return nil
			})
		}()
		<-started
		e := privacy.NewEraser(d, clk, audit.New(d, clk), nil)
		if _, err := e.Erase(ctx, privacy.Request{CustomerID: id, Reason: "DSR-race", Force: true}); err != nil {
			t.Fatal(err)
		}
		returned := time.Now()
		if err := <-applied; err != nil {
			t.Fatal(err)
		}
		if d.Dialect.OverlappingWriters() {
			if !overlapped {
				t.Fatal("the race was not set up: the erasure did not commit while the apply was open")
			}
			if returned.Before(appliedAt) {
				t.Fatal("the erasure returned before the transaction it overlapped ended")
			}
		}
		var rows []map[string]any
		for _, table := range []string{"billing_customers", "billing_charges", "billing_timeline"} {
			if err := d.Gorm.Table(table).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(rows)
			for _, s := range []string{name, fingerprint} {
				if strings.Contains(string(b), s) {
					t.Errorf("%s still holds %q after the erasure", table, s)
				}
			}
		}
	})
}
