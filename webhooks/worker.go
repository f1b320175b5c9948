package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/metrics"
)

// Handler applies one event inside tx, the transaction that also marks the
// event processed: its effects and the mark commit together or not at all.
// A handler must do no I/O outside tx. Returning an EINVALID coded error
// dead-letters the event at once (retrying cannot fix a bad payload); any
// other error is retried with backoff.
type Handler func(ctx context.Context, tx *gorm.DB, ev Event) error

// Registry maps event types to the handlers that apply them, in order.
// Build it at wiring time; it is read-only once the worker runs.
type Registry struct {
	handlers map[string][]Handler
	scopes   []Scope
}

// Scope prepares the context of one worker transaction (one event, or a
// batch of them) and returns the function that finishes it: it runs in the
// transaction after the last handler, before the commit. It lets a handler
// gather writes to shared rows and make them once per transaction, in an
// order that cannot deadlock with other transactions.
type Scope func(ctx context.Context) (context.Context, func(ctx context.Context, tx *gorm.DB) error)

// WithScope adds s to every worker transaction.
func (r *Registry) WithScope(s Scope) { r.scopes = append(r.scopes, s) }

// inScopes runs fn in ctx prepared by every scope, then finishes them in tx.
func (r *Registry) inScopes(ctx context.Context, tx *gorm.DB, fn func(ctx context.Context) error) error {
	var finish []func(context.Context, *gorm.DB) error
	for _, s := range r.scopes {
		var f func(context.Context, *gorm.DB) error
		ctx, f = s(ctx)
		finish = append(finish, f)
	}
	if err := fn(ctx); err != nil {
		return err
	}
	for _, f := range finish {
		if err := f(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{handlers: map[string][]Handler{}} }

// Handle adds h for each of types.
func (r *Registry) Handle(h Handler, types ...string) {
	for _, t := range types {
		r.handlers[t] = append(r.handlers[t], h)
	}
}

// Handlers returns the handlers for typ (nil when nobody handles it).
func (r *Registry) Handlers(typ string) []Handler { return r.handlers[typ] }

// WorkerConfig tunes a Worker.
type WorkerConfig struct {
	Concurrency  int
	MaxAttempts  int
	Lease        time.Duration
	PollInterval time.Duration
	BackoffBase  time.Duration
	BackoffMax   time.Duration
	// EventTimeout bounds one event's transaction.
	EventTimeout time.Duration
	// Batch is how many events one loop claims at a time and applies in one
	// transaction (1: one transaction per event, the behaviour before
	// batching). If any event of a batch fails, or the batch cannot commit,
	// the whole batch is rolled back and each event applied on its own, so
	// a failing event never fails or double-applies its neighbours.
	Batch int
}

// Worker claims pending inbox events and applies them.
type Worker struct {
	db       *db.DB
	inbox    *Inbox
	registry *Registry
	clock    clock.Clock
	log      *slog.Logger
	metrics  *metrics.Metrics
	cfg      WorkerConfig
	owner    string
	wake     []chan struct{} // one per loop: Notify wakes them all
}

// NewWorker returns a worker; Run starts it.
func NewWorker(d *db.DB, inbox *Inbox, reg *Registry, c clock.Clock, log *slog.Logger, m *metrics.Metrics, cfg WorkerConfig) *Worker {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.EventTimeout <= 0 {
		cfg.EventTimeout = 30 * time.Second
	}
	if cfg.EventTimeout >= cfg.Lease {
		cfg.EventTimeout = cfg.Lease / 2
	}
	if cfg.Batch < 1 {
		cfg.Batch = DefaultWorkerBatch
	}
	if cfg.Batch > maxWorkerBatch {
		cfg.Batch = maxWorkerBatch
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	w := &Worker{db: d, inbox: inbox, registry: reg, clock: c, log: log, metrics: m, cfg: cfg,
		owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))}
	w.wake = make([]chan struct{}, cfg.Concurrency)
	for i := range w.wake {
		w.wake[i] = make(chan struct{}, 1)
	}
	return w
}

// Notify tells an idle worker that new events may be waiting.
func (w *Worker) Notify() {
	// Each loop claims only its own shard, so every loop must look.
	for _, ch := range w.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// NotifyShards wakes only the loops that claim these shards (the intake's
// newly stored events): waking every loop for every commit would cost each
// idle loop a claim query that finds nothing.
func (w *Worker) NotifyShards(shards []int64) {
	n := int64(len(w.wake))
	for _, s := range shards {
		select {
		case w.wake[s%n] <- struct{}{}:
		default:
		}
	}
}

// DefaultWorkerBatch is the events a worker loop claims and applies per
// transaction unless configured: one commit for many events is what lifted
// the apply rate on the benchmark machine (docs/benchmarks.md).
const DefaultWorkerBatch = 16

// batchLockTimeout is how long a batch waits for a row lock before it gives
// up and its events are applied one by one.
const batchLockTimeout = 100 * time.Millisecond

// maxWorkerBatch bounds Batch: a batch holds its rows' locks until it
// commits, and a larger one makes a failure's one-by-one replay longer.
const maxWorkerBatch = 64

// Run processes events until ctx is cancelled, then finishes the event in
// hand, gives back the ones it had claimed but not started, and returns.
func (w *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < w.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, i)
		}()
	}
	wg.Wait()
}

