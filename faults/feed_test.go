package faults

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recourse-hq/recourse/internal/stripetest"
)

// feeder plays Stripe: it POSTs signed deliveries and retries each one
// (as Stripe does) until it is acknowledged with a 200, or gives up after
// retryFor. Only a 200 counts as acknowledged.
type feeder struct {
	client   *http.Client
	targets  func() []string // base URLs of the intake processes, tried round-robin
	retryFor time.Duration

	done        atomic.Int64 // deliveries finished (acknowledged or given up)
	requests    atomic.Int64 // HTTP requests made, retries included
	retries     atomic.Int64 // requests that were not acknowledged and were tried again
	slowest     atomic.Int64 // the longest a delivery took to be acknowledged, in nanoseconds
	answered500 atomic.Int64 // 500 answers: the endpoint promises 503 when it cannot store

	mu     sync.Mutex
	acked  map[string]int // event id → 200 answers
	failed map[string]string
}

func newFeeder(targets ...string) *feeder {
	return &feeder{
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}},
		targets:  func() []string { return targets },
		retryFor: 2 * time.Minute,
		acked:    map[string]int{},
		failed:   map[string]string{},
	}
}

// deliver posts ev until a 200 or until retryFor has passed. A 4xx other
// than 408/429 is final (it would be a bug in the suite or the product).
func (f *feeder) deliver(ctx context.Context, n int, ev stripetest.Event) {
	defer f.done.Add(1)
	began := time.Now()
	defer func() {
		for took := int64(time.Since(began)); ; {
			cur := f.slowest.Load()
			if took <= cur || f.slowest.CompareAndSwap(cur, took) {
				return
			}
		}
	}()
	deadline := time.Now().Add(f.retryFor)
	var last string
	for attempt := 0; ; attempt++ {
		urls := f.targets()
		url := urls[(n+attempt)%len(urls)]
		req, err := stripetest.NewWebhookRequest(ctx, url+"/webhooks/stripe", ev.Payload, secret, time.Time{})
		if err != nil {
			panic(err)
		}
		f.requests.Add(1)
		resp, err := f.client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			discard(resp)
			if resp.StatusCode == http.StatusOK {
				f.mu.Lock()
				f.acked[ev.ID]++
				f.mu.Unlock()
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
			if resp.StatusCode == http.StatusInternalServerError {
				f.answered500.Add(1)
			}
			if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
				break
			}
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		f.retries.Add(1)
		time.Sleep(time.Duration(50+rand.IntN(100)) * time.Millisecond)
	}
	f.mu.Lock()
	f.failed[ev.ID] = last
	f.mu.Unlock()
}

// run delivers each of deliveries (an event may appear many times) with
// at most conc in flight, in the order given, and returns when all are done.
func (f *feeder) run(ctx context.Context, deliveries []stripetest.Event, conc int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i, ev := range deliveries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f.deliver(ctx, i, ev)
		}()
	}
	wg.Wait()
}

// ackedIDs returns the acknowledged event ids.
func (f *feeder) ackedIDs() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]bool, len(f.acked))
	for id := range f.acked {
		out[id] = true
	}
	return out
}

// waitDone blocks until at least n deliveries have finished.
func (f *feeder) waitDone(n int64) {
	for f.done.Load() < n {
		time.Sleep(5 * time.Millisecond)
	}
}
