package notifications

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/stdwebhooks"
)

// Options wire a Notifier. Zero durations and counts take the defaults
// noted on each.
type Options struct {
	Store  *Store
	Feed   *events.Feed // its settle delay is what the dispatcher waits
	Policy Policy
	Clock  clock.Clock
	Log    *slog.Logger
	// Registerer receives the notification metrics (nil: not registered).
	Registerer prometheus.Registerer
	// PublicURL is the console's base URL for links to cases.
	PublicURL    string
	PollInterval time.Duration // 2s
	Timeout      time.Duration // per HTTP call, 10s
	MaxAttempts  int           // 10
	BackoffBase  time.Duration // 10s
	BackoffMax   time.Duration // 1h
	// Lookback is how far back each dispatch rescans for events that
	// committed late (1m).
	Lookback time.Duration
}

// mark is the cursor as a dispatch found it.
type mark struct {
	at     time.Time
	cursor int64
}

// Notifier dispatches events to deliveries and sends them.
type Notifier struct {
	opt     Options
	clients map[string]*http.Client // by destination name
	keys    map[string][]byte       // webhook signing keys by destination name
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	errors  *prometheus.CounterVec
	mu      sync.Mutex
	marks   []mark // cursor samples of the last Lookback, oldest first
}

// New returns a notifier for opt.Policy, which must have been validated.
func New(opt Options) (*Notifier, error) {
	if opt.PollInterval <= 0 {
		opt.PollInterval = 2 * time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.MaxAttempts < 1 {
		opt.MaxAttempts = 10
	}
	if opt.BackoffBase <= 0 {
		opt.BackoffBase = 10 * time.Second
	}
	if opt.Lookback <= 0 {
		opt.Lookback = time.Minute
	}
	if opt.BackoffMax < opt.BackoffBase {
		opt.BackoffMax = max(time.Hour, opt.BackoffBase)
	}
	n := &Notifier{opt: opt, clients: map[string]*http.Client{}, keys: map[string][]byte{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recourse_notifications_sent_total",
			Help: "Notifications delivered, by destination type."}, []string{"type"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recourse_notifications_failed_total",
			Help: "Notifications given up after their last attempt, by destination type."}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recourse_notification_attempts_failed_total",
			Help: "Notification attempts that failed (retried or given up), by destination type."}, []string{"type"}),
	}
	for _, d := range opt.Policy.Destinations {
		n.clients[d.Name] = newClient(opt.Timeout, d.AllowPrivate)
		if d.Type == TypeWebhook {
			k, err := stdwebhooks.Key(d.Secret)
			if err != nil {
				return nil, fmt.Errorf("destination %s: %w", d.Name, err)
			}
			n.keys[d.Name] = k
		}
	}
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{n.sent, n.failed, n.errors} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register notification metrics: %w", err)
			}
		}
	}
	return n, nil
}

// Run dispatches and sends every poll interval until ctx is cancelled.
// It runs without destinations too: the cursor then keeps up with the
// feed, so configuring a destination later does not announce the past.
func (n *Notifier) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if _, err := n.Dispatch(ctx); err != nil && ctx.Err() == nil {
			n.opt.Log.Warn("notifications: dispatch failed; retrying", "err", err)
		}
		if _, err := n.Send(ctx); err != nil && ctx.Err() == nil {
			n.opt.Log.Warn("notifications: send failed; retrying", "err", err)
		}
		t := time.NewTimer(n.opt.PollInterval)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

const batch = 100

// Dispatch routes the settled events after the cursor to deliveries and
// advances the cursor, until none are left, then rescans the last
// Lookback; it returns how many deliveries it wrote (or found written).
func (n *Notifier) Dispatch(ctx context.Context) (int, error) {
	total, err := n.dispatchNew(ctx)
	if err != nil {
		return total, err
	}
	k, err := n.rescan(ctx)
	return total + k, err
}

// rescan routes again the events between the cursor of Lookback ago and
// the cursor now. The settle delay makes it all but certain that no event
// commits behind one already read; should a transaction outlast it anyway
// (a stalled database), its event is caught here instead of lost. The
// deliveries' unique key makes the rest no-ops.
func (n *Notifier) rescan(ctx context.Context) (int, error) {
	cur, err := n.opt.Store.cursor(ctx)
	if err != nil {
		return 0, err
	}
	now := n.opt.Clock.Now()
	n.mu.Lock()
	n.marks = append(n.marks, mark{at: now, cursor: cur})
	for len(n.marks) > 1 && !n.marks[1].at.After(now.Add(-n.opt.Lookback)) {
		n.marks = n.marks[1:]
	}
	after := n.marks[0].cursor
	n.mu.Unlock()
	total := 0
	for after < cur && ctx.Err() == nil {
		evs, err := n.opt.Feed.List(ctx, after, "", batch)
		if err != nil || len(evs) == 0 {
			return total, err
		}
		rows := n.route(evs, cur)
		if err := n.opt.Store.enqueue(ctx, rows, 0); err != nil {
			return total, err
		}
		total += len(rows)
		if len(evs) < batch {
			break
		}
		after = evs[len(evs)-1].ID
	}
	return total, ctx.Err()
}

