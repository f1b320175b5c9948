package cases

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// registerExternal mounts the external-ticket links:
//
//	POST /cases/{id}/external-tickets         link a ticket elsewhere to the case
//	GET  /external-tickets/{system}/{ticket}  which case a ticket is linked to
func (s *Service) registerExternal(g *echo.Group) {
	g.POST("/cases/:id/external-tickets", s.handleLinkExternal, auth.Require(auth.PermCasesWrite))
	g.GET("/external-tickets/:system/:ticket", s.handleFindExternal, auth.Require(auth.PermCasesRead))
}

type externalRequest struct {
	System   string `json:"system"`
	TicketID string `json:"ticket_id"`
	URL      string `json:"url"`
}

func (s *Service) handleLinkExternal(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req externalRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	t, err := s.LinkExternal(c.Request().Context(), p, c.Param("id"), ExternalTicket{System: req.System, TicketID: req.TicketID, URL: req.URL}, "", "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

func (s *Service) handleFindExternal(c echo.Context) error {
	t, ok, err := s.FindExternal(c.Request().Context(), c.Param("system"), c.Param("ticket"))
	if err != nil {
		return err
	}
	if !ok {
		return errNoExternal(c.Param("system"), c.Param("ticket"))
	}
	return c.JSON(http.StatusOK, t)
}
