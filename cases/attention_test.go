package cases

import (
	"context"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// An unknown status flags the object's open cases whatever order events
// arrive in, once per case and status; a stale event is never narrated as
// if it applied.
func TestUnknownStatusAnyOrderAndStaleEvents(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		// The unknown status arrives first; the older created event, stale,
		// opens the case — flagged all the same.
		odd := dispute("dp_odd", "arbitration_pending")
		f.mustApply(change(evID(), "charge.dispute.updated", t0.Add(time.Hour), odd))
		late := change(evID(), "charge.dispute.created", t0, odd)
		late.Stale = true
		f.mustApply(late)
		c := f.only(KindDispute, "dp_odd")
		if !c.NeedsAttention || c.Status != StatusOpen {
			t.Fatalf("case %+v", c)
		}
		said := 0
		for _, e := range f.timeline(c.ID) {
			if e.Type == EntryUnknownStatus {
				said++
			}
			if deref(e.EventID) == late.EventID && !strings.Contains(e.Summary, "arrived after a newer update") {
				t.Fatalf("stale event narrated as applied: %q", e.Summary)
			}
		}
		if said != 1 {
			t.Fatalf("unknown status said %d times", said)
		}
		// A person clears the flag; the same status again does not re-flag.
		if err := d.Transact(context.Background(), func(tx *gorm.DB) error {
			cur, err := f.svc.st.get(context.Background(), tx, c.ID, true)
			if err != nil {
				return err
			}
			next := cur
			next.NeedsAttention = false
			return f.svc.save(context.Background(), tx, cur, &next)
		}); err != nil {
			t.Fatal(err)
		}
		f.mustApply(change(evID(), "charge.dispute.updated", t0.Add(2*time.Hour), odd))
		if c := f.only(KindDispute, "dp_odd"); c.NeedsAttention {
			t.Fatal("re-flagged for a status a person has seen")
		}
	})
}

// ApplyActionOutcome fires a move that fits the case's kind and state, on
// behalf of the requester, and does nothing otherwise.
func TestApplyActionOutcome(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		rr, err := f.svc.OpenManual(ctx, principalOf("ana", "agent"), ManualCase{Kind: KindRefundRequest, Channel: ChannelChat,
			Title: "refund", Links: Links{Charge: strp("ch_ao")}})
		if err != nil {
			t.Fatal(err)
		}
		move := func(moves ...Move) {
			t.Helper()
			if err := d.Transact(ctx, func(tx *gorm.DB) error {
				return f.svc.ApplyActionOutcome(ctx, tx, rr.ID, moves, "ana", "Refund of $10.00 succeeded")
			}); err != nil {
				t.Fatal(err)
			}
		}
		move(Move{Kind: KindCancellation, Event: "cancel"}) // another kind: nothing
		c, _ := f.svc.Get(ctx, rr.ID)
		wantState(t, c, "new", StatusOpen)
		move(Move{Kind: KindCancellation, Event: "cancel"}, Move{Kind: KindRefundRequest, Event: "refund"})
		c, _ = f.svc.Get(ctx, rr.ID)
		wantState(t, c, "refunded", StatusClosed)
		tl := f.timeline(rr.ID)
		last := tl[len(tl)-1]
		if deref(last.Transition) != "refund" || last.Actor != "ana" || last.ActorType != ActorPerson {
			t.Fatalf("entry %+v", last)
		}
		move(Move{Kind: KindRefundRequest, Event: "refund"}) // cannot fire any more: nothing
		if n := len(f.timeline(rr.ID)); n != len(tl) {
			t.Fatalf("a move that no longer fits wrote %d entries", n-len(tl))
		}
	})
}
