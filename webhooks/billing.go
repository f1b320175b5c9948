package webhooks

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
)

// CaseHandler turns mirror changes into case changes (cases.Service).
type CaseHandler interface {
	OnBillingChange(ctx context.Context, tx *gorm.DB, ch billing.Change) error
}

// ActionLinker recognises events caused by Recourse's own actions
// (actions.Service).
type ActionLinker interface {
	LinkEvent(ctx context.Context, tx *gorm.DB, ch billing.Change) (actions.Link, bool, error)
}

// RegisterBilling registers, for every event type the billing mirror knows,
// the handler that applies the event in its one transaction: the mirror
// first, then the link to the action that caused it (if any), then cases.
// links may be nil.
func RegisterBilling(r *Registry, store *billing.Store, links ActionLinker, cases CaseHandler) {
	r.Handle(func(ctx context.Context, tx *gorm.DB, ev Event) error {
		ch, err := store.In(tx).Apply(ctx, billing.ProviderEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created,
			Livemode: ev.Livemode, APIVersion: ev.APIVersion, Payload: ev.Payload})
		if errors.Is(err, billing.ErrNotBillingEvent) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("apply %s to the billing mirror: %w", ev.Type, err)
		}
		if ch.Duplicate {
			return nil
		}
		if links != nil {
			link, ok, err := links.LinkEvent(ctx, tx, ch)
			if err != nil {
				return err
			}
			if ok {
				ch.ActionCaseID = link.CaseID
			}
		}
		if cases != nil {
			if err := cases.OnBillingChange(ctx, tx, ch); err != nil {
				return fmt.Errorf("update cases for %s: %w", ev.Type, err)
			}
		}
		return nil
	}, billing.HandledTypes()...)
}
