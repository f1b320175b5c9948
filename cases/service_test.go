package cases

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
)

// TestServiceForOtherPackages covers the API the actions and disputes
// packages use: Record / AppendTimeline, FireInTx, OpenCaseFor, GetInTx.
func TestServiceForOtherPackages(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		c, err := f.svc.OpenManual(ctx, principalOf("alice", auth.RoleAgent), ManualCase{Kind: KindRefundRequest,
			Channel: ChannelPhone, Title: "refund please", Links: Links{Charge: strp("ch_o1")}})
		if err != nil {
			t.Fatal(err)
		}
		in := func(fn func(tx *gorm.DB) error) error { return d.Transact(ctx, fn) }

		// A system entry is not a first response; a person's is.
		if err := in(func(tx *gorm.DB) error {
			return f.svc.Record(ctx, tx, c.ID, SystemActor, "action.requested", "refund of 10.00 USD requested", "")
		}); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.svc.Get(ctx, c.ID); got.SLA.FirstRespondedAt != nil {
			t.Fatal("a system entry counted as the first response")
		}
		f.clock.Advance(time.Hour)
		if err := in(func(tx *gorm.DB) error {
			return f.svc.Record(ctx, tx, c.ID, "bob", "action.succeeded", "refunded 4242424242424242", "evt_action_1")
		}); err != nil {
			t.Fatal(err)
		}
		got, _ := f.svc.Get(ctx, c.ID)
		if got.SLA.FirstRespondedAt == nil || !got.SLA.FirstRespondedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("first response %v", got.SLA.FirstRespondedAt)
		}
		// Idempotent by event id; summaries are redacted.
		if err := in(func(tx *gorm.DB) error {
			return f.svc.Record(ctx, tx, c.ID, "bob", "action.succeeded", "again", "evt_action_1")
		}); err != nil {
			t.Fatal(err)
		}
		tl := f.timeline(c.ID)
		if len(tl) != 3 || tl[2].Summary != "refunded **** **** **** 4242" {
			t.Fatalf("timeline %+v", tl)
		}
		// Validation and unknown cases.
		if err := in(func(tx *gorm.DB) error {
			return f.svc.AppendTimeline(ctx, tx, c.ID, TimelineEntry{Actor: StripeActor, ActorType: ActorStripe, Type: "x", Summary: "y"})
		}); !errs.Is(err, errs.EINVALID) {
			t.Fatalf("stripe entry without event id: %v", err)
		}
		if err := in(func(tx *gorm.DB) error {
			return f.svc.Record(ctx, tx, "case_00000000000000000000000000", "bob", "note", "x", "")
		}); !errs.Is(err, errs.ENOTFOUND) {
			t.Fatalf("unknown case: %v", err)
		}
		// FireInTx fires any event (not only agents'), and refuses illegal ones
		// with the allowed list.
		if err := f.fire(c.ID, "refund", "bob"); err != nil {
			t.Fatal(err)
		}
		err = f.fire(c.ID, "refund", "bob")
		if e, ok := errs.As(err); !ok || e.Code != "illegal_transition" || e.Details["state"] != "refunded" {
			t.Fatalf("illegal FireInTx: %v", err)
		}
		if err := in(func(tx *gorm.DB) error {
			got, err := f.svc.GetInTx(ctx, tx, c.ID)
			if err != nil || got.State != "refunded" {
				t.Errorf("GetInTx: %+v %v", got, err)
			}
			if _, ok, err := f.svc.OpenCaseFor(ctx, tx, KindRefundRequest, "ch_o1"); ok || err != nil {
				t.Errorf("OpenCaseFor a closed case: %v %v", ok, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Get(ctx, "case_nope"); !errs.Is(err, errs.ENOTFOUND) {
			t.Fatalf("Get unknown: %v", err)
		}
	})
}

func TestNewServiceOptions(t *testing.T) {
	t.Parallel()
	if _, err := NewService(Options{}); err == nil {
		t.Fatal("NewService without a DB")
	}
	d := dbtest.Open(t, db.SQLite)
	bad := DefaultSLAPolicy()
	bad.DisputeMargin = -1
	if _, err := NewService(Options{DB: d, SLA: &bad}); err == nil {
		t.Fatal("negative margin accepted")
	}
	s, err := NewService(Options{DB: d})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Collectors()) != 2 || s.SLAPolicy().DueSoon == 0 {
		t.Fatal("defaults not applied")
	}
	// Without a mirror, linked objects are all null.
	if l := s.LinkedObjects(context.Background(), Case{ID: "case_x", Links: Links{Customer: strp("cus_1")}}); l.Customer != nil {
		t.Fatal("empty mirror returned a customer")
	}
}
