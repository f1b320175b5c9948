package disputes_test

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// benchSeed fills a PostgreSQL schema with a year of activity: 1,000,000
// charges (95 % succeeded, with their monthly rollup), 50,000
// subscriptions, 100,000 disputes with their cases, opening timeline entries
// (5 % inquiries) and 3 % missed deadlines.
var benchSeed = []string{
	`INSERT INTO billing_charges (id, customer_id, amount, currency, status, paid, card_brand, created, event_id, event_created, created_at, updated_at)
	 SELECT 'ch_b' || i, 'cus_b' || (i % 50000), 4900, 'usd', CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'succeeded' END, i % 20 <> 0,
	        (ARRAY['visa','visa','visa','mastercard','mastercard','amex'])[1 + i % 6],
	        timestamptz '2025-04-01 00:00:00+00' + i * interval '31 seconds', 'evt_cb' || i, now(), now(), now()
	 FROM generate_series(1, 1000000) i`,
	`INSERT INTO billing_charge_counted (charge_id, month, brand)
	 SELECT id, to_char(created AT TIME ZONE 'UTC', 'YYYY-MM'), card_brand FROM billing_charges WHERE status = 'succeeded'`,
	`INSERT INTO billing_charge_months (month, brand, currency, succeeded_count)
	 SELECT to_char(created AT TIME ZONE 'UTC', 'YYYY-MM'), card_brand, currency, count(*) FROM billing_charges WHERE status = 'succeeded' GROUP BY 1, 2, 3`,
	`INSERT INTO billing_subscriptions (id, customer_id, status, product_id, price_id, created, event_id, event_created, created_at, updated_at)
	 SELECT 'sub_b' || i, 'cus_b' || i, 'active', (ARRAY['prod_video','prod_music','prod_cloud','prod_games'])[1 + i % 4], 'price_b' || (i % 8),
	        timestamptz '2025-01-01 00:00:00+00', 'evt_sb' || i, now(), now(), now()
	 FROM generate_series(0, 49999) i`,
	`INSERT INTO billing_disputes (id, charge_id, customer_id, amount, currency, status, reason, network_reason_code, card_brand,
	        evidence_due_by, submission_count, created, event_id, event_created, created_at, updated_at)
	 SELECT 'dp_b' || i, 'ch_b' || (i * 10), 'cus_b' || (i % 50000), 1000 + (i % 50) * 100, (ARRAY['usd','usd','usd','eur'])[1 + i % 4],
	        (ARRAY['won','lost','lost','needs_response','under_review','warning_closed','won','lost'])[1 + i % 8],
	        (ARRAY['fraudulent','subscription_canceled','product_not_received','duplicate','credit_not_processed','general'])[1 + i % 6],
	        (ARRAY['10.4','13.2','13.1','12.6.1','13.6','4837'])[1 + i % 6],
	        (ARRAY['visa','visa','visa','mastercard','mastercard','amex'])[1 + (i * 10) % 6],
	        timestamptz '2025-04-01 00:00:00+00' + i * interval '310 seconds' + interval '7 days', i % 3,
	        timestamptz '2025-04-01 00:00:00+00' + i * interval '310 seconds', 'evt_db' || i, now(), now(), now()
	 FROM generate_series(1, 100000) i`,
	`INSERT INTO cases (id, kind, state, status, priority, priority_rank, team, channel, subject_id, dispute_id, charge_id, customer_id,
	        subscription_id, first_response_due, resolution_due, version, created_at, updated_at)
	 SELECT 'case_b' || i, 'dispute', 'needs_response', 'open', 'high', 3, 'disputes', 'stripe', 'dp_b' || i, 'dp_b' || i, 'ch_b' || (i * 10),
	        'cus_b' || (i % 50000), 'sub_b' || (i % 50000), now(), now(), 1, now(), now()
	 FROM generate_series(1, 100000) i`,
	`INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary, to_state)
	 SELECT 'case_b' || i, now(), 'system', 'system', 'opened', 'opened',
	        CASE WHEN i % 20 = 0 THEN 'warning_needs_response' ELSE 'needs_response' END
	 FROM generate_series(1, 100000) i`,
	`INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary)
	 SELECT 'case_b' || i, now(), 'system', 'system', 'note', 'a note'
	 FROM generate_series(1, 100000) i`,
	`INSERT INTO dispute_deadline_marks (case_id, mark, dispute_id, due_by, at)
	 SELECT 'case_b' || i, 'missed', 'dp_b' || i, now(), now() FROM generate_series(1, 100000) i WHERE i % 33 = 0`,
	`ANALYZE`,
}

// BenchmarkDisputeStats measures GET /disputes/stats' query over a year of
// 100,000 disputes (PostgreSQL), for each grouping, alternating every round
// with a floor — a plain SELECT count(*) over billing_disputes — so both see
// the same machine state. It reports stats-ms and floor-ms per round
// (medians) besides ns/op (stats and floor together).
func BenchmarkDisputeStats(b *testing.B) {
	dbtest.RequirePostgres(b)
	d := dbtest.Open(b, db.Postgres)
	ctx := context.Background()
	start := time.Now()
	for _, q := range benchSeed {
		if err := d.Gorm.Exec(q).Error; err != nil {
			b.Fatalf("seed: %v\n%s", err, q)
		}
	}
	b.Logf("seeded in %s", time.Since(start).Round(time.Millisecond))
	r := disputes.NewStatsReader(d, disputes.DefaultPolicy(), nil, nil)
	start = time.Now()
	if _, err := r.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("rollup rebuilt in %s", time.Since(start).Round(time.Millisecond))
	if q := os.Getenv("RECOURSE_BENCH_EXPLAIN"); q != "" {
		var lines []string
		if err := d.Gorm.Raw("EXPLAIN ANALYZE " + q).Scan(&lines).Error; err != nil {
			b.Fatal(err)
		}
		b.Log("\n" + strings.Join(lines, "\n"))
	}
	from, to := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	type benchCase struct {
		name     string
		group    string
		from, to time.Time
		want     int64
	}
	var cases []benchCase
	for _, g := range disputes.GroupBys() {
		cases = append(cases, benchCase{"year/" + g, g, from, to, 100000})
	}
	// Not aligned to months: the two partial months come from the mirror.
	cases = append(cases, benchCase{"90days_unaligned/reason", disputes.GroupByReason,
		time.Date(2025, 12, 15, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC), 0})
	for _, bc := range cases {
		g, from, to := bc.group, bc.from, bc.to
		b.Run(bc.name, func(b *testing.B) {
			var stats, floor []time.Duration
			for b.Loop() {
				t0 := time.Now()
				var n int64
				if err := d.Gorm.WithContext(ctx).Raw("SELECT count(*) FROM billing_disputes").Scan(&n).Error; err != nil || n != 100000 {
					b.Fatalf("floor: %d, %v", n, err)
				}
				t1 := time.Now()
				st, err := r.Stats(ctx, disputes.StatsQuery{From: from, To: to, GroupBy: g})
				if err != nil {
					b.Fatal(err)
				}
				if (bc.want != 0 && st.Totals.Count != bc.want) || st.Totals.Count == 0 || len(st.Monitoring) == 0 {
					b.Fatalf("totals %d, monitoring %d", st.Totals.Count, len(st.Monitoring))
				}
				stats, floor = append(stats, time.Since(t1)), append(floor, t1.Sub(t0))
			}
			b.ReportMetric(median(stats), "stats-ms")
			b.ReportMetric(median(floor), "floor-ms")
		})
	}
}

func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}
