package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
)

// IntakeConfig tunes the Stripe endpoint.
type IntakeConfig struct {
	Secrets   []string      // any one may sign a delivery (rotation)
	Tolerance time.Duration // oldest signature timestamp accepted
	MaxBody   int64         // larger bodies get 413
	// Committers is how many group-commit loops write to the inbox at once;
	// MaxBatch caps the deliveries one commit carries.
	Committers int
	MaxBatch   int
}

// Intake is the Stripe webhook endpoint. It acknowledges a delivery only
// after the event is committed to the inbox. Concurrent deliveries are
// committed together (group commit): one INSERT and one fsync for many.
type Intake struct {
	inbox   *Inbox
	clock   clock.Clock
	log     *slog.Logger
	metrics *metrics.Metrics
	cfg     IntakeConfig
	onStore func(shards []int64) // wakes the local worker's loops of these shards

	queue chan *submission
	quit  chan struct{}
	wg    sync.WaitGroup
	stop  sync.Once
}

type submission struct {
	ev   Event
	done chan submitResult
}

type submitResult struct {
	inserted bool
	err      error
}

// NewIntake returns the endpoint and starts its committers; Close stops them.
// onStore, if not nil, is called after new events are committed, with their
// shards (Worker.NotifyShards).
func NewIntake(inbox *Inbox, c clock.Clock, log *slog.Logger, m *metrics.Metrics, cfg IntakeConfig, onStore func(shards []int64)) *Intake {
	if cfg.Committers < 1 {
		// One committer gathers every waiting delivery into one batch; on
		// the benchmark machine more committers made smaller batches and
		// cost more CPU than their overlap saved (docs/benchmarks.md).
		cfg.Committers = 1
	}
	if cfg.MaxBatch < 1 {
		cfg.MaxBatch = 128
	}
	in := &Intake{inbox: inbox, clock: c, log: log, metrics: m, cfg: cfg, onStore: onStore,
		queue: make(chan *submission), quit: make(chan struct{})}
	for i := 0; i < cfg.Committers; i++ {
		in.wg.Add(1)
		go in.commitLoop()
	}
	return in
}

// Close stops the committers after the batches in hand are written. Call it
// once the HTTP server has stopped taking requests.
func (in *Intake) Close() {
	in.stop.Do(func() { close(in.quit) })
	in.wg.Wait()
}

// Register mounts POST /webhooks/stripe on e, behind mw (its own generous
// rate limit per address: see the README's Limits).
func (in *Intake) Register(e *echo.Echo, mw ...echo.MiddlewareFunc) {
	e.POST("/webhooks/stripe", in.serveStripe, mw...)
}

func (in *Intake) reject(reason string, err *errs.Error) error {
	in.metrics.WebhookRejected.WithLabelValues(reason).Inc()
	return err
}

