package billing

import (
	"context"
	"testing"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

func TestCustomerLists(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		// Two customers: one with a chargeback, one with a refund.
		cb := f.gen.Chargeback(t0, stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent"})
		f.applyAll(cb)
		rf := f.gen.RefundIssued(t0)
		f.applyAll(rf)
		cbCust := cb[0].Object["id"].(string)
		rfCust := firstOf(t, rf, "charge.succeeded").Object["customer"].(string)
		if cbCust == rfCust {
			t.Fatal("the stories share a customer")
		}
		dispute := firstOf(t, cb, "charge.dispute.created").Object["id"].(string)
		refund := firstOf(t, rf, "refund.created").Object["id"].(string)

		invs, err := f.store.InvoicesByCustomer(ctx, cbCust)
		if err != nil || len(invs) == 0 {
			t.Fatalf("invoices of %s: %v %v", cbCust, invs, err)
		}
		for i, inv := range invs {
			if inv.CustomerID != cbCust || (i > 0 && inv.Created.Before(invs[i-1].Created)) {
				t.Fatalf("invoice %d: %+v", i, inv)
			}
		}
		ds, err := f.store.DisputesByCustomer(ctx, cbCust)
		if err != nil || len(ds) != 1 || ds[0].ID != dispute || ds[0].CustomerID != cbCust {
			t.Fatalf("disputes of %s: %+v %v", cbCust, ds, err)
		}
		rs, err := f.store.RefundsByCustomer(ctx, rfCust)
		if err != nil || len(rs) != 1 || rs[0].ID != refund || rs[0].CustomerID != rfCust {
			t.Fatalf("refunds of %s: %+v %v", rfCust, rs, err)
		}
		// Nothing of one customer is listed under the other.
		if ds, _ := f.store.DisputesByCustomer(ctx, rfCust); len(ds) != 0 {
			t.Fatalf("disputes of %s: %+v", rfCust, ds)
		}
		if rs, _ := f.store.RefundsByCustomer(ctx, cbCust); len(rs) != 0 {
			t.Fatalf("refunds of %s: %+v", cbCust, rs)
		}
		for _, id := range []string{"cus_unknown", ""} {
			invs, err1 := f.store.InvoicesByCustomer(ctx, id)
			rs, err2 := f.store.RefundsByCustomer(ctx, id)
			ds, err3 := f.store.DisputesByCustomer(ctx, id)
			if len(invs)+len(rs)+len(ds) != 0 || err1 != nil || err2 != nil || err3 != nil {
				t.Fatalf("customer %q: %d %d %d %v %v %v", id, len(invs), len(rs), len(ds), err1, err2, err3)
			}
		}
	})
}
