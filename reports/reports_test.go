package reports_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/reports"
)

func newStore(t testing.TB, d *db.DB) *reports.Store {
	t.Helper()
	return reports.NewStore(d, slaPolicy(t), disputes.NewStatsReader(d, disputes.DefaultPolicy(), nil, nil))
}

func run(t *testing.T, st *reports.Store, q reports.Query) reports.Report {
	t.Helper()
	if q.From.IsZero() {
		q.From, q.To = from, to
	}
	if q.Interval == "" {
		q.Interval = reports.Day
	}
	r, err := st.Run(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q.Report, err)
	}
	return r
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// vol renders volume groups as key:opened/closed/reopened/backlog.
func vol(gs []reports.VolumeGroup) string {
	var s []string
	for _, g := range gs {
		s = append(s, fmt.Sprintf("%s:%d/%d/%d/%d", g.Key, g.Opened, g.Closed, g.Reopened, g.Backlog))
	}
	return strings.Join(s, " ")
}

func p(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}

// res renders a resolution group: first responses n, p50/p90 wall, p50/p90
// business, met %, then resolutions likewise, then breaches.
func res(g reports.ResolutionGroup) string {
	return fmt.Sprintf("%s fr %d %s/%s biz %s/%s met %d %s%% | res %d %s/%s biz %s/%s met %d %s%% | breaches %d/%d", g.Key,
		g.FirstResponses, p(g.FirstResponseSeconds.P50), p(g.FirstResponseSeconds.P90),
		p(g.FirstResponseBusinessSecs.P50), p(g.FirstResponseBusinessSecs.P90), g.FirstResponseMet, p(g.FirstResponseAttainmentPct),
		g.Resolved, p(g.ResolutionSeconds.P50), p(g.ResolutionSeconds.P90),
		p(g.ResolutionBusinessSecs.P50), p(g.ResolutionBusinessSecs.P90), g.ResolutionMet, p(g.ResolutionAttainmentPct),
		g.FirstResponseBreaches, g.ResolutionBreaches)
}

func team(g reports.TeamGroup) string {
	return fmt.Sprintf("%s handled %d actions %d/%d approvals asked %d given %d rejected %d fr %d/%d %s%% res %d %s%% reopened %d %s%%",
		g.Key, g.Handled, g.Actions, g.ActionsSucceeded, g.ApprovalsAsked, g.ApprovalsGiven, g.ApprovalsRejected,
		g.FirstResponses, g.FirstResponseMet, p(g.FirstResponseAttainmentPct), g.ResolutionMet, p(g.ResolutionAttainmentPct),
		g.Reopened, p(g.ReopenRatePct))
}

func causes(cs []reports.Cause) string {
	var s []string
	for _, c := range cs {
		s = append(s, fmt.Sprintf("%s:%d/%d/%+d", c.Key, c.Count, c.Previous, c.Delta))
	}
	return strings.Join(s, " ")
}

