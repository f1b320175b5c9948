package reports

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Store is the reports' one query layer. It reads only: point it at a read
// replica (RECOURSE_REPORTING_DATABASE_URL) or at the main database.
type Store struct {
	db       *db.DB
	sla      cases.SLAPolicy
	disputes *disputes.StatsReader
}

// NewStore returns the query layer over d. sla gives the teams' calendars
// (business-hours durations); stats, reading the same database, answers
// the disputes report.
func NewStore(d *db.DB, sla cases.SLAPolicy, stats *disputes.StatsReader) *Store {
	return &Store{db: d, sla: sla, disputes: stats}
}

// Run answers q (validated first). The result is one of VolumeReport,
// ResolutionReport, TeamReport, RecoveryReport, RootCauseReport or
// DisputeReport. ENOTFOUND for an unknown report, EINVALID for a bad
// parameter; a database failure is returned wrapped.
func (s *Store) Run(ctx context.Context, q Query) (Report, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	switch q.Report {
	case Volume:
		return report(s.Volume(ctx, q))
	case Resolution:
		return report(s.Resolution(ctx, q))
	case TeamWork:
		return report(s.Team(ctx, q))
	case Recovery:
		return report(s.Recovery(ctx, q))
	case RootCauses:
		return report(s.RootCauses(ctx, q))
	default:
		return report(s.Disputes(ctx, q))
	}
}

// report returns r as a Report, or a nil Report with err (never a nil
// pointer inside a non-nil interface).
func report[T Report](r T, err error) (Report, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}

// bucketSQL returns an SQL expression giving the index of the bucket of bs
// that col falls in (col must already be inside [bs[0].Start,
// bs[len-1].End)): a balanced tree of comparisons, so each row costs
// log2(len(bs)) of them, the same SQL on both dialects.
func bucketSQL(col string, bs []Bucket) (string, []any) {
	var args []any
	var walk func(lo, hi int) string
	walk = func(lo, hi int) string {
		if hi-lo == 1 {
			return strconv.Itoa(lo)
		}
		mid := (lo + hi) / 2
		// In UTC: SQLite compares times as text, in the one UTC format
		// they are stored in.
		args = append(args, bs[mid].Start.UTC())
		cond := "CASE WHEN " + col + " < ? THEN "
		left := walk(lo, mid)
		right := walk(mid, hi)
		return cond + left + " ELSE " + right + " END"
	}
	return walk(0, len(bs)), args
}

// groupSQL is the SQL of a case grouping over the cases table aliased c.
func groupSQL(groupBy string) string {
	col, ok := caseGroupColumns[groupBy]
	if !ok {
		return "'" + AllKey + "'"
	}
	return "COALESCE(c." + col + ", '')"
}

func groupKey(s string) string {
	if s == "" {
		return NoneKey
	}
	return s
}

// inScope returns " AND <cond>" holding for the cases row aliased alias
// in sc, and its arguments; "" for an unrestricted scope.
func inScope(sc auth.Scope, alias string) (string, []any) {
	c, args := sc.CaseSQL(alias)
	if c == "" {
		return "", nil
	}
	return " AND " + c, args
}

// caseInScope is inScope for a row holding a case id in column (actions,
// timeline entries): the case it belongs to is in sc.
func caseInScope(sc auth.Scope, column string) (string, []any) {
	c, args := sc.CaseSQL("sc")
	if c == "" {
		return "", nil
	}
	return " AND EXISTS (SELECT 1 FROM cases sc WHERE sc.id = " + column + " AND " + c + ")", args
}

// customerInScope is inScope for a billing mirror row whose customer is in
// column: the customer has a case in sc (auth.Scope's rule).
func customerInScope(sc auth.Scope, column string) (string, []any) {
	c, args := sc.CustomerSQL(column)
	if c == "" {
		return "", nil
	}
	return " AND " + c, args
}

// mirrorCustomer is the SQL of the customer of a row of billing table: its
// customer_id, or for a refund or dispute that names none, its charge's
// (as billing.Store resolves it when reading one by id).
func mirrorCustomer(table string) string {
	if table == "billing_charges" {
		return table + ".customer_id"
	}
	return "COALESCE(NULLIF(" + table + ".customer_id, ''), (SELECT mc.customer_id FROM billing_charges mc WHERE mc.id = " + table + ".charge_id))"
}

// with returns args followed by more (a fresh slice: args may be shared).
func with(args []any, more ...any) []any {
	return append(append([]any{}, args...), more...)
}

// query runs sql and calls scan for each row.
func (s *Store) query(ctx context.Context, what, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := s.db.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return fmt.Errorf("report %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("report %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("report %s: %w", what, err)
	}
	return nil
}

// concurrently runs fns at once — each query on a connection of its own
// on PostgreSQL; SQLite's one connection takes them in turn — and returns
// the first error. Callers guard what the fns share with a mutex.
func concurrently(fns ...func() error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(fns))
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// countByBucket runs a "bucket, group, count" query and adds each row with add.
func (s *Store) countByBucket(ctx context.Context, what, q string, args []any, add func(b int, g string, n int64)) error {
	return s.query(ctx, what, q, args, func(r *sql.Rows) error {
		var (
			b int
			g string
			n int64
		)
		if err := r.Scan(&b, &g, &n); err != nil {
			return err
		}
		add(b, groupKey(g), n)
		return nil
	})
}

