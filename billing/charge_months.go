package billing

import (
	"cmp"
	"context"
	"fmt"
	"slices"

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
	if d, ok := ctx.Value(deferredCountsKey{}).(*deferredCounts); ok {
		d.add(ChargeMonth{Month: month, Brand: c.CardBrand, Currency: c.Currency})
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

type deferredCountsKey struct{}

// deferredCounts are the rollup increments of one transaction, not yet
// written.
type deferredCounts struct{ n map[ChargeMonth]int64 }

func (d *deferredCounts) add(k ChargeMonth) { d.n[k]++ }

// DeferCounts returns a context under which applying events adds to the
// monthly rollup only when flush runs (in the same transaction, before it
// commits), in one sorted pass. A rollup row is shared by every charge of
// its month, brand and currency: a transaction applying many events
// (the webhook worker's batches) would otherwise hold several of them from
// its first charge to its commit, in event order, and two such
// transactions deadlock on them. Flushed in key order, they cannot.
func DeferCounts(ctx context.Context) (context.Context, func(ctx context.Context, tx *gorm.DB) error) {
	d := &deferredCounts{n: map[ChargeMonth]int64{}}
	return context.WithValue(ctx, deferredCountsKey{}, d), func(ctx context.Context, tx *gorm.DB) error {
		keys := make([]ChargeMonth, 0, len(d.n))
		for k := range d.n {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b ChargeMonth) int {
			return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Brand, b.Brand), cmp.Compare(a.Currency, b.Currency))
		})
		for _, k := range keys {
			k.SucceededCount = d.n[k]
			err := tx.WithContext(ctx).Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "month"}, {Name: "brand"}, {Name: "currency"}},
				DoUpdates: clause.Assignments(map[string]any{"succeeded_count": gorm.Expr("billing_charge_months.succeeded_count + ?", k.SucceededCount)}),
			}).Create(&k).Error
			if err != nil {
				return fmt.Errorf("count charges in %s: %w", k.Month, err)
			}
		}
		clear(d.n)
		return nil
	}
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
