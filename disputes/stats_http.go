package disputes

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/errs"
)

// StatsHTTP serves GET /disputes/stats.
type StatsHTTP struct {
	stats *StatsReader
	clock clock.Clock
}

// NewStatsHTTP returns the handler over r.
func NewStatsHTTP(r *StatsReader, clk clock.Clock) *StatsHTTP {
	if clk == nil {
		clk = clock.System{}
	}
	return &StatsHTTP{stats: r, clock: clk}
}

// Register mounts GET /disputes/stats (permission disputes:stats) on g.
// Query: from, to (RFC 3339 or YYYY-MM-DD; default the 90 days up to now;
// disputes created in [from, to)), group_by (reason — the default —,
// network_code, brand, business_line). Answers Stats; 400 EINVALID for a
// bad parameter.
func (h *StatsHTTP) Register(g *echo.Group) {
	g.GET("/disputes/stats", h.get, auth.Require(auth.PermDisputesStats))
}

// maxStatsRange bounds one query.
const maxStatsRange = 3 * 366 * 24 * time.Hour

func (h *StatsHTTP) get(c echo.Context) error {
	to := h.clock.Now().UTC()
	var err error
	if s := c.QueryParam("to"); s != "" {
		if to, err = parseStatsTime(s); err != nil {
			return errs.Coded(errs.EINVALID, "invalid_to", "to must be an RFC 3339 time or a YYYY-MM-DD date")
		}
	}
	from := to.Add(-90 * 24 * time.Hour)
	if s := c.QueryParam("from"); s != "" {
		if from, err = parseStatsTime(s); err != nil {
			return errs.Coded(errs.EINVALID, "invalid_from", "from must be an RFC 3339 time or a YYYY-MM-DD date")
		}
	}
	if to.Sub(from) > maxStatsRange {
		return errs.Coded(errs.EINVALID, "invalid_range", "a range may span at most three years")
	}
	group := c.QueryParam("group_by")
	if group == "" {
		group = GroupByReason
	}
	st, err := h.stats.Stats(c.Request().Context(), StatsQuery{From: from, To: to, GroupBy: group})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func parseStatsTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", s)
}
