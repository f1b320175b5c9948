package stripe

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stripemock"
)

func TestFetchAgainstStripeMock(t *testing.T) {
	m := stripemock.Start(t)
	c, err := New(Config{APIKey: "sk_test_123", APIBase: m.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch, err := c.FetchCharge(ctx, "ch_1")
	if err != nil || ch.ID != "ch_1" || ch.Amount <= 0 || ch.Currency == "" {
		t.Fatalf("charge: %+v %v", ch, err)
	}
	sub, err := c.FetchSubscription(ctx, "sub_1")
	if err != nil || sub.ID != "sub_1" || sub.Status == "" || sub.CustomerID == "" {
		t.Fatalf("subscription: %+v %v", sub, err)
	}
	in, err := c.FetchInvoice(ctx, "in_1")
	if err != nil || in.ID != "in_1" || in.Status == "" {
		t.Fatalf("invoice: %+v %v", in, err)
	}
	d, err := c.FetchDispute(ctx, "dp_1")
	if err != nil || d.ID != "dp_1" || d.Status == "" {
		t.Fatalf("dispute: %+v %v", d, err)
	}
	// stripe-mock ignores the charge filter; disputes of other charges are dropped.
	ds, err := c.FetchDisputesByCharge(ctx, "ch_none")
	if err != nil || len(ds) != 0 {
		t.Fatalf("disputes: %+v %v", ds, err)
	}
}

func TestFetchMissingIsNotFound(t *testing.T) {
	c, _ := newRecorded(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such charge: 'ch_gone'"}}`)
	})
	if _, err := c.FetchCharge(context.Background(), "ch_gone"); !errs.Is(err, errs.ENOTFOUND) {
		t.Fatalf("missing charge: %v", err)
	}
}
