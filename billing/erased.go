package billing

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// IsErased reports whether customerID's personal data was erased
// (privacy.Eraser; table erased_customers). The mirror drops personal data
// from every event it applies for such a customer, since the provider keeps
// sending them; an empty id is never erased.
func (s *Store) IsErased(ctx context.Context, customerID string) (bool, error) {
	if customerID == "" {
		return false, nil
	}
	cache, _ := ctx.Value(erasedCacheKey{}).(map[string]bool)
	if erased, ok := cache[customerID]; ok {
		return erased, nil
	}
	var n int64
	if err := s.conn(ctx).Table("erased_customers").Where("customer_id = ?", customerID).Count(&n).Error; err != nil {
		return false, fmt.Errorf("is customer %s erased: %w", customerID, err)
	}
	if cache != nil {
		cache[customerID] = n > 0
	}
	return n > 0, nil
}

type erasedCacheKey struct{}

// CacheErased returns a context under which IsErased asks the database once
// per customer: the webhook worker's scope for one transaction, which asks
// for every event (a batch holds many of one customer), before and after
// applying it. An erasure that commits while the transaction runs is not
// missed: the eraser waits for every older transaction to end and then
// sweeps again (privacy.Eraser).
func CacheErased(ctx context.Context) (context.Context, func(ctx context.Context, tx *gorm.DB) error) {
	return context.WithValue(ctx, erasedCacheKey{}, map[string]bool{}), func(context.Context, *gorm.DB) error { return nil }
}

// ErasedAt returns when customerID's personal data was erased, or nil.
func (s *Store) ErasedAt(ctx context.Context, customerID string) (*time.Time, error) {
	if customerID == "" {
		return nil, nil
	}
	var at []time.Time
	if err := s.conn(ctx).Table("erased_customers").Where("customer_id = ?", customerID).Limit(1).Pluck("erased_at", &at).Error; err != nil {
		return nil, fmt.Errorf("when was customer %s erased: %w", customerID, err)
	}
	if len(at) == 0 {
		return nil, nil
	}
	t := at[0].UTC()
	return &t, nil
}

// withoutPersonalData blanks what identifies the person; ids, amounts,
// states and times stay.
func (c Customer) withoutPersonalData() Customer {
	c.Email, c.Name = "", ""
	return c
}

func (x Subscription) withoutPersonalData() Subscription {
	x.CancellationComment = ""
	return x
}

func (x Invoice) withoutPersonalData() Invoice {
	x.HostedInvoiceURL = "" // the page shows the customer's name and address
	return x
}

func (x Charge) withoutPersonalData() Charge {
	x.FailureMessage = "" // free text from the bank or Stripe
	x.CardFingerprint = ""
	return x
}

// DropPersonalData blanks, in the store's transaction, what the mirror
// keeps about customerID that identifies the person (the fields the
// withoutPersonalData methods blank). The webhook handler calls it after
// applying an event for an erased customer, so an event that was being
// applied while the erasure ran — it checked before the erasure committed
// — cannot leave personal data behind: the erasure waits for the rows the
// event locked, and this runs after them.
func (s *Store) DropPersonalData(ctx context.Context, customerID string) error {
	g := s.conn(ctx)
	for _, st := range []struct{ table, set, where string }{
		{"billing_customers", "email = '', name = ''", "id = ? AND (email <> '' OR name <> '')"},
		{"billing_subscriptions", "cancellation_comment = ''", "customer_id = ? AND cancellation_comment <> ''"},
		{"billing_invoices", "hosted_invoice_url = ''", "customer_id = ? AND hosted_invoice_url <> ''"},
		{"billing_charges", "failure_message = '', card_fingerprint = ''", "customer_id = ? AND (failure_message <> '' OR card_fingerprint <> '')"},
	} {
		if err := g.Exec("UPDATE "+st.table+" SET "+st.set+" WHERE "+st.where, customerID).Error; err != nil {
			return fmt.Errorf("drop personal data of %s from %s: %w", customerID, st.table, err)
		}
	}
	return nil
}
