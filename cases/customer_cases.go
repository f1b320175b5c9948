package cases

import (
	"context"
	"fmt"
)

// maxCountIDs bounds one OpenCaseCounts call (a search page is at most 100).
const maxCountIDs = 1000

// OpenCaseCounts returns how many open cases each of customerIDs has;
// customers without open cases are absent from the map. It is what
// customer search shows beside each customer (billing.OpenCaseCounter),
// one indexed query per page (cases_customer_open_idx). EINTERNAL from the
// database; more than 1,000 ids is a programming error.
func (s *Service) OpenCaseCounts(ctx context.Context, customerIDs []string) (map[string]int, error) {
	out := make(map[string]int, len(customerIDs))
	if len(customerIDs) == 0 {
		return out, nil
	}
	if len(customerIDs) > maxCountIDs {
		return nil, fmt.Errorf("count open cases: %d customers, at most %d per call", len(customerIDs), maxCountIDs)
	}
	var rows []struct {
		CustomerID string
		N          int
	}
	err := inScope(ctx, s.db.Gorm.WithContext(ctx).Model(&caseRow{}), "").Select("customer_id, COUNT(*) AS n").
		Where("status = 'open' AND customer_id IN ?", customerIDs).Group("customer_id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count open cases of %d customers: %w", len(customerIDs), err)
	}
	for _, r := range rows {
		out[r.CustomerID] = r.N
	}
	return out, nil
}
