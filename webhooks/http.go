package webhooks

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/export"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
)

// Admin serves the operator endpoints over the inbox.
type Admin struct {
	inbox   *Inbox
	clock   clock.Clock
	metrics *metrics.Metrics
	notify  func()
}

// NewAdmin returns the operator endpoints; notify (may be nil) wakes the
// local worker after a replay.
func NewAdmin(inbox *Inbox, c clock.Clock, m *metrics.Metrics, notify func()) *Admin {
	return &Admin{inbox: inbox, clock: c, metrics: m, notify: notify}
}

// Register mounts the endpoints on g (the authenticated /api/v1 group).
func (a *Admin) Register(g *echo.Group) {
	read := auth.Require(auth.PermWebhookEventsRead)
	replay := auth.Require(auth.PermWebhookEventsReplay)
	g.GET("/webhook-events", a.list, read)
	g.GET("/webhook-events/:id", a.get, read)
	g.POST("/webhook-events/:id/replay", a.replay, replay)
	g.POST("/webhook-events/replay", a.replayDead, replay)
}

// EventDetail is one event with its payload, for GET /webhook-events/{id}.
type EventDetail struct {
	Record
	Payload json.RawMessage `json:"payload"`
}

func (a *Admin) list(c echo.Context) error {
	page, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	var f Filter
	if s := c.QueryParam("status"); s != "" {
		if f.Status, err = ParseStatus(s); err != nil {
			return err
		}
	}
	f.Type = c.QueryParam("type")
	format, err := export.FormatOf(c)
	if err != nil {
		return err
	}
	if format != export.JSON {
		return export.Respond(c, format, "webhook-events", ExportColumns, export.Pages(func(ctx context.Context, p httpx.PageRequest) (httpx.List[Record], error) {
			return a.inbox.List(ctx, f, p)
		}))
	}
	out, err := a.inbox.List(c.Request().Context(), f, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *Admin) get(c echo.Context) error {
	rec, err := a.inbox.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, detail(rec))
}

func detail(rec Record) EventDetail {
	d := EventDetail{Record: rec, Payload: json.RawMessage(rec.Payload)}
	if !json.Valid(rec.Payload) {
		d.Payload = nil
	}
	return d
}

func (a *Admin) replay(c echo.Context) error {
	rec, err := a.inbox.Replay(c.Request().Context(), c.Param("id"), a.clock.Now())
	if err != nil {
		return err
	}
	a.metrics.WebhookReplayed.Inc()
	if a.notify != nil {
		a.notify()
	}
	return c.JSON(http.StatusOK, detail(rec))
}

func (a *Admin) replayDead(c echo.Context) error {
	n, err := a.inbox.ReplayDead(c.Request().Context(), a.clock.Now())
	if err != nil {
		return err
	}
	a.metrics.WebhookReplayed.Add(float64(n))
	if n > 0 && a.notify != nil {
		a.notify()
	}
	return c.JSON(http.StatusOK, map[string]any{"replayed": n})
}
