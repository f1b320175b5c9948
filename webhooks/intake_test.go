package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/webhooks"
)

func withEffects(r *webhooks.Registry, h *harness) {
	r.Handle(effectHandler(h), "invoice.payment_failed", "invoice.paid")
}

func TestSignedEventStoredThenProcessed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		h := newHarness(t, d, harnessOpts{handlers: withEffects})
		id := newEventID()
		resp := h.deliverSigned(stripeEvent(id, "invoice.payment_failed", time.Now()))
		if resp.Status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
		if got := resp.json(t)["duplicate"]; got != false {
			t.Fatalf("first delivery marked duplicate: %s", resp.Body)
		}
		// Acknowledged means committed: the row is there before any worker runs.
		if n := h.countRows("event_id = ? AND status = 'pending'", id); n != 1 {
			t.Fatalf("pending rows for %s = %d, want 1", id, n)
		}
		rec, err := h.inbox.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type != "invoice.payment_failed" || rec.APIVersion == nil || *rec.APIVersion != "2023-10-16" || rec.ObjectType == nil || *rec.ObjectType != "invoice" {
			t.Fatalf("stored record wrong: %+v", rec)
		}
		h.drain()
		if n := countEffects(t, d, id); n != 1 {
			t.Fatalf("effects = %d, want 1", n)
		}
		if n := h.countRows("event_id = ? AND status = 'processed' AND processed_at IS NOT NULL", id); n != 1 {
			t.Fatal("event not marked processed")
		}
	})
}

func TestConcurrentDuplicateDeliveriesStoredAndProcessedOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		h := newHarness(t, d, harnessOpts{handlers: withEffects})
		id := newEventID()
		payload := stripeEvent(id, "invoice.paid", time.Now())
		var wg sync.WaitGroup
		statuses := make([]int, 20)
		dups := make([]bool, 20)
		for i := range statuses {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := h.deliverSigned(payload)
				statuses[i] = r.Status
				if r.Status == http.StatusOK {
					dups[i] = r.json(t)["duplicate"] == true
				}
			}(i)
		}
		wg.Wait()
		fresh := 0
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Fatalf("delivery %d got %d", i, s)
			}
			if !dups[i] {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d deliveries reported as new, want exactly 1", fresh)
		}
		if n := h.countRows("event_id = ?", id); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}
		// Two workers racing over the same inbox still apply it once.
		var wwg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wwg.Add(1)
			go func() { defer wwg.Done(); h.drain() }()
		}
		wwg.Wait()
		if n := countEffects(t, d, id); n != 1 {
			t.Fatalf("effects = %d, want 1", n)
		}
		// A redelivery after processing is still a 2xx no-op.
		if r := h.deliverSigned(payload); r.Status != http.StatusOK || r.json(t)["duplicate"] != true {
			t.Fatalf("late redelivery: %d %s", r.Status, r.Body)
		}
		h.drain()
		if n := countEffects(t, d, id); n != 1 {
			t.Fatalf("effects after redelivery = %d, want 1", n)
		}
	})
}

func TestBadDeliveriesRejectedAndNothingStored(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, harnessOpts{})
		now := time.Now()
		good := stripeEvent(newEventID(), "invoice.paid", now)
		tampered := bytes.Replace(good, []byte(`"amount_due":4900`), []byte(`"amount_due":1`), 1)
		if bytes.Equal(good, tampered) {
			t.Fatal("tamper did not change payload")
		}
		cases := []struct {
			name    string
			payload []byte
			header  string
			status  int
			code    string
		}{
			{"tampered body", tampered, sign(good, secretA, now), 400, "signature_mismatch"},
			{"unsigned", good, "", 400, "signature_missing"},
			{"garbage header", good, "nonsense", 400, "signature_header_invalid"},
			{"unknown secret", good, sign(good, "whsec_someone_else", now), 400, "signature_mismatch"},
			{"stale timestamp", good, sign(good, secretA, now.Add(-301*time.Second)), 400, "timestamp_too_old"},
			{"malformed json", []byte(`{"id": "evt_x", "type": `), sign([]byte(`{"id": "evt_x", "type": `), secretA, now), 400, "malformed_json"},
			{"not an event", []byte(`{"id":"ch_1","object":"charge","type":"x","created":1,"data":{}}`), sign([]byte(`{"id":"ch_1","object":"charge","type":"x","created":1,"data":{}}`), secretA, now), 400, "malformed_event"},
			{"event without id", []byte(`{"object":"event","type":"invoice.paid","created":1700000000,"data":{"object":{}}}`), sign([]byte(`{"object":"event","type":"invoice.paid","created":1700000000,"data":{"object":{}}}`), secretA, now), 400, "malformed_event"},
		}
		for _, c := range cases {
			r := h.deliver(c.payload, c.header)
			if r.Status != c.status {
				t.Errorf("%s: status %d, want %d (%s)", c.name, r.Status, c.status, r.Body)
				continue
			}
			if code := r.errorCode(t); code != c.code {
				t.Errorf("%s: code %q, want %q", c.name, code, c.code)
			}
		}
		if n := h.countRows(""); n != 0 {
			t.Fatalf("%d rows stored from bad deliveries", n)
		}
		big := stripeEvent(newEventID(), "invoice.paid", now)
		big = append(big[:len(big)-1], []byte(`,"pad":"`+strings.Repeat("x", 70<<10)+`"}`)...)
		if r := h.deliver(big, sign(big, secretA, now)); r.Status != http.StatusRequestEntityTooLarge || r.errorCode(t) != "payload_too_large" {
			t.Fatalf("oversized: %d %s", r.Status, r.Body)
		}
		if n := h.countRows(""); n != 0 {
			t.Fatalf("%d rows stored from bad deliveries", n)
		}
	})
}

