package notifications

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// HTTP serves the deliveries to operators.
type HTTP struct {
	store *Store
	clock clock.Clock
}

// NewHTTP returns the endpoints over s.
func NewHTTP(s *Store, c clock.Clock) *HTTP { return &HTTP{store: s, clock: c} }

// Register mounts GET /notifications?status=&destination= (keyset paged,
// newest first; permission notifications:read) and
// POST /notifications/{id}/replay (notifications:replay; 404 unknown, 409
// unless failed).
func (h *HTTP) Register(g *echo.Group) {
	g.GET("/notifications", h.list, auth.Require(auth.PermNotificationsRead))
	g.POST("/notifications/:id/replay", h.replay, auth.Require(auth.PermNotificationsReplay))
}

func (h *HTTP) list(c echo.Context) error {
	page, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	out, err := h.store.List(c.Request().Context(), Filter{Status: Status(c.QueryParam("status")), Destination: c.QueryParam("destination")}, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *HTTP) replay(c echo.Context) error {
	d, err := h.store.Replay(c.Request().Context(), c.Param("id"), h.clock.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}