func TestReports(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		seed(t, d)
		st := newStore(t, d)

		t.Run("volume by day", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Volume}).(*reports.VolumeReport)
			if len(r.Buckets) != 14 {
				t.Fatalf("%d buckets, want 14", len(r.Buckets))
			}
			var got []string
			for _, b := range r.Buckets {
				got = append(got, b.Start.Format("02")+" "+vol(b.Groups))
			}
			eq(t, "days", got, []string{
				"02 all:1/0/0/3", // C2 opened exactly at from; backlog at from was A and B
				"03 all:1/1/0/3", // C3 opened, B closed
				"04 all:1/0/1/4", // C6 opened, C2 reopened
				"05 all:1/1/0/4", // C7 opened, C2 closed (its last close)
				"06 all:2/0/0/6", // C1, C8
				"07 all:0/1/0/5", // C7
				"08 all:0/1/0/4", // C6
				"09 all:0/1/0/3", // C3
				"10 all:1/0/0/4", // C4
				"11 all:0/1/0/3", // C1
				"12 all:1/1/0/3", // C9 opened, C4 closed
				"13 all:1/0/0/4", // C10
				"14 all:0/0/0/4",
				"15 all:1/0/0/5", // C5 at 23:59:59; C8 closes exactly at to: still in the backlog
			})
			eq(t, "totals", vol(r.Totals), "all:10/7/1/5")
			eq(t, "bucket bounds", []time.Time{r.Buckets[0].Start, r.Buckets[0].End, r.Buckets[13].End}, []time.Time{from, day(3, 0, 0), to})
		})

		t.Run("volume by week and team", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Volume, Interval: reports.Week, GroupBy: "team"}).(*reports.VolumeReport)
			var got []string
			for _, b := range r.Buckets {
				got = append(got, b.Start.Format("02")+"-"+b.End.Format("02")+" "+vol(b.Groups))
			}
			eq(t, "weeks", got, []string{
				"02-09 billing_support:4/2/0/2 payments:0/0/0/0 support:2/2/1/2",
				"09-16 billing_support:2/2/0/2 payments:1/0/0/1 support:1/1/0/2",
			})
			eq(t, "totals", vol(r.Totals), "billing_support:6/4/0/2 payments:1/0/0/1 support:3/3/1/2")
		})

		t.Run("volume by month clips to the range", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Volume, Interval: reports.Month, From: feb(16, 0, 0), To: to}).(*reports.VolumeReport)
			eq(t, "months", len(r.Buckets), 2)
			eq(t, "feb", r.Buckets[0].Bucket, reports.Bucket{Start: feb(16, 0, 0), End: day(1, 0, 0)})
			// Feb 16 → Mar 1: A, B, C11 opened, C11 closed; backlog A, B.
			eq(t, "feb groups", vol(r.Buckets[0].Groups), "all:3/1/0/2")
			eq(t, "totals", vol(r.Totals), "all:13/8/1/5")
		})

		t.Run("volume by day in a time zone", func(t *testing.T) {
			tokyo, _ := time.LoadLocation("Asia/Tokyo") // UTC+9: 2 March JST starts 1 March 15:00 UTC
			q, err := reports.ParseQuery(reports.Params{Name: "volume", From: "2026-03-02", To: "2026-03-16", TZ: "Asia/Tokyo"}, to)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "range", []time.Time{q.From, q.To}, []time.Time{day(1, 15, 0), day(15, 15, 0)})
			r := run(t, st, q).(*reports.VolumeReport)
			eq(t, "first bucket", r.Buckets[0].Bucket, reports.Bucket{Start: time.Date(2026, 3, 2, 0, 0, 0, 0, tokyo), End: time.Date(2026, 3, 3, 0, 0, 0, 0, tokyo)})
			eq(t, "first day", vol(r.Buckets[0].Groups), "all:1/0/0/3") // C2 at 09:00 JST
			// 6 March JST is 5 March 15:00 → 6 March 15:00 UTC: C8 opened;
			// 7 March JST: C1 opened (16:00 UTC on the 6th), C7 closed.
			eq(t, "6 and 7 March JST", []string{vol(r.Buckets[4].Groups), vol(r.Buckets[5].Groups)},
				[]string{"all:1/0/0/5", "all:1/1/0/5"})
			eq(t, "tz", r.TZ, "Asia/Tokyo")
			// C5 (15 March 23:59:59 UTC) is 16 March in Tokyo: out.
			eq(t, "totals", vol(r.Totals), "all:9/7/1/4")
			eq(t, "row", r.Rows()[0].BucketStart, "2026-03-02T00:00:00+09:00")
		})

		t.Run("volume groupings", func(t *testing.T) {
			for _, tc := range []struct{ group, want string }{
				{"assignee", "alice:2/1/0/2 bob:1/2/1/0 carol:1/1/0/0 (none):6/3/0/3"},
				{"business_line", "ecommerce:2/1/0/2 live:1/2/1/0 (none):7/4/0/3"},
				{"kind", "billing_inquiry:3/1/0/3 cancellation:2/1/0/1 payment_failure:3/2/0/1 refund_request:1/2/1/0 trial_conversion:1/1/0/0"},
				{"channel", "chat:2/2/0/1 email:1/1/1/1 in_app:2/1/0/1 phone:1/0/0/1 stripe:4/3/0/1"},
			} {
				r := run(t, st, reports.Query{Report: reports.Volume, Interval: reports.Week, GroupBy: tc.group}).(*reports.VolumeReport)
				eq(t, tc.group, vol(r.Totals), tc.want)
			}
		})

		t.Run("resolution", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Resolution, Interval: reports.Week}).(*reports.ResolutionReport)
			// First responses: C10 1800 s, C7 3600, C9 88200, C2 219600, C1
			// 237600 (business: C1 7200, C9 30600, C2 72000 — support only).
			// Resolutions: C4 and C7 172800, C2 302400, C6 345600, C1
			// 410400, B and C3 518400 (business: C1 36000, C2 97200, B 115200).
			eq(t, "totals", res(r.Totals[0]),
				"all fr 5 88200/230400 biz 30600/63720 met 4 80% | res 7 345600/518400 biz 97200/111600 met 5 71.4% | breaches 3/1")
			eq(t, "week 1", res(r.Buckets[0].Groups[0]),
				"all fr 2 111600/198000 biz 72000/72000 met 2 100% | res 4 324000/466560 biz 106200/113400 met 3 75% | breaches 2/1")
		})

		t.Run("resolution by team", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Resolution, Interval: reports.Month, GroupBy: "team"}).(*reports.ResolutionReport)
			var got []string
			for _, g := range r.Totals {
				got = append(got, res(g))
			}
			eq(t, "teams", got, []string{
				"billing_support fr 1 3600/3600 biz -/- met 1 100% | res 4 259200/466560 biz -/- met 3 75% | breaches 1/1",
				"payments fr 1 1800/1800 biz -/- met 1 100% | res 0 -/- biz -/- met 0 -% | breaches 0/0",
				"support fr 3 219600/234000 biz 30600/63720 met 2 66.7% | res 3 410400/496800 biz 97200/111600 met 2 66.7% | breaches 2/0",
			})
		})

		t.Run("team by agent", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.TeamWork, GroupBy: "agent"}).(*reports.TeamReport)
			var got []string
			for _, g := range r.Groups {
				got = append(got, team(g))
			}
			eq(t, "agents", got, []string{
				"alice handled 1 actions 2/0 approvals asked 1 given 0 rejected 0 fr 2/1 50% res 1 100% reopened 0 0%",
				"bob handled 2 actions 1/1 approvals asked 1 given 0 rejected 0 fr 1/1 100% res 1 50% reopened 1 50%",
				"carol handled 1 actions 0/0 approvals asked 0 given 0 rejected 0 fr 1/1 100% res 1 100% reopened 0 0%",
				"dave handled 0 actions 0/0 approvals asked 0 given 1 rejected 1 fr 0/0 -% res 0 -% reopened 0 -%",
				"erin handled 0 actions 0/0 approvals asked 0 given 1 rejected 0 fr 0/0 -% res 0 -% reopened 0 -%",
				"(none) handled 3 actions 0/0 approvals asked 0 given 0 rejected 0 fr 1/1 100% res 2 66.7% reopened 0 0%",
			})
			eq(t, "totals", team(r.Totals),
				"all handled 7 actions 3/1 approvals asked 2 given 2 rejected 1 fr 5/4 80% res 5 71.4% reopened 1 14.3%")
		})

		t.Run("team by team", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.TeamWork, GroupBy: "team"}).(*reports.TeamReport)
			var got []string
			for _, g := range r.Groups {
				got = append(got, team(g))
			}
			eq(t, "teams", got, []string{
				"billing_support handled 4 actions 1/0 approvals asked 1 given 0 rejected 1 fr 1/1 100% res 3 75% reopened 0 0%",
				"payments handled 0 actions 0/0 approvals asked 0 given 0 rejected 0 fr 1/1 100% res 0 -% reopened 0 -%",
				"support handled 3 actions 2/1 approvals asked 1 given 2 rejected 0 fr 3/2 66.7% res 2 66.7% reopened 1 33.3%",
			})
		})

		t.Run("recovery", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Recovery}).(*reports.RecoveryReport)
			eq(t, "renewals", r.FailedRenewals, reports.Outcomes{"recovered": 1, "churned": 1, "written_off": 0, "dismissed": 0})
			eq(t, "revenue", r.RecoveredRevenue, reports.Money{"usd": 4900})
			eq(t, "recovery rate", p(r.RecoveryRatePct), "50")
			eq(t, "trials", r.TrialConversions, reports.Outcomes{"converted": 1, "lost": 0, "dismissed": 0})
			eq(t, "conversion", p(r.ConversionRatePct), "100")
			eq(t, "cancellations", r.Cancellations, reports.Outcomes{"retained": 1, "canceled": 0})
			eq(t, "saved", r.SavedByOffer, int64(1))
			eq(t, "refunds", r.Refunds, []reports.RefundReason{
				{Reason: "requested_by_customer", Currency: "usd", Count: 2, Amount: 1500},
				{Reason: "duplicate", Currency: "eur", Count: 1, Amount: 700},
			})
		})

		t.Run("root causes", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.RootCauses}).(*reports.RootCauseReport)
			eq(t, "previous from", r.PreviousFrom, feb(16, 0, 0))
			eq(t, "decline codes", causes(r.DeclineCodes), "card_declined:2/0/+2 insufficient_funds:1/1/+0 (none):1/0/+1 expired_card:0/1/-1")
			eq(t, "refund reasons", causes(r.RefundReasons), "requested_by_customer:2/0/+2 duplicate:1/1/+0 fraudulent:1/0/+1")
			eq(t, "dispute reasons", causes(r.DisputeReasons), "fraudulent:2/0/+2 product_not_received:0/1/-1")
			eq(t, "escalation teams", causes(r.EscalationTeams), "payments:1/1/+0 finance:0/1/-1")
			eq(t, "escalation reasons", causes(r.EscalationReasons), "card network outage:1/1/+0 refund over limit:0/1/-1")
			eq(t, "tags", causes(r.Tags), "double_charge:2/0/+2 vip:1/2/-1")
		})

		t.Run("disputes reuse the dispute statistics", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Disputes, GroupBy: "reason"}).(*reports.DisputeReport)
			want, err := disputes.NewStatsReader(d, disputes.DefaultPolicy(), nil, nil).Stats(context.Background(),
				disputes.StatsQuery{From: from, To: to, GroupBy: "reason"})
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "stats", r.Stats, want)
			eq(t, "count", r.Totals.Count, int64(2))
			eq(t, "won/lost", []int64{r.Totals.Won, r.Totals.Lost}, []int64{1, 1})
		})

		t.Run("rows", func(t *testing.T) {
			r := run(t, st, reports.Query{Report: reports.Volume, Interval: reports.Week, GroupBy: "team"})
			rows := r.Rows()
			// 2 weeks × 3 teams × 4 metrics, and 3 × 4 totals.
			eq(t, "rows", len(rows), 2*3*4+3*4)
			eq(t, "first", rows[0], reports.Row{Report: "volume", Section: "bucket", BucketStart: "2026-03-02T00:00:00Z",
				BucketEnd: "2026-03-09T00:00:00Z", Group: "billing_support", Metric: "opened", Value: "4"})
			last := rows[len(rows)-1]
			eq(t, "last", last, reports.Row{Report: "volume", Section: "totals", Group: "support", Metric: "backlog", Value: "2"})
			for _, n := range reports.Names() {
				q := reports.Query{Report: n, GroupBy: reports.DefaultGroupBy(n)}
				if len(run(t, st, q).Rows()) == 0 {
					t.Errorf("%s has no rows", n)
				}
			}
		})
	})
}

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 3, 15, 13, 30, 0, 0, time.UTC)
	q, err := reports.ParseQuery(reports.Params{Name: "volume"}, now)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "default", q, reports.Query{Report: reports.Volume, From: time.Date(2026, 2, 14, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 3, 16, 0, 0, 0, 0, time.UTC), Interval: reports.Day})
	q, _ = reports.ParseQuery(reports.Params{Name: "team"}, now)
	eq(t, "team default group", q.GroupBy, "agent")
	q, _ = reports.ParseQuery(reports.Params{Name: "disputes"}, now)
	eq(t, "disputes default group", q.GroupBy, "reason")
	q, err = reports.ParseQuery(reports.Params{Name: "resolution", From: "2026-03-02", To: "2026-03-16T00:00:00Z", Interval: "week",
		GroupBy: "team", GroupBySet: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "explicit", q, reports.Query{Report: reports.Resolution, From: from, To: to, Interval: reports.Week, GroupBy: "team"})
	q, _ = reports.ParseQuery(reports.Params{Name: "volume", From: "2026-01-01"}, now)
	eq(t, "from alone keeps the length", q.To, time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC))

	for _, tc := range []struct {
		p    reports.Params
		kind errs.Kind
		code string
	}{
		{reports.Params{Name: "nope"}, errs.ENOTFOUND, "unknown_report"},
		{reports.Params{Name: "volume", TZ: "Mars/Olympus"}, errs.EINVALID, "invalid_tz"},
		{reports.Params{Name: "volume", TZ: "Local"}, errs.EINVALID, "invalid_tz"},
		{reports.Params{Name: "volume", Interval: "hour"}, errs.EINVALID, "invalid_interval"},
		{reports.Params{Name: "volume", GroupBy: "priority", GroupBySet: true}, errs.EINVALID, "invalid_group_by"},
		{reports.Params{Name: "team", GroupBy: "kind", GroupBySet: true}, errs.EINVALID, "invalid_group_by"},
		{reports.Params{Name: "team", GroupBy: "", GroupBySet: true}, errs.EINVALID, "invalid_group_by"},
		{reports.Params{Name: "recovery", GroupBy: "team", GroupBySet: true}, errs.EINVALID, "invalid_group_by"},
		{reports.Params{Name: "volume", From: "yesterday"}, errs.EINVALID, "invalid_from"},
		{reports.Params{Name: "volume", To: "03/16/2026"}, errs.EINVALID, "invalid_to"},
		{reports.Params{Name: "volume", From: "2026-03-16", To: "2026-03-16"}, errs.EINVALID, "invalid_range"},
		{reports.Params{Name: "volume", From: "2020-01-01", To: "2026-03-16"}, errs.EINVALID, "invalid_range"},
		{reports.Params{Name: "volume", From: "2025-01-01", To: "2026-03-16"}, errs.EINVALID, "invalid_range"}, // 439 days
	} {
		_, err := reports.ParseQuery(tc.p, now)
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != tc.kind || e.Code != tc.code {
			t.Errorf("%+v: got %v, want %s %s", tc.p, err, tc.kind, tc.code)
		}
	}
	if _, err := reports.ParseQuery(reports.Params{Name: "volume", From: "2025-01-01", To: "2026-03-16", Interval: "week"}, now); err != nil {
		t.Errorf("439 days by week: %v", err)
	}
}

