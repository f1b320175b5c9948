package stripe

import (
	"context"
	"errors"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/errs"
)

var _ billing.Fetcher = (*Client)(nil)

func unix(t int64) time.Time {
	if t <= 0 {
		return time.Time{}
	}
	return time.Unix(t, 0).UTC()
}

func unixp(t int64) *time.Time {
	if t <= 0 {
		return nil
	}
	u := time.Unix(t, 0).UTC()
	return &u
}

func fetchErr(kind, id string, err error) error {
	var se *stripego.Error
	if errors.As(err, &se) && (se.HTTPStatusCode == http.StatusNotFound || se.Code == stripego.ErrorCodeResourceMissing) {
		return errs.NotFound("%s %s does not exist at Stripe", kind, id)
	}
	return billing.AsCoded(wrap("fetch "+kind, err))
}

// FetchCharge reads a charge from Stripe (card: brand and last four only).
func (c *Client) FetchCharge(ctx context.Context, id string) (billing.Charge, error) {
	p := &stripego.ChargeParams{}
	p.Context = ctx
	ch, err := c.api.Charges.Get(id, p)
	if err != nil {
		return billing.Charge{}, fetchErr("charge", id, err)
	}
	out := billing.Charge{ID: ch.ID, Amount: ch.Amount, AmountRefunded: ch.AmountRefunded, Currency: string(ch.Currency),
		Status: string(ch.Status), Paid: ch.Paid, Disputed: ch.Disputed, Refunded: ch.Refunded,
		FailureCode: ch.FailureCode, FailureMessage: ch.FailureMessage, Created: unix(ch.Created)}
	if ch.Customer != nil {
		out.CustomerID = ch.Customer.ID
	}
	if ch.Invoice != nil {
		out.InvoiceID = ch.Invoice.ID
	}
	if ch.PaymentIntent != nil {
		out.PaymentIntentID = ch.PaymentIntent.ID
	}
	if pm := ch.PaymentMethodDetails; pm != nil && pm.Card != nil {
		out.CardBrand, out.CardLast4, out.CardFingerprint = string(pm.Card.Brand), pm.Card.Last4, pm.Card.Fingerprint
	}
	return out, nil
}

// FetchSubscription reads a subscription from Stripe.
func (c *Client) FetchSubscription(ctx context.Context, id string) (billing.Subscription, error) {
	p := &stripego.SubscriptionParams{}
	p.Context = ctx
	s, err := c.api.Subscriptions.Get(id, p)
	if err != nil {
		return billing.Subscription{}, fetchErr("subscription", id, err)
	}
	out := billing.Subscription{ID: s.ID, Status: string(s.Status), TrialStart: unixp(s.TrialStart), TrialEnd: unixp(s.TrialEnd),
		CurrentPeriodStart: unixp(s.CurrentPeriodStart), CurrentPeriodEnd: unixp(s.CurrentPeriodEnd),
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CancelAt: unixp(s.CancelAt), CanceledAt: unixp(s.CanceledAt), EndedAt: unixp(s.EndedAt),
		Currency: string(s.Currency), HasDefaultPaymentMethod: s.DefaultPaymentMethod != nil || s.DefaultSource != nil, Created: unix(s.Created)}
	if s.Customer != nil {
		out.CustomerID = s.Customer.ID
	}
	if s.PauseCollection != nil {
		out.PauseCollection = string(s.PauseCollection.Behavior)
		out.PauseResumesAt = unixp(s.PauseCollection.ResumesAt)
	}
	if s.LatestInvoice != nil {
		out.LatestInvoiceID = s.LatestInvoice.ID
	}
	if s.Items != nil && len(s.Items.Data) > 0 && s.Items.Data[0].Price != nil {
		it := s.Items.Data[0]
		out.PriceID, out.Amount = it.Price.ID, it.Price.UnitAmount*max(it.Quantity, 1)
		if it.Price.Recurring != nil {
			out.Interval = string(it.Price.Recurring.Interval)
		}
		if it.Price.Product != nil {
			out.ProductID = it.Price.Product.ID
		}
	}
	return out, nil
}

// FetchInvoice reads an invoice from Stripe.
func (c *Client) FetchInvoice(ctx context.Context, id string) (billing.Invoice, error) {
	p := &stripego.InvoiceParams{}
	p.Context = ctx
	in, err := c.api.Invoices.Get(id, p)
	if err != nil {
		return billing.Invoice{}, fetchErr("invoice", id, err)
	}
	out := billing.Invoice{ID: in.ID, Status: string(in.Status), BillingReason: string(in.BillingReason), AttemptCount: int(in.AttemptCount),
		NextPaymentAttempt: unixp(in.NextPaymentAttempt), AmountDue: in.AmountDue, AmountPaid: in.AmountPaid,
		AmountRemaining: in.AmountRemaining, Currency: string(in.Currency), HostedInvoiceURL: in.HostedInvoiceURL, Created: unix(in.Created)}
	if in.Customer != nil {
		out.CustomerID = in.Customer.ID
	}
	if in.Subscription != nil {
		out.SubscriptionID = in.Subscription.ID
	}
	if in.Charge != nil {
		out.ChargeID = in.Charge.ID
	}
	if in.PaymentIntent != nil {
		out.PaymentIntentID = in.PaymentIntent.ID
	}
	return out, nil
}

func dispute(d *stripego.Dispute) billing.Dispute {
	out := billing.Dispute{ID: d.ID, Amount: d.Amount, Currency: string(d.Currency), Status: string(d.Status), Reason: string(d.Reason),
		IsChargeRefundable: d.IsChargeRefundable, Created: unix(d.Created)}
	if d.Charge != nil {
		out.ChargeID = d.Charge.ID
	}
	if d.PaymentIntent != nil {
		out.PaymentIntentID = d.PaymentIntent.ID
	}
	if e := d.EvidenceDetails; e != nil {
		out.EvidenceDueBy, out.HasEvidence, out.PastDue, out.SubmissionCount = unixp(e.DueBy), e.HasEvidence, e.PastDue, int(e.SubmissionCount)
	}
	return out
}

// FetchDispute reads a dispute from Stripe.
func (c *Client) FetchDispute(ctx context.Context, id string) (billing.Dispute, error) {
	p := &stripego.DisputeParams{}
	p.Context = ctx
	d, err := c.api.Disputes.Get(id, p)
	if err != nil {
		return billing.Dispute{}, fetchErr("dispute", id, err)
	}
	return dispute(d), nil
}

// FetchDisputesByCharge lists the charge's disputes at Stripe.
func (c *Client) FetchDisputesByCharge(ctx context.Context, chargeID string) ([]billing.Dispute, error) {
	p := &stripego.DisputeListParams{Charge: stripego.String(chargeID)}
	p.Context = ctx
	it := c.api.Disputes.List(p)
	var out []billing.Dispute
	for it.Next() {
		d := dispute(it.Dispute())
		if d.ChargeID == chargeID { // a mock may ignore the filter; never trust another charge's dispute
			out = append(out, d)
		}
		if len(out) >= 100 {
			break
		}
	}
	if err := it.Err(); err != nil {
		return nil, fetchErr("disputes of charge", chargeID, err)
	}
	return out, nil
}
