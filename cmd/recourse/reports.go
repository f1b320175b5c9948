package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/reports"
)

// newReports wires the reports: their own database handle — the read
// replica at RECOURSE_REPORTING_DATABASE_URL when set (config.Validate has
// checked it is PostgreSQL like the main database), else the main one —
// a dispute StatsReader over it for the disputes report, and the
// histogram on the service's registry. The returned handle is nil when the
// main database is used, else the caller closes it.
func newReports(ctx context.Context, cfg config.Config, main *db.DB, clk clock.Clock, log *slog.Logger, m *metrics.Metrics,
	policy policyInForce) (*reports.Service, *db.DB, error) {
	rd, own := main, (*db.DB)(nil)
	if cfg.ReportingDatabaseURL != "" {
		var err error
		if rd, err = db.Open(ctx, cfg.ReportingDatabaseURL, "", db.Options{MaxConns: cfg.DBMaxConns}); err != nil {
			return nil, nil, fmt.Errorf("reporting database: %w", err)
		}
		own = rd
	}
	stats := disputes.NewStatsReader(rd, policy.Disputes, clk, log)
	svc, err := reports.NewService(reports.NewStore(rd, policy.SLA, stats), clk, m.Registry)
	if err != nil {
		if own != nil {
			_ = own.Close()
		}
		return nil, nil, err
	}
	return svc, own, nil
}
