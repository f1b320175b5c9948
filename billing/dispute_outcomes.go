package billing

import (
	"context"
	"fmt"
)

// DisputeOutcomes counts the mirrored chargebacks of one Stripe reason and
// card brand (as stored: reason and brand lower-case) that were decided:
// won and lost. Inquiries and open disputes are not counted. An empty brand
// counts every brand.
func (s *Store) DisputeOutcomes(ctx context.Context, reason, brand string) (won, lost int64, err error) {
	type count struct {
		Status string
		N      int64
	}
	q := s.conn(ctx).Table("billing_disputes").Select("status, count(*) AS n").
		Where("reason = ? AND status IN ?", reason, []string{DisputeStatusWon, DisputeStatusLost})
	if brand != "" {
		q = q.Where("lower(card_brand) = ?", brand)
	}
	var rows []count
	if err := q.Group("status").Scan(&rows).Error; err != nil {
		return 0, 0, fmt.Errorf("count decided %s disputes (%s): %w", reason, brand, err)
	}
	for _, r := range rows {
		switch r.Status {
		case DisputeStatusWon:
			won = r.N
		case DisputeStatusLost:
			lost = r.N
		}
	}
	return won, lost, nil
}
