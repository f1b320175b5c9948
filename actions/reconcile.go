package actions

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
)

// Echoes recognises provider events caused by Recourse's own actions. It
// implements cases.EchoFinder: the case layer asks it, inside the event's
// transaction, and writes the provider's confirmation on the action's case
// itself. Echoes writes nothing and needs no service, so wiring can hand it
// to the case service before the action service exists.
type Echoes struct{}

// FindEcho finds the action that caused a provider event: by the
// idempotency key Stripe echoes in event.request (the key we sent), or, for
// a refund, by the refund the action created (a refund object is created by
// exactly one call; other objects, such as subscriptions, change for many
// reasons, so only the key links them). A pure lookup inside tx.
func (Echoes) FindEcho(ctx context.Context, tx *gorm.DB, idempotencyKey string, object billing.ObjectKind, objectID string) (cases.ActionEcho, bool, error) {
	var r row
	var err error
	switch {
	case strings.HasPrefix(idempotencyKey, "recourse_act_"):
		err = tx.WithContext(ctx).Where("provider_key = ?", idempotencyKey).Take(&r).Error
	case object == billing.KindRefund && objectID != "":
		err = tx.WithContext(ctx).Where("provider_object_id = ? AND type = ?", objectID, string(Refund)).Take(&r).Error
	default:
		return cases.ActionEcho{}, false, nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return cases.ActionEcho{}, false, nil
	}
	if err != nil {
		return cases.ActionEcho{}, false, fmt.Errorf("find the action behind %s %s: %w", object, objectID, err)
	}
	return cases.ActionEcho{ActionID: r.ID, CaseID: r.CaseID}, true, nil
}

var _ cases.EchoFinder = Echoes{}
