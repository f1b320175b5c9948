package disputes_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

type seedDispute struct {
	id, brand, reason, code, currency, status string
	amount                                    int64
	submissions                               int
	created                                   time.Time
}

func insertDispute(t testing.TB, d *db.DB, s seedDispute) {
	t.Helper()
	now := time.Now().UTC()
	if err := d.Gorm.Exec(`INSERT INTO billing_disputes (id, charge_id, amount, currency, status, reason, network_reason_code, card_brand,
  submission_count, created, event_id, event_created, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.id, "ch_"+s.id, s.amount, s.currency, s.status, s.reason, s.code, s.brand, s.submissions, s.created.UTC(), "evt_"+s.id, s.created.UTC(), now, now).Error; err != nil {
		t.Fatal(err)
	}
}

func f64(v float64) *float64 { return &v }

func eqRate(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a-*b < 1e-9 && *b-*a < 1e-9
}

func TestDisputeStats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		march := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		for _, s := range []seedDispute{
			{"dp1", "visa", "fraudulent", "10.4", "usd", "won", 1000, 1, march},
			{"dp2", "visa", "fraudulent", "10.4", "usd", "lost", 2000, 1, march},
			{"dp3", "visa", "fraudulent", "10.4", "usd", "lost", 3000, 0, march},
			{"dp4", "mastercard", "product_not_received", "4855", "eur", "lost", 4000, 0, march},
			{"dp5", "visa", "general", "", "usd", "warning_closed", 500, 0, march},
			{"dp6", "visa", "general", "", "usd", "needs_response", 600, 0, march},
			{"dp7", "visa", "fraudulent", "10.4", "usd", "won", 9999, 1, march.AddDate(0, 2, 0)}, // out of range
		} {
			insertDispute(t, d, s)
		}
		// Cases: dp4 missed its deadline; dp6 opened as an inquiry, then
		// became a chargeback.
		clk := clock.NewManual(march)
		cs, err := cases.NewService(cases.Options{DB: d, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		open := func(evt, id, status string) string {
			due := march.Add(48 * time.Hour)
			dp := billing.Dispute{ID: id, ChargeID: "ch_" + id, Amount: 100, Currency: "usd", Status: status, EvidenceDueBy: &due, Created: march}
			ch := billing.Change{EventID: evt, EventType: "charge.dispute.updated", EventCreated: clk.Now(), Summary: "test", Object: billing.KindDispute,
				ObjectID: id, Dispute: &dp}
			var caseID string
			if err := d.Transact(ctx, func(tx *gorm.DB) error {
				if err := cs.OnBillingChange(ctx, tx, ch); err != nil {
					return err
				}
				c, _, err := cs.OpenCaseFor(ctx, tx, cases.KindDispute, id)
				caseID = c.ID
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return caseID
		}
		c4 := open("evt_s4", "dp4", "needs_response")
		open("evt_s6a", "dp6", "warning_needs_response")
		clk.Advance(time.Hour)
		open("evt_s6b", "dp6", "needs_response")
		if err := d.Gorm.Exec(`INSERT INTO dispute_deadline_marks (case_id, mark, dispute_id, due_by, at) VALUES (?, 'missed', 'dp4', ?, ?)`,
			c4, march, march).Error; err != nil {
			t.Fatal(err)
		}
		for _, m := range []billing.ChargeMonth{{Month: "2026-03", Brand: "visa", Currency: "usd", SucceededCount: 80}, {Month: "2026-03", Brand: "visa", Currency: "eur", SucceededCount: 20}, {Month: "2026-02", Brand: "mastercard", Currency: "eur", SucceededCount: 50},
			{Month: "2026-03", Brand: "mastercard", Currency: "eur", SucceededCount: 1000}} {
			if err := d.Gorm.Create(&m).Error; err != nil {
				t.Fatal(err)
			}
		}
		pol := disputes.DefaultPolicy()
		pol.Monitoring.Visa = []disputes.MonitoringLevel{{Name: "VAMP excessive", Ratio: 0.015, MinCount: 3}}
		pol.Monitoring.Mastercard = []disputes.MonitoringLevel{{Name: "ECM", Ratio: 0.015, MinCount: 1}, {Name: "HECM", Ratio: 0.03, MinCount: 1}}
		r := disputes.NewStatsReader(d, pol, clk, nil)
		// Whole months come from the rollup: before a refresh, nothing.
		q := disputes.StatsQuery{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), GroupBy: disputes.GroupByReason}
		if st, err := r.Stats(ctx, q); err != nil || st.Totals.Count != 0 {
			t.Fatalf("before the first refresh: %+v, %v", st.Totals, err)
		}
		if n, err := r.Refresh(ctx); err != nil || n != -1 {
			t.Fatalf("first refresh: %d, %v", n, err)
		}
		// A partial month is read from the mirror, and agrees.
		partial, err := r.Stats(ctx, disputes.StatsQuery{From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC), GroupBy: disputes.GroupByReason})
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.Stats(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pb, _ := json.Marshal(partial.Groups)
		sb, _ := json.Marshal(st.Groups)
		if pj, sj := string(pb), string(sb); pj != sj {
			t.Errorf("partial month (mirror) %s\n whole month (rollup) %s", pj, sj)
		}
		if len(st.Groups) != 3 || st.Totals.Count != 6 {
			t.Fatalf("groups = %+v, totals = %+v", st.Groups, st.Totals)
		}
		fr, gen, pnr := st.Groups[0], st.Groups[1], st.Groups[2]
		if fr.Key != "fraudulent" || fr.Count != 3 || fr.Won != 1 || fr.Lost != 2 || fr.Accepted != 1 || !eqRate(fr.WinRate, f64(1.0/3)) ||
			fr.AmountDisputed["usd"] != 6000 || fr.RecoveredNetOfFees["usd"] != 1000-3*1500-1500 || fr.DeadlinesMissed != 0 {
			t.Errorf("fraudulent = %+v", fr)
		}
		if gen.Key != "general" || gen.Count != 2 || gen.Inquiries != 2 || gen.Converted != 1 || !eqRate(gen.InquiryConversion, f64(0.5)) ||
			gen.WinRate != nil || gen.RecoveredNetOfFees["usd"] != -1500 || gen.AmountDisputed["usd"] != 1100 {
			t.Errorf("general = %+v", gen)
		}
		if pnr.Key != "product_not_received" || pnr.Lost != 1 || pnr.Accepted != 0 || pnr.DeadlinesMissed != 1 || pnr.RecoveredNetOfFees["eur"] != -1500 {
			t.Errorf("product_not_received = %+v", pnr)
		}
		if len(st.Monitoring) != 2 {
			t.Fatalf("monitoring = %+v", st.Monitoring)
		}
		mc, visa := st.Monitoring[0], st.Monitoring[1]
		if mc.Brand != "mastercard" || mc.Disputes != 1 || mc.DenominatorMonth != "2026-02" || mc.SuccessfulCharges != 50 ||
			!eqRate(mc.Ratio, f64(0.02)) || mc.Level == nil || *mc.Level != "ECM" {
			t.Errorf("mastercard = %+v", mc)
		}
		if visa.Brand != "visa" || visa.Month != "2026-03" || visa.Disputes != 4 || visa.SuccessfulCharges != 100 || !eqRate(visa.Ratio, f64(0.04)) ||
			visa.Level == nil || *visa.Level != "VAMP excessive" {
			t.Errorf("visa = %+v", visa)
		}
		for _, g := range disputes.GroupBys() {
			q.GroupBy = g
			st, err := r.Stats(ctx, q)
			if err != nil || st.Totals.Count != 6 {
				t.Errorf("group_by %s: totals %+v, %v", g, st.Totals, err)
			}
		}
		// A later change reaches the rollup at the next refresh: dp3 is won
		// after all.
		clk.Advance(time.Hour)
		if err := d.Gorm.Exec("UPDATE billing_disputes SET status = 'won', updated_at = ? WHERE id = 'dp3'", clk.Now()).Error; err != nil {
			t.Fatal(err)
		}
		if n, err := r.Refresh(ctx); err != nil || n < 1 {
			t.Fatalf("incremental refresh: %d months, %v", n, err)
		}
		q.GroupBy = disputes.GroupByReason
		if st, err := r.Stats(ctx, q); err != nil || st.Groups[0].Won != 2 {
			t.Fatalf("after dp3 won: %+v, %v", st.Groups, err)
		}
		q.GroupBy = "color"
		if _, err := r.Stats(ctx, q); err == nil {
			t.Error("unknown group_by accepted")
		}
	})
}
