package webhooks_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/webhooks"
)

// Two independent workers, each with its own connection pool (as two serve
// processes would have), share one PostgreSQL inbox of 1,000 events and
// apply each exactly once between them.
func TestTwoProcessesProcessEachEventExactlyOnce(t *testing.T) {
	dbtest.RequirePostgres(t)
	url := dbtest.NewPostgresURL(t)
	ctx := context.Background()
	open := func() *db.DB {
		d, err := db.Open(ctx, url, "", db.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	d1, d2 := open(), open()
	dbtest.Migrate(t, d1)
	createEffects(t, d1)

	// Feed the events through the real HTTP intake of "process 1" and "process 2" alternately.
	h1 := newHarness(t, d1, harnessOpts{})
	h2 := newHarness(t, d2, harnessOpts{})
	const n = 1000
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		ids[i] = newEventID()
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			h := h1
			if i%2 == 1 {
				h = h2
			}
			if r := h.deliverSigned(stripeEvent(ids[i], "invoice.paid", time.Now())); r.Status != http.StatusOK {
				t.Errorf("deliver %d: %d %s", i, r.Status, r.Body)
			}
		}(i)
	}
	wg.Wait()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	runWorker := func(ctx context.Context, d *db.DB) {
		reg := webhooks.NewRegistry()
		reg.Handle(effectHandler(nil), "invoice.paid")
		w := webhooks.NewWorker(d, webhooks.NewInbox(d), reg, clock.System{}, log, metrics.New(), webhooks.WorkerConfig{
			Concurrency: 4, MaxAttempts: 5, Lease: time.Minute, PollInterval: 10 * time.Millisecond,
			BackoffBase: 10 * time.Millisecond, BackoffMax: time.Second,
		})
		w.Run(ctx)
	}
	wctx, cancel := context.WithCancel(ctx)
	var ww sync.WaitGroup
	for _, d := range []*db.DB{d1, d2} {
		ww.Add(1)
		go func(d *db.DB) { defer ww.Done(); runWorker(wctx, d) }(d)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pending int64
		d1.Gorm.Raw("SELECT COUNT(*) FROM webhook_events WHERE status <> 'processed'").Scan(&pending)
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still unprocessed", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	ww.Wait()

	var total, distinct int64
	d1.Gorm.Raw("SELECT COUNT(*) FROM test_effects").Scan(&total)
	d1.Gorm.Raw("SELECT COUNT(DISTINCT event_id) FROM test_effects").Scan(&distinct)
	if total != n || distinct != n {
		t.Fatalf("effects: %d rows for %d distinct events, want %d and %d", total, distinct, n, n)
	}
}
