package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/export"
	"github.com/recourse-hq/recourse/reports"
)

// Console report page bounds: a table shows at most maxReportCells cells
// (the bucket rows of a long, finely grouped report are in the CSV), the
// chart at most maxChartBars bars.
const (
	maxReportCells = 3000
	maxChartBars   = 40
)

// reportChart says what a report's chart draws: for bucketed reports the
// bars are Bars summed over the groups of each bucket and the line is
// Line; for the others one bar per group of Section, metric Bars.
var reportCharts = map[reports.Name]struct{ Section, Bars, Line string }{
	reports.Volume:     {"bucket", "opened", "backlog"},
	reports.Resolution: {"bucket", "resolved", "first_responses"},
	reports.TeamWork:   {"group", "handled", ""},
	reports.Recovery:   {"failed_renewals", "cases", ""},
	reports.RootCauses: {"decline_codes", "count", ""},
	reports.Disputes:   {"group", "count", ""},
}

type reportsPage struct {
	page
	Reports   []reports.Name
	Intervals []reports.Interval
	GroupBys  []string // every grouping of any report, for the picker
	Form      reports.Params
	Query     *reports.Query
	Chart     *svgChart
	Table     *reportTable
	Omitted   int // bucket rows left out of the table (in the CSV)
	CSV       string
	Scope     string // the user's scope the figures are limited to; "" unrestricted
}

// reportTable is a report's rows pivoted: one line per (section, bucket,
// group), one column per metric.
type reportTable struct {
	Metrics []string
	Lines   []reportLine
}

type reportLine struct {
	Section, Bucket, Group string
	Values                 []string
}

// svgChart is the geometry of a server-rendered bar chart (with an
// optional line), in a 720×240 viewBox.
type svgChart struct {
	Caption   string
	BarLabel  string
	LineLabel string
	Bars      []svgBar
	Line      string // polyline points
	Max       string
	Width     int
	Height    int
}

type svgBar struct {
	X, Y, W, H  float64
	Label, Tip  string
	LabelX      float64
	ShowLabel   bool
	Horizontal  bool
	ValueLabel  string
	ValueLabelX float64
	TextY       float64
}

func (con *Console) reportsAllowed(c echo.Context) (bool, error) {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermReportsRead) {
		return false, con.renderError(c, http.StatusForbidden, "Your role may not read reports.")
	}
	if con.opt.Reports == nil {
		return false, con.renderError(c, http.StatusServiceUnavailable, "Reports are not available on this server.")
	}
	return true, nil
}

func reportParams(c echo.Context) reports.Params {
	name := c.QueryParam("report")
	if name == "" {
		name = string(reports.Volume)
	}
	gb := c.QueryParam("group_by")
	_, set := c.QueryParams()["group_by"]
	if set && gb == "" && reports.DefaultGroupBy(reports.Name(name)) != "" {
		set = false // the picker's "none" on a report that always groups: its default
	}
	return reports.Params{Name: name, From: c.QueryParam("from"), To: c.QueryParam("to"), Interval: c.QueryParam("interval"),
		GroupBy: gb, GroupBySet: set, TZ: c.QueryParam("tz")}
}

