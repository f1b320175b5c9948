package webhooks_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/webhooks"
)

func TestRetentionRefusesShortEventAge(t *testing.T) {
	t.Parallel()
	for _, p := range []webhooks.RetentionPolicy{{EventAge: 29 * 24 * time.Hour}, {EventAge: time.Hour}, {PayloadAge: -time.Hour}} {
		err := p.Validate()
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != errs.EINVALID {
			t.Errorf("%+v: want EINVALID, got %v", p, err)
		}
	}
	for _, p := range []webhooks.RetentionPolicy{{}, {EventAge: 30 * 24 * time.Hour}, {PayloadAge: time.Hour}} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

// Retention prunes applied events strictly older than the age: an event
// exactly N days old is kept, one a second older goes. Pending and dead
// events are never touched, whatever their age.
func TestRetentionEdges(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
		clk := clock.NewManual(now)
		inbox := webhooks.NewInbox(d)
		const payloadDays, eventDays = 7, 30
		pAge, eAge := payloadDays*24*time.Hour, eventDays*24*time.Hour
		type row struct {
			id      string
			created time.Time
			status  webhooks.Status
		}
		rows := []row{
			{"evt_p_exact", now.Add(-pAge), webhooks.StatusProcessed},
			{"evt_p_older", now.Add(-pAge - time.Second), webhooks.StatusProcessed},
			{"evt_p_ignored", now.Add(-pAge - time.Hour), webhooks.StatusIgnored},
			{"evt_e_exact", now.Add(-eAge), webhooks.StatusProcessed},
			{"evt_e_older", now.Add(-eAge - time.Second), webhooks.StatusProcessed},
			{"evt_e_ignored", now.Add(-eAge - 48*time.Hour), webhooks.StatusIgnored},
			{"evt_pending_old", now.Add(-eAge - 48*time.Hour), webhooks.StatusPending},
			{"evt_dead_old", now.Add(-eAge - 48*time.Hour), webhooks.StatusDead},
			{"evt_new", now.Add(-time.Minute), webhooks.StatusProcessed},
		}
		var evs []webhooks.Event
		for _, r := range rows {
			evs = append(evs, webhooks.Event{ID: r.id, Type: "invoice.payment_failed", Created: r.created, ObjectType: "invoice", ObjectID: "in_" + r.id,
				Payload: stripeEvent(r.id, "invoice.payment_failed", r.created)})
		}
		if _, err := inbox.InsertBatch(ctx, evs, now.Add(-60*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if err := d.WithContext(ctx).Exec(`UPDATE webhook_events SET status = ? WHERE event_id = ?`, string(r.status), r.id).Error; err != nil {
				t.Fatal(err)
			}
		}
		reg := prometheus.NewRegistry()
		ret, err := webhooks.NewRetention(d, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), audit.New(d, clk), reg,
			webhooks.RetentionPolicy{PayloadAge: pAge, EventAge: eAge, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := ret.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Emptied: p_older, p_ignored, e_exact, e_older, e_ignored (the last
		// two then deleted). Deleted: e_older, e_ignored.
		if rep.PayloadsEmptied != 5 || rep.EventsDeleted != 2 {
			t.Fatalf("report %+v: want 5 payloads emptied and 2 events deleted", rep)
		}
		want := map[string]string{ // event → "kept" (payload intact), "emptied", "gone"
			"evt_p_exact": "kept", "evt_p_older": "emptied", "evt_p_ignored": "emptied",
			"evt_e_exact": "emptied", "evt_e_older": "gone", "evt_e_ignored": "gone",
			"evt_pending_old": "kept", "evt_dead_old": "kept", "evt_new": "kept",
		}
		for id, w := range want {
			var got []struct {
				N      int64
				Status string
			}
			if err := d.WithContext(ctx).Raw(`SELECT length(payload) AS n, status FROM webhook_events WHERE event_id = ?`, id).Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			state := "gone"
			if len(got) == 1 {
				state = "kept"
				if got[0].N == 0 {
					state = "emptied"
				}
			}
			if state != w {
				t.Errorf("%s: %s, want %s", id, state, w)
			}
		}
		// The emptied row still answers dedupe and the operator's detail.
		rec, err := inbox.Get(ctx, "evt_p_older")
		if err != nil || rec.Type != "invoice.payment_failed" || rec.ObjectID == nil || *rec.ObjectID != "in_evt_p_older" {
			t.Fatalf("emptied row: %+v %v", rec, err)
		}
		if ins, err := inbox.InsertBatch(ctx, []webhooks.Event{evs[1]}, now); err != nil || ins["evt_p_older"] {
			t.Fatalf("redelivery of an emptied event was not absorbed: %v %v", ins, err)
		}
		if got := testutil.ToFloat64(ret.Metrics().Emptied); got != 5 {
			t.Errorf("emptied metric %v", got)
		}
		if got := testutil.ToFloat64(ret.Metrics().Deleted); got != 2 {
			t.Errorf("deleted metric %v", got)
		}
		var audits int64
		d.WithContext(ctx).Raw(`SELECT count(*) FROM audit_log WHERE action = 'webhook_event.retention'`).Scan(&audits)
		if audits != 1 {
			t.Errorf("%d retention audit entries, want 1", audits)
		}
		// A second run finds nothing and records nothing.
		if rep, err := ret.Run(ctx); err != nil || rep.PayloadsEmptied+rep.EventsDeleted != 0 {
			t.Fatalf("second run: %+v %v", rep, err)
		}
		d.WithContext(ctx).Raw(`SELECT count(*) FROM audit_log WHERE action = 'webhook_event.retention'`).Scan(&audits)
		if audits != 1 {
			t.Errorf("an empty run was audited")
		}
		// One second later the exact-edge rows cross over.
		clk.Advance(time.Second)
		if rep, err := ret.Run(ctx); err != nil || rep.PayloadsEmptied != 1 || rep.EventsDeleted != 1 {
			t.Fatalf("run a second later: %+v %v", rep, err)
		}
	})
}
