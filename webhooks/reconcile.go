package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
)

// Stripe delivers at least once and retries for three days, but a delivery
// it gave up on — an outage longer than that, a disabled endpoint, an event
// acknowledged by a proxy that lost it — is gone unless we fetch it. The
// reconciler lists the provider's events since the last reconciled point and
// feeds every one the inbox lacks through the same inbox, so dedupe,
// ordering and the worker's handlers apply exactly as for a delivery.

// EventLister lists the provider's events created in [since, until), each
// as the event's JSON, in any order. billing/stripe implements it over
// GET /v1/events.
type EventLister interface {
	ListEvents(ctx context.Context, since, until time.Time, fn func(payload []byte) error) error
}

// ProviderRetention is how far back the provider keeps events: Stripe's
// /v1/events answers for the last 30 days.
const ProviderRetention = 30 * 24 * time.Hour

// DefaultReconcileWindow is how far back the first run looks when no run
// has finished yet: Stripe's three days of retries.
const DefaultReconcileWindow = 72 * time.Hour

// reconcileOverlap is how far before the last run's end the next one
// starts, for events whose creation and listing straddle a run.
const reconcileOverlap = 10 * time.Minute

// maxReportedIDs bounds the missing event ids a report names.
const maxReportedIDs = 50

// ReconcileReport says what one run found.
type ReconcileReport struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Clamped: the requested start was older than the provider keeps
	// events, so the run started at the retention edge instead.
	Clamped bool `json:"clamped"`
	Listed  int  `json:"listed"`  // events the provider listed
	Present int  `json:"present"` // already in the inbox
	Missing int  `json:"missing"` // not in the inbox: fed to it now
	Invalid int  `json:"invalid"` // listed but not a usable event
	// MissingIDs names the first missing events (at most 50).
	MissingIDs []string `json:"missing_ids,omitempty"`
	// Refetch says what reading the stale objects behind open cases
	// found (nil when refetching is off).
	Refetch *RefetchReport `json:"refetch,omitempty"`
}

// Reconciler compares the provider's event list with the inbox.
type Reconciler struct {
	db      *db.DB
	inbox   *Inbox
	lister  EventLister
	clock   clock.Clock
	log     *slog.Logger
	audit   *audit.Log
	onStore func()
	metrics ReconcileMetrics
	refetch *refetcher // nil: events only
}

// ReconcileMetrics are the reconciler's collectors.
type ReconcileMetrics struct {
	Runs    *prometheus.CounterVec // by outcome: ok, failed
	Missing prometheus.Counter     // events found missing and fed
	Last    prometheus.Gauge       // end of the last successful run
	// StaleObjects counts refetched objects by outcome (nil unless
	// WithRefetch).
	StaleObjects *prometheus.CounterVec
}

// Metrics returns the reconciler's collectors.
func (r *Reconciler) Metrics() ReconcileMetrics { return r.metrics }

// NewReconciler returns a reconciler feeding inbox from lister. onStore, if
// not nil, wakes the local worker after missing events were stored; reg, if
// not nil, gets the reconciler's metrics.
func NewReconciler(d *db.DB, inbox *Inbox, lister EventLister, c clock.Clock, log *slog.Logger, a *audit.Log, reg prometheus.Registerer, onStore func()) *Reconciler {
	if log == nil {
		log = slog.Default()
	}
	if onStore == nil {
		onStore = func() {}
	}
	m := ReconcileMetrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recourse_reconcile_runs_total",
			Help: "Reconciliation runs against the provider's event list, by outcome (ok, failed)."}, []string{"outcome"}),
		Missing: prometheus.NewCounter(prometheus.CounterOpts{Name: "recourse_reconcile_events_missing_total",
			Help: "Provider events the inbox lacked, found and fed to it by reconciliation."}),
		Last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recourse_reconcile_last_success_timestamp_seconds",
			Help: "When the last successful reconciliation run ended (Unix time)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Runs, m.Missing, m.Last)
	}
	return &Reconciler{db: d, inbox: inbox, lister: lister, clock: c, log: log, audit: a, onStore: onStore, metrics: m}
}

type reconcileRun struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt time.Time
	Since      time.Time
	Until      time.Time
	Listed     int
	Missing    int
	Invalid    int
	// What refetching found (migration 0030); zero when it is off.
	StaleChecked int
	StaleChanged int
	StaleFixed   int
	StaleFailed  int
	Error        *string
}

func (reconcileRun) TableName() string { return "reconcile_runs" }

// LastPoint is the end of the last successful run, or the zero time.
func (r *Reconciler) LastPoint(ctx context.Context) (time.Time, error) {
	var last reconcileRun
	err := r.db.Gorm.WithContext(ctx).Where("error IS NULL").Order("until DESC").Take(&last).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the last reconciled point: %w", err)
	}
	return last.Until.UTC(), nil
}

