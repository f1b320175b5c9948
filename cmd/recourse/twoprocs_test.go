package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// Two `serve` processes on one PostgreSQL, fed 1,000 distinct events
// between them, apply each exactly once: every event processed, claimed
// once (attempts = 1), and its fact on the billing timeline once.
func TestTwoServeProcessesShareOneInbox(t *testing.T) {
	url := dbtest.NewPostgresURL(t)
	a := boot(t, map[string]string{"DATABASE_URL": url, "RECOURSE_WORKER_CONCURRENCY": "4"})
	b := boot(t, map[string]string{"DATABASE_URL": url, "RECOURSE_WORKER_CONCURRENCY": "4"})
	events := stripetest.New(5).DistinctEvents(1000)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, e := range events {
		in := a
		if i%2 == 1 {
			in = b
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(in *instance, e stripetest.Event) {
			defer func() { <-sem; wg.Done() }()
			in.post(e)
		}(in, e)
	}
	wg.Wait()
	d, err := db.Open(context.Background(), url, "", db.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pending int64
		d.Gorm.Raw("SELECT COUNT(*) FROM webhook_events WHERE status = 'pending'").Scan(&pending)
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var total, processed, once, facts int64
	d.Gorm.Raw("SELECT COUNT(*) FROM webhook_events").Scan(&total)
	d.Gorm.Raw("SELECT COUNT(*) FROM webhook_events WHERE status = 'processed'").Scan(&processed)
	d.Gorm.Raw("SELECT COUNT(*) FROM webhook_events WHERE attempts = 1").Scan(&once)
	d.Gorm.Raw("SELECT COUNT(DISTINCT event_id) FROM billing_timeline").Scan(&facts)
	if total != 1000 || processed != 1000 || once != 1000 || facts != 1000 {
		t.Fatalf("events %d, processed %d, claimed once %d, timeline facts %d; want 1000 each", total, processed, once, facts)
	}
}
