package billing

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ChargeMonth is the rollup of successful charges in one UTC month of the
// charges' creation, card brand and currency (table billing_charge_months):
// the denominator of the card networks' dispute-monitoring ratios.
type ChargeMonth struct {
	Month          string `json:"month"` // YYYY-MM
	Brand          string `json:"brand"`
	Currency       string `json:"currency"`
	SucceededCount int64  `json:"succeeded_count"`
}

func (ChargeMonth) TableName() string { return "billing_charge_months" }

type chargeCounted struct {
	ChargeID string
	Month    string
	Brand    string
}

func (chargeCounted) TableName() string { return "billing_charge_counted" }

// countSucceeded adds c to the monthly rollup the first time the mirror
// holds it as succeeded. billing_charge_counted remembers each counted
// charge, so a replayed, duplicate or out-of-order event never counts it
// twice (a charge, once succeeded, stays succeeded: refunds and disputes do
// not change its status).
func (s *Store) countSucceeded(ctx context.Context, c Charge) error {
	if c.Status != "succeeded" || c.Created.IsZero() {
		return nil
	}
	month := c.Created.UTC().Format("2006-01")
	res := s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&chargeCounted{ChargeID: c.ID, Month: month, Brand: c.CardBrand})
	if res.Error != nil {
		return fmt.Errorf("count charge %s: %w", c.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil
	}
	err := s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "month"}, {Name: "brand"}, {Name: "currency"}},
		DoUpdates: clause.Assignments(map[string]any{"succeeded_count": gorm.Expr("billing_charge_months.succeeded_count + 1")}),
	}).Create(&ChargeMonth{Month: month, Brand: c.CardBrand, Currency: c.Currency, SucceededCount: 1}).Error
	if err != nil {
		return fmt.Errorf("count charge %s in %s: %w", c.ID, month, err)
	}
	return nil
}

// ChargeMonths returns the rollup rows for months from..to (inclusive,
// YYYY-MM).
func (s *Store) ChargeMonths(ctx context.Context, from, to string) ([]ChargeMonth, error) {
	var out []ChargeMonth
	if err := s.conn(ctx).Where("month >= ? AND month <= ?", from, to).Order("month, brand, currency").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("charge months %s..%s: %w", from, to, err)
	}
	return out, nil
}