// reportsPage is GET /reports: the report picker, the form, a chart and
// the table of the report reports.Service answers (the API's), and a link
// to its CSV export.
func (con *Console) reportsPage(c echo.Context) error {
	if ok, err := con.reportsAllowed(c); !ok {
		return err
	}
	pg := reportsPage{page: con.basePage(c, "Reports"), Reports: reports.Names(), Intervals: reports.Intervals()}
	for _, n := range reports.Names() {
		for _, g := range reports.GroupBys(n) {
			if g != "" && !slices.Contains(pg.GroupBys, g) {
				pg.GroupBys = append(pg.GroupBys, g)
			}
		}
	}
	pg.Form = reportParams(c)
	status := http.StatusOK
	q, err := reports.ParseQuery(pg.Form, con.opt.Clock.Now())
	// The signed-in user's scope, explicitly: the report counts only the
	// cases (and customers) in it.
	q.Scope = auth.ScopeOf(c.Request().Context())
	if !q.Scope.Unrestricted() {
		pg.Scope = q.Scope.String()
	}
	var r reports.Report
	if err == nil {
		r, err = con.opt.Reports.Run(c.Request().Context(), q)
	}
	if err != nil {
		e, ok := errs.As(err)
		if !ok || e.Kind == errs.EINTERNAL {
			return con.fail(c, err)
		}
		pg.Error, pg.ErrorCode = inlineError(err)
		status = http.StatusBadRequest
		if e.Kind == errs.ENOTFOUND {
			status = http.StatusNotFound
		}
		return con.render(c, status, "reports.html", pg)
	}
	pg.Query = &q
	if pg.Form.From == "" {
		pg.Form.From = q.From.In(q.Location()).Format(time.DateOnly)
	}
	if pg.Form.To == "" {
		pg.Form.To = q.To.In(q.Location()).Format(time.DateOnly)
	}
	pg.Form.Interval, pg.Form.GroupBy = string(q.Interval), q.GroupBy
	rows := r.Rows()
	pg.Chart = chartOf(q, rows)
	pg.Table, pg.Omitted = tableOf(rows)
	v := url.Values{"report": {string(q.Report)}, "from": {q.From.Format(time.RFC3339)}, "to": {q.To.Format(time.RFC3339)},
		"interval": {string(q.Interval)}, "group_by": {q.GroupBy}, "tz": {q.Location().String()}}
	pg.CSV = "/reports/export?" + v.Encode()
	return con.render(c, status, "reports.html", pg)
}

// reportsExport is GET /reports/export: the report as CSV through the
// API's export (reports.ExportColumns, export.Respond), for the page's
// "Download CSV" link (the API itself wants a token, not a session).
func (con *Console) reportsExport(c echo.Context) error {
	if ok, err := con.reportsAllowed(c); !ok {
		return err
	}
	q, err := reports.ParseQuery(reportParams(c), con.opt.Clock.Now())
	if err != nil {
		return con.fail(c, err)
	}
	q.Scope = auth.ScopeOf(c.Request().Context()) // as the page: the cases in the user's scope
	r, err := con.opt.Reports.Run(c.Request().Context(), q)
	if err != nil {
		return con.fail(c, err)
	}
	rows := r.Rows()
	name := "report-" + string(q.Report) + "-" + q.From.Format("20060102") + "-" + q.To.Format("20060102")
	return export.Respond(c, export.CSV, name, reports.ExportColumns, func(context.Context, string) ([]reports.Row, string, error) {
		return rows, "", nil
	})
}

// tableOf pivots rows; bucket rows are left out (and counted) when the
// table would pass maxReportCells.
func tableOf(rows []reports.Row) (*reportTable, int) {
	t := &reportTable{}
	col := map[string]int{}
	for _, r := range rows {
		if _, ok := col[r.Metric]; !ok {
			col[r.Metric] = len(t.Metrics)
			t.Metrics = append(t.Metrics, r.Metric)
		}
	}
	type key struct{ s, b, g string }
	idx := map[key]int{}
	var lines []reportLine
	for _, r := range rows {
		k := key{r.Section, r.BucketStart, r.Group}
		i, ok := idx[k]
		if !ok {
			i = len(lines)
			idx[k] = i
			b := ""
			if r.BucketStart != "" {
				b = r.BucketStart[:10]
			}
			lines = append(lines, reportLine{Section: r.Section, Bucket: b, Group: r.Group, Values: make([]string, len(t.Metrics))})
		}
		lines[i].Values[col[r.Metric]] = r.Value
	}
	omitted := 0
	if len(lines)*len(t.Metrics) > maxReportCells {
		kept := lines[:0]
		for _, l := range lines {
			if l.Bucket == "" {
				kept = append(kept, l)
			} else {
				omitted++
			}
		}
		lines = kept
	}
	t.Lines = lines
	return t, omitted
}

