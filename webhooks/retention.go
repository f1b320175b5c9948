package webhooks

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// MinEventRetention is the shortest age at which applied inbox rows may be
// deleted. Stripe retries a delivery for up to 3 days and lists events
// (GET /v1/events, which reconciliation reads) for 30 days; an event older
// than that can never arrive again, so forgetting its id cannot let a
// redelivery through the inbox's dedupe. (The mirror dedupes on its own
// timeline too, but the inbox should not rely on that.)
const MinEventRetention = 30 * 24 * time.Hour

// RetentionPolicy says what the retention job prunes. A zero age turns that
// part off.
type RetentionPolicy struct {
	// PayloadAge: the raw payload of an applied (processed or ignored)
	// event created longer ago than this is emptied. The row keeps its
	// event id, type, object, times and status: what dedupe, reconciliation
	// and the ledger need.
	PayloadAge time.Duration
	// EventAge: applied rows created longer ago than this are deleted; at
	// least MinEventRetention.
	EventAge time.Duration
	// Batch is the number of rows per statement and transaction (default
	// 1,000), so a large backlog never holds a long transaction.
	Batch int
}

// Validate refuses an event age under MinEventRetention (EINVALID).
func (p RetentionPolicy) Validate() error {
	if p.PayloadAge < 0 || p.EventAge < 0 {
		return errs.Coded(errs.EINVALID, "invalid_retention", "retention ages must not be negative")
	}
	if p.EventAge != 0 && p.EventAge < MinEventRetention {
		return errs.Coded(errs.EINVALID, "invalid_retention",
			"inbox rows may be deleted after 30 days at the earliest: until then Stripe can still redeliver or list the event, and its id is what keeps it from being applied twice")
	}
	return nil
}

// RetentionReport is what one run pruned.
type RetentionReport struct {
	Now             time.Time `json:"now"`
	PayloadCutoff   time.Time `json:"payload_cutoff,omitzero"`
	EventCutoff     time.Time `json:"event_cutoff,omitzero"`
	PayloadsEmptied int64     `json:"payloads_emptied"`
	// EventsDeleted counts every applied row removed: by row deletes and
	// with the month partitions dropped (PostgreSQL).
	EventsDeleted int64 `json:"events_deleted"`
	Batches       int   `json:"batches"`
	// PostgreSQL: month partitions made ahead, month partitions dropped
	// whole (their ends no later than the event cutoff), and the pending or
	// dead rows of those months kept (moved to the DEFAULT partition).
	PartitionsCreated int      `json:"partitions_created"`
	PartitionsDropped []string `json:"partitions_dropped,omitempty"`
	EventsMoved       int64    `json:"events_moved"`
}

// Retention prunes the webhook inbox by age. It never touches pending or
// dead events (they still have work or an operator's attention ahead).
type Retention struct {
	db      *db.DB
	clock   clock.Clock
	log     *slog.Logger
	audit   *audit.Log
	policy  RetentionPolicy
	emptied prometheus.Counter
	deleted prometheus.Counter
	dropped prometheus.Counter
	last    prometheus.Gauge
}

// NewRetention returns the job; reg, if not nil, gets its metrics. It
// returns EINVALID for a policy Validate refuses.
func NewRetention(d *db.DB, c clock.Clock, log *slog.Logger, a *audit.Log, reg prometheus.Registerer, p RetentionPolicy) (*Retention, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.Batch <= 0 {
		p.Batch = 1000
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Retention{db: d, clock: c, log: log, audit: a, policy: p,
		emptied: prometheus.NewCounter(prometheus.CounterOpts{Name: "recourse_retention_payloads_emptied_total",
			Help: "Raw webhook payloads emptied by the retention job."}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "recourse_retention_events_deleted_total",
			Help: "Applied webhook inbox rows deleted by the retention job (row deletes and dropped month partitions)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "recourse_retention_partitions_dropped_total",
			Help: "Month partitions of the webhook inbox dropped whole by the retention job (PostgreSQL)."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recourse_retention_last_success_timestamp_seconds",
			Help: "When the last successful retention run ended (Unix time)."}),
	}
	if reg != nil {
		reg.MustRegister(r.emptied, r.deleted, r.dropped, r.last)
	}
	return r, nil
}

// applied is the statuses retention may prune.
const appliedStatuses = "status IN ('processed', 'ignored')"