func TestRotatedSecretAndNewerAPIVersionAccepted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, harnessOpts{})
		id := newEventID()
		p := bytes.Replace(stripeEvent(id, "invoice.paid", time.Now()), []byte("2023-10-16"), []byte("2025-03-31.basil"), 1)
		if r := h.deliver(p, sign(p, secretB, time.Now())); r.Status != http.StatusOK {
			t.Fatalf("second secret: %d %s", r.Status, r.Body)
		}
		rec, err := h.inbox.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.APIVersion == nil || *rec.APIVersion != "2025-03-31.basil" {
			t.Fatalf("api version not recorded: %+v", rec.APIVersion)
		}
	})
}

func TestUnknownTypeIgnoredNotDropped(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		h := newHarness(t, d, harnessOpts{handlers: withEffects})
		id := newEventID()
		if r := h.deliverSigned(stripeEvent(id, "product.created", time.Now())); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		h.drain()
		if n := h.countRows("event_id = ? AND status = 'ignored'", id); n != 1 {
			t.Fatal("unhandled type not marked ignored")
		}
	})
}

func TestFailingEventRetriesThenDeadLettersAndReplays(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		var fail sync.Map
		h := newHarness(t, d, harnessOpts{maxAttempts: 3, handlers: func(r *webhooks.Registry, h *harness) {
			r.Handle(func(ctx context.Context, tx *gorm.DB, ev webhooks.Event) error {
				if err := tx.Exec("INSERT INTO test_effects (event_id) VALUES (?)", ev.ID).Error; err != nil {
					return err
				}
				if _, bad := fail.Load(ev.ID); bad {
					return errors.New("downstream refused")
				}
				return nil
			}, "invoice.paid")
		}})
		id := newEventID()
		fail.Store(id, true)
		h.deliverSigned(stripeEvent(id, "invoice.paid", time.Now()))
		for attempt := 1; attempt <= 3; attempt++ {
			h.drain()
			rec, _ := h.inbox.Get(context.Background(), id)
			if rec.Attempts != attempt || rec.LastError == nil || !strings.Contains(*rec.LastError, "downstream refused") {
				t.Fatalf("after attempt %d: %+v", attempt, rec)
			}
			if attempt < 3 {
				if rec.Status != webhooks.StatusPending || !rec.NextAttemptAt.After(h.clock.Now()) {
					t.Fatalf("attempt %d: not scheduled for retry: %+v", attempt, rec)
				}
				// Not due yet: nothing happens.
				h.drain()
				if r2, _ := h.inbox.Get(context.Background(), id); r2.Attempts != attempt {
					t.Fatal("retried before its backoff")
				}
				h.clock.Advance(2 * time.Minute)
			} else if rec.Status != webhooks.StatusDead {
				t.Fatalf("not dead after last attempt: %+v", rec)
			}
		}
		if n := countEffects(t, d, id); n != 0 {
			t.Fatalf("failed attempts left %d effects", n)
		}
		// Dead-lettering announces itself on the outbox, once, without the payload.
		var dead []struct{ Data string }
		d.Gorm.Table("events").Where("type = 'webhook.dead_lettered' AND subject = ?", id).Find(&dead)
		if len(dead) != 1 || !strings.Contains(dead[0].Data, `"event_type":"invoice.paid"`) || strings.Contains(dead[0].Data, "data") {
			t.Fatalf("webhook.dead_lettered events: %+v", dead)
		}
		// The operator sees it and replays it once the cause is fixed.
		list := h.api("GET", "/api/v1/webhook-events?status=dead", h.admin)
		if list.Status != 200 || !strings.Contains(string(list.Body), id) || !strings.Contains(string(list.Body), "downstream refused") {
			t.Fatalf("dead list: %d %s", list.Status, list.Body)
		}
		fail.Delete(id)
		if r := h.api("POST", "/api/v1/webhook-events/"+id+"/replay", h.admin); r.Status != 200 {
			t.Fatalf("replay: %d %s", r.Status, r.Body)
		}
		h.drain()
		if n := countEffects(t, d, id); n != 1 {
			t.Fatalf("effects after replay = %d", n)
		}
		// Replaying an applied event changes nothing.
		if r := h.api("POST", "/api/v1/webhook-events/"+id+"/replay", h.admin); r.Status != 409 || r.errorCode(t) != "not_dead" {
			t.Fatalf("replay of processed: %d %s", r.Status, r.Body)
		}
		h.drain()
		if n := countEffects(t, d, id); n != 1 {
			t.Fatalf("effects after second replay = %d", n)
		}
	})
}

