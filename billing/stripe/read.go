package stripe

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/errs"
)

var _ billing.ObjectReader = (*Client)(nil)

// readPaths are Stripe's GET endpoints of the kinds ReadObject reads.
var readPaths = map[billing.ObjectKind]string{
	billing.KindCustomer:     "/v1/customers/",
	billing.KindSubscription: "/v1/subscriptions/",
	billing.KindInvoice:      "/v1/invoices/",
	billing.KindCharge:       "/v1/charges/",
	billing.KindDispute:      "/v1/disputes/",
}

// rawObject keeps only the answer's raw JSON: decoding it into stripe-go's
// types would drop what v76 does not model.
type rawObject struct {
	stripego.APIResource
}

// ReadObject reads the object's current copy from Stripe (GET
// /v1/customers/{id}, /v1/subscriptions/{id}, /v1/invoices/{id},
// /v1/charges/{id}, /v1/disputes/{id}) and returns Stripe's JSON of it,
// unexpanded: the shape an event's data.object carries, which the mirror
// parses the same way. ENOTFOUND when Stripe has no such object.
func (c *Client) ReadObject(ctx context.Context, ref billing.ObjectRef) (json.RawMessage, error) {
	path, ok := readPaths[ref.Kind]
	if !ok {
		return nil, errs.Invalid("Recourse does not read %ss from Stripe", ref.Kind)
	}
	// Every resource client shares the API's backend and key; the
	// customers' is as good as any.
	var v rawObject
	err := c.api.Customers.B.Call(http.MethodGet, path+url.PathEscape(ref.ID), c.api.Customers.Key,
		&stripego.Params{Context: ctx}, &v)
	if err != nil {
		return nil, fetchErr(string(ref.Kind), ref.ID, err)
	}
	if v.LastResponse == nil || len(v.LastResponse.RawJSON) == 0 {
		return nil, errs.Coded(errs.EUNAVAILABLE, "provider_unavailable", "Stripe answered the read of %s without a body", ref)
	}
	return json.RawMessage(v.LastResponse.RawJSON), nil
}
