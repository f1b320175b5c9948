package disputes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/events"
)

var dlT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var dlSeq atomic.Int64

type dlFixture struct {
	t     *testing.T
	db    *db.DB
	clock *clock.Manual
	cases *cases.Service
	sweep *disputes.DeadlineSweeper
	reg   *prometheus.Registry
}

func newDLFixture(t *testing.T, d *db.DB) *dlFixture {
	t.Helper()
	f := &dlFixture{t: t, db: d, clock: clock.NewManual(dlT0), reg: prometheus.NewRegistry()}
	var err error
	f.cases, err = cases.NewService(cases.Options{DB: d, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.sweep = f.newSweeper(f.reg)
	return f
}

func (f *dlFixture) newSweeper(reg prometheus.Registerer) *disputes.DeadlineSweeper {
	s, err := disputes.NewDeadlineSweeper(disputes.DeadlineOptions{DB: f.db, Cases: f.cases, Clock: f.clock,
		Policy: disputes.DefaultPolicy(), Registerer: reg})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// dispute opens a dispute case through the case service, as a webhook
// would, with evidence due at due.
func (f *dlFixture) dispute(status string, due time.Time) cases.Case {
	f.t.Helper()
	n := dlSeq.Add(1)
	dp := billing.Dispute{ID: fmt.Sprintf("dp_dl%d", n), ChargeID: fmt.Sprintf("ch_dl%d", n), Amount: 2000, Currency: "usd",
		Status: status, Reason: "fraudulent", CardBrand: "visa", EvidenceDueBy: &due, Created: f.clock.Now()}
	ch := billing.Change{EventID: fmt.Sprintf("evt_dl%d", n), EventType: "charge.dispute.created", EventCreated: f.clock.Now(),
		Summary: "dispute opened (test)", Object: billing.KindDispute, ObjectID: dp.ID, Dispute: &dp, FirstSeen: true}
	ctx := context.Background()
	if err := f.db.Transact(ctx, func(tx *gorm.DB) error { return f.cases.OnBillingChange(ctx, tx, ch) }); err != nil {
		f.t.Fatalf("open dispute case: %v", err)
	}
	var c cases.Case
	err := f.db.Transact(ctx, func(tx *gorm.DB) error {
		var ok bool
		var err error
		c, ok, err = f.cases.OpenCaseFor(ctx, tx, cases.KindDispute, dp.ID)
		if err == nil && !ok {
			err = fmt.Errorf("no case for %s", dp.ID)
		}
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *dlFixture) sweepAt(at time.Time) int {
	f.t.Helper()
	f.clock.Set(at)
	n, err := f.sweep.Sweep(context.Background())
	if err != nil {
		f.t.Fatalf("sweep: %v", err)
	}
	return n
}

// entries returns the deadline entries on c's timeline.
func (f *dlFixture) entries(id string) []cases.TimelineEntry {
	f.t.Helper()
	tl, err := f.cases.Timeline(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []cases.TimelineEntry
	for _, e := range tl {
		if e.Type == disputes.EntryDeadlineReminder || e.Type == disputes.EntryDeadlineMissed {
			out = append(out, e)
		}
	}
	return out
}

func (f *dlFixture) events(subject string) []events.Event {
	f.t.Helper()
	feed := events.NewFeed(f.db, clock.NewManual(dlT0.Add(365*24*time.Hour)), time.Second)
	all, err := feed.List(context.Background(), 0, "dispute.*", 200)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []events.Event
	for _, e := range all {
		// Deadline events only (a new dispute case announces itself too).
		if e.Subject == subject && strings.HasPrefix(e.Type, "dispute.deadline_") {
			out = append(out, e)
		}
	}
	return out
}

func TestDeadlineRemindersAtLeadTimes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDLFixture(t, d)
		due := dlT0.Add(5 * 24 * time.Hour)
		c := f.dispute("needs_response", due)

		// Just before the 72 h lead: nothing.
		if n := f.sweepAt(due.Add(-72*time.Hour - time.Second)); n != 0 {
			t.Fatalf("1 s before the 72 h lead: %d marks", n)
		}
		// Exactly at the lead: the 72 h reminder, once.
		if n := f.sweepAt(due.Add(-72 * time.Hour)); n != 1 {
			t.Fatalf("at the 72 h lead: %d marks, want 1", n)
		}
		if n := f.sweepAt(due.Add(-30 * time.Hour)); n != 0 {
			t.Fatalf("second sweep in the 72 h band: %d marks", n)
		}
		got, _ := f.cases.Get(context.Background(), c.ID)
		if got.Priority != cases.PriorityHigh {
			t.Errorf("priority after the 72 h reminder = %s, want high", got.Priority)
		}
		// Just after the 24 h lead: the 24 h reminder, urgent.
		if n := f.sweepAt(due.Add(-24*time.Hour + time.Second)); n != 1 {
			t.Fatalf("just after the 24 h lead: %d marks, want 1", n)
		}
		got, _ = f.cases.Get(context.Background(), c.ID)
		if got.Priority != cases.PriorityUrgent {
			t.Errorf("priority after the 24 h reminder = %s, want urgent", got.Priority)
		}
		// Just before due_by: nothing more; at due_by: missed, once.
		if n := f.sweepAt(due.Add(-time.Second)); n != 0 {
			t.Fatalf("1 s before due_by: %d marks", n)
		}
		if n := f.sweepAt(due); n != 1 {
			t.Fatalf("at due_by: %d marks, want 1 (missed)", n)
		}
		if n := f.sweepAt(due.Add(48 * time.Hour)); n != 0 {
			t.Fatalf("after the miss: %d marks", n)
		}
		es := f.entries(c.ID)
		if len(es) != 3 || es[0].Type != disputes.EntryDeadlineReminder || es[1].Type != disputes.EntryDeadlineReminder ||
			es[2].Type != disputes.EntryDeadlineMissed {
			t.Fatalf("timeline deadline entries = %+v", es)
		}
		evs := f.events(c.ID)
		if len(evs) != 3 || evs[0].Type != events.TypeDisputeDeadlineReminder || evs[2].Type != events.TypeDisputeDeadlineMissed {
			t.Fatalf("events = %+v", evs)
		}
		var data map[string]any
		if err := json.Unmarshal(evs[1].Data, &data); err != nil || data["lead"] != "24h0m0s" || data["priority"] != "urgent" {
			t.Errorf("24 h event data = %s (%v)", evs[1].Data, err)
		}
		if got := counterSum(t, f.reg, "recourse_dispute_deadline_reminders_total"); got != 2 {
			t.Errorf("reminders counted = %v, want 2", got)
		}
		if got := counterSum(t, f.reg, "recourse_dispute_deadlines_missed_total"); got != 1 {
			t.Errorf("misses counted = %v, want 1", got)
		}
	})
}

func TestDeadlineOnlyNearestLeadFires(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDLFixture(t, d)
		due := dlT0.Add(20 * time.Hour) // first seen with 20 h left
		c := f.dispute("needs_response", due)
		if n := f.sweepAt(dlT0); n != 1 {
			t.Fatalf("marks = %d, want 1", n)
		}
		es := f.entries(c.ID)
		if len(es) != 1 || es[0].Type != disputes.EntryDeadlineReminder {
			t.Fatalf("entries = %+v", es)
		}
		evs := f.events(c.ID)
		var data map[string]any
		if len(evs) != 1 || json.Unmarshal(evs[0].Data, &data) != nil || data["lead"] != "24h0m0s" {
			t.Fatalf("events = %+v", evs)
		}
		if n := f.sweepAt(dlT0.Add(time.Hour)); n != 0 {
			t.Fatalf("later sweep: %d marks (72 h must never fire now)", n)
		}
	})
}

func TestDeadlineSubmittedOrClosedGetNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDLFixture(t, d)
		due := dlT0.Add(10 * time.Hour)
		submitted := f.dispute("needs_response", due)
		ctx := context.Background()
		if err := f.db.Transact(ctx, func(tx *gorm.DB) error {
			return f.cases.FireInTx(ctx, tx, submitted.ID, "submit_evidence", cases.SystemActor, "evidence submitted (test)")
		}); err != nil {
			t.Fatal(err)
		}
		underReview := f.dispute("under_review", due)
		if n := f.sweepAt(dlT0); n != 0 {
			t.Fatalf("submitted disputes got %d marks", n)
		}
		if n := f.sweepAt(due.Add(time.Hour)); n != 0 {
			t.Fatalf("submitted disputes got %d marks past due_by", n)
		}
		if len(f.entries(submitted.ID))+len(f.entries(underReview.ID)) != 0 {
			t.Fatal("entries on submitted disputes")
		}
	})
}

func TestDeadlineConcurrentSweepsMarkOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDLFixture(t, d)
		due := dlT0.Add(10 * time.Hour)
		var ids []string
		for range 20 {
			ids = append(ids, f.dispute("needs_response", due).ID)
		}
		f.clock.Set(dlT0)
		other := f.newSweeper(prometheus.NewRegistry())
		var wg sync.WaitGroup
		var total atomic.Int64
		for _, s := range []*disputes.DeadlineSweeper{f.sweep, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := s.Sweep(context.Background())
				if err != nil {
					t.Errorf("sweep: %v", err)
				}
				total.Add(int64(n))
			}()
		}
		wg.Wait()
		if total.Load() != int64(len(ids)) {
			t.Fatalf("two sweepers made %d marks, want %d", total.Load(), len(ids))
		}
		for _, id := range ids {
			if es := f.entries(id); len(es) != 1 {
				t.Fatalf("case %s has %d deadline entries", id, len(es))
			}
			if evs := f.events(id); len(evs) != 1 {
				t.Fatalf("case %s has %d events", id, len(evs))
			}
		}
	})
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
