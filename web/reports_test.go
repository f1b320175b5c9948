package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/reports"
)

// The Reports page: a supervisor picks a report and gets the chart, the
// table and a CSV link that downloads; an agent is refused and has no nav
// link; bad parameters are shown with the API's codes; the page stays
// small and has no inline script or style.
func TestReportsPage(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnvWith(t, d, func(o *Options) {
			svc, err := reports.NewService(reports.NewStore(d, cases.DefaultSLAPolicy(),
				disputes.NewStatsReader(d, disputes.DefaultPolicy(), o.Clock, nil)), o.Clock, nil)
			if err != nil {
				t.Fatal(err)
			}
			o.Reports = svc
		})
		sup := en.user("sup@example.com", "Sup", auth.RoleSupervisor)
		en.user("agent@example.com", "Agent", auth.RoleAgent)
		openCase(t, en, sup, "First")
		second := openCase(t, en, sup, "Second")
		en.clock.Advance(time.Hour)
		if _, err := en.cases.Transition(context.Background(), sup, second.ID, cases.TransitionRequest{Event: "decline"}); err != nil {
			t.Fatal(err)
		}
		b := en.browser()
		b.mustLogin("sup@example.com")

		p := b.get("/reports")
		want(t, p, http.StatusOK, `id="nav-reports"`, `<svg`, `class="bar"`, `id="report-table"`, `id="download-csv"`,
			`<option value="volume" selected>`)
		if strings.Contains(p.body, "style=") || strings.Contains(p.body, "<script>") {
			t.Errorf("inline style or script on the page")
		}
		// The table's totals line: 2 opened, 1 closed, 1 in the backlog.
		if !strings.Contains(p.body, `<td>totals</td><td></td><td>all</td><td class="num">2</td><td class="num">1</td><td class="num">0</td><td class="num">1</td>`) {
			t.Errorf("no totals line 2/1/0/1 in\n%s", p.body)
		}

		p = b.get("/reports?report=team&group_by=team&from=2026-11-01&to=2026-12-01")
		want(t, p, http.StatusOK, `<option value="team" selected>`, `handled by team`, `<text class="axis" x="144.0" y="22.0" text-anchor="end">support</text>`)

		p = b.get("/reports/export?report=volume&interval=week")
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("export: %d %s", p.status, p.header.Get("Content-Type"))
		}
		recs, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
		if err != nil || strings.Join(recs[0], ",") != "report,section,bucket_start,bucket_end,group,metric,value" {
			t.Fatalf("csv: %v %v", err, recs)
		}

		// A year by day: 366 buckets' rows stay in the CSV; the page stays small.
		p = b.get("/reports?report=resolution&interval=day&from=2025-11-21&to=2026-11-21&group_by=kind")
		want(t, p, http.StatusOK, `id="omitted"`)
		if len(p.body) > 200_000 {
			t.Errorf("page is %d bytes", len(p.body))
		}

		want(t, b.get("/reports?report=volume&interval=week&tz=Asia/Tokyo&from=2026-11-02&to=2026-11-23"), http.StatusOK,
			`(Asia/Tokyo buckets)`, `<td>bucket</td><td>2026-11-02</td>`, `tz=Asia%2FTokyo`)
		want(t, b.get("/reports?report=volume&tz=Nowhere/Land"), http.StatusBadRequest, `data-code="invalid_tz"`)
		want(t, b.get("/reports?report=nope"), http.StatusNotFound, `data-code="unknown_report"`)
		want(t, b.get("/reports?report=volume&group_by=priority"), http.StatusBadRequest, `data-code="invalid_group_by"`)
		want(t, b.get("/reports?report=volume&from=yesterday"), http.StatusBadRequest, `data-code="invalid_from"`)

		a := en.browser()
		a.mustLogin("agent@example.com")
		want(t, a.get("/reports"), http.StatusForbidden)
		want(t, a.get("/reports/export"), http.StatusForbidden)
		if strings.Contains(a.get("/").body, `id="nav-reports"`) {
			t.Errorf("an agent sees the Reports link")
		}
	})
}
