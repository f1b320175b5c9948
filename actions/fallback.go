package actions

import (
	"context"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/errs"
)

// fallbackMirror reads the billing mirror first and, for an object the
// mirror has never seen, asks the provider, so that policy is checked on
// the provider's truth rather than refused for want of a webhook.
type fallbackMirror struct {
	Mirror
	f billing.Fetcher
}

func (m fallbackMirror) Charge(ctx context.Context, id string) (billing.Charge, error) {
	c, err := m.Mirror.Charge(ctx, id)
	if errs.Is(err, errs.ENOTFOUND) {
		return m.f.FetchCharge(ctx, id)
	}
	return c, err
}

func (m fallbackMirror) Subscription(ctx context.Context, id string) (billing.Subscription, error) {
	s, err := m.Mirror.Subscription(ctx, id)
	if errs.Is(err, errs.ENOTFOUND) {
		return m.f.FetchSubscription(ctx, id)
	}
	return s, err
}

func (m fallbackMirror) Invoice(ctx context.Context, id string) (billing.Invoice, error) {
	in, err := m.Mirror.Invoice(ctx, id)
	if errs.Is(err, errs.ENOTFOUND) {
		return m.f.FetchInvoice(ctx, id)
	}
	return in, err
}

func (m fallbackMirror) Dispute(ctx context.Context, id string) (billing.Dispute, error) {
	d, err := m.Mirror.Dispute(ctx, id)
	if errs.Is(err, errs.ENOTFOUND) {
		return m.f.FetchDispute(ctx, id)
	}
	return d, err
}

// DisputesByCharge trusts the mirror for charges it holds (their dispute
// webhooks come with them) and asks the provider for the others.
func (m fallbackMirror) DisputesByCharge(ctx context.Context, chargeID string) ([]billing.Dispute, error) {
	ds, err := m.Mirror.DisputesByCharge(ctx, chargeID)
	if err != nil || len(ds) > 0 {
		return ds, err
	}
	if _, err := m.Mirror.Charge(ctx, chargeID); errs.Is(err, errs.ENOTFOUND) {
		return m.f.FetchDisputesByCharge(ctx, chargeID)
	}
	return ds, nil
}