func TestBuckets(t *testing.T) {
	// Wednesday 4 March 12:00 to Tuesday 17 March: ISO weeks start on Monday.
	bs := reports.Buckets(day(4, 12, 0), day(17, 0, 0), reports.Week)
	eq(t, "weeks", bs, []reports.Bucket{{Start: day(4, 12, 0), End: day(9, 0, 0)}, {Start: day(9, 0, 0), End: day(16, 0, 0)},
		{Start: day(16, 0, 0), End: day(17, 0, 0)}})
	// Dublin springs forward on Sunday 29 March 2026: that day has 23 hours.
	dublin, _ := time.LoadLocation("Europe/Dublin")
	bs = reports.BucketsIn(time.Date(2026, 3, 28, 0, 0, 0, 0, dublin), time.Date(2026, 3, 31, 0, 0, 0, 0, dublin), reports.Day, dublin)
	eq(t, "dublin days", len(bs), 3)
	eq(t, "short day", bs[1].End.Sub(bs[1].Start), 23*time.Hour)
	eq(t, "utc start of 30 March", bs[2].Start.UTC(), time.Date(2026, 3, 29, 23, 0, 0, 0, time.UTC))
	bs = reports.Buckets(time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC), reports.Month)
	eq(t, "months", len(bs), 3)
	eq(t, "january", bs[1], reports.Bucket{Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)})
}