// loop runs worker loop i of cfg.Concurrency: it applies the events of
// shard i (Inbox.ClaimShard).
func (w *Worker) loop(ctx context.Context, i int) {
	for ctx.Err() == nil {
		n, err := w.runOnce(ctx, i, w.cfg.Concurrency)
		if err != nil {
			w.log.Warn("webhook worker: claim failed", "err", err)
		}
		if n == w.cfg.Batch && err == nil {
			continue
		}
		t := time.NewTimer(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-w.wake[i]:
		}
		t.Stop()
	}
}

// RunOnce claims one batch of due events and applies it, returning how many
// it claimed. Cancelling ctx stops it before the batch starts; a batch in
// hand finishes.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	return w.runOnce(ctx, 0, 1)
}

// runOnce is RunOnce over the events of one shard of `of`.
func (w *Worker) runOnce(ctx context.Context, shard, of int) (int, error) {
	events, err := w.inbox.ClaimShard(ctx, w.owner, w.cfg.Batch, w.clock.Now(), w.cfg.Lease, shard, of)
	if err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	if ctx.Err() != nil {
		w.release(ctx, events)
		return len(events), nil
	}
	// The batch in hand finishes even if shutdown begins meanwhile; applied
	// one by one, the event in hand does.
	bctx := context.WithoutCancel(ctx)
	if len(events) == 1 || !w.processBatch(bctx, events) {
		for i, ev := range events {
			if ctx.Err() != nil {
				w.release(ctx, events[i:])
				break
			}
			ectx, cancel := context.WithTimeout(bctx, w.cfg.EventTimeout)
			w.process(ectx, ev)
			cancel()
		}
	}
	return len(events), nil
}

