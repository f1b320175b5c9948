package billing

import (
	"context"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// TestCacheErasedAsksOncePerCustomer: under CacheErased the first answer
// for a customer holds for the rest of the scope (one transaction of the
// worker); outside it, every call reads the table.
func TestCacheErasedAsksOncePerCustomer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		erase := func(id string) {
			t.Helper()
			if err := d.Gorm.Exec("INSERT INTO erased_customers (customer_id, erased_at) VALUES (?, ?)", id, time.Now()).Error; err != nil {
				t.Fatal(err)
			}
		}
		is := func(ctx context.Context, id string) bool {
			t.Helper()
			e, err := f.store.IsErased(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		erase("cus_gone")
		cctx, flush := CacheErased(ctx)
		if !is(cctx, "cus_gone") || is(cctx, "cus_here") || is(cctx, "") {
			t.Fatal("first answers wrong")
		}
		erase("cus_here")
		if is(cctx, "cus_here") {
			t.Fatal("within the scope, cus_here was read again")
		}
		if !is(ctx, "cus_here") {
			t.Fatal("outside the scope, the erasure is not seen")
		}
		if c2, _ := CacheErased(ctx); !is(c2, "cus_here") {
			t.Fatal("a new scope does not read afresh")
		}
		if err := flush(ctx, d.Gorm); err != nil {
			t.Fatal(err)
		}
	})
}