// route returns the deliveries of evs with ids up to upTo.
func (n *Notifier) route(evs []events.Event, upTo int64) []deliveryRow {
	now := n.opt.Clock.Now().UTC()
	var rows []deliveryRow
	for _, ev := range evs {
		if ev.ID > upTo {
			break
		}
		for _, name := range n.opt.Policy.Route(ev) {
			d, _ := n.opt.Policy.destination(name)
			rows = append(rows, deliveryRow{ID: deliveryID(ev.ID, name), EventID: ev.ID, EventType: ev.Type, Subject: ev.Subject,
				Destination: name, DestType: string(d.Type), Status: string(StatusPending), NextAttemptAt: now, CreatedAt: now, UpdatedAt: now})
		}
	}
	return rows
}

func (n *Notifier) dispatchNew(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		after, err := n.opt.Store.cursor(ctx)
		if err != nil {
			return total, err
		}
		evs, err := n.opt.Feed.List(ctx, after, "", batch)
		if err != nil || len(evs) == 0 {
			return total, err
		}
		rows := n.route(evs, evs[len(evs)-1].ID)
		if err := n.opt.Store.enqueue(ctx, rows, evs[len(evs)-1].ID); err != nil {
			return total, err
		}
		total += len(rows)
		if len(evs) < batch {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// Send posts the due deliveries, a batch at a time, and returns how many
// it attempted. Each call has its own timeout; shutdown lets the one in
// hand finish.
func (n *Notifier) Send(ctx context.Context) (int, error) {
	total := 0
	lease := n.opt.Timeout*2 + 5*time.Second
	for ctx.Err() == nil {
		due, err := n.opt.Store.claim(ctx, n.opt.Clock.Now(), lease, 20)
		if err != nil || len(due) == 0 {
			return total, err
		}
		for i, c := range due {
			if ctx.Err() != nil {
				// Shutting down: give back what was not started, so it
				// need not wait out its lease on another replica.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				n.opt.Store.release(rctx, due[i:])
				cancel()
				break
			}
			n.deliver(context.WithoutCancel(ctx), c) // the one in hand finishes
		}
		total += len(due)
	}
	return total, ctx.Err()
}

func (n *Notifier) deliver(ctx context.Context, c claimed) {
	r := c.row
	d, ok := n.opt.Policy.destination(r.Destination)
	var err error
	if !ok {
		err = fmt.Errorf("destination %s is no longer in the policy file", r.Destination)
	} else {
		err = n.post(ctx, d, c)
	}
	now := n.opt.Clock.Now()
	status, msg, next := StatusSent, "", now
	if err != nil {
		n.errors.WithLabelValues(r.DestType).Inc()
		msg = err.Error()
		status = StatusPending
		next = now.Add(Backoff(n.opt.BackoffBase, n.opt.BackoffMax, r.Attempts))
		if r.Attempts >= n.opt.MaxAttempts || !ok {
			status = StatusFailed
		}
		n.opt.Log.Warn("notification failed", "id", r.ID, "destination", r.Destination, "attempt", r.Attempts, "status", status, "err", msg)
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ferr := n.opt.Store.finish(fctx, r, status, msg, next, now); ferr != nil {
		n.opt.Log.Error("notifications: could not record the outcome; the lease will expire and it is retried", "id", r.ID, "err", ferr)
		return
	}
	switch status {
	case StatusSent:
		n.sent.WithLabelValues(r.DestType).Inc()
	case StatusFailed:
		n.failed.WithLabelValues(r.DestType).Inc()
	}
}

// post sends one delivery and reports an error unless the receiver
// answered 2xx.
func (n *Notifier) post(ctx context.Context, d Destination, c claimed) error {
	var body []byte
	var err error
	switch d.Type {
	case TypeSlack:
		body, err = slackMessage(c.row.EventType, []byte(c.data), n.opt.PublicURL)
	default:
		body, err = webhookBody(c.row.EventType, c.row.ID, c.at, []byte(c.data))
	}
	if err != nil {
		return fmt.Errorf("render %s message: %w", d.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request to %s: %w", redactURL(d.URL), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Recourse-Notifications/1")
	if d.Type == TypeWebhook {
		stdwebhooks.SetHeaders(req.Header, n.keys[d.Name], c.row.ID, n.opt.Clock.Now(), body)
	}
	resp, err := n.clients[d.Name].Do(req)
	if err != nil {
		// The error names the URL; keep only its host (the path is a credential).
		return fmt.Errorf("post to %s: %s", redactURL(d.URL), scrub(err, d.URL))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %d: %s", redactURL(d.URL), resp.StatusCode, bytes.TrimSpace(snippet))
	}
	return nil
}

// scrub removes the full URL from err's text.
func scrub(err error, raw string) string {
	return string(bytes.ReplaceAll([]byte(err.Error()), []byte(raw), []byte(redactURL(raw))))
}

// Backoff is how long to wait after the attempt-th failure: base·2^(attempt-1),
// at most max.
func Backoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := float64(base) * math.Pow(2, float64(max(attempt-1, 0)))
	if d > float64(maxWait) || math.IsInf(d, 0) {
		return maxWait
	}
	return time.Duration(d)
}
