package reports

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/export"
)

// Service answers reports through a Store, timing each one
// (recourse_report_duration_seconds{report}). The API and the console both
// call it.
type Service struct {
	store    *Store
	clock    clock.Clock
	duration *prometheus.HistogramVec
}

// NewService returns the reports service over st; reg, when set, gets its
// histogram (the service's registry). It fails only when the histogram
// cannot be registered.
func NewService(st *Store, clk clock.Clock, reg prometheus.Registerer) (*Service, error) {
	if clk == nil {
		clk = clock.System{}
	}
	s := &Service{store: st, clock: clk, duration: newDuration()}
	if reg != nil {
		if err := reg.Register(s.duration); err != nil {
			return nil, fmt.Errorf("reports: register metrics: %w", err)
		}
	}
	return s, nil
}

// Run answers q, timed. See Store.Run for the errors.
func (s *Service) Run(ctx context.Context, q Query) (Report, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	r, err := s.store.Run(ctx, q)
	s.duration.WithLabelValues(string(q.Report)).Observe(time.Since(start).Seconds())
	return r, err
}

// Params are a report request's query parameters, as the API and the
// console's form take them.
type Params struct {
	Name, From, To, Interval, GroupBy string
	// TZ is an IANA time zone (Europe/Dublin) for buckets and dates; ""
	// is UTC.
	TZ string
	// GroupBySet tells an explicit empty group_by (none) from a missing one.
	GroupBySet bool
}

// ParseQuery validates p into a Query at now: tz (an IANA zone; default
// UTC), from/to RFC 3339 or YYYY-MM-DD, midnight in tz (default: the 30
// days up to today, today included; one end given alone keeps the default
// length), interval (default day),
// group_by (default per report: none, agent for team, reason for
// disputes). ENOTFOUND (unknown_report) for an unknown report; EINVALID
// (invalid_tz, invalid_from, invalid_to, invalid_range, invalid_interval,
// invalid_group_by) for a bad parameter.
func ParseQuery(p Params, now time.Time) (Query, error) {
	q := Query{Report: Name(p.Name), Interval: Interval(p.Interval), GroupBy: p.GroupBy}
	if q.Interval == "" {
		q.Interval = Day
	}
	if !p.GroupBySet {
		q.GroupBy = DefaultGroupBy(q.Report)
	}
	if p.TZ != "" && p.TZ != "UTC" {
		loc, err := time.LoadLocation(p.TZ)
		if err != nil || p.TZ == "Local" {
			return Query{}, errs.Coded(errs.EINVALID, "invalid_tz", "tz must be an IANA time zone such as Europe/Dublin (got %q)", p.TZ)
		}
		q.TZ = loc
	}
	q.From, q.To = DefaultRange(now, q.Location())
	length := q.To.Sub(q.From)
	if p.To != "" {
		t, ok := ParseTime(p.To, q.Location())
		if !ok {
			return Query{}, errs.Coded(errs.EINVALID, "invalid_to", "to must be an RFC 3339 time or a YYYY-MM-DD date (got %q)", p.To)
		}
		q.To, q.From = t, t.Add(-length)
	}
	if p.From != "" {
		t, ok := ParseTime(p.From, q.Location())
		if !ok {
			return Query{}, errs.Coded(errs.EINVALID, "invalid_from", "from must be an RFC 3339 time or a YYYY-MM-DD date (got %q)", p.From)
		}
		q.From = t
		if p.To == "" {
			q.To = t.Add(length)
		}
	}
	return q, q.Validate()
}

// HTTP serves the reports API.
type HTTP struct{ svc *Service }

// NewHTTP returns the handlers over svc.
func NewHTTP(svc *Service) *HTTP { return &HTTP{svc: svc} }

// Register mounts, on g (the /api/v1 group), behind permission
// reports:read:
//
//	GET /reports          the reports, their groupings and intervals
//	GET /reports/{name}   one report: ?from=&to=&interval=&group_by=&format=
//
// See ParseQuery for the parameters; ?format=csv|jsonl (or Accept:
// text/csv) streams the report's rows (Row, ExportColumns).
func (h *HTTP) Register(g *echo.Group) {
	g.GET("/reports", h.list, auth.Require(auth.PermReportsRead))
	g.GET("/reports/:name", h.get, auth.Require(auth.PermReportsRead))
}

// Catalogue describes one report for clients (GET /reports).
type Catalogue struct {
	Name      Name       `json:"name"`
	GroupBys  []string   `json:"group_by"`
	Default   string     `json:"default_group_by"`
	Intervals []Interval `json:"intervals,omitempty"`
}

// Catalogues lists every report's parameters.
func Catalogues() []Catalogue {
	out := make([]Catalogue, 0, len(Names()))
	for _, n := range Names() {
		c := Catalogue{Name: n, GroupBys: GroupBys(n), Default: DefaultGroupBy(n)}
		if Bucketed(n) {
			c.Intervals = Intervals()
		}
		out = append(out, c)
	}
	return out
}

func (h *HTTP) list(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"data": Catalogues()})
}

func (h *HTTP) get(c echo.Context) error {
	format, err := export.FormatOf(c)
	if err != nil {
		return err
	}
	_, set := c.QueryParams()["group_by"]
	q, err := ParseQuery(Params{Name: c.Param("name"), From: c.QueryParam("from"), To: c.QueryParam("to"),
		Interval: c.QueryParam("interval"), GroupBy: c.QueryParam("group_by"), GroupBySet: set, TZ: c.QueryParam("tz")}, h.svc.clock.Now())
	if err != nil {
		return err
	}
	// The caller's scope, explicitly: a scoped supervisor's report counts
	// only the cases (and customers) in it.
	p, _ := auth.FromContext(c.Request().Context())
	q.Scope = p.Scope
	r, err := h.svc.Run(c.Request().Context(), q)
	if err != nil {
		return err
	}
	if format != export.JSON {
		rows := r.Rows()
		name := "report-" + string(q.Report) + "-" + q.From.Format("20060102") + "-" + q.To.Format("20060102")
		return export.Respond(c, format, name, ExportColumns, func(context.Context, string) ([]Row, string, error) {
			return rows, "", nil
		})
	}
	return c.JSON(http.StatusOK, r)
}
