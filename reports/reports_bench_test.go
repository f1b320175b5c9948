package reports_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/reports"
)

// BenchmarkReports answers every report over 1,000,000 cases and
// 10,000,000 timeline entries on PostgreSQL (RECOURSE_BENCH_CASES
// overrides the number of cases; each has 10 entries), seeded with
// generate_series: a year of cases (about 82,000 a month), 2 % open
// (created over the last 30 days), 200,000 actions, 300,000 charges,
// 50,000 refunds and 20,000 disputes, then VACUUM ANALYZE (what
// autovacuum keeps a live table at). It is
// skipped unless RECOURSE_BENCH_PG=1 (seeding takes minutes):
//
//	RECOURSE_BENCH_PG=1 go test ./reports -run '^$' -bench BenchmarkReports -benchtime 5x -timeout 60m
//
// Each sub-benchmark is one report query (the default 30 days by day, a
// grouping, or a year by month); p50_ms and max_ms are of its rounds.
func BenchmarkReports(b *testing.B) {
	if testing.Short() || os.Getenv("RECOURSE_BENCH_PG") != "1" {
		b.Skip("set RECOURSE_BENCH_PG=1 to seed 1M cases on PostgreSQL and run the reports benchmark")
	}
	dbtest.RequirePostgres(b)
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("RECOURSE_BENCH_CASES")); err == nil && v > 0 {
		n = v
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d, seeded := benchDB(b)
	if !seeded {
		start := time.Now()
		seedBench(b, d, now, n)
		b.Logf("seeded %d cases, %d timeline entries in %s", n, 10*n, time.Since(start).Round(time.Second))
	}

	policy := cases.DefaultSLAPolicy()
	policy.Calendars = map[string]*cases.Calendar{cases.DefaultCalendar: {TimeZone: "Europe/Dublin",
		Hours:    map[string]string{"mon": "09:00-18:00", "tue": "09:00-18:00", "wed": "09:00-18:00", "thu": "09:00-18:00", "fri": "09:00-17:00"},
		Holidays: []string{"2026-12-25", "2026-12-26"}}}
	policy.Normalize()
	st := reports.NewStore(d, policy, disputes.NewStatsReader(d, disputes.DefaultPolicy(), nil, nil))
	from, to := reports.DefaultRange(now.Add(-time.Second), time.UTC)
	yearFrom := now.AddDate(-1, 0, 0)
	for _, q := range []reports.Query{
		{Report: reports.Volume},
		{Report: reports.Volume, GroupBy: "team"},
		{Report: reports.Volume, GroupBy: "assignee"},
		{Report: reports.Volume, GroupBy: "channel", Interval: reports.Month, From: yearFrom},
		{Report: reports.Resolution},
		{Report: reports.Resolution, GroupBy: "team", Interval: reports.Week},
		{Report: reports.TeamWork, GroupBy: "agent"},
		{Report: reports.TeamWork, GroupBy: "team"},
		{Report: reports.Recovery},
		{Report: reports.RootCauses},
		{Report: reports.Disputes, GroupBy: "reason"},
	} {
		if q.Interval == "" {
			q.Interval = reports.Day
		}
		if q.From.IsZero() {
			q.From = from
		}
		q.To = to
		name := fmt.Sprintf("%s/%s/%s/%dd", q.Report, q.GroupBy, q.Interval, int(q.To.Sub(q.From).Hours()/24))
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var times []time.Duration
			for i := 0; i < b.N; i++ {
				t := time.Now()
				if _, err := st.Run(ctx, q); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max_ms")
		})
	}
}

