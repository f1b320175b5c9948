package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/webhooks"
)

// history is a scripted provider: the events it holds, listed newest
// first like Stripe, filtered to the window asked; failAfter > 0 breaks the
// listing after that many events.
type history struct {
	events    [][]byte
	created   []time.Time
	failAfter int
	asked     [][2]time.Time
}

func (h *history) add(id string, created time.Time) {
	h.events = append(h.events, stripeEvent(id, "invoice.payment_failed", created))
	h.created = append(h.created, created)
}

func (h *history) ListEvents(_ context.Context, since, until time.Time, fn func([]byte) error) error {
	h.asked = append(h.asked, [2]time.Time{since, until})
	n := 0
	for i := len(h.events) - 1; i >= 0; i-- {
		if c := h.created[i]; c.Before(since.Truncate(time.Second)) || !c.Before(until) {
			continue
		}
		if h.failAfter > 0 && n == h.failAfter {
			return errors.New("stripe: 500 api_error")
		}
		n++
		if err := fn(h.events[i]); err != nil {
			return err
		}
	}
	return nil
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		h := newHarness(t, d, harnessOpts{handlers: func(r *webhooks.Registry, h *harness) {
			r.Handle(effectHandler(h), "invoice.payment_failed")
		}})
		ctx := context.Background()
		now := h.clock.Now()
		reg := prometheus.NewRegistry()
		al := audit.New(d, h.clock)
		hist := &history{}
		rec := webhooks.NewReconciler(d, h.inbox, hist, h.clock, slog.New(slog.NewTextHandler(io.Discard, nil)), al, reg, nil)

		// Twelve events over three days; Stripe delivered the even ones.
		var ids []string
		for i := range 12 {
			id := fmt.Sprintf("evt_rec%02d_%d", i, now.UnixNano()%1e6)
			ids = append(ids, id)
			hist.add(id, now.Add(-70*time.Hour+time.Duration(i)*5*time.Hour))
			if i%2 == 0 {
				if r := h.deliverSigned(hist.events[i]); r.Status != 200 {
					t.Fatalf("deliver %s: %d %s", id, r.Status, r.Body)
				}
			}
		}
		// And one from before the window, which the run must not reach.
		old := fmt.Sprintf("evt_recold_%d", now.UnixNano()%1e6)
		hist.add(old, now.Add(-80*time.Hour))
		h.drain()

		since, err := rec.Since(ctx, 0)
		if err != nil || !since.Equal(now.Add(-webhooks.DefaultReconcileWindow)) {
			t.Fatalf("first since %v (%v), want 72h back", since, err)
		}
		rep, err := rec.Run(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Listed != 12 || rep.Present != 6 || rep.Missing != 6 || rep.Invalid != 0 || rep.Clamped || len(rep.MissingIDs) != 6 {
			t.Fatalf("report %+v", rep)
		}
		for i, id := range rep.MissingIDs { // in id order: the odd ones
			if want := ids[2*i+1]; id != want {
				t.Fatalf("missing[%d] = %s, want %s", i, id, want)
			}
		}
		// The worker applies the fed events like deliveries: each once.
		h.drain()
		for _, id := range append(ids, old) {
			want := int64(1)
			if id == old {
				want = 0
			}
			if got := countEffects(t, d, id); got != want {
				t.Fatalf("%s applied %d times, want %d", id, got, want)
			}
		}
		if got := testutil.ToFloat64(rec.Metrics().Missing); got != 6 {
			t.Fatalf("missing metric %v", got)
		}
		var n int64
		d.Gorm.Raw("SELECT COUNT(*) FROM audit_log WHERE action = 'webhooks.reconcile'").Scan(&n)
		if n != 1 {
			t.Fatalf("%d audit entries", n)
		}

		// The next run starts just before where this one ended and finds
		// nothing missing; a late event in the overlap is still found.
		h.clock.Advance(time.Hour)
		late := fmt.Sprintf("evt_reclate_%d", now.UnixNano()%1e6)
		hist.add(late, now.Add(-time.Minute)) // created before the last run ended
		since, err = rec.Since(ctx, 0)
		if err != nil || !since.Equal(rep.Until.Add(-10*time.Minute)) {
			t.Fatalf("next since %v (%v), want 10 minutes before %v", since, err, rep.Until)
		}
		rep2, err := rec.Run(ctx, since)
		if err != nil || rep2.Missing != 1 || rep2.MissingIDs[0] != late || rep2.Listed != 1 {
			t.Fatalf("second run %+v %v", rep2, err)
		}

		// A listing that breaks part way keeps what it stored, says so,
		// and does not move the reconciled point.
		h.clock.Advance(time.Hour)
		for i := range 3 {
			hist.add(fmt.Sprintf("evt_recfail%d_%d", i, now.UnixNano()%1e6), h.clock.Now().Add(-time.Duration(3-i)*time.Minute))
		}
		hist.failAfter = 2
		before, _ := rec.LastPoint(ctx)
		rep3, err := rec.Run(ctx, rep2.Until)
		if err == nil || rep3.Missing != 2 {
			t.Fatalf("broken listing: %+v %v", rep3, err)
		}
		if after, _ := rec.LastPoint(ctx); !after.Equal(before) {
			t.Fatalf("a failed run moved the reconciled point from %v to %v", before, after)
		}
		if got := testutil.ToFloat64(rec.Metrics().Runs.WithLabelValues("failed")); got != 1 {
			t.Fatalf("failed runs %v", got)
		}
		var failed int64
		d.Gorm.Raw("SELECT COUNT(*) FROM reconcile_runs WHERE error IS NOT NULL").Scan(&failed)
		if failed != 1 {
			t.Fatalf("%d failed runs recorded", failed)
		}
		// The retry from the same point finds the third.
		hist.failAfter = 0
		since, _ = rec.Since(ctx, 0)
		rep4, err := rec.Run(ctx, since)
		if err != nil || rep4.Missing != 1 || rep4.Present != 2 || rep4.Listed != 3 {
			t.Fatalf("retry: %+v %v", rep4, err)
		}
	})
}