// ---- volume ----

// VolumeGroup is one group's case flow in a bucket (or over the range).
type VolumeGroup struct {
	Key      string `json:"key"`
	Opened   int64  `json:"opened"`
	Closed   int64  `json:"closed"`
	Reopened int64  `json:"reopened"`
	// Backlog is the number of cases open at the end of the bucket (at
	// to, in totals).
	Backlog int64 `json:"backlog"`
}

// GroupedBucket is one interval's groups of a bucketed report.
type GroupedBucket[G any] struct {
	Bucket
	Groups []G `json:"groups"`
}

// VolumeBucket is one interval's groups.
type VolumeBucket = GroupedBucket[VolumeGroup]

// VolumeReport is the case flow: cases opened (created), closed (whose
// close — the last one, for a case closed more than once — falls in the
// bucket), reopened (reopen events) and the backlog at each bucket's end (cases
// created before it and not closed by it; a case reopened and not closed
// again counts as open since it was created).
type VolumeReport struct {
	Header
	Buckets []VolumeBucket `json:"buckets"`
	Totals  []VolumeGroup  `json:"totals"`
}

// Volume answers the volume report.
func (s *Store) Volume(ctx context.Context, q Query) (*VolumeReport, error) {
	bs := BucketsIn(q.From, q.To, q.Interval, q.Location())
	g := groupSQL(q.GroupBy)
	groupBy := "1, 2"
	if q.GroupBy == "" {
		groupBy = "1"
	}
	type cell struct{ opened, closed, reopened int64 }
	cells := make([]map[string]*cell, len(bs))
	for i := range cells {
		cells[i] = map[string]*cell{}
	}
	at := func(b int, k string) *cell {
		c := cells[b][k]
		if c == nil {
			c = &cell{}
			cells[b][k] = c
		}
		return c
	}
	base := map[string]int64{}
	keys := map[string]bool{}
	var mu sync.Mutex // guards cells, base and keys: the four queries run at once
	add := func(f func(c *cell, n int64)) func(b int, k string, n int64) {
		return func(b int, k string, n int64) {
			mu.Lock()
			defer mu.Unlock()
			f(at(b, k), n)
			keys[k] = true
		}
	}
	openedSQL, openedArgs := bucketSQL("c.created_at", bs)
	closedSQL, closedArgs := bucketSQL("c.closed_at", bs)
	reopenedSQL, reopenedArgs := bucketSQL("t.at", bs)
	sc, scArgs := inScope(q.Scope, "c")
	join := " JOIN cases c ON c.id = t.case_id" // only to group by the case's column or limit to a scope
	if q.GroupBy == "" && sc == "" {
		join = ""
	}
	err := concurrently(
		func() error {
			return s.countByBucket(ctx, "volume opened",
				"SELECT "+openedSQL+" AS b, "+g+" AS g, count(*) FROM cases c WHERE c.created_at >= ? AND c.created_at < ?"+sc+" GROUP BY "+groupBy,
				with(openedArgs, append([]any{q.From, q.To}, scArgs...)...), add(func(c *cell, n int64) { c.opened += n }))
		},
		func() error {
			return s.countByBucket(ctx, "volume closed",
				"SELECT "+closedSQL+" AS b, "+g+" AS g, count(*) FROM cases c WHERE c.closed_at >= ? AND c.closed_at < ?"+sc+" GROUP BY "+groupBy,
				with(closedArgs, append([]any{q.From, q.To}, scArgs...)...), add(func(c *cell, n int64) { c.closed += n }))
		},
		func() error {
			return s.countByBucket(ctx, "volume reopened",
				"SELECT "+reopenedSQL+" AS b, "+g+" AS g, count(*) FROM case_timeline t"+join+" WHERE t.type = '"+
					cases.EntryReopened+"' AND t.at >= ? AND t.at < ?"+sc+" GROUP BY "+groupBy,
				with(reopenedArgs, append([]any{q.From, q.To}, scArgs...)...), add(func(c *cell, n int64) { c.reopened += n }))
		},
		func() error {
			// The backlog at from: open cases created before it, and cases
			// created before it that closed at or after it. Two index range
			// scans.
			return s.query(ctx, "volume backlog",
				"SELECT g, count(*) FROM (SELECT "+g+" AS g FROM cases c WHERE c.closed_at IS NULL AND c.created_at < ?"+sc+
					" UNION ALL SELECT "+g+" AS g FROM cases c WHERE c.closed_at >= ? AND c.created_at < ?"+sc+") x GROUP BY g",
				with(with([]any{q.From}, scArgs...), with([]any{q.From, q.From}, scArgs...)...), func(r *sql.Rows) error {
					var k string
					var n int64
					if err := r.Scan(&k, &n); err != nil {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					base[groupKey(k)] += n
					keys[groupKey(k)] = true
					return nil
				})
		})
	if err != nil {
		return nil, err
	}
	order := sortedKeys(keys, q.GroupBy == "")
	out := &VolumeReport{Header: header(q), Buckets: make([]VolumeBucket, len(bs))}
	backlog := base
	totals := map[string]*VolumeGroup{}
	for _, k := range order {
		totals[k] = &VolumeGroup{Key: k}
	}
	for i, b := range bs {
		vb := VolumeBucket{Bucket: b, Groups: make([]VolumeGroup, 0, len(order))}
		for _, k := range order {
			c := cells[i][k]
			if c == nil {
				c = &cell{}
			}
			backlog[k] += c.opened - c.closed
			vb.Groups = append(vb.Groups, VolumeGroup{Key: k, Opened: c.opened, Closed: c.closed, Reopened: c.reopened, Backlog: backlog[k]})
			t := totals[k]
			t.Opened += c.opened
			t.Closed += c.closed
			t.Reopened += c.reopened
			t.Backlog = backlog[k]
		}
		out.Buckets[i] = vb
	}
	for _, k := range order {
		out.Totals = append(out.Totals, *totals[k])
	}
	if out.Totals == nil {
		out.Totals = []VolumeGroup{}
	}
	return out, nil
}

// sortedKeys orders group keys by name, "(none)" last; with no grouping
// there is always the one "all" group.
func sortedKeys(keys map[string]bool, totalsOnly bool) []string {
	if totalsOnly {
		return []string{AllKey}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == NoneKey) != (out[j] == NoneKey) {
			return out[j] == NoneKey
		}
		return out[i] < out[j]
	})
	return out
}

