package stripe

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stripemock"
)

// Every kind reconciliation reads, read from stripe-mock and applied to
// the mirror as a provider read, on both databases.
func TestReadObjectAgainstStripeMock(t *testing.T) {
	m := stripemock.Start(t)
	c, err := New(Config{APIKey: "sk_test_123", APIBase: m.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refs := []billing.ObjectRef{{Kind: billing.KindCustomer, ID: "cus_read1"}, {Kind: billing.KindSubscription, ID: "sub_read1"},
		{Kind: billing.KindInvoice, ID: "in_read1"}, {Kind: billing.KindCharge, ID: "ch_read1"}, {Kind: billing.KindDispute, ID: "dp_read1"}}
	if len(refs) != len(billing.ReadableKinds) {
		t.Fatalf("test reads %d kinds, billing reads %d", len(refs), len(billing.ReadableKinds))
	}
	payloads := map[billing.ObjectRef][]byte{}
	for _, ref := range refs {
		b, err := c.ReadObject(ctx, ref)
		if err != nil {
			t.Fatalf("read %s: %v", ref, err)
		}
		payloads[ref] = b
	}
	if _, err := c.ReadObject(ctx, billing.ObjectRef{Kind: billing.KindRefund, ID: "re_1"}); !errs.Is(err, errs.EINVALID) {
		t.Fatalf("refund read: %v", err)
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clk := clock.NewManual(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
		st := billing.NewStore(d, clk)
		for _, ref := range refs {
			res, err := st.ApplyRead(ctx, billing.ProviderRead{Ref: ref, At: clk.Now(), Payload: payloads[ref]})
			if err != nil {
				t.Fatalf("apply read of %s: %v", ref, err)
			}
			if !res.Changed || res.Change.ObjectID != ref.ID || res.Change.EventID != billing.ReadID(ref, clk.Now()) {
				t.Fatalf("read of %s: %+v", ref, res)
			}
		}
		dp, err := st.Dispute(ctx, "dp_read1")
		if err != nil || dp.Status == "" || dp.Amount <= 0 || !dp.EventCreated.Equal(clk.Now()) {
			t.Fatalf("mirrored dispute %+v %v", dp, err)
		}
		sub, err := st.Subscription(ctx, "sub_read1")
		if err != nil || sub.Status == "" || sub.CustomerID == "" {
			t.Fatalf("mirrored subscription %+v %v", sub, err)
		}
	})
}

// A 404 is ENOTFOUND; a 500 a provider error worth a later retry.
func TestReadObjectErrors(t *testing.T) {
	c, _ := newRecorded(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/charges/ch_gone" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such charge: 'ch_gone'"}}`)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"type":"api_error","message":"boom"}}`)
	})
	ctx := context.Background()
	if _, err := c.ReadObject(ctx, billing.ObjectRef{Kind: billing.KindCharge, ID: "ch_gone"}); !errs.Is(err, errs.ENOTFOUND) {
		t.Fatalf("missing charge: %v", err)
	}
	if _, err := c.ReadObject(ctx, billing.ObjectRef{Kind: billing.KindDispute, ID: "dp_1"}); !errs.Is(err, errs.EUNAVAILABLE) {
		t.Fatalf("500: %v", err)
	}
}