// Run prunes once. On PostgreSQL it first makes the coming months'
// partitions and drops whole the months that end no later than the event
// cutoff (each in a transaction of its own, keeping their pending and dead
// rows); then, on both databases, it empties payloads and deletes the rows
// left older than the cutoffs (the month at the edge, DEFAULT), in bounded
// batches of their own transaction. Something pruned is audited as one
// webhook_event.retention entry with the counts. A failure leaves what
// earlier steps did in place; the next run continues.
func (r *Retention) Run(ctx context.Context) (RetentionReport, error) {
	now := r.clock.Now().UTC()
	rep := RetentionReport{Now: now}
	// Months not made cost only events waiting in DEFAULT: prune anyway,
	// and report the failure after.
	var err error
	made, perr := EnsurePartitions(ctx, r.db, now)
	rep.PartitionsCreated = made
	if r.policy.EventAge > 0 && r.db.Dialect.Partitioned() {
		rep.EventCutoff = now.Add(-r.policy.EventAge)
		err = r.dropMonths(ctx, &rep)
	}
	if err == nil && r.policy.PayloadAge > 0 {
		rep.PayloadCutoff = now.Add(-r.policy.PayloadAge)
		err = r.batches(ctx, &rep, func(tx *gorm.DB) (int64, error) {
			res := tx.Exec(`UPDATE webhook_events SET payload = ? WHERE id IN (SELECT id FROM webhook_events
  WHERE `+appliedStatuses+` AND length(payload) > 0 AND created < ? ORDER BY created LIMIT ?)`, []byte{}, rep.PayloadCutoff, r.policy.Batch)
			return res.RowsAffected, res.Error
		}, &rep.PayloadsEmptied, r.emptied)
	}
	if err == nil && r.policy.EventAge > 0 {
		rep.EventCutoff = now.Add(-r.policy.EventAge)
		err = r.batches(ctx, &rep, func(tx *gorm.DB) (int64, error) {
			res := tx.Exec(`DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events
  WHERE `+appliedStatuses+` AND created < ? ORDER BY id LIMIT ?)`, rep.EventCutoff, r.policy.Batch)
			return res.RowsAffected, res.Error
		}, &rep.EventsDeleted, r.deleted)
	}
	if (rep.PayloadsEmptied+rep.EventsDeleted > 0 || len(rep.PartitionsDropped) > 0) && r.audit != nil {
		detail := fmt.Sprintf("emptied %d payloads, deleted %d events", rep.PayloadsEmptied, rep.EventsDeleted)
		if len(rep.PartitionsDropped) > 0 {
			detail += fmt.Sprintf(" (%d month partitions dropped, %d pending or dead events of those months kept)", len(rep.PartitionsDropped), rep.EventsMoved)
		}
		if aerr := r.audit.Record(ctx, nil, audit.Entry{Action: "webhook_event.retention", ObjectType: "webhook_event",
			After: audit.Marshal(rep), Detail: detail}); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err == nil && perr != nil {
		err = fmt.Errorf("webhook retention: %w", perr)
	}
	if err != nil {
		return rep, err
	}
	r.last.Set(float64(r.clock.Now().Unix()))
	return rep, nil
}

// dropMonths drops every month partition whose end is no later than the
// event cutoff: all its rows are strictly older than the cutoff, so row
// deletes would remove every applied one of them too. A month whose newest
// possible row is at or after the cutoff stays for the row deletes.
func (r *Retention) dropMonths(ctx context.Context, rep *RetentionReport) error {
	parts, err := monthPartitions(ctx, r.db.Gorm)
	if err != nil {
		return fmt.Errorf("webhook retention: %w", err)
	}
	for _, p := range parts {
		if p.Hi.After(rep.EventCutoff) {
			break
		}
		start := time.Now()
		res, ok, err := dropMonth(ctx, r.db, p)
		if err != nil {
			return fmt.Errorf("webhook retention: %w", err)
		}
		if !ok {
			continue
		}
		rep.PartitionsDropped = append(rep.PartitionsDropped, p.Name)
		rep.EventsDeleted += res.deleted
		rep.EventsMoved += res.kept
		r.deleted.Add(float64(res.deleted))
		r.dropped.Inc()
		r.log.Info("retention: inbox month dropped", "partition", p.Name, "events_deleted", res.deleted,
			"events_kept", res.kept, "seconds", time.Since(start).Seconds())
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Retention) batches(ctx context.Context, rep *RetentionReport, stmt func(tx *gorm.DB) (int64, error), total *int64, c prometheus.Counter) error {
	for {
		var n int64
		err := r.db.Transact(ctx, func(tx *gorm.DB) error {
			var err error
			n, err = stmt(tx.WithContext(ctx))
			return err
		})
		if err != nil {
			return fmt.Errorf("webhook retention: %w", err)
		}
		if n == 0 {
			return nil
		}
		rep.Batches++
		*total += n
		c.Add(float64(n))
		if n < int64(r.policy.Batch) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// RetentionMetrics are the job's collectors.
type RetentionMetrics struct{ Emptied, Deleted, PartitionsDropped prometheus.Counter }

// Metrics returns the job's counters.
func (r *Retention) Metrics() RetentionMetrics {
	return RetentionMetrics{Emptied: r.emptied, Deleted: r.deleted, PartitionsDropped: r.dropped}
}

// Enabled reports whether the policy prunes anything.
func (r *Retention) Enabled() bool { return r.policy.PayloadAge > 0 || r.policy.EventAge > 0 }

// Needed reports whether the job has work: a policy that prunes, or the
// inbox's month partitions to make ahead (PostgreSQL), which the job does
// even with retention off.
func (r *Retention) Needed() bool { return r.Enabled() || r.db.Dialect.Partitioned() }

// Loop runs Run every interval until ctx is cancelled.
func (r *Retention) Loop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := r.Run(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("retention: run failed; the next one continues", "err", err)
		} else if rep.PayloadsEmptied+rep.EventsDeleted > 0 || len(rep.PartitionsDropped) > 0 {
			r.log.Info("retention: webhook inbox pruned", "payloads_emptied", rep.PayloadsEmptied, "events_deleted", rep.EventsDeleted,
				"partitions_dropped", len(rep.PartitionsDropped), "events_kept_from_dropped", rep.EventsMoved)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// emptyPayloadIn empties the raw payload of event eventID inside tx.
func emptyPayloadIn(ctx context.Context, tx *gorm.DB, eventID string) error {
	if err := tx.WithContext(ctx).Exec(`UPDATE webhook_events SET payload = ? WHERE event_id = ?`, []byte{}, eventID).Error; err != nil {
		return fmt.Errorf("empty the payload of event %s: %w", eventID, err)
	}
	return nil
}