// ---- resolution ----

// Percentiles are the median and 90th percentile of a set of durations in
// seconds, to the millisecond (linear interpolation between ranks, as
// PostgreSQL's percentile_cont); null when the set is empty.
type Percentiles struct {
	P50 *float64 `json:"p50"`
	P90 *float64 `json:"p90"`
}

// ResolutionGroup is one group's response and resolution figures.
type ResolutionGroup struct {
	Key string `json:"key"`
	// FirstResponses are cases whose first response falls in the bucket;
	// their time from creation, around the clock and in the working time
	// of the case team's calendar (null without a calendar).
	FirstResponses               int64       `json:"first_responses"`
	FirstResponseSeconds         Percentiles `json:"first_response_seconds"`
	FirstResponseBusinessSecs    Percentiles `json:"first_response_business_seconds"`
	FirstResponseMet             int64       `json:"first_response_met"`
	FirstResponseAttainmentPct   *float64    `json:"first_response_attainment_pct"`
	Resolved                     int64       `json:"resolved"`
	ResolutionSeconds            Percentiles `json:"resolution_seconds"`
	ResolutionBusinessSecs       Percentiles `json:"resolution_business_seconds"`
	ResolutionMet                int64       `json:"resolution_met"`
	ResolutionAttainmentPct      *float64    `json:"resolution_attainment_pct"`
	FirstResponseBreaches        int64       `json:"first_response_breaches"`
	ResolutionBreaches           int64       `json:"resolution_breaches"`
	firstWall, firstBiz, resWall []float64
	resBiz                       []float64
}

// ResolutionBucket is one interval's groups.
type ResolutionBucket = GroupedBucket[ResolutionGroup]

// ResolutionReport is how fast cases are answered and resolved, and how
// often within their SLA. A first response is met when it came by its due
// time and was never marked breached; a resolution likewise. Breaches are
// the SLA breaches marked in the bucket.
type ResolutionReport struct {
	Header
	Buckets []ResolutionBucket `json:"buckets"`
	Totals  []ResolutionGroup  `json:"totals"`
}