func TestWorkerThatDiesLosesEventOnlyForLease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		h := newHarness(t, d, harnessOpts{handlers: withEffects})
		id := newEventID()
		h.deliverSigned(stripeEvent(id, "invoice.paid", time.Now()))
		// A worker claims it and dies before applying it.
		claimed, err := h.inbox.Claim(context.Background(), "dead-worker", 10, h.clock.Now(), time.Minute)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %d", err, len(claimed))
		}
		h.drain()
		if n := countEffects(t, d, id); n != 0 {
			t.Fatal("event taken from a live lease")
		}
		h.clock.Advance(61 * time.Second)
		h.drain()
		if n := countEffects(t, d, id); n != 1 {
			t.Fatalf("effects after lease expiry = %d", n)
		}
	})
}

func TestAdminEndpointsNeedAdmin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, harnessOpts{})
		for i := 0; i < 5; i++ {
			h.deliverSigned(stripeEvent(newEventID(), "invoice.paid", time.Now()))
		}
		h.deliverSigned(stripeEvent(newEventID(), "customer.created", time.Now()))
		if r := h.api("GET", "/api/v1/webhook-events", ""); r.Status != 401 || r.errorCode(t) != "unauthorized" {
			t.Fatalf("no token: %d %s", r.Status, r.Body)
		}
		if r := h.api("GET", "/api/v1/webhook-events", "rct_bogus"); r.Status != 401 {
			t.Fatalf("bad token: %d", r.Status)
		}
		if r := h.api("GET", "/api/v1/webhook-events", h.agent); r.Status != 403 || r.errorCode(t) != "forbidden" {
			t.Fatalf("agent: %d %s", r.Status, r.Body)
		}
		if r := h.api("POST", "/api/v1/webhook-events/replay", h.agent); r.Status != 403 {
			t.Fatalf("agent replay: %d", r.Status)
		}
		// Cursor pagination walks every event once.
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			r := h.api("GET", "/api/v1/webhook-events?limit=2&type=invoice.paid&cursor="+cursor, h.admin)
			if r.Status != 200 {
				t.Fatalf("list: %d %s", r.Status, r.Body)
			}
			m := r.json(t)
			for _, e := range m["data"].([]any) {
				ev := e.(map[string]any)
				if ev["type"] != "invoice.paid" || ev["status"] != "pending" {
					t.Fatalf("filter leaked %v", ev)
				}
				for _, k := range []string{"id", "created", "attempts", "last_error", "status"} {
					if _, ok := ev[k]; !ok {
						t.Fatalf("event lacks %q: %v", k, ev)
					}
				}
				seen[ev["id"].(string)] = true
			}
			if m["next_cursor"] == nil {
				break
			}
			cursor = m["next_cursor"].(string)
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
		}
		if len(seen) != 5 {
			t.Fatalf("paged over %d events, want 5", len(seen))
		}
		if r := h.api("GET", "/api/v1/webhook-events?limit=500", h.admin); r.Status != 400 {
			t.Fatalf("limit 500: %d", r.Status)
		}
		if r := h.api("GET", "/api/v1/webhook-events?status=bogus", h.admin); r.Status != 400 {
			t.Fatalf("bad status: %d", r.Status)
		}
		if r := h.api("GET", "/api/v1/webhook-events/evt_nope", h.admin); r.Status != 404 || r.errorCode(t) != "not_found" {
			t.Fatalf("unknown: %d %s", r.Status, r.Body)
		}
	})
}

