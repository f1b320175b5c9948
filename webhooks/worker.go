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
	wake     chan struct{}
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
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &Worker{db: d, inbox: inbox, registry: reg, clock: c, log: log, metrics: m, cfg: cfg,
		owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b)), wake: make(chan struct{}, 1)}
}

// Notify tells an idle worker that new events may be waiting.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// claimBatch is how many events one loop claims at a time.
const claimBatch = 8

// Run processes events until ctx is cancelled, then finishes the event in
// hand, gives back the ones it had claimed but not started, and returns.
func (w *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < w.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx)
		}()
	}
	wg.Wait()
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil {
			w.log.Warn("webhook worker: claim failed", "err", err)
		}
		if n == claimBatch && err == nil {
			continue
		}
		t := time.NewTimer(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-w.wake:
		}
		t.Stop()
	}
}

// RunOnce claims one batch of due events and processes it, returning how many
// it claimed. Cancelling ctx stops it between events.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	events, err := w.inbox.Claim(ctx, w.owner, claimBatch, w.clock.Now(), w.cfg.Lease)
	if err != nil {
		return 0, err
	}
	for i, ev := range events {
		if ctx.Err() != nil {
			rest := make([]string, 0, len(events)-i)
			for _, e := range events[i:] {
				rest = append(rest, e.ID)
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := w.inbox.Release(rctx, w.owner, rest); err != nil {
				w.log.Warn("webhook worker: release on shutdown failed; events wait out their lease", "err", err)
			}
			cancel()
			break
		}
		// The event in hand finishes even if shutdown begins meanwhile.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.EventTimeout)
		w.process(ectx, ev)
		cancel()
	}
	return len(events), nil
}

func (w *Worker) process(ctx context.Context, ev Event) {
	handlers := w.registry.Handlers(ev.Type)
	status := StatusProcessed
	if len(handlers) == 0 {
		status = StatusIgnored
	}
	err := w.db.Transact(ctx, func(tx *gorm.DB) error {
		if err := finishIn(ctx, tx, ev, w.owner, status, w.clock.Now()); err != nil {
			return err
		}
		for _, h := range handlers {
			if err := h(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
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
