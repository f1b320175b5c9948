package webhooks_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/webhooks"
)

// TestRetentionDropsMonths: on PostgreSQL, whose inbox is partitioned by
// month, retention drops a month whole once its end is no later than the
// event cutoff — a month whose newest row is exactly at the cutoff stays
// (that row too), a second later it goes — after moving its pending and
// dead rows out; rows left older than the cutoff (the month at the edge,
// DEFAULT) go by row deletes. SQLite deletes the same rows one by one: both
// databases end with the same inbox. Events stored before their month's
// partition existed wait in DEFAULT and move into it when it is made.
func TestRetentionDropsMonths(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		parted := d.Dialect.Partitioned()
		inbox := webhooks.NewInbox(d)
		aprEdge := time.Date(2026, 4, 30, 23, 59, 59, 0, time.UTC) // April's newest row
		type row struct {
			id      string
			created time.Time
			status  webhooks.Status
		}
		rows := []row{
			{"evt_2019_done", time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), webhooks.StatusProcessed},
			{"evt_2019_dead", time.Date(2019, 3, 2, 0, 0, 0, 0, time.UTC), webhooks.StatusDead},
			{"evt_mar_done", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), webhooks.StatusProcessed},
			{"evt_mar_ignored", time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC), webhooks.StatusIgnored},
			{"evt_mar_pending", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), webhooks.StatusPending},
			{"evt_mar_dead", time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), webhooks.StatusDead},
			{"evt_apr_first", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), webhooks.StatusProcessed},
			{"evt_apr_dead", time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC), webhooks.StatusDead},
			{"evt_apr_edge", aprEdge, webhooks.StatusProcessed},
			{"evt_may", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), webhooks.StatusProcessed},
			{"evt_may_pending", time.Date(2026, 5, 20, 0, 0, 0, 0, time.UTC), webhooks.StatusPending},
		}
		var evs []webhooks.Event
		for _, r := range rows {
			evs = append(evs, webhooks.Event{ID: r.id, Type: "invoice.payment_failed", Created: r.created, ObjectType: "invoice", ObjectID: "in_" + r.id,
				Payload: stripeEvent(r.id, "invoice.payment_failed", r.created)})
		}
		// Stored before any of their months has a partition: DEFAULT
		// holds them all.
		if _, err := inbox.InsertBatch(ctx, evs, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if err := d.WithContext(ctx).Exec(`UPDATE webhook_events SET status = ? WHERE event_id = ?`, string(r.status), r.id).Error; err != nil {
				t.Fatal(err)
			}
		}
		partOf := func(id string) string {
			if !parted {
				return ""
			}
			var p string
			if err := d.WithContext(ctx).Raw(`SELECT tableoid::regclass::text FROM webhook_events WHERE event_id = ?`, id).Scan(&p).Error; err != nil {
				t.Fatal(err)
			}
			return p
		}
		if parted {
			if p := partOf("evt_mar_done"); p != "webhook_events_default" {
				t.Fatalf("evt_mar_done in %s before its month was made, want DEFAULT", p)
			}
		}
		// Making March (and the two after it) moves their rows out of
		// DEFAULT; the 2019 ones stay there.
		n, err := webhooks.EnsurePartitions(ctx, d, time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if parted {
			if n != 3 {
				t.Errorf("made %d partitions for March to May, want 3", n)
			}
			for id, want := range map[string]string{"evt_mar_pending": "webhook_events_p2026_03", "evt_apr_edge": "webhook_events_p2026_04",
				"evt_may": "webhook_events_p2026_05", "evt_2019_dead": "webhook_events_default"} {
				if p := partOf(id); p != want {
					t.Errorf("%s in %s, want %s", id, p, want)
				}
			}
		} else if n != 0 {
			t.Errorf("SQLite made %d partitions", n)
		}
		if n, err := webhooks.EnsurePartitions(ctx, d, time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)); err != nil || n != 0 {
			t.Errorf("second call for the same months made %d: %v", n, err)
		}
		var kept map[string]string // kept rows' status, attempts, payload
		snapshot := func() map[string]string {
			var got []struct {
				EventID, Status string
				Attempts        int
				Payload         []byte
			}
			if err := d.WithContext(ctx).Raw(`SELECT event_id, status, attempts, payload FROM webhook_events`).Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, r := range got {
				out[r.EventID] = fmt.Sprintf("%s/%d/%s", r.Status, r.Attempts, r.Payload)
			}
			return out
		}
		kept = snapshot()

		// The cutoff exactly at April's newest row: March goes whole
		// (partitioned) or row by row; April stays, all but its first row.
		clk := clock.NewManual(aprEdge.Add(30 * 24 * time.Hour))
		reg := prometheus.NewRegistry()
		ret, err := webhooks.NewRetention(d, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), audit.New(d, clk), reg,
			webhooks.RetentionPolicy{EventAge: 30 * 24 * time.Hour, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := ret.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.EventCutoff.Equal(aprEdge) {
			t.Fatalf("cutoff %s, want %s", rep.EventCutoff, aprEdge)
		}
		// Deleted: 2019_done and apr_first by rows; mar_done, mar_ignored
		// with March (by rows on SQLite).
		if rep.EventsDeleted != 4 {
			t.Errorf("first run deleted %d events, want 4: %+v", rep.EventsDeleted, rep)
		}
		if parted && (!slices.Equal(rep.PartitionsDropped, []string{"webhook_events_p2026_03"}) || rep.EventsMoved != 2) {
			t.Errorf("first run: dropped %v, moved %d; want March and its 2 pending and dead rows", rep.PartitionsDropped, rep.EventsMoved)
		}
		present := func() []string {
			var ids []string
			d.WithContext(ctx).Raw(`SELECT event_id FROM webhook_events`).Scan(&ids)
			sort.Strings(ids)
			return ids
		}
		want := []string{"evt_2019_dead", "evt_apr_dead", "evt_apr_edge", "evt_mar_dead", "evt_mar_pending", "evt_may", "evt_may_pending"}
		if got := present(); !slices.Equal(got, want) {
			t.Fatalf("after the first run: %v, want %v", got, want)
		}
		if parted {
			for id, want := range map[string]string{"evt_mar_pending": "webhook_events_default", "evt_mar_dead": "webhook_events_default",
				"evt_apr_edge": "webhook_events_p2026_04"} {
				if p := partOf(id); p != want {
					t.Errorf("%s in %s, want %s", id, p, want)
				}
			}
		}

		// One second later April ends no later than the cutoff: it goes,
		// its dead row kept.
		clk.Advance(time.Second)
		rep, err = ret.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.EventsDeleted != 1 {
			t.Errorf("second run deleted %d, want 1 (April's edge row): %+v", rep.EventsDeleted, rep)
		}
		if parted && (!slices.Equal(rep.PartitionsDropped, []string{"webhook_events_p2026_04"}) || rep.EventsMoved != 1) {
			t.Errorf("second run: dropped %v, moved %d; want April and its dead row", rep.PartitionsDropped, rep.EventsMoved)
		}
		want = []string{"evt_2019_dead", "evt_apr_dead", "evt_mar_dead", "evt_mar_pending", "evt_may", "evt_may_pending"}
		if got := present(); !slices.Equal(got, want) {
			t.Fatalf("after the second run: %v, want %v", got, want)
		}

		// The ledger: what stayed is unchanged, each event once; the kept
		// ones still refuse a redelivery, can be claimed and replayed.
		after := snapshot()
		for _, id := range want {
			if after[id] != kept[id] {
				t.Errorf("%s changed: %q, was %q", id, after[id], kept[id])
			}
		}
		var dups int64
		d.WithContext(ctx).Raw(`SELECT count(*) FROM (SELECT event_id FROM webhook_events GROUP BY event_id HAVING count(*) > 1) x`).Scan(&dups)
		if dups != 0 {
			t.Errorf("%d events with more than one inbox row", dups)
		}
		var redeliver []webhooks.Event
		for _, e := range evs {
			if slices.Contains(want, e.ID) {
				redeliver = append(redeliver, e)
			}
		}
		if ins, err := inbox.InsertBatch(ctx, redeliver, clk.Now()); err != nil || len(ins) != 0 {
			t.Errorf("redelivery of kept events stored %v: %v", ins, err)
		}
		claimed, err := inbox.Claim(ctx, "w1", 10, clk.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range claimed {
			ids = append(ids, e.ID)
		}
		sort.Strings(ids)
		if !slices.Equal(ids, []string{"evt_mar_pending", "evt_may_pending"}) {
			t.Errorf("claimed %v, want the two pending events", ids)
		}
		if rec, err := inbox.Replay(ctx, "evt_mar_dead", clk.Now()); err != nil || rec.Status != webhooks.StatusPending {
			t.Errorf("replay of a dead event kept from a dropped month: %+v %v", rec, err)
		}

		if got := testutil.ToFloat64(ret.Metrics().Deleted); got != 5 {
			t.Errorf("deleted metric %v, want 5", got)
		}
		wantDropped := 0.0
		if parted {
			wantDropped = 2
		}
		if got := testutil.ToFloat64(ret.Metrics().PartitionsDropped); got != wantDropped {
			t.Errorf("partitions dropped metric %v, want %v", got, wantDropped)
		}
		var audits int64
		d.WithContext(ctx).Raw(`SELECT count(*) FROM audit_log WHERE action = 'webhook_event.retention'`).Scan(&audits)
		if audits != 2 {
			t.Errorf("%d retention audit entries, want 2", audits)
		}
		if rep, err := ret.Run(ctx); err != nil || rep.EventsDeleted != 0 || len(rep.PartitionsDropped) != 0 {
			t.Errorf("third run: %+v %v", rep, err)
		}
	})
}