func TestDatabaseDownAnswers503ThenRedeliveryProcessed(t *testing.T) {
	dbtest.RequirePostgres(t)
	schemaURL := dbtest.NewPostgresURL(t)
	proxy, viaProxy := dbtest.NewProxy(t, schemaURL)
	d, err := db.Open(context.Background(), viaProxy, "", db.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	migrated := dbtest.Migrate(t, d)
	createEffects(t, migrated)
	h := newHarness(t, d, harnessOpts{handlers: withEffects})

	id := newEventID()
	payload := stripeEvent(id, "invoice.paid", time.Now())
	proxy.Stop()
	r := h.deliverSigned(payload)
	if r.Status != http.StatusServiceUnavailable || r.errorCode(t) != "unavailable" {
		t.Fatalf("with database down: %d %s", r.Status, r.Body)
	}
	proxy.Start()
	var ok bool
	for i := 0; i < 50 && !ok; i++ { // the pool may hand out a dead connection first
		r = h.deliverSigned(payload)
		ok = r.Status == http.StatusOK
		if !ok {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatalf("redelivery after recovery: %d %s", r.Status, r.Body)
	}
	h.drain()
	if n := countEffects(t, d, id); n != 1 {
		t.Fatalf("effects = %d", n)
	}
}

// A batch of events applied in one transaction, one of which fails: the
// failing event fails alone (its attempt recorded, no effect), each of its
// neighbours is applied exactly once, and the batch was replayed one by one.
func TestBatchWithFailingEventAppliesNeighboursOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		var bad string
		h := newHarness(t, d, harnessOpts{maxAttempts: 3, handlers: func(r *webhooks.Registry, h *harness) {
			r.Handle(func(ctx context.Context, tx *gorm.DB, ev webhooks.Event) error {
				if err := tx.Exec("INSERT INTO test_effects (event_id) VALUES (?)", ev.ID).Error; err != nil {
					return err
				}
				if ev.ID == bad {
					return errors.New("downstream refused")
				}
				return nil
			}, "invoice.paid")
		}})
		var ids []string
		for i := 0; i < 10; i++ {
			id := newEventID()
			ids = append(ids, id)
			if r := h.deliverSigned(stripeEvent(id, "invoice.paid", time.Now())); r.Status != 200 {
				t.Fatalf("deliver: %d %s", r.Status, r.Body)
			}
		}
		bad = ids[4]
		// One claim takes all ten (the default batch is larger).
		if n, err := h.worker.RunOnce(context.Background()); err != nil || n != 10 {
			t.Fatalf("RunOnce = %d, %v", n, err)
		}
		for _, id := range ids {
			rec, err := h.inbox.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			want, effects := webhooks.StatusProcessed, int64(1)
			if id == bad {
				want, effects = webhooks.StatusPending, 0
				if rec.Attempts != 1 || rec.LastError == nil || !strings.Contains(*rec.LastError, "downstream refused") {
					t.Fatalf("failing event: %+v", rec)
				}
			}
			if rec.Status != want {
				t.Fatalf("%s: status %s, want %s", id, rec.Status, want)
			}
			if n := countEffects(t, d, id); n != effects {
				t.Fatalf("%s: %d effects, want %d", id, n, effects)
			}
		}
		if got := testutil.ToFloat64(h.metrics.WebhookBatchReplayed); got != 1 {
			t.Fatalf("batches replayed = %v, want 1", got)
		}
		// A batch without failures commits whole.
		bad = ""
		h.clock.Advance(2 * time.Minute)
		h.drain()
		if n := countEffects(t, d, ""); n != 10 {
			t.Fatalf("effects = %d, want 10", n)
		}
		if got := testutil.ToFloat64(h.metrics.WebhookBatchReplayed); got != 1 {
			t.Fatalf("batches replayed = %v, want still 1", got)
		}
	})
}
