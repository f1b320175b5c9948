package privacy

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// HTTP serves erasure on the API:
//
//	POST /customers/:id/erase   {"reason": "…", "force": false} → Report   customers:erase (admins)
type HTTP struct{ eraser *Eraser }

// NewHTTP returns the handlers over e.
func NewHTTP(e *Eraser) *HTTP { return &HTTP{eraser: e} }

// Register mounts the routes on g (the authenticated /api/v1 group).
func (h *HTTP) Register(g *echo.Group) {
	g.POST("/customers/:id/erase", h.erase, auth.Require(auth.PermCustomersErase))
}

func (h *HTTP) erase(c echo.Context) error {
	var req Request
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	req.CustomerID = c.Param("id")
	rep, err := h.eraser.Erase(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
