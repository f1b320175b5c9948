package cases

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/events"
)

// The SLA sweep announces sla.due_soon when a running clock enters the
// due-soon window (4h by default; at its edge, not a second before) and
// sla.breached when it passes, once each however often it sweeps.
func TestSLAEventsDueSoonAndBreached(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		c, err := f.svc.OpenManual(ctx, principalOf("alice", auth.RoleAgent), ManualCase{Kind: KindBillingInquiry, Channel: ChannelEmail, Title: "where is my refund"})
		if err != nil {
			t.Fatal(err)
		}
		count := func(typ string) (int, events.CaseFacts) {
			t.Helper()
			var rows []struct{ Data string }
			if err := d.Gorm.Table("events").Where("type = ? AND subject = ?", typ, c.ID).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			var last events.CaseFacts
			for _, r := range rows {
				_ = json.Unmarshal([]byte(r.Data), &last)
			}
			return len(rows), last
		}
		sweep := func() {
			t.Helper()
			if _, err := f.svc.SweepSLAs(ctx); err != nil {
				t.Fatal(err)
			}
		}
		sweep()
		f.clock.Advance(20*time.Hour - time.Second) // first response due in 4h01s: outside the window
		sweep()
		if n, _ := count(events.TypeSLADueSoon); n != 0 {
			t.Fatalf("%d due-soon events one second before the window", n)
		}
		f.clock.Advance(time.Second) // due in exactly 4h
		sweep()
		sweep()
		n, facts := count(events.TypeSLADueSoon)
		if n != 1 || facts.CaseID != c.ID || facts.Kind != string(KindBillingInquiry) || facts.Detail != slaFirstResponse ||
			facts.DueAt == nil || !facts.DueAt.Equal(c.SLA.FirstResponseDue) || facts.Team == "" || facts.Priority != string(PriorityNormal) {
			t.Fatalf("due-soon events %d, last %+v", n, facts)
		}
		if n, _ := count(events.TypeSLABreached); n != 0 {
			t.Fatalf("%d breach events before the due time", n)
		}
		// A fresh service (a restart) reads the whole window again and writes nothing new.
		g := newFixture(t, d)
		g.clock.Set(f.clock.Now())
		if _, err := g.svc.SweepSLAs(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := count(events.TypeSLADueSoon); n != 1 {
			t.Fatalf("due-soon events after a restart: %d", n)
		}
		f.clock.Advance(5 * time.Hour)
		sweep()
		sweep()
		n, facts = count(events.TypeSLABreached)
		if n != 1 || facts.Detail != slaFirstResponse || facts.Priority != string(PriorityHigh) {
			t.Fatalf("breach events %d, last %+v", n, facts)
		}
	})
}

// Announce writes the case's routing facts with the action's amount, once
// per key; the facts hold no customer data.
func TestAnnounce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		c, err := f.svc.OpenManual(ctx, principalOf("alice", auth.RoleAgent), ManualCase{Kind: KindBillingInquiry, Channel: ChannelEmail, Title: "refund please"})
		if err != nil {
			t.Fatal(err)
		}
		amount, cur := int64(2500), "eur"
		for range 2 {
			if err := d.Transact(ctx, func(tx *gorm.DB) error {
				return f.svc.Announce(ctx, tx, events.TypeApprovalRequested, "approval-requested/act_1", c.ID, "refund", &amount, &cur)
			}); err != nil {
				t.Fatal(err)
			}
		}
		var rows []struct{ Data string }
		d.Gorm.Table("events").Where("type = ? AND subject = ?", events.TypeApprovalRequested, c.ID).Find(&rows)
		if len(rows) != 1 {
			t.Fatalf("%d events", len(rows))
		}
		var got events.CaseFacts
		_ = json.Unmarshal([]byte(rows[0].Data), &got)
		if got.CaseID != c.ID || got.Kind != string(KindBillingInquiry) || got.Amount == nil || *got.Amount != 2500 || got.Currency != "eur" ||
			got.Detail != "refund" || got.Title != "refund please" {
			t.Fatalf("facts %+v", got)
		}
		err = d.Transact(ctx, func(tx *gorm.DB) error {
			return f.svc.Announce(ctx, tx, events.TypeActionFailed, "k", "case_nope", "", nil, nil)
		})
		if err == nil {
			t.Fatal("announce about an unknown case succeeded")
		}
	})
}
