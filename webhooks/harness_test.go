package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/webhooks"
)

const (
	secretA = "whsec_test_primary_0123456789abcdef"
	secretB = "whsec_test_rotated_fedcba9876543210"
)

var evtSeq atomic.Int64

// stripeEvent returns a Stripe-shaped event payload of type typ.
func stripeEvent(id, typ string, created time.Time) []byte {
	obj := map[string]any{
		"id": "in_" + id[4:], "object": "invoice", "customer": "cus_T1", "status": "open",
		"amount_due": 4900, "currency": "usd", "attempt_count": 1, "billing_reason": "subscription_cycle",
	}
	ev := map[string]any{
		"id": id, "object": "event", "api_version": "2023-10-16", "created": created.Unix(),
		"data":     map[string]any{"object": obj},
		"livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"type":    typ,
	}
	b, _ := json.Marshal(ev)
	return b
}

func newEventID() string {
	return fmt.Sprintf("evt_test%08d%d", evtSeq.Add(1), time.Now().UnixNano()%1e6)
}

func sign(payload []byte, secret string, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: t}).Header
}

// harness is an intake, a worker and the admin API over one database,
// served by httptest.
type harness struct {
	t       *testing.T
	db      *db.DB
	clock   *clock.Manual
	inbox   *webhooks.Inbox
	intake  *webhooks.Intake
	worker  *webhooks.Worker
	metrics *metrics.Metrics
	srv     *httptest.Server
	effects atomic.Int64
	admin   string // admin bearer token
	agent   string
}

type harnessOpts struct {
	handlers    func(r *webhooks.Registry, h *harness)
	maxAttempts int
	concurrency int           // worker loops (default 2)
	poll        time.Duration // idle worker poll (default 20 ms)
	notify      bool          // the intake wakes the worker (Worker.NotifyShards), as in serve
}

func newHarness(t *testing.T, d *db.DB, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, db: d, clock: clock.NewManual(time.Now()), metrics: metrics.New()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.inbox = webhooks.NewInbox(d)
	reg := webhooks.NewRegistry()
	if o.handlers != nil {
		o.handlers(reg, h)
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 3
	}
	if o.concurrency == 0 {
		o.concurrency = 2
	}
	if o.poll == 0 {
		o.poll = 20 * time.Millisecond
	}
	h.worker = webhooks.NewWorker(d, h.inbox, reg, h.clock, log, h.metrics, webhooks.WorkerConfig{
		Concurrency: o.concurrency, MaxAttempts: o.maxAttempts, Lease: time.Minute, PollInterval: o.poll,
		BackoffBase: time.Second, BackoffMax: time.Minute,
	})
	var onStore func([]int64)
	if o.notify {
		onStore = h.worker.NotifyShards
	}
	h.intake = webhooks.NewIntake(h.inbox, h.clock, log, h.metrics, webhooks.IntakeConfig{
		Secrets: []string{secretA, secretB}, Tolerance: 300 * time.Second, MaxBody: 64 << 10,
	}, onStore)
	e := httpx.New(httpx.Options{Logger: log, Metrics: h.metrics})
	h.intake.Register(e)
	tokens := auth.NewTokenStore(d, h.clock)
	api := e.Group("/api/v1", auth.Middleware(tokens))
	webhooks.NewAdmin(h.inbox, h.clock, h.metrics, nil).Register(api)
	h.srv = httptest.NewServer(apispectest.Handler(t, e))
	t.Cleanup(func() { h.srv.Close(); h.intake.Close() })
	var err error
	if h.admin, _, err = tokens.Create(context.Background(), "ops", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if h.agent, _, err = tokens.Create(context.Background(), "agent", auth.RoleAgent); err != nil {
		t.Fatal(err)
	}
	return h
}

// effectHandler records each application in test_effects, inside the event's
// transaction, so counting rows counts committed applications.
func effectHandler(h *harness) webhooks.Handler {
	return func(ctx context.Context, tx *gorm.DB, ev webhooks.Event) error {
		return tx.Exec("INSERT INTO test_effects (event_id) VALUES (?)", ev.ID).Error
	}
}

func createEffects(t *testing.T, d *db.DB) {
	t.Helper()
	if err := d.Gorm.Exec("CREATE TABLE test_effects (event_id TEXT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
}

func countEffects(t *testing.T, d *db.DB, eventID string) int64 {
	t.Helper()
	var n int64
	q := "SELECT COUNT(*) FROM test_effects"
	args := []any{}
	if eventID != "" {
		q += " WHERE event_id = ?"
		args = append(args, eventID)
	}
	if err := d.Gorm.Raw(q, args...).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

type response struct {
	Status int
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %s", r.Status, r.Body)
	}
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.Body)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("error without message: %s", r.Body)
	}
	return e["code"].(string)
}

// deliver POSTs payload with the given Stripe-Signature header ("" for none).
func (h *harness) deliver(payload []byte, sigHeader string) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhooks/stripe", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if sigHeader != "" {
		req.Header.Set("Stripe-Signature", sigHeader)
	}
	return h.do(req)
}

func (h *harness) deliverSigned(payload []byte) response {
	return h.deliver(payload, sign(payload, secretA, time.Now()))
}

func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b}
}

func (h *harness) api(method, path, token string) response {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.do(req)
}

func (h *harness) countRows(where string, args ...any) int64 {
	h.t.Helper()
	var n int64
	q := "SELECT COUNT(*) FROM webhook_events"
	if where != "" {
		q += " WHERE " + where
	}
	if err := h.db.Gorm.Raw(q, args...).Scan(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	return n
}

// drain runs the worker until nothing due is left.
func (h *harness) drain() {
	h.t.Helper()
	for i := 0; i < 1000; i++ {
		n, err := h.worker.RunOnce(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	h.t.Fatal("worker never drained")
}
