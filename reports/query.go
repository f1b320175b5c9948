// Package reports serves the desk's KPIs (GET /api/v1/reports/{name}):
// case volume and backlog, first-response and resolution times with SLA
// attainment, per-agent and per-team work, revenue recovery, root causes
// and the dispute statistics. Every report reads one database handle of its
// own (a read replica when RECOURSE_REPORTING_DATABASE_URL is set) through
// one query layer, Store; the dispute report is disputes.StatsReader's.
//
// Times are half-open ranges [from, to): an event exactly at from is in,
// one exactly at to is out. Buckets are whole days, ISO weeks (starting
// Monday) or calendar months of the query's time zone (UTC unless tz names
// one), clipped to the range.
package reports

import (
	"slices"
	"strings"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Name names a report.
type Name string

// Reports.
const (
	Volume     Name = "volume"
	Resolution Name = "resolution"
	TeamWork   Name = "team"
	Recovery   Name = "recovery"
	RootCauses Name = "root_causes"
	Disputes   Name = "disputes"
)

// Names lists every report in the order the console offers them.
func Names() []Name { return []Name{Volume, Resolution, TeamWork, Recovery, RootCauses, Disputes} }

// Interval is the width of a bucket.
type Interval string

// Intervals.
const (
	Day   Interval = "day"
	Week  Interval = "week"
	Month Interval = "month"
)

// Intervals lists the bucket widths.
func Intervals() []Interval { return []Interval{Day, Week, Month} }

// Case groupings of the volume and resolution reports: the case column
// each one reads.
var caseGroupColumns = map[string]string{
	"kind": "kind", "channel": "channel", "team": "team", "business_line": "business_line", "assignee": "assignee",
}

// GroupBys returns the groupings report n accepts ("" — none, totals only
// — is accepted where it is listed first).
func GroupBys(n Name) []string {
	switch n {
	case Volume, Resolution:
		return []string{"", "kind", "channel", "team", "business_line", "assignee"}
	case TeamWork:
		return []string{"agent", "team"}
	case Disputes:
		return disputes.GroupBys()
	}
	return []string{""}
}

// Bucketed reports whether report n has interval buckets.
func Bucketed(n Name) bool { return n == Volume || n == Resolution }

// Limits of one query.
const (
	// MaxRange is the longest range a report covers.
	MaxRange = 3 * 366 * 24 * time.Hour
	// MaxBuckets is the most buckets a report returns (pick a wider
	// interval for a longer range).
	MaxBuckets = 400
	// DefaultDays is the default range: the 30 UTC days up to today, today
	// included.
	DefaultDays = 30
	// topN is how many keys each root-cause list keeps.
	topN = 20
)

// Group keys: AllKey is the one group of a report without a grouping (and
// of team totals); NoneKey groups cases without a value in the grouping (no
// assignee, no business line) and lists' empty keys (no failure code).
const (
	AllKey  = "all"
	NoneKey = "(none)"
)

// Query asks for one report.
type Query struct {
	Report   Name
	From, To time.Time
	Interval Interval
	GroupBy  string
	// TZ is the time zone buckets and dates follow (nil: UTC).
	TZ *time.Location
	// Scope limits the report to the cases in it (and the billing
	// objects of their customers): the scope of the principal asking,
	// which the API and the console set from the request. The zero Scope
	// reports on the whole desk.
	Scope auth.Scope
}

// Location is the query's time zone (UTC when none is set).
func (q Query) Location() *time.Location {
	if q.TZ == nil {
		return time.UTC
	}
	return q.TZ
}

// Validate reports the first bad field: ENOTFOUND (unknown_report) for an
// unknown report, EINVALID (invalid_interval, invalid_group_by,
// invalid_range) otherwise.
func (q Query) Validate() error {
	if !slices.Contains(Names(), q.Report) {
		return errs.Coded(errs.ENOTFOUND, "unknown_report", "no report %q; reports are %s", q.Report, joinNames())
	}
	if !slices.Contains(Intervals(), q.Interval) {
		return errs.Coded(errs.EINVALID, "invalid_interval", "interval must be day, week or month (got %q)", q.Interval)
	}
	if gs := GroupBys(q.Report); !slices.Contains(gs, q.GroupBy) {
		return errs.Coded(errs.EINVALID, "invalid_group_by", "group_by of the %s report must be one of %s (got %q)",
			q.Report, strings.Join(labelled(gs), ", "), q.GroupBy)
	}
	if !q.To.After(q.From) {
		return errs.Coded(errs.EINVALID, "invalid_range", "to must be after from")
	}
	if q.To.Sub(q.From) > MaxRange {
		return errs.Coded(errs.EINVALID, "invalid_range", "a range may span at most three years")
	}
	if Bucketed(q.Report) {
		if n := len(BucketsIn(q.From, q.To, q.Interval, q.Location())); n > MaxBuckets {
			return errs.Coded(errs.EINVALID, "invalid_range", "%d %s buckets is more than %d: pick a wider interval", n, q.Interval, MaxBuckets)
		}
	}
	return nil
}

func labelled(gs []string) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g
		if g == "" {
			out[i] = "(none)"
		}
	}
	return out
}

func joinNames() string {
	s := make([]string, 0, len(Names()))
	for _, n := range Names() {
		s = append(s, string(n))
	}
	return strings.Join(s, ", ")
}

// Bucket is one interval of a range: [Start, End).
type Bucket struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Buckets cuts [from, to) at the UTC boundaries of interval: midnights,
// Mondays or firsts of the month. The first and last buckets are clipped to
// the range.
func Buckets(from, to time.Time, iv Interval) []Bucket { return BucketsIn(from, to, iv, time.UTC) }

// BucketsIn is Buckets at the boundaries of loc (local midnights, which a
// daylight-saving change makes 23 or 25 hours apart); the times are in loc.
func BucketsIn(from, to time.Time, iv Interval, loc *time.Location) []Bucket {
	from, to = from.In(loc), to.In(loc)
	var out []Bucket
	start := from
	for start.Before(to) && len(out) <= MaxBuckets {
		end := nextBoundary(start, iv)
		if end.After(to) {
			end = to
		}
		out = append(out, Bucket{Start: start, End: end})
		start = end
	}
	return out
}

// nextBoundary is the first interval boundary after t, in t's location.
func nextBoundary(t time.Time, iv Interval) time.Time {
	y, m, d := t.Date()
	loc := t.Location()
	switch iv {
	case Week:
		day := time.Date(y, m, d, 0, 0, 0, 0, loc)
		wd := (int(day.Weekday()) + 6) % 7 // Monday = 0
		return time.Date(y, m, d+7-wd, 0, 0, 0, 0, loc)
	case Month:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	default:
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
}

// DefaultRange is the range of a query that names neither end: the
// DefaultDays days of loc up to and including now's day.
func DefaultRange(now time.Time, loc *time.Location) (from, to time.Time) {
	y, m, d := now.In(loc).Date()
	to = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	return time.Date(y, m, d+1-DefaultDays, 0, 0, 0, 0, loc).UTC(), to.UTC()
}

// ParseTime reads an RFC 3339 time or a YYYY-MM-DD date (midnight in loc).
func ParseTime(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

// DefaultGroupBy is report n's grouping when the query names none.
func DefaultGroupBy(n Name) string {
	switch n {
	case TeamWork:
		return "agent"
	case Disputes:
		return disputes.GroupByReason
	}
	return ""
}
