package stripe

import (
	"context"
	"encoding/json"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/errs"
)

var _ billing.ObjectReader = (*Client)(nil)

// ReadObject reads the object's current copy from Stripe (GET
// /v1/customers/{id}, /v1/subscriptions/{id}, /v1/invoices/{id},
// /v1/charges/{id}, /v1/disputes/{id}) and returns Stripe's JSON of it,
// unexpanded: the shape an event's data.object carries, which the mirror
// parses the same way. ENOTFOUND when Stripe has no such object.
func (c *Client) ReadObject(ctx context.Context, ref billing.ObjectRef) (json.RawMessage, error) {
	var resp *stripego.APIResponse
	var err error
	switch ref.Kind {
	case billing.KindCustomer:
		p := &stripego.CustomerParams{}
		p.Context = ctx
		var v *stripego.Customer
		if v, err = c.api.Customers.Get(ref.ID, p); err == nil {
			resp = v.LastResponse
		}
	case billing.KindSubscription:
		p := &stripego.SubscriptionParams{}
		p.Context = ctx
		var v *stripego.Subscription
		if v, err = c.api.Subscriptions.Get(ref.ID, p); err == nil {
			resp = v.LastResponse
		}
	case billing.KindInvoice:
		p := &stripego.InvoiceParams{}
		p.Context = ctx
		var v *stripego.Invoice
		if v, err = c.api.Invoices.Get(ref.ID, p); err == nil {
			resp = v.LastResponse
		}
	case billing.KindCharge:
		p := &stripego.ChargeParams{}
		p.Context = ctx
		var v *stripego.Charge
		if v, err = c.api.Charges.Get(ref.ID, p); err == nil {
			resp = v.LastResponse
		}
	case billing.KindDispute:
		p := &stripego.DisputeParams{}
		p.Context = ctx
		var v *stripego.Dispute
		if v, err = c.api.Disputes.Get(ref.ID, p); err == nil {
			resp = v.LastResponse
		}
	default:
		return nil, errs.Invalid("Recourse does not read %ss from Stripe", ref.Kind)
	}
	if err != nil {
		return nil, fetchErr(string(ref.Kind), ref.ID, err)
	}
	if resp == nil || len(resp.RawJSON) == 0 {
		return nil, errs.Coded(errs.EUNAVAILABLE, "provider_unavailable", "Stripe answered the read of %s without a body", ref)
	}
	return json.RawMessage(resp.RawJSON), nil
}
