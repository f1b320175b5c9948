package billing

import (
	"context"
	"fmt"
)

// IsErased reports whether customerID's personal data was erased
// (privacy.Eraser; table erased_customers). The mirror drops personal data
// from every event it applies for such a customer, since the provider keeps
// sending them; an empty id is never erased.
func (s *Store) IsErased(ctx context.Context, customerID string) (bool, error) {
	if customerID == "" {
		return false, nil
	}
	var n int64
	if err := s.conn(ctx).Table("erased_customers").Where("customer_id = ?", customerID).Count(&n).Error; err != nil {
		return false, fmt.Errorf("is customer %s erased: %w", customerID, err)
	}
	return n > 0, nil
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
