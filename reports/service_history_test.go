package reports_test

import (
	"context"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/reports"
)

// TestReportsReadWhatCasesWrite makes a history through cases.Service with
// a clock it moves — opened, answered, resolved, reopened, resolved again,
// and a second case whose first response the sweeper marks breached — and
// checks the reports read it as documented.
func TestReportsReadWhatCasesWrite(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := clock.NewManual(day(2, 9, 0)) // Monday
		policy := slaPolicy(t)
		svc, err := cases.NewService(cases.Options{DB: d, Clock: clk, SLA: &policy})
		if err != nil {
			t.Fatal(err)
		}
		alice := auth.Principal{UserID: 1, Name: "alice", Role: auth.RoleAgent}
		fire := func(id, event string) {
			t.Helper()
			if _, err := svc.Transition(ctx, alice, id, cases.TransitionRequest{Event: event}); err != nil {
				t.Fatalf("%s %s: %v", event, id, err)
			}
		}
		first, err := svc.OpenManual(ctx, alice, cases.ManualCase{Kind: cases.KindBillingInquiry, Channel: cases.ChannelChat, Title: "Charged twice"})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour) // Mon 10:00
		if _, err := svc.OpenManual(ctx, alice, cases.ManualCase{Kind: cases.KindBillingInquiry, Channel: cases.ChannelEmail, Title: "Nobody answers"}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(30 * time.Minute) // Mon 10:30
		fire(first.ID, "start")
		clk.Advance(time.Hour) // Mon 11:30
		fire(first.ID, "resolve")
		clk.Advance(24 * time.Hour) // Tue 11:30: reopened, and answered by the reopening
		fire(first.ID, "reopen")
		clk.Advance(time.Hour) // Tue 12:30
		fire(first.ID, "resolve")
		clk.Set(day(4, 10, 30)) // Wed: the second case's first response (due Tue 10:00) is past due
		if _, err := svc.SweepSLAs(ctx); err != nil {
			t.Fatal(err)
		}

		st := newStore(t, d)
		q := reports.Query{Report: reports.Volume, From: from, To: day(5, 0, 0), Interval: reports.Day}
		v := run(t, st, q).(*reports.VolumeReport)
		var got []string
		for _, b := range v.Buckets {
			got = append(got, b.Start.Format("02")+" "+vol(b.Groups))
		}
		eq(t, "volume", got, []string{"02 all:2/0/0/2", "03 all:0/1/1/1", "04 all:0/0/0/1"})

		q.Report = reports.Resolution
		r := run(t, st, q).(*reports.ResolutionReport)
		// First response: the reopening, Tue 11:30 (26.5 h; 8 + 2.5
		// business hours); resolution Tue 12:30 (27.5 h; 11.5 business
		// hours); the second case's first response breached.
		eq(t, "resolution", res(r.Totals[0]),
			"all fr 1 95400/95400 biz 37800/37800 met 1 100% | res 1 99000/99000 biz 41400/41400 met 1 100% | breaches 1/0")
	})
}