// Resolution answers the resolution report.
func (s *Store) Resolution(ctx context.Context, q Query) (*ResolutionReport, error) {
	bs := BucketsIn(q.From, q.To, q.Interval, q.Location())
	g := groupSQL(q.GroupBy)
	groups := make([]map[string]*ResolutionGroup, len(bs))
	for i := range groups {
		groups[i] = map[string]*ResolutionGroup{}
	}
	totals := map[string]*ResolutionGroup{}
	at := func(m map[string]*ResolutionGroup, k string) *ResolutionGroup {
		r := m[k]
		if r == nil {
			r = &ResolutionGroup{Key: k}
			m[k] = r
		}
		return r
	}
	// Business hours: one WorkMeter per team calendar over the year before
	// the range and the range (a case created earlier is measured by
	// Calendar.Between itself).
	meters := map[string]*cases.WorkMeter{}
	meterOf := func(team string) *cases.WorkMeter {
		m, ok := meters[team]
		if !ok {
			if c := s.sla.TeamCalendar(cases.Team(team)); c != nil {
				m = c.Meter(q.From.AddDate(-1, 0, 0), q.To)
			}
			meters[team] = m
		}
		return m
	}
	var mu sync.Mutex // guards groups, totals and meters: the three queries run at once
	// Each row is measured as it is read: nothing per case is kept but
	// its two durations.
	scan := func(first bool) func(r *sql.Rows) error {
		var (
			group, team        string
			created, when, due time.Time
			breachedAt         sql.NullTime
		)
		return func(r *sql.Rows) error {
			if err := r.Scan(&group, &team, &created, &when, &due, &breachedAt); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			k := groupKey(group)
			wall := when.Sub(created).Seconds()
			met := !breachedAt.Valid && !when.After(due)
			biz, hasBiz := 0.0, false
			if m := meterOf(team); m != nil {
				biz, hasBiz = m.Between(created, when).Seconds(), true
			}
			for _, gr := range []*ResolutionGroup{at(groups[bucketOf(bs, when)], k), at(totals, k)} {
				if first {
					gr.FirstResponses++
					gr.firstWall = append(gr.firstWall, wall)
					if hasBiz {
						gr.firstBiz = append(gr.firstBiz, biz)
					}
					if met {
						gr.FirstResponseMet++
					}
				} else {
					gr.Resolved++
					gr.resWall = append(gr.resWall, wall)
					if hasBiz {
						gr.resBiz = append(gr.resBiz, biz)
					}
					if met {
						gr.ResolutionMet++
					}
				}
			}
			return nil
		}
	}
	// Breaches are the sweeper's sla_breached entries (a reopened case's
	// columns start afresh; its timeline keeps every breach).
	bexpr, bargs := bucketSQL("t.at", bs)
	sc, scArgs := inScope(q.Scope, "c")
	groupBy, join := "1, 2", " JOIN cases c ON c.id = t.case_id"
	if q.GroupBy == "" {
		groupBy = "1"
		if sc == "" {
			join = ""
		}
	}
	err := concurrently(
		func() error {
			return s.query(ctx, "resolution first responses",
				"SELECT "+g+", c.team, c.created_at, c.first_responded_at, c.first_response_due, c.first_response_breached_at FROM cases c"+
					" WHERE c.first_responded_at >= ? AND c.first_responded_at < ?"+sc, with([]any{q.From, q.To}, scArgs...), scan(true))
		},
		func() error {
			return s.query(ctx, "resolution closes",
				"SELECT "+g+", c.team, c.created_at, c.closed_at, c.resolution_due, c.resolution_breached_at FROM cases c"+
					" WHERE c.closed_at >= ? AND c.closed_at < ?"+sc, with([]any{q.From, q.To}, scArgs...), scan(false))
		},
		func() error {
			return s.query(ctx, "resolution breaches",
				"SELECT "+bexpr+" AS b, "+g+" AS g, sum(CASE WHEN t.summary LIKE ? THEN 1 ELSE 0 END), sum(CASE WHEN t.summary LIKE ? THEN 1 ELSE 0 END)"+
					" FROM case_timeline t"+join+" WHERE t.type = '"+cases.EntrySLABreached+"' AND t.at >= ? AND t.at < ?"+sc+" GROUP BY "+groupBy,
				with(bargs, append([]any{"%" + cases.BreachFirstResponse + "%", "%" + cases.BreachResolution + "%", q.From, q.To}, scArgs...)...), func(r *sql.Rows) error {
					var (
						b       int
						k       string
						fr, res int64
					)
					if err := r.Scan(&b, &k, &fr, &res); err != nil {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					for _, gr := range []*ResolutionGroup{at(groups[b], groupKey(k)), at(totals, groupKey(k))} {
						gr.FirstResponseBreaches += fr
						gr.ResolutionBreaches += res
					}
					return nil
				})
		})
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range totals {
		keys[k] = true
	}
	order := sortedKeys(keys, q.GroupBy == "")
	out := &ResolutionReport{Header: header(q), Buckets: make([]ResolutionBucket, len(bs)), Totals: make([]ResolutionGroup, 0, len(order))}
	for i, b := range bs {
		rb := ResolutionBucket{Bucket: b, Groups: make([]ResolutionGroup, 0, len(order))}
		for _, k := range order {
			rb.Groups = append(rb.Groups, at(groups[i], k).finish())
		}
		out.Buckets[i] = rb
	}
	for _, k := range order {
		out.Totals = append(out.Totals, at(totals, k).finish())
	}
	return out, nil
}

func (g *ResolutionGroup) finish() ResolutionGroup {
	out := *g
	out.FirstResponseSeconds = percentiles(g.firstWall)
	out.FirstResponseBusinessSecs = percentiles(g.firstBiz)
	out.ResolutionSeconds = percentiles(g.resWall)
	out.ResolutionBusinessSecs = percentiles(g.resBiz)
	out.FirstResponseAttainmentPct = pct(g.FirstResponseMet, g.FirstResponses)
	out.ResolutionAttainmentPct = pct(g.ResolutionMet, g.Resolved)
	out.firstWall, out.firstBiz, out.resWall, out.resBiz = nil, nil, nil, nil
	return out
}

// bucketOf is the index of the bucket holding t (t inside the range).
func bucketOf(bs []Bucket, t time.Time) int {
	i := sort.Search(len(bs), func(i int) bool { return bs[i].End.After(t) })
	if i >= len(bs) {
		i = len(bs) - 1
	}
	return i
}

// percentiles returns p50 and p90 of vs (sorted in place).
func percentiles(vs []float64) Percentiles {
	if len(vs) == 0 {
		return Percentiles{}
	}
	sort.Float64s(vs)
	ms := func(v float64) *float64 { return f64(math.Round(v*1000) / 1000) } // to the millisecond
	return Percentiles{P50: ms(percentile(vs, 0.5)), P90: ms(percentile(vs, 0.9))}
}

// percentile is percentile_cont(p) of sorted vs.
func percentile(vs []float64, p float64) float64 {
	pos := p * float64(len(vs)-1)
	lo := int(pos)
	if lo >= len(vs)-1 {
		return vs[len(vs)-1]
	}
	frac := pos - float64(lo)
	return vs[lo] + (vs[lo+1]-vs[lo])*frac
}

func f64(v float64) *float64 { return &v }

// pct is 100·a/b rounded to one decimal, null when b is 0.
func pct(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(int64(1000*float64(a)/float64(b)+0.5)) / 10
	return &v
}

// ---- team ----

// TeamGroup is one agent's (or team's) work over the range.
type TeamGroup struct {
	Key string `json:"key"`
	// Handled: cases closed in the range while assigned to the agent (in
	// the team).
	Handled int64 `json:"handled"`
	// Actions requested (actions table) and how many succeeded.
	Actions          int64 `json:"actions"`
	ActionsSucceeded int64 `json:"actions_succeeded"`
	// ApprovalsAsked: actions requested that needed a second person's
	// approval. ApprovalsGiven / ApprovalsRejected: decisions made.
	ApprovalsAsked    int64 `json:"approvals_asked"`
	ApprovalsGiven    int64 `json:"approvals_given"`
	ApprovalsRejected int64 `json:"approvals_rejected"`
	// First responses and resolutions in the range within their SLA.
	FirstResponses             int64    `json:"first_responses"`
	FirstResponseMet           int64    `json:"first_response_met"`
	FirstResponseAttainmentPct *float64 `json:"first_response_attainment_pct"`
	ResolutionMet              int64    `json:"resolution_met"`
	ResolutionAttainmentPct    *float64 `json:"resolution_attainment_pct"`
	// Reopened: reopen events in the range of the agent's (team's) cases;
	// ReopenRatePct is Reopened per Handled.
	Reopened      int64    `json:"reopened"`
	ReopenRatePct *float64 `json:"reopen_rate_pct"`
}

// TeamReport is per-agent (group_by=agent, the cases' assignee and the
// actions' requester/decider) or per-team work over the range.
type TeamReport struct {
	Header
	Groups []TeamGroup `json:"groups"`
	Totals TeamGroup   `json:"totals"`
}

// Team answers the team report.
func (s *Store) Team(ctx context.Context, q Query) (*TeamReport, error) {
	byTeam := q.GroupBy == "team"
	caseKey := "COALESCE(c.assignee, '')"
	if byTeam {
		caseKey = "c.team"
	}
	groups := map[string]*TeamGroup{}
	var mu sync.Mutex // guards groups: the five queries run at once
	at := func(k string) *TeamGroup {
		k = groupKey(k)
		g := groups[k]
		if g == nil {
			g = &TeamGroup{Key: k}
			groups[k] = g
		}
		return g
	}
	counts := func(what, q string, args []any, add func(g *TeamGroup, ns []int64)) error {
		return s.query(ctx, what, q, args, func(r *sql.Rows) error {
			cols, _ := r.Columns()
			var k string
			ns := make([]int64, len(cols)-1)
			dest := []any{&k}
			for i := range ns {
				dest = append(dest, &ns[i])
			}
			if err := r.Scan(dest...); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			add(at(k), ns)
			return nil
		})
	}
	asked := "CASE WHEN a.approval_reasons IS NOT NULL AND a.approval_reasons NOT IN ('', '[]', 'null') THEN 1 ELSE 0 END"
	requester, decider, from := "a.requested_by", "a.decided_by", " FROM actions a"
	if byTeam {
		// The case's team by primary key, row by row: a month's actions
		// are a few thousand lookups, where a join would read every case.
		caseTeam := "(SELECT c.team FROM cases c WHERE c.id = a.case_id)"
		requester, decider = caseTeam, caseTeam
	}
	sc, scArgs := inScope(q.Scope, "c")
	asc, ascArgs := caseInScope(q.Scope, "a.case_id")
	err := concurrently(
		func() error {
			return counts("team handled", "SELECT "+caseKey+", count(*),"+
				" sum(CASE WHEN c.resolution_breached_at IS NULL AND c.closed_at <= c.resolution_due THEN 1 ELSE 0 END)"+
				" FROM cases c WHERE c.closed_at >= ? AND c.closed_at < ?"+sc+" GROUP BY 1", with([]any{q.From, q.To}, scArgs...),
				func(g *TeamGroup, ns []int64) { g.Handled += ns[0]; g.ResolutionMet += ns[1] })
		},
		func() error {
			return counts("team first responses", "SELECT "+caseKey+", count(*),"+
				" sum(CASE WHEN c.first_response_breached_at IS NULL AND c.first_responded_at <= c.first_response_due THEN 1 ELSE 0 END)"+
				" FROM cases c WHERE c.first_responded_at >= ? AND c.first_responded_at < ?"+sc+" GROUP BY 1", with([]any{q.From, q.To}, scArgs...),
				func(g *TeamGroup, ns []int64) { g.FirstResponses += ns[0]; g.FirstResponseMet += ns[1] })
		},
		func() error {
			return counts("team reopened", "SELECT "+caseKey+", count(*) FROM case_timeline t JOIN cases c ON c.id = t.case_id"+
				" WHERE t.type = '"+cases.EntryReopened+"' AND t.at >= ? AND t.at < ?"+sc+" GROUP BY 1", with([]any{q.From, q.To}, scArgs...),
				func(g *TeamGroup, ns []int64) { g.Reopened += ns[0] })
		},
		func() error {
			return counts("team actions", "SELECT "+requester+", count(*), sum(CASE WHEN a.status = 'succeeded' THEN 1 ELSE 0 END), sum("+asked+")"+
				from+" WHERE a.created_at >= ? AND a.created_at < ?"+asc+" GROUP BY 1", with([]any{q.From, q.To}, ascArgs...),
				func(g *TeamGroup, ns []int64) {
					g.Actions += ns[0]
					g.ActionsSucceeded += ns[1]
					g.ApprovalsAsked += ns[2]
				})
		},
		func() error {
			return counts("team approvals", "SELECT "+decider+", sum(CASE WHEN a.status = 'rejected' THEN 0 ELSE 1 END),"+
				" sum(CASE WHEN a.status = 'rejected' THEN 1 ELSE 0 END)"+from+
				" WHERE a.decided_at >= ? AND a.decided_at < ? AND a.decided_by IS NOT NULL"+asc+" GROUP BY 1", with([]any{q.From, q.To}, ascArgs...),
				func(g *TeamGroup, ns []int64) { g.ApprovalsGiven += ns[0]; g.ApprovalsRejected += ns[1] })
		},
	)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range groups {
		keys[k] = true
	}
	out := &TeamReport{Header: header(q), Groups: []TeamGroup{}, Totals: TeamGroup{Key: AllKey}}
	t := &out.Totals
	for _, k := range sortedKeys(keys, false) {
		g := groups[k]
		t.Handled += g.Handled
		t.Actions += g.Actions
		t.ActionsSucceeded += g.ActionsSucceeded
		t.ApprovalsAsked += g.ApprovalsAsked
		t.ApprovalsGiven += g.ApprovalsGiven
		t.ApprovalsRejected += g.ApprovalsRejected
		t.FirstResponses += g.FirstResponses
		t.FirstResponseMet += g.FirstResponseMet
		t.ResolutionMet += g.ResolutionMet
		t.Reopened += g.Reopened
		out.Groups = append(out.Groups, g.finish())
	}
	out.Totals = t.finish()
	return out, nil
}

func (g *TeamGroup) finish() TeamGroup {
	out := *g
	out.FirstResponseAttainmentPct = pct(g.FirstResponseMet, g.FirstResponses)
	out.ResolutionAttainmentPct = pct(g.ResolutionMet, g.Handled)
	out.ReopenRatePct = pct(g.Reopened, g.Handled)
	return out
}

// ---- recovery ----

// Money is an amount per currency, in minor units.
type Money map[string]int64

// Outcomes counts closed cases of one kind by the state they closed in.
type Outcomes map[string]int64

// RefundReason is the succeeded refunds of one reason and currency.
type RefundReason struct {
	Reason   string `json:"reason"`
	Currency string `json:"currency"`
	Count    int64  `json:"count"`
	Amount   int64  `json:"amount"`
}

// RecoveryReport is revenue recovery over the range, by cases closed in it
// (payment failures, trial conversions, cancellations) and refunds created
// in it (succeeded ones).
type RecoveryReport struct {
	Header
	// FailedRenewals: payment_failure cases closed, by outcome (recovered,
	// churned, written_off, dismissed); RecoveredRevenue is the amount of
	// the recovered ones per currency; RecoveryRatePct is recovered per
	// recovered + churned + written off.
	FailedRenewals   Outcomes `json:"failed_renewals"`
	RecoveredRevenue Money    `json:"recovered_revenue"`
	RecoveryRatePct  *float64 `json:"recovery_rate_pct"`
	// TrialConversions: trial_conversion cases closed, by outcome
	// (converted, lost, dismissed); ConversionRatePct is converted per
	// converted + lost.
	TrialConversions  Outcomes `json:"trial_conversions"`
	ConversionRatePct *float64 `json:"conversion_rate_pct"`
	// Cancellations: cancellation cases closed, by outcome (retained,
	// canceled); SavedByOffer are the retained ones that had been offered
	// a retention offer (their timeline passed retention_offered).
	Cancellations Outcomes `json:"cancellations"`
	SavedByOffer  int64    `json:"saved_by_retention_offer"`
	// Refunds: succeeded refunds by reason and currency.
	Refunds []RefundReason `json:"refunds"`
}

// Recovery answers the recovery report.
func (s *Store) Recovery(ctx context.Context, q Query) (*RecoveryReport, error) {
	out := &RecoveryReport{Header: header(q), FailedRenewals: outcomes(cases.KindPaymentFailure), RecoveredRevenue: Money{},
		TrialConversions: outcomes(cases.KindTrialConversion), Cancellations: outcomes(cases.KindCancellation), Refunds: []RefundReason{}}
	sc, scArgs := inScope(q.Scope, "c")
	if err := s.query(ctx, "recovery outcomes",
		"SELECT c.kind, c.state, COALESCE(c.currency, ''), count(*), sum(COALESCE(c.amount, 0)),"+
			" sum(CASE WHEN c.kind = 'cancellation' AND c.state = 'retained' AND EXISTS (SELECT 1 FROM case_timeline t WHERE t.case_id = c.id"+
			" AND t.to_state = 'retention_offered') THEN 1 ELSE 0 END)"+
			" FROM cases c WHERE c.kind IN (?, ?, ?) AND c.closed_at >= ? AND c.closed_at < ?"+sc+" GROUP BY 1, 2, 3",
		with([]any{cases.KindPaymentFailure, cases.KindTrialConversion, cases.KindCancellation, q.From, q.To}, scArgs...), func(r *sql.Rows) error {
			var kind, state, cur string
			var n, amount, offered int64
			if err := r.Scan(&kind, &state, &cur, &n, &amount, &offered); err != nil {
				return err
			}
			switch cases.Kind(kind) {
			case cases.KindPaymentFailure:
				out.FailedRenewals[state] += n
				if state == "recovered" && cur != "" {
					out.RecoveredRevenue[cur] += amount
				}
			case cases.KindTrialConversion:
				out.TrialConversions[state] += n
			case cases.KindCancellation:
				out.Cancellations[state] += n
				if state == "retained" {
					out.SavedByOffer += offered
				}
			}
			return nil
		}); err != nil {
		return nil, err
	}
	fr := out.FailedRenewals
	out.RecoveryRatePct = pct(fr["recovered"], fr["recovered"]+fr["churned"]+fr["written_off"])
	tc := out.TrialConversions
	out.ConversionRatePct = pct(tc["converted"], tc["converted"]+tc["lost"])
	rsc, rscArgs := customerInScope(q.Scope, mirrorCustomer("billing_refunds"))
	if err := s.query(ctx, "recovery refunds",
		"SELECT reason, currency, count(*), sum(amount) FROM billing_refunds WHERE status = 'succeeded' AND created >= ? AND created < ?"+rsc+
			" GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2", with([]any{q.From, q.To}, rscArgs...), func(r *sql.Rows) error {
			var rr RefundReason
			if err := r.Scan(&rr.Reason, &rr.Currency, &rr.Count, &rr.Amount); err != nil {
				return err
			}
			rr.Reason = groupKey(rr.Reason)
			out.Refunds = append(out.Refunds, rr)
			return nil
		}); err != nil {
		return nil, err
	}
	return out, nil
}

// outcomes lists every closed state of kind at zero.
func outcomes(k cases.Kind) Outcomes {
	lc, _ := cases.LifecycleOf(k)
	out := Outcomes{}
	for st := range lc.Closed {
		out[st] = 0
	}
	return out
}

// ---- root causes ----

// Cause is one key's count in the range and in the equal-length range just
// before it.
type Cause struct {
	Key      string `json:"key"`
	Count    int64  `json:"count"`
	Previous int64  `json:"previous"`
	Delta    int64  `json:"delta"`
}

// RootCauseReport lists the top keys (up to 20 each, by count in the range)
// behind the desk's work.
type RootCauseReport struct {
	Header
	PreviousFrom time.Time `json:"previous_from"`
	// DeclineCodes: failed charges by failure code; RefundReasons: refunds
	// by reason; DisputeReasons: disputes by reason (all by their creation
	// at the provider); EscalationTeams and EscalationReasons: escalations
	// by the team escalated to and by the reason given (lower-cased);
	// Tags: cases created, by tag.
	DeclineCodes      []Cause `json:"decline_codes"`
	RefundReasons     []Cause `json:"refund_reasons"`
	DisputeReasons    []Cause `json:"dispute_reasons"`
	EscalationTeams   []Cause `json:"escalation_teams"`
	EscalationReasons []Cause `json:"escalation_reasons"`
	Tags              []Cause `json:"tags"`
}

// RootCauses answers the root-cause report.
func (s *Store) RootCauses(ctx context.Context, q Query) (*RootCauseReport, error) {
	prev := q.From.Add(-q.To.Sub(q.From))
	out := &RootCauseReport{Header: header(q), PreviousFrom: prev}
	period := func(col string) string {
		return "CASE WHEN " + col + " >= ? THEN 1 ELSE 0 END"
	}
	simple := func(what, table, keyCol, timeCol, where string) ([]Cause, error) {
		counts := map[string]*Cause{}
		csc, cscArgs := customerInScope(q.Scope, mirrorCustomer(table))
		err := s.query(ctx, what, "SELECT "+keyCol+", "+period(timeCol)+", count(*) FROM "+table+" WHERE "+where+timeCol+" >= ? AND "+timeCol+" < ?"+csc+" GROUP BY 1, 2",
			with([]any{q.From, prev, q.To}, cscArgs...), func(r *sql.Rows) error {
				var k string
				var cur int
				var n int64
				if err := r.Scan(&k, &cur, &n); err != nil {
					return err
				}
				addCause(counts, groupKey(k), cur == 1, n)
				return nil
			})
		return topCauses(counts), err
	}
	// Each list reads its own table into its own map: the five run at once.
	teams, reasons, tags := map[string]*Cause{}, map[string]*Cause{}, map[string]*Cause{}
	tsc, tscArgs := caseInScope(q.Scope, "t.case_id")
	sc, scArgs := inScope(q.Scope, "c")
	err := concurrently(
		func() (err error) {
			out.DeclineCodes, err = simple("decline codes", "billing_charges", "failure_code", "created", "status = 'failed' AND ")
			return err
		},
		func() (err error) {
			out.RefundReasons, err = simple("refund reasons", "billing_refunds", "reason", "created", "")
			return err
		},
		func() (err error) {
			out.DisputeReasons, err = simple("dispute reasons", "billing_disputes", "reason", "created", "")
			return err
		},
		func() error {
			return s.query(ctx, "escalations", "SELECT t.summary, t.at FROM case_timeline t WHERE t.type = '"+cases.EntryEscalated+
				"' AND t.at >= ? AND t.at < ?"+tsc, with([]any{prev, q.To}, tscArgs...), func(r *sql.Rows) error {
				var summary string
				var at time.Time
				if err := r.Scan(&summary, &at); err != nil {
					return err
				}
				team, reason := parseEscalation(summary)
				cur := !at.Before(q.From)
				addCause(teams, team, cur, 1)
				addCause(reasons, reason, cur, 1)
				return nil
			})
		},
		func() error {
			return s.query(ctx, "tags", "SELECT c.tags, c.created_at FROM cases c WHERE c.tags <> '[]' AND c.created_at >= ? AND c.created_at < ?"+sc,
				with([]any{prev, q.To}, scArgs...), func(r *sql.Rows) error {
					var raw string
					var at time.Time
					if err := r.Scan(&raw, &at); err != nil {
						return err
					}
					for _, tag := range parseTags(raw) {
						addCause(tags, tag, !at.Before(q.From), 1)
					}
					return nil
				})
		},
	)
	if err != nil {
		return nil, err
	}
	out.EscalationTeams, out.EscalationReasons = topCauses(teams), topCauses(reasons)
	out.Tags = topCauses(tags)
	return out, nil
}

func addCause(m map[string]*Cause, k string, current bool, n int64) {
	c := m[k]
	if c == nil {
		c = &Cause{Key: k}
		m[k] = c
	}
	if current {
		c.Count += n
	} else {
		c.Previous += n
	}
}

// topCauses orders by count in the range (then previous, then key) and
// keeps the first topN.
func topCauses(m map[string]*Cause) []Cause {
	out := make([]Cause, 0, len(m))
	for _, c := range m {
		c.Delta = c.Count - c.Previous
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Previous != b.Previous {
			return a.Previous > b.Previous
		}
		return a.Key < b.Key
	})
	if len(out) > topN {
		out = out[:topN]
	}
	return out
}