// Since is where the next run starts: a little before the last reconciled
// point, or window back from now when no run has finished yet.
func (r *Reconciler) Since(ctx context.Context, window time.Duration) (time.Time, error) {
	last, err := r.LastPoint(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if last.IsZero() {
		if window <= 0 {
			window = DefaultReconcileWindow
		}
		return r.clock.Now().Add(-window), nil
	}
	return last.Add(-reconcileOverlap), nil
}

// Run lists the provider's events created since `since` up to now, stores
// those the inbox lacks as pending (the worker applies them as it would a
// delivery), and records the run: in reconcile_runs (its end is the next
// run's starting point), in the audit log and in the metrics. A listing
// that fails part way keeps what it stored and reports the error.
func (r *Reconciler) Run(ctx context.Context, since time.Time) (ReconcileReport, error) {
	started := r.clock.Now().UTC()
	rep := ReconcileReport{Since: since.UTC(), Until: started}
	if edge := started.Add(-ProviderRetention); rep.Since.Before(edge) {
		rep.Since, rep.Clamped = edge, true
	}
	var batch []Event
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		inserted, err := r.inbox.InsertBatch(ctx, batch, r.clock.Now())
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, ev := range batch {
			if seen[ev.ID] {
				continue
			}
			seen[ev.ID] = true
			if inserted[ev.ID] {
				rep.Missing++
				if len(rep.MissingIDs) < maxReportedIDs {
					rep.MissingIDs = append(rep.MissingIDs, ev.ID)
				}
			} else {
				rep.Present++
			}
		}
		batch = batch[:0]
		return nil
	}
	err := r.lister.ListEvents(ctx, rep.Since, rep.Until, func(payload []byte) error {
		rep.Listed++
		ev, err := parseEnvelope(payload)
		if err != nil {
			rep.Invalid++
			r.log.Warn("reconcile: the provider listed an unusable event", "err", err)
			return nil
		}
		batch = append(batch, ev)
		if len(batch) >= 100 {
			return flush()
		}
		return nil
	})
	// What was listed before a failure is stored all the same.
	if ferr := flush(); ferr != nil && err == nil {
		err = ferr
	}
	if rep.Missing > 0 {
		r.onStore()
		r.metrics.Missing.Add(float64(rep.Missing))
	}
	// Then the states no listed event explains. The events fed above may
	// be applied before or after these reads: the newer-wins rule gives
	// the same end either way.
	if r.refetch != nil && err == nil {
		var ferr error
		rep.Refetch, ferr = r.refetchStale(ctx, started)
		if ferr != nil {
			err = fmt.Errorf("refetch stale objects: %w", ferr)
		}
	}
	if rerr := r.record(ctx, started, rep, err); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		r.metrics.Runs.WithLabelValues("failed").Inc()
		return rep, fmt.Errorf("reconcile events since %s: %w", rep.Since.Format(time.RFC3339), err)
	}
	r.metrics.Runs.WithLabelValues("ok").Inc()
	r.metrics.Last.Set(float64(r.clock.Now().Unix()))
	if rep.Missing > 0 {
		r.log.Warn("reconcile: fed events the inbox lacked", "missing", rep.Missing, "listed", rep.Listed, "since", rep.Since)
	} else {
		r.log.Info("reconcile: the inbox holds every listed event", "listed", rep.Listed, "since", rep.Since)
	}
	return rep, nil
}

// record stores the run and its audit entry in one transaction.
func (r *Reconciler) record(ctx context.Context, started time.Time, rep ReconcileReport, runErr error) error {
	run := reconcileRun{StartedAt: started, FinishedAt: r.clock.Now().UTC(), Since: rep.Since, Until: rep.Until,
		Listed: rep.Listed, Missing: rep.Missing, Invalid: rep.Invalid}
	detail := fmt.Sprintf("listed %d, present %d, missing %d (fed to the inbox), invalid %d", rep.Listed, rep.Present, rep.Missing, rep.Invalid)
	if f := rep.Refetch; f != nil {
		run.StaleChecked, run.StaleChanged, run.StaleFixed, run.StaleFailed = f.Checked, f.Changed, f.Fixed, f.Failed
		detail += fmt.Sprintf("; stale objects (synced before %s): %d, checked %d, changed %d, fixed %d, superseded %d, failed %d",
			f.Cutoff.Format(time.RFC3339), f.Stale, f.Checked, f.Changed, f.Fixed, f.Superseded, f.Failed)
	}
	if runErr != nil {
		msg := runErr.Error()
		run.Error = &msg
		detail += "; failed: " + msg
	}
	return r.db.Transact(ctx, func(tx *gorm.DB) error {
		if err := tx.WithContext(ctx).Create(&run).Error; err != nil {
			return fmt.Errorf("record the reconcile run: %w", err)
		}
		if r.audit == nil {
			return nil
		}
		return r.audit.Record(ctx, tx, audit.Entry{Action: "webhooks.reconcile", ObjectType: "reconcile_run",
			ObjectID: fmt.Sprint(run.ID), After: audit.Marshal(rep), Detail: detail})
	})
}

// Loop runs the reconciler every interval until ctx ends, each run from
// the last reconciled point (window back on the first). Two replicas may
// both run: the inbox's unique event id makes a second feed a no-op.
func (r *Reconciler) Loop(ctx context.Context, interval, window time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		since, err := r.Since(ctx, window)
		if err == nil {
			_, err = r.Run(ctx, since)
		}
		if err != nil && ctx.Err() == nil {
			r.log.Error("reconcile: run failed; the next one retries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