// TestRetentionDropsMonthsUnderLoad: months are made and dropped while the
// intake stores events and workers claim, fail and release them, on
// PostgreSQL: no statement fails (a lock-order deadlock would), every
// stored event is there exactly once, and only applied rows of dropped
// months are gone.
func TestRetentionDropsMonthsUnderLoad(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.Postgres)
	ctx := context.Background()
	inbox := webhooks.NewInbox(d)
	// Six old months of applied rows (a few dead), made and filled first.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range []time.Time{start, start.AddDate(0, 3, 0)} {
		if _, err := webhooks.EnsurePartitions(ctx, d, m); err != nil {
			t.Fatal(err)
		}
	}
	var old []webhooks.Event
	for i := 0; i < 600; i++ {
		c := start.Add(time.Duration(i) * 6 * time.Hour)
		id := fmt.Sprintf("evt_old_%04d", i)
		old = append(old, webhooks.Event{ID: id, Type: "invoice.paid", Created: c, ObjectType: "invoice", ObjectID: "in_" + id, Payload: []byte(`{}`)})
	}
	if _, err := inbox.InsertBatch(ctx, old, start); err != nil {
		t.Fatal(err)
	}
	if err := d.WithContext(ctx).Exec(`UPDATE webhook_events SET status = CASE WHEN id % 50 = 0 THEN 'dead' ELSE 'processed' END`).Error; err != nil {
		t.Fatal(err)
	}
	var keep int64
	d.WithContext(ctx).Raw(`SELECT count(*) FROM webhook_events WHERE status = 'dead'`).Scan(&keep)

	clk := clock.NewManual(time.Date(2026, 7, 20, 0, 0, 0, 0, time.UTC))
	ret, err := webhooks.NewRetention(d, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), audit.New(d, clk), nil,
		webhooks.RetentionPolicy{EventAge: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	errc := make(chan error, 8)
	var stored sync.Map
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ { // the intake
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				now := clk.Now()
				var batch []webhooks.Event
				for j := 0; j < 5; j++ {
					id := fmt.Sprintf("evt_new_%d_%d_%d", w, i, j)
					batch = append(batch, webhooks.Event{ID: id, Type: "invoice.paid", Created: now.Add(-time.Duration(j) * time.Hour), ObjectType: "invoice", ObjectID: "in_" + id, Payload: []byte(`{}`)})
				}
				ins, err := inbox.InsertBatch(ctx, batch, now)
				if err != nil {
					errc <- fmt.Errorf("intake: %w", err)
					return
				}
				for id := range ins {
					stored.Store(id, true)
				}
			}
		}(w)
	}
	for w := 0; w < 2; w++ { // workers: claim, fail one, release the rest
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				evs, err := inbox.Claim(ctx, owner, 10, clk.Now(), time.Minute)
				if err != nil {
					errc <- fmt.Errorf("claim: %w", err)
					return
				}
				var ids []string
				for i, e := range evs {
					if i == 0 {
						if err := inbox.Fail(ctx, e, owner, "boom", clk.Now(), clk.Now(), false); err != nil {
							errc <- fmt.Errorf("fail: %w", err)
							return
						}
						continue
					}
					ids = append(ids, e.ID)
				}
				if err := inbox.Release(ctx, owner, ids); err != nil {
					errc <- fmt.Errorf("release: %w", err)
					return
				}
			}
		}(w)
	}
	// Retention, a month a run: the cutoff passes the end of January,
	// then of each later month, and each run makes the months ahead.
	dropped := 0
	for m := 1; m <= 6; m++ {
		clk.Set(start.AddDate(0, m, 0).Add(30*24*time.Hour + time.Hour))
		rep, err := ret.Run(ctx)
		if err != nil {
			t.Fatalf("run %d: %v", m, err)
		}
		dropped += len(rep.PartitionsDropped)
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if dropped != 6 {
		t.Errorf("dropped %d months, want 6", dropped)
	}
	var dups, olds int64
	d.WithContext(ctx).Raw(`SELECT count(*) FROM (SELECT event_id FROM webhook_events GROUP BY event_id HAVING count(*) > 1) x`).Scan(&dups)
	d.WithContext(ctx).Raw(`SELECT count(*) FROM webhook_events WHERE event_id LIKE 'evt_old_%'`).Scan(&olds)
	if dups != 0 || olds != keep {
		t.Errorf("%d duplicated events; %d old events left, want the %d dead ones", dups, olds, keep)
	}
	n := 0
	stored.Range(func(k, _ any) bool {
		n++
		var c int64
		d.WithContext(ctx).Raw(`SELECT count(*) FROM webhook_events WHERE event_id = ?`, k).Scan(&c)
		if c != 1 {
			t.Errorf("stored event %v: %d rows", k, c)
		}
		return true
	})
	if n == 0 {
		t.Error("the intake stored nothing meanwhile")
	}
	t.Logf("%d events stored meanwhile", n)
}
