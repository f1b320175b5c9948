package billing

import (
	"context"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// The monthly rollup of successful charges counts each charge once, in the
// month it was created, however its events arrive.
func TestChargeMonthsCountEachSucceededChargeOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		visa := f.gen.NewCard("visa")
		mc := f.gen.NewCard("mastercard")
		march := time.Date(2026, 3, 31, 23, 59, 0, 0, time.UTC)
		april := time.Date(2026, 4, 1, 0, 1, 0, 0, time.UTC)
		ev := func(id, typ string, p stripetest.ChargeParams, at time.Time) stripetest.Event {
			return f.gen.NewEvent(typ, f.gen.Charge(p), stripetest.WithEventID(id), stripetest.WithCreated(at))
		}
		pending := ev("evt_c1a", "charge.updated", stripetest.ChargeParams{ID: "ch_m1", Amount: 100, Currency: "usd", Status: "pending", Card: visa, Created: march}, march)
		succeeded := ev("evt_c1b", "charge.succeeded", stripetest.ChargeParams{ID: "ch_m1", Amount: 100, Currency: "usd", Status: "succeeded", Card: visa, Created: march}, march.Add(time.Second))
		refunded := ev("evt_c1c", "charge.refunded", stripetest.ChargeParams{ID: "ch_m1", Amount: 100, Currency: "usd", Status: "succeeded", AmountRefunded: 100, Card: visa, Created: march}, april)
		f.apply(succeeded)
		f.apply(pending)   // older, out of order
		f.apply(succeeded) // replay
		f.apply(refunded)  // a later change to a counted charge
		f.apply(ev("evt_c2", "charge.succeeded", stripetest.ChargeParams{ID: "ch_m2", Amount: 100, Currency: "usd", Card: visa, Created: april}, april))
		f.apply(ev("evt_c3", "charge.succeeded", stripetest.ChargeParams{ID: "ch_m3", Amount: 100, Currency: "eur", Card: mc, Created: april}, april))
		f.apply(ev("evt_c4", "charge.failed", stripetest.ChargeParams{ID: "ch_m4", Amount: 100, Currency: "usd", Status: "failed", Card: visa, Created: april}, april))

		got, err := f.store.ChargeMonths(context.Background(), "2026-01", "2026-12")
		if err != nil {
			t.Fatal(err)
		}
		want := []ChargeMonth{{"2026-03", "visa", "usd", 1}, {"2026-04", "mastercard", "eur", 1}, {"2026-04", "visa", "usd", 1}}
		if len(got) != len(want) {
			t.Fatalf("rollup = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("rollup = %+v, want %+v", got, want)
			}
		}
	})
}
