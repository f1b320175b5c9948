package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// customers is how many customers' stories the event faults play (each a
// handful to a dozen events); RECOURSE_FAULTS_CUSTOMERS overrides it.
const customers = 150

var (
	storyOnce   sync.Once
	storyEvents []stripetest.Event
)

// stories returns the events every event fault sends: realistic stories of
// many customers over six weeks, interleaved in time order, the same for
// every run so each can be compared with the fault-free one.
func stories() []stripetest.Event {
	storyOnce.Do(func() {
		n := customers
		if v, err := strconv.Atoi(os.Getenv("RECOURSE_FAULTS_CUSTOMERS")); err == nil && v > 0 {
			n = v
		}
		start := time.Now().UTC().Add(-45 * 24 * time.Hour).Truncate(24 * time.Hour)
		storyEvents = stripetest.New(1111).Mix(n, start)
	})
	return storyEvents
}

func repeatEach(events []stripetest.Event, n int) []stripetest.Event {
	out := make([]stripetest.Event, 0, len(events)*n)
	for _, ev := range events {
		for range n {
			out = append(out, ev)
		}
	}
	return out
}

func reversed(events []stripetest.Event) []stripetest.Event {
	out := make([]stripetest.Event, len(events))
	for i, ev := range events {
		out[len(events)-1-i] = ev
	}
	return out
}

