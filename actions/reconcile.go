package actions

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
)

// Link is an action that a provider event was caused by.
type Link struct {
	ActionID string
	CaseID   string
	Type     Type
}

// LinkEvent finds the action that caused a provider event: by the
// idempotency key Stripe echoes in event.request (the key we sent), or by
// the provider object the action created. When found, the event's fact is
// put on the action's case timeline as the provider's confirmation, so the
// webhook reads as the echo of our own action, not a new surprise. Runs in
// the event's transaction.
func (s *Service) LinkEvent(ctx context.Context, tx *gorm.DB, ch billing.Change) (Link, bool, error) {
	var r row
	var err error
	switch {
	case strings.HasPrefix(ch.IdempotencyKey, "recourse_act_"):
		err = tx.WithContext(ctx).Where("provider_key = ?", ch.IdempotencyKey).Take(&r).Error
	case ch.Object == billing.KindRefund && ch.ObjectID != "":
		// A refund object is created by exactly one call; other objects
		// (subscriptions) change for many reasons, so only the key links them.
		err = tx.WithContext(ctx).Where("provider_object_id = ? AND type = ?", ch.ObjectID, string(Refund)).Take(&r).Error
	default:
		return Link{}, false, nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Link{}, false, nil
	}
	if err != nil {
		return Link{}, false, fmt.Errorf("link event %s to an action: %w", ch.EventID, err)
	}
	summary := ch.Summary
	if summary == "" {
		summary = ch.EventType
	}
	summary = fmt.Sprintf("Stripe confirmed %s: %s", r.ID, summary)
	if err := s.cases.Record(ctx, tx, r.CaseID, "stripe", "provider_confirmation", summary, ch.EventID); err != nil {
		return Link{}, false, err
	}
	return Link{ActionID: r.ID, CaseID: r.CaseID, Type: Type(r.Type)}, true, nil
}
