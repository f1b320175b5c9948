package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/migrations"
)

// TestSLARolesMigrationStopsWaitingClocks: migration 0007 stops the clocks
// of cases already waiting (paused states, from their last change) and of
// closed cases (from when they closed), and leaves running ones alone.
func TestSLARolesMigrationStopsWaitingClocks(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			var d *db.DB
			var err error
			if dialect == db.Postgres {
				d, err = db.Open(ctx, dbtest.NewPostgresURL(t), "", db.Options{MaxConns: 2})
			} else {
				d, err = db.Open(ctx, "", dbtest.NewSQLitePath(t), db.Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			all, err := migrations.All(dialect)
			if err != nil {
				t.Fatal(err)
			}
			// Everything before 0007, as an existing installation has it.
			if _, err := migrations.List(ctx, d); err != nil { // creates schema_migrations
				t.Fatal(err)
			}
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			for _, m := range all {
				if m.Version >= 7 {
					break
				}
				if err := d.Gorm.Exec(m.SQL).Error; err != nil {
					t.Fatalf("apply %s: %v", m.Name, err)
				}
				if err := d.Gorm.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, now).Error; err != nil {
					t.Fatal(err)
				}
			}
			updated := now.Add(-40 * 24 * time.Hour)
			closed := now.Add(-5 * 24 * time.Hour)
			for _, r := range []struct {
				id, kind, state, status string
				closedAt                *time.Time
			}{
				{"case_review", "dispute", "under_review", "open", nil},
				{"case_waiting", "billing_inquiry", "waiting_on_customer", "open", nil},
				{"case_running", "billing_inquiry", "in_progress", "open", nil},
				{"case_closed", "refund_request", "refunded", "closed", &closed},
			} {
				err := d.Gorm.Exec(`INSERT INTO cases (id, kind, state, status, priority, priority_rank, team, channel,
  first_response_due, resolution_due, version, created_at, updated_at, closed_at)
VALUES (?, ?, ?, ?, 'normal', 2, 'support', 'chat', ?, ?, 1, ?, ?, ?)`,
					r.id, r.kind, r.state, r.status, updated, updated, updated, updated, r.closedAt).Error
				if err != nil {
					t.Fatal(err)
				}
			}
			applied, err := migrations.Up(ctx, d, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) == 0 || applied[0] != 7 {
				t.Fatalf("applied %v, want 0007 first", applied)
			}
			for id, want := range map[string]*time.Time{"case_review": &updated, "case_waiting": &updated, "case_running": nil, "case_closed": &closed} {
				var row struct {
					SLAPausedAt      *time.Time `gorm:"column:sla_paused_at"`
					SLAPausedTotalUS int64      `gorm:"column:sla_paused_total_us"`
				}
				if err := d.Gorm.Raw("SELECT sla_paused_at, sla_paused_total_us FROM cases WHERE id = ?", id).Scan(&row).Error; err != nil {
					t.Fatal(err)
				}
				if (want == nil) != (row.SLAPausedAt == nil) || (want != nil && !row.SLAPausedAt.Equal(*want)) || row.SLAPausedTotalUS != 0 {
					t.Errorf("%s: sla_paused_at %v total %d, want %v", id, row.SLAPausedAt, row.SLAPausedTotalUS, want)
				}
			}
		})
	}
}
