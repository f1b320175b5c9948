package notifications

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// counter is a receiver that counts requests per webhook-id and answers
// with status().
type counter struct {
	mu     sync.Mutex
	byID   map[string]int
	status atomic.Int32
}

func newCounter(t *testing.T) (*counter, string) {
	c := &counter{byID: map[string]int{}}
	c.status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		c.byID[r.Header.Get("webhook-id")]++
		c.mu.Unlock()
		w.WriteHeader(int(c.status.Load()))
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func appendEvents(t *testing.T, d *db.DB, at time.Time, n int) {
	t.Helper()
	err := d.Transact(context.Background(), func(tx *gorm.DB) error {
		for i := range n {
			f := events.CaseFacts{CaseID: fmt.Sprintf("case_%d", i), Kind: "dispute", Team: "disputes", Priority: "high"}
			if _, err := events.Append(context.Background(), tx, events.TypeDisputeCreated, fmt.Sprintf("k/%d/%d", at.UnixNano(), i), f.CaseID, at, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func notifier(t *testing.T, d *db.DB, clk clock.Clock, url string, maxAttempts int, reg prometheus.Registerer) *Notifier {
	t.Helper()
	p := Policy{Destinations: []Destination{{Name: "siem", Type: TypeWebhook, URL: url, Secret: "s3cret", AllowPrivate: true}},
		Rules: []Rule{{On: []string{events.TypeDisputeCreated}, To: []string{"siem"}}}}
	n, err := New(Options{Store: NewStore(d, audit.New(d, clk)), Feed: events.NewFeed(d, clk, time.Second), Policy: p, Clock: clk,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, Timeout: 2 * time.Second, MaxAttempts: maxAttempts,
		BackoffBase: time.Second, BackoffMax: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Two replicas dispatching and sending at once deliver each notification
// exactly once: the (event, destination) key dedupes dispatch, the lease
// (SKIP LOCKED on PostgreSQL) keeps two senders off one row. Events newer
// than the settle delay wait.
func TestTwoNotifiersDeliverOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		rc, url := newCounter(t)
		clk := clock.NewManual(time.Now().UTC())
		appendEvents(t, d, clk.Now(), 60)
		a, b := notifier(t, d, clk, url, 3, nil), notifier(t, d, clk, url, 3, nil)
		ctx := context.Background()
		if n, err := a.Dispatch(ctx); err != nil || n != 0 {
			t.Fatalf("dispatch within the settle delay: %d, %v", n, err)
		}
		clk.Advance(time.Second)
		var wg sync.WaitGroup
		for _, n := range []*Notifier{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.Dispatch(ctx); err != nil {
					t.Error(err)
				}
				if _, err := n.Send(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if len(rc.byID) != 60 {
			t.Fatalf("%d distinct notifications, want 60", len(rc.byID))
		}
		for id, k := range rc.byID {
			if k != 1 {
				t.Fatalf("%s delivered %d times", id, k)
			}
		}
	})
}

// A receiver that keeps failing: retried after the backoff, not before;
// failed after the last attempt; replay puts it back and it is sent.
func TestRetryFailReplay(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		rc, url := newCounter(t)
		rc.status.Store(503)
		clk := clock.NewManual(time.Now().UTC())
		appendEvents(t, d, clk.Now(), 1)
		clk.Advance(time.Second)
		reg := prometheus.NewRegistry()
		n := notifier(t, d, clk, url, 3, reg)
		ctx := context.Background()
		st := n.opt.Store
		step := func(wantAttempted int) Delivery {
			t.Helper()
			if _, err := n.Dispatch(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := n.Send(ctx); err != nil || got != wantAttempted {
				t.Fatalf("Send attempted %d (%v), want %d", got, err, wantAttempted)
			}
			l, err := st.List(ctx, Filter{}, httpx.PageRequest{Limit: 10})
			if err != nil || len(l.Data) != 1 {
				t.Fatalf("list: %v %v", l, err)
			}
			return l.Data[0]
		}
		dl := step(1)
		if dl.Status != StatusPending || dl.Attempts != 1 || dl.LastError == "" || !dl.NextAttemptAt.Equal(clk.Now().Add(time.Second)) {
			t.Fatalf("after attempt 1: %+v", dl)
		}
		clk.Advance(time.Second - time.Millisecond) // one ms before the retry is due
		step(0)
		clk.Advance(time.Millisecond)
		dl = step(1)
		if dl.Attempts != 2 || !dl.NextAttemptAt.Equal(clk.Now().Add(2*time.Second)) {
			t.Fatalf("after attempt 2: %+v", dl)
		}
		if _, err := st.Replay(ctx, dl.ID, clk.Now()); err == nil {
			t.Fatal("replay of a pending notification succeeded")
		}
		clk.Advance(2 * time.Second)
		dl = step(1)
		if dl.Status != StatusFailed || dl.Attempts != 3 {
			t.Fatalf("after the last attempt: %+v", dl)
		}
		clk.Advance(time.Hour)
		step(0) // failed stays failed
		if got := counterValue(t, reg, "recourse_notifications_failed_total", "webhook"); got != 1 {
			t.Fatalf("failed counter %v", got)
		}
		rc.status.Store(204)
		if _, err := st.Replay(ctx, dl.ID, clk.Now()); err != nil {
			t.Fatal(err)
		}
		dl = step(1)
		if dl.Status != StatusSent || dl.SentAt == nil || dl.Attempts != 1 {
			t.Fatalf("after replay: %+v", dl)
		}
		if got := counterValue(t, reg, "recourse_notifications_sent_total", "webhook"); got != 1 {
			t.Fatalf("sent counter %v", got)
		}
		var audits int64
		d.Gorm.Table("audit_log").Where("action = 'notification.replay' AND object_id = ?", dl.ID).Count(&audits)
		if audits != 1 {
			t.Fatalf("%d replay audit entries", audits)
		}
	})
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// An event that commits behind one already read (its transaction outlasted
// the settle delay) is still routed: each dispatch rescans the last minute.
func TestLateEventCaughtByRescan(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		_, url := newCounter(t)
		clk := clock.NewManual(time.Now().UTC())
		n := notifier(t, d, clk, url, 3, nil)
		ctx := context.Background()
		if _, err := n.Dispatch(ctx); err != nil {
			t.Fatal(err)
		}
		appendEvents(t, d, clk.Now(), 1)
		clk.Advance(2 * time.Second)
		// The cursor is past the event, as if a later event had been read first.
		if err := d.Gorm.Exec("UPDATE notification_cursor SET last_event_id = (SELECT MAX(id) FROM events) WHERE id = 1").Error; err != nil {
			t.Fatal(err)
		}
		if got, err := n.Dispatch(ctx); err != nil || got != 1 {
			t.Fatalf("dispatch wrote %d deliveries (%v), want the late event's 1", got, err)
		}
		if got, err := n.Send(ctx); err != nil || got != 1 {
			t.Fatalf("sent %d (%v)", got, err)
		}
		// A minute on, the window has moved past it: nothing more.
		clk.Advance(61 * time.Second)
		if _, err := n.Dispatch(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		if got, err := n.Dispatch(ctx); err != nil || got != 0 {
			t.Fatalf("dispatch after the window: %d (%v)", got, err)
		}
	})
}
