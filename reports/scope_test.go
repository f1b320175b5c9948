package reports_test

import (
	"testing"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/reports"
)

// seedCustomers gives the fixture's cases and billing rows customers:
// cus_e has the ecommerce cases A, C1 and C9, charges ch1 and ch3, refunds
// re1 and re3 and dispute dp1 (the last two through charge ch1); cus_l has the live cases B and C2, charge
// ch2, refund re2 and dispute dp2. The rest have none.
func seedCustomers(t *testing.T, d *db.DB) {
	t.Helper()
	for _, u := range []struct{ table, customer, ids string }{
		{"cases", "cus_e", "'A', 'C1', 'C9'"}, {"cases", "cus_l", "'B', 'C2'"},
		{"billing_charges", "cus_e", "'ch1', 'ch3'"}, {"billing_charges", "cus_l", "'ch2'"},
		{"billing_refunds", "cus_e", "'re1'"}, {"billing_refunds", "cus_l", "'re2'"},
		{"billing_disputes", "cus_l", "'dp2'"},
	} {
		exec(t, d, "UPDATE "+u.table+" SET customer_id = ? WHERE id IN ("+u.ids+")", u.customer)
	}
	// dp1 names no customer: its charge ch1 does (billing.Store resolves
	// it so), as does re3's.
	exec(t, d, "UPDATE billing_disputes SET charge_id = 'ch1' WHERE id = 'dp1'")
	exec(t, d, "UPDATE billing_refunds SET charge_id = 'ch1', customer_id = '' WHERE id = 're3'")
}

