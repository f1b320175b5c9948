package webhooks

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
)

// CaseHandler turns mirror changes into case changes (cases.Service). It
// owns every case timeline write, the provider's confirmation of a Recourse
// action included.
type CaseHandler interface {
	OnBillingChange(ctx context.Context, tx *gorm.DB, ch billing.Change) error
}

// RegisterBilling registers, for every event type the billing mirror knows,
// the handler that applies the event in its one transaction: the mirror
// first, then cases. The flow goes one way: webhooks → billing → cases.
// cases may be nil (mirror only).
func RegisterBilling(r *Registry, store *billing.Store, cases CaseHandler) {
	// The monthly charge rollup is written once per worker transaction.
	r.WithScope(billing.DeferCounts)
	// Whether a customer is erased is asked for every event, twice; once
	// per customer and transaction is enough.
	r.WithScope(billing.CacheErased)
	r.Handle(func(ctx context.Context, tx *gorm.DB, ev Event) error {
		ch, err := store.In(tx).Apply(ctx, billing.ProviderEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created,
			Livemode: ev.Livemode, APIVersion: ev.APIVersion, Payload: ev.Payload})
		if errors.Is(err, billing.ErrNotBillingEvent) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("apply %s to the billing mirror: %w", ev.Type, err)
		}
		// An erased customer's events keep no raw payload: the mirror has
		// dropped their personal data, and so does the inbox.
		if erased, err := store.In(tx).IsErased(ctx, ch.CustomerID); err != nil {
			return err
		} else if erased {
			if err := store.In(tx).DropPersonalData(ctx, ch.CustomerID); err != nil {
				return err
			}
			if err := emptyPayloadIn(ctx, tx, ev.ID); err != nil {
				return err
			}
		}
		if ch.Duplicate || cases == nil {
			return nil
		}
		if err := cases.OnBillingChange(ctx, tx, ch); err != nil {
			return fmt.Errorf("update cases for %s: %w", ev.Type, err)
		}
		return nil
	}, billing.HandledTypes()...)
}
