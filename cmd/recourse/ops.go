package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/metrics"
)

// opsParts are the dispute-operations parts of the service: the deadline
// reminder sweep, the events feed, the subscription rules applied after a
// dispute, and dispute analytics. serve.go wires them with three lines.
type opsParts struct {
	deadlines *disputes.DeadlineSweeper
	feed      *events.Feed
	rules     *actions.DisputeRules
	stats     *disputes.StatsHTTP
	rollup    *disputes.StatsReader
}

func newOpsParts(d *db.DB, clk clock.Clock, log *slog.Logger, m *metrics.Metrics, cs *cases.Service, as *actions.Service,
	_ *billing.Store, policy policyInForce) (opsParts, error) {
	var o opsParts
	var err error
	o.deadlines, err = disputes.NewDeadlineSweeper(disputes.DeadlineOptions{DB: d, Cases: cs, Clock: clk, Policy: policy.Disputes,
		Logger: log, Registerer: m.Registry})
	if err != nil {
		return o, err
	}
	o.feed = events.NewFeed(d, clk, 0)
	o.rules = actions.NewDisputeRules(as, policy.Disputes.SubscriptionRules, 0)
	o.rollup = disputes.NewStatsReader(d, policy.Disputes, clk, log)
	o.stats = disputes.NewStatsHTTP(o.rollup, clk)
	return o, nil
}

// register mounts the parts' routes on the authenticated API group.
func (o opsParts) register(api *echo.Group) {
	o.feed.Register(api)
	o.stats.Register(api)
}

// run starts the parts' sweeps where the worker runs; each stops when ctx
// is cancelled and marks wg done.
func (o opsParts) run(ctx context.Context, wg *sync.WaitGroup, interval time.Duration) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.deadlines.Run(ctx, interval)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.rules.Run(ctx, interval)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.rollup.Run(ctx, interval)
	}()
}