// A start older than the provider keeps events is moved to the edge of
// its retention; an unusable listed event is counted and skipped; an event
// listed twice is fed once.
func TestReconcileEdges(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, harnessOpts{})
		ctx := context.Background()
		now := h.clock.Now()
		hist := &history{}
		id := fmt.Sprintf("evt_edge_%d", now.UnixNano()%1e6)
		hist.add(id, now.Add(-time.Hour))
		hist.events = append(hist.events, hist.events[0], []byte(`{"id":"evt_bad","object":"event"}`))
		hist.created = append(hist.created, hist.created[0], now.Add(-time.Hour))
		rec := webhooks.NewReconciler(d, h.inbox, hist, h.clock, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, nil)

		rep, err := rec.Run(ctx, now.Add(-webhooks.ProviderRetention-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Clamped || !rep.Since.Equal(now.Add(-webhooks.ProviderRetention).UTC()) {
			t.Fatalf("31 days back: %+v", rep)
		}
		if rep.Listed != 3 || rep.Invalid != 1 || rep.Missing != 1 || rep.Present != 0 {
			t.Fatalf("report %+v", rep)
		}
		// Exactly at the edge is not clamped.
		rep, err = rec.Run(ctx, now.Add(-webhooks.ProviderRetention))
		if err != nil || rep.Clamped || rep.Present != 1 || rep.Missing != 0 {
			t.Fatalf("at the edge: %+v %v", rep, err)
		}
		var stored int64
		if err := d.Gorm.Transaction(func(tx *gorm.DB) error {
			return tx.Raw("SELECT COUNT(*) FROM webhook_events WHERE event_id = ?", id).Scan(&stored).Error
		}); err != nil || stored != 1 {
			t.Fatalf("stored %d (%v)", stored, err)
		}
	})
}