func shuffled(events []stripetest.Event, seed uint64) []stripetest.Event {
	out := append([]stripetest.Event(nil), events...)
	r := rand.New(rand.NewPCG(seed, seed))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// eventRun is what one event fault did, for the ledger.
type eventRun struct {
	url        string
	deliveries int
	acked      map[string]bool
	retried    int64
	slowest    time.Duration
	errors500  int64
}

// eventFault is one way of delivering the stories while something breaks.
type eventFault struct {
	name      string
	sameOrder bool
	run       func(t *testing.T, events []stripetest.Event) eventRun
	// took is what shows the fault was really injected ("" for none):
	// deliveries refused and sent again, events claimed again after a
	// worker died or failed, or deliveries held for seconds.
	took string
}

const (
	tookRetried   = "retried"
	tookReclaimed = "reclaimed"
	tookSlowed    = "slowed"
)

// injected reports whether the run shows its fault's mark.
func (f eventFault) injected(r ledgerRow, run eventRun) error {
	switch {
	case f.took == tookRetried && r.Retried == 0:
		return fmt.Errorf("no delivery was refused and sent again: the fault missed the stream")
	case f.took == tookReclaimed && r.Reclaimed == 0:
		return fmt.Errorf("no event was claimed twice: the fault missed the worker")
	case f.took == tookSlowed && run.slowest < 3*time.Second:
		return fmt.Errorf("the slowest delivery took %s: the stall missed the stream", run.slowest)
	}
	return nil
}

// full is a process with intake and worker; intake an intake-only one;
// worker a worker-only one (it serves HTTP but is sent nothing).
func full(url string) map[string]string { return map[string]string{"DATABASE_URL": url} }
func intake(url string) map[string]string {
	return map[string]string{"DATABASE_URL": url, "RECOURSE_WORKER_ENABLED": "false"}
}

var eventFaults = []eventFault{
	{"kill -9 intake (twice)", true, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		newServer(t, "worker", full(url)) // applies; is sent nothing
		in := newServer(t, "intake", intake(url))
		f := newFeeder(in.url)
		done := make(chan struct{})
		go func() { defer close(done); f.run(context.Background(), events, 16) }()
		for _, at := range []int64{int64(len(events)) / 3, 2 * int64(len(events)) / 3} {
			f.waitDone(at)
			in.kill()
			time.Sleep(500 * time.Millisecond)
			in.start()
		}
		<-done
		return eventRun{url, len(events), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, tookRetried},
	{"kill -9 worker (twice, mid-apply)", true, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		in := newServer(t, "intake", intake(url))
		w := newServer(t, "worker", full(url))
		d := openDB(t, url)
		f := newFeeder(in.url)
		done := make(chan struct{})
		go func() { defer close(done); f.run(context.Background(), events, 16) }()
		for _, at := range []int64{int64(len(events)) / 3, 2 * int64(len(events)) / 3} {
			for {
				var applied int64
				d.Gorm.Raw("SELECT COUNT(*) FROM webhook_events WHERE status <> 'pending'").Scan(&applied)
				if applied >= at {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			w.kill()
			w.start()
		}
		<-done
		return eventRun{url, len(events), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, tookReclaimed},
	{"PostgreSQL unreachable 5s", true, func(t *testing.T, events []stripetest.Event) eventRun {
		proxy, url := dbtest.NewProxy(t, dbtest.NewPostgresURL(t))
		a := newServer(t, "a", full(url))
		f := newFeeder(a.url)
		done := make(chan struct{})
		go func() { defer close(done); f.run(context.Background(), events, 16) }()
		f.waitDone(int64(len(events)) / 3)
		proxy.Stop()
		time.Sleep(5 * time.Second)
		proxy.Start()
		<-done
		return eventRun{url, len(events), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, tookRetried},
	{"kill -9 serving replicas (intake and worker)", true, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		a := newServer(t, "a", full(url))
		b := newServer(t, "b", full(url))
		f := newFeeder(a.url, b.url)
		done := make(chan struct{})
		go func() { defer close(done); f.run(context.Background(), events, 16) }()
		for i, victim := range []*server{a, b} {
			f.waitDone(int64(i+1) * int64(len(events)) / 3)
			victim.kill()
			time.Sleep(500 * time.Millisecond)
			victim.start()
		}
		<-done
		return eventRun{url, len(events), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, tookRetried},
	{"PostgreSQL stalled 5s (packets held)", true, func(t *testing.T, events []stripetest.Event) eventRun {
		proxy, url := newStallProxy(t, dbtest.NewPostgresURL(t))
		a := newServer(t, "a", full(url))
		f := newFeeder(a.url)
		done := make(chan struct{})
		go func() { defer close(done); f.run(context.Background(), events, 16) }()
		f.waitDone(int64(len(events)) / 3)
		proxy.set(true)
		time.Sleep(5 * time.Second)
		proxy.set(false)
		<-done
		return eventRun{url, len(events), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, tookSlowed},
	{"duplicate storm (20x, concurrent)", true, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		a := newServer(t, "a", full(url))
		b := newServer(t, "b", full(url))
		f := newFeeder(a.url, b.url)
		all := repeatEach(events, 20)
		f.run(context.Background(), all, 40)
		return eventRun{url, len(all), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, ""},
	{"reverse order", false, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		a := newServer(t, "a", full(url))
		f := newFeeder(a.url)
		f.run(context.Background(), reversed(events), 8)
		return eventRun{url, len(events), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, ""},
	{"shuffled, each 3x", false, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		a := newServer(t, "a", full(url))
		all := shuffled(repeatEach(events, 3), 7)
		f := newFeeder(a.url)
		f.run(context.Background(), all, 16)
		return eventRun{url, len(all), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, ""},
	{"2 replicas", true, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		a := newServer(t, "a", full(url))
		b := newServer(t, "b", full(url))
		f := newFeeder(a.url, b.url)
		f.run(context.Background(), events, 16)
		return eventRun{url, len(events), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, ""},
	{"3 replicas, each event to all 3 at once", true, func(t *testing.T, events []stripetest.Event) eventRun {
		url := dbtest.NewPostgresURL(t)
		a := newServer(t, "a", full(url))
		b := newServer(t, "b", full(url))
		c := newServer(t, "c", full(url))
		f := newFeeder(a.url, b.url, c.url)
		all := repeatEach(events, 3)
		f.run(context.Background(), all, 24)
		return eventRun{url, len(all), f.ackedIDs(), f.retries.Load(), time.Duration(f.slowest.Load()), f.answered500.Load()}
	}, ""},
}

// TestEventFaults plays the stories once without faults (the reference),
// then once per fault, and balances each run's ledger against it.
func TestEventFaults(t *testing.T) {
	requireSuite(t)
	events := stories()
	t.Logf("%d events of customers' stories", len(events))
	ctx := context.Background()

	// The reference: one process, one delivery at a time, in order, one
	// worker goroutine.
	var ref *snapshot
	t.Run("none (reference)", func(t *testing.T) {
		began := time.Now()
		url := dbtest.NewPostgresURL(t)
		v := full(url)
		v["RECOURSE_WORKER_CONCURRENCY"] = "1"
		a := newServer(t, "a", v)
		f := newFeeder(a.url)
		f.run(ctx, events, 1)
		d := openDB(t, url)
		drain(t, d, 3*time.Minute)
		s, err := readSnapshot(ctx, d.Gorm)
		if err != nil {
			t.Fatal(err)
		}
		r := balance(ledgerInput{fault: "none (reference)", events: events, deliveries: len(events), acked: f.ackedIDs()}, s)
		r.Elapsed, r.Retried = time.Since(began), int(f.retries.Load())
		record(t, r)
		if r.balanced() {
			ref = s
		}
		sabotageReference(t, d, ledgerInput{fault: "none (reference)", events: events, deliveries: len(events), acked: f.ackedIDs(), ref: s, sameOrder: true})
	})
	if ref == nil {
		t.Fatal("the fault-free run does not balance; nothing to compare the faults with")
	}
	for _, fault := range eventFaults {
		t.Run(fault.name, func(t *testing.T) {
			began := time.Now()
			run := fault.run(t, events)
			d := openDB(t, run.url)
			drain(t, d, 3*time.Minute)
			in := ledgerInput{fault: fault.name, events: events, deliveries: run.deliveries, acked: run.acked, ref: ref, sameOrder: fault.sameOrder}
			if mode := os.Getenv("RECOURSE_FAULTS_SABOTAGE"); mode != "" {
				sabotage(t, d.Gorm, mode)
				in.fault += " [sabotaged: " + mode + "]"
			}
			s, err := readSnapshot(ctx, d.Gorm)
			if err != nil {
				t.Fatal(err)
			}
			r := balance(in, s)
			r.Elapsed, r.Retried = time.Since(began), int(run.retried)
			if run.errors500 > 0 {
				r.Problems = append(r.Problems, fmt.Sprintf("the webhook endpoint answered 500 %d times (it promises 503)", run.errors500))
			}
			record(t, r)
			if err := fault.injected(r, run); err != nil {
				t.Error(err)
			}
		})
	}
}
