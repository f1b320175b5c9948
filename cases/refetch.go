package cases

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
)

// refetchedLinks are the links whose objects reconciliation refetches for
// an open case: what the case is about. Refunds and early fraud warnings
// are reached through their charge.
var refetchedLinks = []struct {
	kind   billing.ObjectKind
	column string
}{
	{billing.KindCustomer, "customer_id"}, {billing.KindSubscription, "subscription_id"}, {billing.KindInvoice, "invoice_id"},
	{billing.KindCharge, "charge_id"}, {billing.KindDispute, "dispute_id"},
}

// OpenCaseObjects lists the provider objects open cases are about — their
// customer, subscription, invoice, charge and dispute — each once, in kind
// then id order. Reconciliation refetches those whose mirror is stale.
func (s *Service) OpenCaseObjects(ctx context.Context) ([]billing.ObjectRef, error) {
	var out []billing.ObjectRef
	for _, l := range refetchedLinks {
		var ids []string
		err := s.db.WithContext(ctx).Model(&caseRow{}).Where("status = ? AND "+l.column+" IS NOT NULL AND "+l.column+" <> ''", string(StatusOpen)).
			Distinct(l.column).Order(l.column).Pluck(l.column, &ids).Error
		if err != nil {
			return nil, fmt.Errorf("list the %ss of open cases: %w", l.kind, err)
		}
		for _, id := range slices.Compact(ids) {
			out = append(out, billing.ObjectRef{Kind: l.kind, ID: id})
		}
	}
	return out, nil
}

// CasesOfEvent counts the cases whose timeline names eventID: the cases a
// billing change reached (OnBillingChange writes at most one entry per case
// and event), read in tx.
func (s *Service) CasesOfEvent(ctx context.Context, tx *gorm.DB, eventID string) (int, error) {
	var n int64
	if err := tx.WithContext(ctx).Model(&entryRow{}).Where("event_id = ?", eventID).Distinct("case_id").Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count the cases of event %s: %w", eventID, err)
	}
	return int(n), nil
}