// parseEscalation reads "Escalated from A to B: reason" (cases.Service's
// escalated entry) into the team escalated to and the reason, lower-cased.
func parseEscalation(summary string) (team, reason string) {
	rest, ok := strings.CutPrefix(summary, "Escalated from ")
	if !ok {
		return NoneKey, groupKey(strings.ToLower(strings.TrimSpace(summary)))
	}
	_, rest, _ = strings.Cut(rest, " to ")
	team, reason, _ = strings.Cut(rest, ": ")
	return groupKey(strings.TrimSpace(team)), groupKey(strings.ToLower(strings.TrimSpace(reason)))
}

// parseTags reads the JSON array of a case's tags.
func parseTags(raw string) []string {
	var tags []string
	if err := json.Unmarshal([]byte(raw), &tags); err != nil {
		return nil
	}
	return tags
}

// ---- disputes ----

// DisputeReport is disputes.StatsReader's statistics (GET /disputes/stats)
// as a report: disputes created in the range, grouped by group_by (reason
// by default).
type DisputeReport struct {
	Report string `json:"report"`
	disputes.Stats
}

// Disputes answers the disputes report through disputes.StatsReader.
func (s *Store) Disputes(ctx context.Context, q Query) (*DisputeReport, error) {
	if s.disputes == nil {
		return nil, errs.New(errs.EINTERNAL, "reports: no dispute statistics reader wired")
	}
	group := q.GroupBy
	st, err := s.disputes.Stats(ctx, disputes.StatsQuery{From: q.From, To: q.To, GroupBy: group, Scope: q.Scope})
	if err != nil {
		return nil, err
	}
	return &DisputeReport{Report: string(Disputes), Stats: st}, nil
}
