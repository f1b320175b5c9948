package billing

import (
	"context"
	"fmt"
)

// The lists below are what the console's Customer 360 shows: everything
// the mirror holds about one customer, each oldest first (empty, not an
// error, when there is nothing).

// InvoicesByCustomer returns the customer's mirrored invoices, oldest
// first, LastFailureCode filled as Invoice does.
func (s *Store) InvoicesByCustomer(ctx context.Context, customerID string) ([]Invoice, error) {
	if customerID == "" {
		return []Invoice{}, nil // '' is "no customer", not a customer
	}
	var rows []invoiceRow
	if err := s.conn(ctx).Where("customer_id = ?", customerID).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list invoices of customer %s: %w", customerID, err)
	}
	out := make([]Invoice, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		out[i] = rows[i].Invoice
	}
	return s.withFailureCodes(ctx, out)
}

// RefundsByCustomer returns the refunds of the customer's mirrored
// charges, oldest first (a refund of a charge the mirror has not seen
// cannot be tied to the customer and is not listed).
func (s *Store) RefundsByCustomer(ctx context.Context, customerID string) ([]Refund, error) {
	var rows []refundRow
	if err := s.conn(ctx).Where("charge_id IN (?)", s.chargeIDsOf(ctx, customerID)).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list refunds of customer %s: %w", customerID, err)
	}
	out := make([]Refund, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		rows[i].CustomerID = customerID
		out[i] = rows[i].Refund
	}
	return out, nil
}

// DisputesByCustomer returns the disputes (inquiries included) of the
// customer's mirrored charges, oldest first.
func (s *Store) DisputesByCustomer(ctx context.Context, customerID string) ([]Dispute, error) {
	var rows []disputeRow
	if err := s.conn(ctx).Where("charge_id IN (?)", s.chargeIDsOf(ctx, customerID)).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list disputes of customer %s: %w", customerID, err)
	}
	out := make([]Dispute, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		rows[i].CustomerID = customerID
		out[i] = rows[i].Dispute
	}
	return out, nil
}

// chargeIDsOf is the subquery of the customer's charge ids
// (billing_charges_customer_idx).
func (s *Store) chargeIDsOf(ctx context.Context, customerID string) any {
	return s.conn(ctx).Model(&chargeRow{}).Select("id").Where("customer_id = ? AND customer_id <> ''", customerID)
}