// chartOf draws the report's chart from its rows (nil when there is
// nothing to draw).
func chartOf(q reports.Query, rows []reports.Row) *svgChart {
	spec := reportCharts[q.Report]
	const w, h, left, bottom, top = 720.0, 240.0, 150.0, 24.0, 8.0
	ch := &svgChart{Width: int(w), Height: int(h), BarLabel: spec.Bars, LineLabel: spec.Line}
	val := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	if reports.Bucketed(q.Report) {
		var order []string
		bars, line := map[string]float64{}, map[string]float64{}
		for _, r := range rows {
			if r.Section != spec.Section {
				continue
			}
			if _, ok := bars[r.BucketStart]; !ok {
				order = append(order, r.BucketStart)
				bars[r.BucketStart], line[r.BucketStart] = 0, 0
			}
			switch r.Metric {
			case spec.Bars:
				bars[r.BucketStart] += val(r.Value)
			case spec.Line:
				line[r.BucketStart] += val(r.Value)
			}
		}
		if len(order) == 0 {
			return nil
		}
		mx := 1.0
		for _, b := range order {
			mx = math.Max(mx, math.Max(bars[b], line[b]))
		}
		ch.Caption = fmt.Sprintf("%s (bars) and %s (line) per %s, all groups", spec.Bars, spec.Line, q.Interval)
		ch.Max = strconv.FormatFloat(mx, 'f', -1, 64)
		const l = 40.0
		slot := (w - l) / float64(len(order))
		every := int(math.Ceil(float64(len(order)) / 10))
		var pts string
		for i, b := range order {
			bh := (h - bottom - top) * bars[b] / mx
			x := l + float64(i)*slot
			ch.Bars = append(ch.Bars, svgBar{X: x + slot*0.1, Y: h - bottom - bh, W: slot * 0.8, H: bh, Label: b[5:10], LabelX: x + slot/2,
				ShowLabel: i%every == 0, Tip: fmt.Sprintf("%s: %s %g, %s %g", b[:10], spec.Bars, bars[b], spec.Line, line[b])})
			pts += fmt.Sprintf("%.1f,%.1f ", x+slot/2, h-bottom-(h-bottom-top)*line[b]/mx)
		}
		ch.Line = pts
		return ch
	}
	type bar struct {
		label string
		v     float64
	}
	var bs []bar
	for _, r := range rows {
		if r.Section == spec.Section && r.Metric == spec.Bars {
			bs = append(bs, bar{r.Group, val(r.Value)})
		}
	}
	if len(bs) == 0 {
		return nil
	}
	if len(bs) > maxChartBars {
		bs = bs[:maxChartBars]
	}
	mx := 1.0
	for _, b := range bs {
		mx = math.Max(mx, b.v)
	}
	ch.Caption = fmt.Sprintf("%s by %s", spec.Bars, groupWord(q, spec.Section))
	ch.Max = strconv.FormatFloat(mx, 'f', -1, 64)
	rowH := 20.0
	ch.Height = int(top + rowH*float64(len(bs)) + 4)
	for i, b := range bs {
		bw := (w - left - 60) * b.v / mx
		y := top + float64(i)*rowH
		ch.Bars = append(ch.Bars, svgBar{X: left, Y: y + 3, W: bw, H: rowH - 6, Label: b.label, LabelX: left - 6, ShowLabel: true,
			Horizontal: true, ValueLabel: strconv.FormatFloat(b.v, 'f', -1, 64), ValueLabelX: left + bw + 4, TextY: y + 14,
			Tip: fmt.Sprintf("%s: %g", b.label, b.v)})
	}
	return ch
}

func groupWord(q reports.Query, section string) string {
	if section == "group" && q.GroupBy != "" {
		return q.GroupBy
	}
	return section
}

func init() {
	// The layout's nav shows Reports to roles that may read them.
	funcs["reportsNav"] = func(p *auth.Principal) bool { return p != nil && auth.Permits(*p, auth.PermReportsRead) }
}