// release gives back claimed events not started, on shutdown.
func (w *Worker) release(ctx context.Context, events []Event) {
	ids := make([]string, 0, len(events))
	for _, e := range events {
		ids = append(ids, e.ID)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.inbox.Release(rctx, w.owner, ids); err != nil {
		w.log.Warn("webhook worker: release on shutdown failed; events wait out their lease", "err", err)
	}
}

// processBatch applies events in one transaction, in claim order, and
// reports whether it committed. On any error (an event's handler, a lost
// lease, a deadlock, the commit) nothing of the batch is kept and it returns
// false: the caller then applies each event alone, where a failure is
// recorded against that event only. An ambiguous commit is safe to replay
// too: finishIn only marks an event still pending under our lease, so an
// event that did commit is not applied again.
func (w *Worker) processBatch(ctx context.Context, events []Event) bool {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.EventTimeout)
	defer cancel()
	statuses := make([]Status, len(events))
	now := w.clock.Now()
	err := w.db.Transact(ctx, func(tx *gorm.DB) error {
		// Batches of neighbouring events often touch one customer's objects
		// in different orders and can deadlock, which PostgreSQL only notices
		// after deadlock_timeout (1 s): a batch that waits this long for a
		// lock gives up and is applied one by one instead.
		if err := w.db.Dialect.LockTimeout(ctx, tx, batchLockTimeout); err != nil {
			return err
		}
		for i, ev := range events {
			statuses[i] = StatusProcessed
			if len(w.registry.Handlers(ev.Type)) == 0 {
				statuses[i] = StatusIgnored
			}
		}
		// Every mark first, in one statement per status: the row locks keep
		// other workers out of the whole batch until it commits.
		if err := finishAllIn(ctx, tx, events, statuses, w.owner, now, w.db.Dialect.Partitioned()); err != nil {
			return err
		}
		return w.registry.inScopes(ctx, tx, func(ctx context.Context) error {
			for _, ev := range events {
				for _, h := range w.registry.Handlers(ev.Type) {
					if err := h(ctx, tx, ev); err != nil {
						return fmt.Errorf("event %s: %w", ev.ID, err)
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		w.metrics.WebhookBatchReplayed.Inc()
		w.log.Debug("webhook worker: batch rolled back; applying its events one by one", "events", len(events), "err", err)
		return false
	}
	for i, ev := range events {
		w.metrics.WebhookProcessed.WithLabelValues(string(statuses[i])).Inc()
		w.log.Debug("webhook event applied", "event_id", ev.ID, "type", ev.Type, "status", statuses[i])
	}
	return true
}

func (w *Worker) process(ctx context.Context, ev Event) {
	handlers := w.registry.Handlers(ev.Type)
	status := StatusProcessed
	if len(handlers) == 0 {
		status = StatusIgnored
	}
	err := w.db.Transact(ctx, func(tx *gorm.DB) error {
		if err := finishIn(ctx, tx, ev, w.owner, status, w.clock.Now(), w.db.Dialect.Partitioned()); err != nil {
			return err
		}
		return w.registry.inScopes(ctx, tx, func(ctx context.Context) error {
			for _, h := range handlers {
				if err := h(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		})
	})
	switch {
	case err == nil:
		w.metrics.WebhookProcessed.WithLabelValues(string(status)).Inc()
		w.log.Debug("webhook event applied", "event_id", ev.ID, "type", ev.Type, "status", status)
		return
	case errors.Is(err, errLeaseLost):
		w.log.Warn("webhook worker: lease lost; another worker owns the event", "event_id", ev.ID)
		return
	}
	w.metrics.WebhookFailed.WithLabelValues(ev.Type).Inc()
	dead := ev.Attempts >= w.cfg.MaxAttempts || errs.Is(err, errs.EINVALID)
	now := w.clock.Now()
	next := now.Add(w.backoff(ev.Attempts))
	w.log.Warn("webhook event failed", "event_id", ev.ID, "type", ev.Type, "attempt", ev.Attempts, "dead", dead, "err", err)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := w.inbox.Fail(fctx, ev, w.owner, err.Error(), now, next, dead); ferr != nil {
		w.log.Error("webhook worker: could not record failure; the lease will expire and it will be retried", "event_id", ev.ID, "err", ferr)
		return
	}
	if dead {
		w.metrics.WebhookDead.Inc()
	}
}

// backoff is base·2^(attempt-1), capped, with ±20% jitter so a burst of
// failures does not retry in lockstep.
func (w *Worker) backoff(attempt int) time.Duration {
	d := float64(w.cfg.BackoffBase) * math.Pow(2, float64(max(attempt-1, 0)))
	if d > float64(w.cfg.BackoffMax) || math.IsInf(d, 0) {
		d = float64(w.cfg.BackoffMax)
	}
	return time.Duration(d * (0.8 + 0.4*mrand.Float64()))
}
