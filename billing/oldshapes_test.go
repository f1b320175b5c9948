package billing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Older API versions: what can be derived is derived; only what cannot be
// read at all is refused, with a reason a person understands.
func TestOlderPayloadShapes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		at := t0.Add(time.Hour)

		// A dispute without an id is keyed by its charge.
		ch := f.apply(f.event("charge.dispute.created", map[string]any{"object": "dispute", "charge": "ch_old1",
			"amount": 2500, "currency": "usd", "status": "needs_response", "reason": "fraudulent"}, at))
		eq(t, "dispute id", ch.ObjectID, "ch_old1")
		eq(t, "dispute charge", ch.Dispute.ChargeID, "ch_old1")
		// Neither id nor charge: refused, saying why.
		_, err := f.tryApply(f.event("charge.dispute.created", map[string]any{"object": "dispute", "amount": 1}, at))
		if !errs.Is(err, errs.EINVALID) || !strings.Contains(err.Error(), "cannot tell which dispute") {
			t.Fatalf("dispute without id or charge: %v", err)
		}

		// Invoices before 2018-11-08: status from forgiven/paid/closed, date
		// for created.
		for _, c := range []struct {
			id     string
			fields map[string]any
			want   string
		}{
			{"in_old_open", map[string]any{"paid": false, "closed": false}, "open"},
			{"in_old_closed", map[string]any{"paid": false, "closed": true}, "open"},
			{"in_old_paid", map[string]any{"paid": true, "closed": true}, "paid"},
			{"in_old_forgiven", map[string]any{"paid": false, "closed": true, "forgiven": true}, "uncollectible"},
		} {
			obj := map[string]any{"id": c.id, "object": "invoice", "customer": "cus_old", "subscription": "sub_old",
				"amount_due": 900, "currency": "usd", "date": t0.Add(-time.Hour).Unix()}
			for k, v := range c.fields {
				obj[k] = v
			}
			ch := f.apply(f.event("invoice.updated", obj, at))
			eq(t, c.id+" status", ch.Invoice.Status, c.want)
			eq(t, c.id+" created", ch.Invoice.Created.Unix(), t0.Add(-time.Hour).Unix())
		}

		// invoice.upcoming: no id, a notice.
		up := f.apply(f.event("invoice.upcoming", map[string]any{"object": "invoice", "customer": "cus_old",
			"amount_due": 900, "currency": "usd", "subscription": "sub_old", "next_payment_attempt": t0.Add(72 * time.Hour).Unix()}, at))
		if !up.Upcoming || up.Invoice == nil || !strings.Contains(up.Summary, "Upcoming") {
			t.Fatalf("upcoming: %+v", up)
		}
	})
}

type fakeFetcher struct {
	charges map[string]Charge
	calls   int
}

func (f *fakeFetcher) FetchCharge(ctx context.Context, id string) (Charge, error) {
	f.calls++
	if c, ok := f.charges[id]; ok {
		return c, nil
	}
	return Charge{}, errors.New("dial tcp: connection refused")
}
func (f *fakeFetcher) FetchSubscription(context.Context, string) (Subscription, error) {
	return Subscription{}, errs.NotFound("no")
}
func (f *fakeFetcher) FetchInvoice(context.Context, string) (Invoice, error) {
	return Invoice{}, errs.NotFound("no")
}
func (f *fakeFetcher) FetchDispute(context.Context, string) (Dispute, error) {
	return Dispute{}, errs.NotFound("no")
}
func (f *fakeFetcher) FetchDisputesByCharge(context.Context, string) ([]Dispute, error) {
	return nil, nil
}

// A dispute, refund or fraud warning on a charge the mirror has never seen
// asks the provider for the charge's customer (and card), once; when the
// provider cannot be reached the event still applies and says why.
func TestUnmirroredChargeAskedOfProvider(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		fetch := &fakeFetcher{charges: map[string]Charge{"ch_far": {ID: "ch_far", CustomerID: "cus_far", CardBrand: "visa"}}}
		f.store = NewStore(d, f.clock, WithFetcher(fetch, time.Second))
		at := t0.Add(time.Hour)

		ch := f.apply(f.event("charge.dispute.created", map[string]any{"id": "dp_far", "object": "dispute", "charge": "ch_far",
			"amount": 2500, "currency": "usd", "status": "needs_response"}, at))
		if ch.CustomerID != "cus_far" || ch.Dispute.CardBrand != "visa" || ch.ChargeLookup == nil || !ch.ChargeLookup.Fetched {
			t.Fatalf("fetched: %+v %+v", ch.Dispute, ch.ChargeLookup)
		}
		// The customer is kept: a later event does not ask again.
		ch = f.apply(f.event("charge.dispute.updated", map[string]any{"id": "dp_far", "object": "dispute", "charge": "ch_far",
			"amount": 2500, "currency": "usd", "status": "under_review"}, at.Add(time.Minute)))
		eq(t, "calls", fetch.calls, 1)
		eq(t, "customer kept", ch.CustomerID, "cus_far")

		ch = f.apply(f.event("radar.early_fraud_warning.created", map[string]any{"id": "issfr_down", "object": "radar.early_fraud_warning",
			"charge": "ch_down", "actionable": true, "fraud_type": "made_with_stolen_card"}, at))
		if ch.CustomerID != "" || ch.ChargeLookup == nil || ch.ChargeLookup.Fetched || ch.ChargeLookup.Err == "" {
			t.Fatalf("unreachable: %+v", ch.ChargeLookup)
		}
		// A mirrored charge is never asked for.
		f.apply(f.event("charge.succeeded", map[string]any{"id": "ch_home", "object": "charge", "amount": 100, "currency": "usd",
			"status": "succeeded"}, at))
		calls := fetch.calls
		ch = f.apply(f.event("charge.refund.updated", map[string]any{"id": "re_home", "object": "refund", "charge": "ch_home",
			"amount": 100, "currency": "usd", "status": "succeeded"}, at.Add(time.Minute)))
		if fetch.calls != calls || ch.ChargeLookup != nil {
			t.Fatalf("asked for a mirrored charge: %d calls, %+v", fetch.calls-calls, ch.ChargeLookup)
		}
	})
}