// benchDB is a fresh migrated schema, dropped at the end; or, with
// RECOURSE_BENCH_SCHEMA=name, that schema, kept for the next run (and for
// EXPLAIN by hand), already seeded when it has cases (drop it when done:
// DROP SCHEMA name CASCADE).
func benchDB(b *testing.B) (*db.DB, bool) {
	schema := os.Getenv("RECOURSE_BENCH_SCHEMA")
	if schema == "" {
		return dbtest.Open(b, db.Postgres), false
	}
	ctx := context.Background()
	admin, err := db.Open(ctx, dbtest.BasePostgresURL(), "", db.Options{MaxConns: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Gorm.Exec("CREATE SCHEMA IF NOT EXISTS " + schema).Error; err != nil {
		b.Fatal(err)
	}
	d, err := db.Open(ctx, dbtest.WithSearchPath(dbtest.BasePostgresURL(), schema), "", db.Options{MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	dbtest.Migrate(b, d)
	var cases int64
	if err := d.Gorm.Raw("SELECT count(*) FROM cases").Scan(&cases).Error; err != nil {
		b.Fatal(err)
	}
	return d, cases > 0
}

// seedBench writes the benchmark's history with a few INSERT … SELECT
// statements (foreign-key triggers off for the timeline, as a restore
// would), then ANALYZE.
func seedBench(b *testing.B, d *db.DB, now time.Time, n int) {
	b.Helper()
	ctx := context.Background()
	stmts := []string{
		// Cases over a year; 1 in 50 open, created in the last 30 days.
		`INSERT INTO cases (id, kind, state, status, priority, priority_rank, assignee, team, business_line, channel, tags, title,
  amount, currency, first_response_due, resolution_due, first_responded_at, first_response_breached_at, resolution_breached_at, breached,
  version, created_at, updated_at, closed_at, sla_due)
SELECT 'case_' || i, k.kind,
  CASE WHEN open THEN 'new' ELSE (ARRAY['won','refunded','recovered','converted','retained','resolved','refunded','resolved'])[1 + i % 8] END,
  CASE WHEN open THEN 'open' ELSE 'closed' END, 'normal', 2,
  CASE WHEN i % 4 = 0 THEN NULL ELSE 'agent' || (i % 40) END,
  (ARRAY['disputes','risk','billing_support','payments','support'])[1 + i % 5],
  (ARRAY['subscriptions','ecommerce','live_gifts','creator_payouts', NULL])[1 + (i / 5) % 5],
  (ARRAY['stripe','chat','email','in_app','phone','internal'])[1 + (i / 3) % 6],
  CASE WHEN i % 20 = 0 THEN '["vip"]' WHEN i % 33 = 0 THEN '["double_charge"]' ELSE '[]' END, '',
  1000 + i % 5000, (ARRAY['usd','eur'])[1 + i % 2],
  created + interval '24 hours', created + interval '72 hours',
  CASE WHEN i % 10 = 9 THEN NULL ELSE created + (1 + i % 48) * interval '15 minutes' END,
  CASE WHEN i % 10 = 0 THEN created + interval '24 hours' END,
  CASE WHEN NOT open AND i % 7 = 0 THEN created + interval '72 hours' END,
  i % 10 = 0 OR (NOT open AND i % 7 = 0),
  1, created, created,
  CASE WHEN NOT open THEN LEAST(created + (1 + i % 240) * interval '1 hour', $1::timestamptz - interval '1 second') END,
  created + interval '72 hours'
FROM (SELECT i, i % 50 = 0 AS open,
        CASE WHEN i % 50 = 0 THEN $1::timestamptz - ((i::bigint * 7919) % 2592000) * interval '1 second'
             ELSE $1::timestamptz - ((i::bigint * 7919) % 31536000) * interval '1 second' END AS created
      FROM generate_series(1, $2::int) i) s
CROSS JOIN LATERAL (SELECT (ARRAY['dispute','fraud_warning','payment_failure','trial_conversion','cancellation','refund_failure',
  'refund_request','billing_inquiry'])[1 + i % 8] AS kind) k`,
		// Timeline: 10 entries a case, an hour apart: opened, notes,
		// transitions, provider events; every 10th case a breach, every
		// 20th an escalation, every 50th a reopen (of a closed case).
		`SET session_replication_role = replica`,
		`INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary, to_state)
SELECT 'case_' || i, created + j * interval '1 hour', 'system', 'system',
  CASE WHEN j = 1 THEN 'opened'
       WHEN j = 3 AND i % 10 = 0 THEN 'sla_breached'
       WHEN j = 4 AND i % 20 = 0 THEN 'escalated'
       WHEN j = 5 AND i % 50 = 1 THEN 'reopened'
       ELSE (ARRAY['note','transition','provider_event','assigned'])[1 + j % 4] END,
  CASE WHEN j = 3 AND i % 10 = 0 THEN 'SLA breached: first response was due 2026-01-01T00:00:00Z'
       WHEN j = 4 AND i % 20 = 0 THEN 'Escalated from support to payments: reason ' || (i % 9)
       ELSE 'entry ' || j END,
  CASE WHEN j = 2 THEN 'in_progress' END
FROM (SELECT i, CASE WHEN i % 50 = 0 THEN $1::timestamptz - ((i::bigint * 7919) % 2592000) * interval '1 second'
             ELSE $1::timestamptz - ((i::bigint * 7919) % 31536000) * interval '1 second' END AS created
      FROM generate_series(1, $2::int) i) s, generate_series(1, 10) j`,
		`SET session_replication_role = origin`,
		`INSERT INTO actions (id, case_id, type, params, status, requested_by, requested_role, client_key, request_hash, provider_key,
  approval_reasons, decided_by, decided_at, created_at, updated_at)
SELECT 'act_' || i, 'case_' || (i * 5), 'refund', '{}', (ARRAY['succeeded','failed','rejected','succeeded'])[1 + i % 4],
  'agent' || (i % 40), 'agent', 'k' || i, 'h', 'p' || i,
  CASE WHEN i % 3 = 0 THEN '["over_agent_limit"]' END, CASE WHEN i % 3 = 0 THEN 'sup' || (i % 5) END,
  CASE WHEN i % 3 = 0 THEN at + interval '1 hour' END, at, at
FROM (SELECT i, $1::timestamptz - ((i::bigint * 7919) % 31536000) * interval '1 second' AS at FROM generate_series(1, $2::int / 5) i) s`,
		`INSERT INTO billing_charges (id, amount, currency, status, failure_code, created, event_id, event_created, created_at, updated_at)
SELECT 'ch_' || i, 1000, 'usd', CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'succeeded' END,
  CASE WHEN i % 3 = 0 THEN (ARRAY['card_declined','insufficient_funds','expired_card','do_not_honor','fraudulent'])[1 + i % 5] ELSE '' END,
  at, 'evt_ch' || i, at, at, at
FROM (SELECT i, $1::timestamptz - ((i::bigint * 7919) % 31536000) * interval '1 second' AS at FROM generate_series(1, $2::int * 3 / 10) i) s`,
		`INSERT INTO billing_refunds (id, charge_id, amount, currency, status, reason, created, event_id, event_created, created_at, updated_at)
SELECT 're_' || i, 'ch_' || i, 500 + i % 1000, (ARRAY['usd','eur'])[1 + i % 2], CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
  (ARRAY['requested_by_customer','duplicate','fraudulent',''])[1 + i % 4], at, 'evt_re' || i, at, at, at
FROM (SELECT i, $1::timestamptz - ((i::bigint * 7919) % 31536000) * interval '1 second' AS at FROM generate_series(1, $2::int / 20) i) s`,
		`INSERT INTO billing_disputes (id, charge_id, amount, currency, status, reason, card_brand, created, event_id, event_created, created_at, updated_at)
SELECT 'dp_' || i, 'ch_' || i, 2500, 'usd', (ARRAY['won','lost','needs_response','under_review'])[1 + i % 4],
  (ARRAY['fraudulent','product_not_received','subscription_canceled','general'])[1 + i % 4], (ARRAY['visa','mastercard'])[1 + i % 2],
  at, 'evt_dp' || i, at, at, at
FROM (SELECT i, $1::timestamptz - ((i::bigint * 7919) % 31536000) * interval '1 second' AS at FROM generate_series(1, $2::int / 50) i) s`,
		`VACUUM ANALYZE cases`, `VACUUM ANALYZE case_timeline`, `VACUUM ANALYZE actions`,
		`VACUUM ANALYZE billing_charges`, `VACUUM ANALYZE billing_refunds`, `VACUUM ANALYZE billing_disputes`,
	}
	sqlDB, err := d.Gorm.DB()
	if err != nil {
		b.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx) // one connection: SET applies to the statements after it
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		t := time.Now()
		var args []any
		if len(s) > 20 && s[:6] == "INSERT" {
			args = []any{now, n}
		}
		if _, err := conn.ExecContext(ctx, s, args...); err != nil {
			b.Fatalf("%.60s: %v", s, err)
		}
		b.Logf("%.40s… %s", s, time.Since(t).Round(time.Millisecond))
	}
}