// Reports within a scope (README "Scoping"): the same fixture, asked by a
// principal limited to business line ecommerce (cases A, C1, C9) counts
// those cases and the billing rows of their customer; the live cases (B,
// C2) and the cases with no business line (C3–C8, C10, C11, Z) are not
// counted. A team scope counts a team's cases with or without a business
// line. An unrestricted scope answers today's numbers.
func TestReportsWithinAScope(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		seed(t, d)
		seedCustomers(t, d)
		st := newStore(t, d)
		ecommerce := auth.Scope{BusinessLines: []string{"ecommerce"}}

		t.Run("volume", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Volume, Scope: ecommerce}).(*reports.VolumeReport)
			// C1 and C9 opened, C1 closed; the backlog at from is A (B is live).
			eq(t, "totals", vol(r.Totals), "all:2/1/0/2")
			r = run(t, st, reports.Query{Report: reports.Volume, GroupBy: "business_line", Scope: ecommerce}).(*reports.VolumeReport)
			eq(t, "by business line", vol(r.Totals), "ecommerce:2/1/0/2")
			// C2's reopen is a live case's: not counted.
			r = run(t, st, reports.Query{Report: reports.Volume, Scope: auth.Scope{BusinessLines: []string{"live"}}}).(*reports.VolumeReport)
			eq(t, "live", vol(r.Totals), "all:1/2/1/0")
			// A team scope keeps payments' C10, which has no business line.
			r = run(t, st, reports.Query{Report: reports.Volume, Scope: auth.Scope{Teams: []string{"payments"}}}).(*reports.VolumeReport)
			eq(t, "payments", vol(r.Totals), "all:1/0/0/1")
			// Both dimensions: support cases on ecommerce are A, C1, C9 again;
			// payments on ecommerce is nothing.
			r = run(t, st, reports.Query{Report: reports.Volume, Scope: auth.Scope{Teams: []string{"support"}, BusinessLines: []string{"ecommerce"}}}).(*reports.VolumeReport)
			eq(t, "support and ecommerce", vol(r.Totals), "all:2/1/0/2")
			r = run(t, st, reports.Query{Report: reports.Volume, Scope: auth.Scope{Teams: []string{"payments"}, BusinessLines: []string{"ecommerce"}}}).(*reports.VolumeReport)
			eq(t, "payments and ecommerce", vol(r.Totals), "all:0/0/0/0")
		})

		t.Run("resolution", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Resolution, Scope: ecommerce}).(*reports.ResolutionReport)
			g := r.Totals[0]
			// First responses C1 and C9, C1 resolved, C9's breach (C2's
			// and C3's are out).
			eq(t, "totals", []int64{g.FirstResponses, g.Resolved, g.FirstResponseBreaches, g.ResolutionBreaches}, []int64{2, 1, 1, 0})
		})

		t.Run("team", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.TeamWork, GroupBy: "team", Scope: ecommerce}).(*reports.TeamReport)
			if len(r.Groups) != 1 || r.Groups[0].Key != "support" {
				t.Fatalf("groups %v, want support alone", r.Groups)
			}
			// C1 handled; act2 (C1) requested; act1 (C2) and act3 (C3) out.
			eq(t, "support", team(r.Groups[0]), "support handled 1 actions 1/0 approvals asked 0 given 0 rejected 0 fr 2/1 50% res 1 100% reopened 0 0%")
			r = run(t, st, reports.Query{Report: reports.TeamWork, GroupBy: "agent", Scope: ecommerce}).(*reports.TeamReport)
			for _, g := range r.Groups {
				if g.Key == "bob" || g.Key == "dave" || g.Key == "carol" {
					t.Errorf("agent %s shows within ecommerce: %s", g.Key, team(g))
				}
			}
		})

		t.Run("recovery", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Recovery, Scope: ecommerce}).(*reports.RecoveryReport)
			// C3 (recovered) and C4 (churned) have no business line: out.
			eq(t, "failed renewals", []int64{r.FailedRenewals["recovered"], r.FailedRenewals["churned"]}, []int64{0, 0})
			eq(t, "recovered revenue", len(r.RecoveredRevenue), 0)
			eq(t, "refunds", r.Refunds, []reports.RefundReason{
				{Reason: "duplicate", Currency: "eur", Count: 1, Amount: 700},
				{Reason: "requested_by_customer", Currency: "usd", Count: 1, Amount: 1000},
			})
			r = run(t, st, reports.Query{Report: reports.Recovery, Scope: auth.Scope{Teams: []string{"billing_support"}}}).(*reports.RecoveryReport)
			eq(t, "billing_support renewals", []int64{r.FailedRenewals["recovered"], r.FailedRenewals["churned"]}, []int64{1, 1})
			eq(t, "billing_support refunds", len(r.Refunds), 0) // its cases have no customer
		})

		t.Run("root causes", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.RootCauses, Scope: ecommerce}).(*reports.RootCauseReport)
			eq(t, "decline codes", causes(r.DeclineCodes), "card_declined:1/0/+1 insufficient_funds:1/0/+1")
			eq(t, "refund reasons", causes(r.RefundReasons), "duplicate:1/0/+1 requested_by_customer:1/0/+1")
			eq(t, "dispute reasons", causes(r.DisputeReasons), "fraudulent:1/0/+1")
			eq(t, "escalation teams", causes(r.EscalationTeams), "")
			eq(t, "tags", causes(r.Tags), "double_charge:2/0/+2 vip:1/1/+0") // C11's vip is out
			r = run(t, st, reports.Query{Report: reports.RootCauses, Scope: auth.Scope{Teams: []string{"payments"}}}).(*reports.RootCauseReport)
			eq(t, "payments escalations", causes(r.EscalationTeams), "payments:1/1/+0 finance:0/1/-1")
			eq(t, "payments declines", causes(r.DeclineCodes), "")
		})

		t.Run("disputes", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Disputes, GroupBy: "reason", Scope: ecommerce}).(*reports.DisputeReport)
			eq(t, "count/won/lost", []int64{r.Totals.Count, r.Totals.Won, r.Totals.Lost}, []int64{1, 1, 0}) // dp1; dp2 is cus_l's
			eq(t, "monitoring", len(r.Monitoring), 0)
			if r.Monitoring == nil {
				t.Error("monitoring is null, want []")
			}
		})

		t.Run("unrestricted is today's report", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Volume, Scope: auth.Scope{}}).(*reports.VolumeReport)
			eq(t, "totals", vol(r.Totals), "all:10/7/1/5")
			rc := run(t, st, reports.Query{Report: reports.Recovery, Scope: auth.Scope{}}).(*reports.RecoveryReport)
			eq(t, "refunds", len(rc.Refunds), 2)
			// A scope naming every team holds every case: the case reports
			// are the unscoped ones, figure for figure.
			all := auth.Scope{Teams: []string{"billing_support", "payments", "support"}}
			for _, q := range []reports.Query{{Report: reports.Volume, GroupBy: "team"}, {Report: reports.Resolution, GroupBy: "team"},
				{Report: reports.TeamWork, GroupBy: "agent"}, {Report: reports.TeamWork, GroupBy: "team"}} {
				want := run(t, st, q)
				q.Scope = all
				eq(t, string(q.Report)+" by "+q.GroupBy, run(t, st, q), want)
			}
		})
	})
}