// ack is the body of a 200 answer.
type ack struct {
	Received  bool   `json:"received"`
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

func (in *Intake) serveStripe(c echo.Context) error {
	r := c.Request()
	if len(in.cfg.Secrets) == 0 {
		// 503, not 4xx: Stripe keeps retrying while an operator fixes it.
		return in.reject("not_configured", errs.Coded(errs.EUNAVAILABLE, "webhook_not_configured", "no Stripe webhook secret is configured (RECOURSE_STRIPE_WEBHOOK_SECRETS)"))
	}
	if r.ContentLength > in.cfg.MaxBody {
		return in.reject("too_large", errs.Coded(errs.ETOOLARGE, "payload_too_large", "webhook body is larger than %d bytes", in.cfg.MaxBody))
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, in.cfg.MaxBody)
	body, err := httpx.ReadBody(c)
	if err != nil {
		if errs.Is(err, errs.ETOOLARGE) {
			return in.reject("too_large", err.(*errs.Error))
		}
		return in.reject("unreadable", errs.Coded(errs.EINVALID, "body_unreadable", "could not read the webhook body"))
	}
	if err := in.verify(body, r.Header.Get("Stripe-Signature")); err != nil {
		return err
	}
	ev, err := parseEnvelope(body)
	if err != nil {
		e, _ := errs.As(err)
		return in.reject(e.Code, e)
	}
	inserted, err := in.submit(r.Context(), ev)
	if err != nil {
		in.log.Error("webhook intake: could not store event; answering 503 so Stripe retries", "event_id", ev.ID, "type", ev.Type, "err", err)
		return in.reject("store_unavailable", errs.Wrap(errs.EUNAVAILABLE, err, "event could not be stored; retry later"))
	}
	if inserted {
		in.metrics.WebhookReceived.Inc()
	} else {
		in.metrics.WebhookDuplicate.Inc()
	}
	return c.JSON(http.StatusOK, ack{Received: true, EventID: ev.ID, Duplicate: !inserted})
}

// verify checks the Stripe-Signature header over the raw body against each
// configured secret. stripe-go checks the timestamp before the signature, so a
// stale delivery is reported as stale whichever secret signed it.
func (in *Intake) verify(body []byte, header string) error {
	var err error
	for _, secret := range in.cfg.Secrets {
		err = webhook.ValidatePayloadWithTolerance(body, header, secret, in.cfg.Tolerance)
		if err == nil {
			return nil
		}
		if !errors.Is(err, webhook.ErrNoValidSignature) {
			break
		}
	}
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return in.reject("signature_missing", errs.Coded(errs.EINVALID, "signature_missing", "Stripe-Signature header is missing"))
	case errors.Is(err, webhook.ErrInvalidHeader):
		return in.reject("signature_header_invalid", errs.Coded(errs.EINVALID, "signature_header_invalid", "Stripe-Signature header is malformed; expected t=<unix>,v1=<hex>"))
	case errors.Is(err, webhook.ErrTooOld):
		return in.reject("timestamp_too_old", errs.Coded(errs.EINVALID, "timestamp_too_old", "signature timestamp is older than the %s tolerance", in.cfg.Tolerance))
	default:
		return in.reject("signature_mismatch", errs.Coded(errs.EINVALID, "signature_mismatch", "no configured webhook secret produced this signature"))
	}
}

// submit hands ev to a committer and waits for its commit.
func (in *Intake) submit(ctx context.Context, ev Event) (bool, error) {
	s := &submission{ev: ev, done: make(chan submitResult, 1)}
	select {
	case in.queue <- s:
	case <-in.quit:
		return false, errors.New("intake is shutting down")
	case <-ctx.Done():
		return false, ctx.Err()
	}
	// Wait for the commit even if the client has gone: the outcome is the
	// same either way, and the committer needs no cancellation path.
	res := <-s.done
	return res.inserted, res.err
}

// commitLoop takes one waiting delivery, gathers every other delivery already
// waiting (up to MaxBatch), writes them in one statement and answers each.
func (in *Intake) commitLoop() {
	defer in.wg.Done()
	batch := make([]*submission, 0, in.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case s := <-in.queue:
			batch = append(batch, s)
		case <-in.quit:
			return
		}
	gather:
		for len(batch) < in.cfg.MaxBatch {
			select {
			case s := <-in.queue:
				batch = append(batch, s)
			default:
				break gather
			}
		}
		in.commit(batch)
	}
}

func (in *Intake) commit(batch []*submission) {
	events := make([]Event, len(batch))
	for i, s := range batch {
		events[i] = s.ev
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inserted, err := in.inbox.InsertBatch(ctx, events, in.clock.Now())
	in.metrics.IntakeBatchSize.Observe(float64(len(batch)))
	// The first submission of an id in the batch gets "inserted"; repeats of
	// it within the same batch are duplicates.
	seen := make(map[string]bool, len(batch))
	for _, s := range batch {
		r := submitResult{err: err}
		if err == nil {
			r.inserted = inserted[s.ev.ID] && !seen[s.ev.ID]
			seen[s.ev.ID] = true
		}
		s.done <- r
	}
	if err == nil && len(inserted) > 0 && in.onStore != nil {
		shards := make([]int64, 0, len(inserted))
		for _, ev := range events {
			if inserted[ev.ID] {
				shards = append(shards, ev.Shard)
			}
		}
		in.onStore(shards)
	}
}
