package actions

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/export"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/pan"
)

// HTTP serves the action, approval, policy and audit endpoints.
type HTTP struct {
	svc    *Service
	audit  *audit.Log
	policy any // the whole policy document in force, as shown at /policy
}

// NewHTTP returns the endpoints; policyDoc is what GET /policy shows.
func NewHTTP(svc *Service, log *audit.Log, policyDoc any) *HTTP {
	return &HTTP{svc: svc, audit: log, policy: policyDoc}
}

// Register mounts the endpoints on the authenticated /api/v1 group.
func (h *HTTP) Register(g *echo.Group) {
	g.POST("/cases/:id/actions", h.request, auth.Require(auth.PermActionsRequest))
	g.POST("/cases/:id/actions/preview", h.preview, auth.Require(auth.PermActionsRequest))
	g.GET("/cases/:id/actions", h.forCase, auth.Require(auth.PermCasesRead))
	g.GET("/actions/:id", h.get, auth.Require(auth.PermCasesRead))
	g.POST("/actions/:id/approve", h.decide(true), auth.Require(auth.PermActionsApprove))
	g.POST("/actions/:id/reject", h.decide(false), auth.Require(auth.PermActionsApprove))
	g.GET("/policy", h.showPolicy, auth.Require(auth.PermPolicyRead))
	g.GET("/audit", h.listAudit, auth.Require(auth.PermAuditRead))
}

// statusOf is the HTTP status an action's state answers with, the same on
// the first request and on every replay of it.
func statusOf(a Action) int {
	switch a.Status {
	case StatusSucceeded:
		return http.StatusCreated
	case StatusPendingApproval, StatusExecuting:
		return http.StatusAccepted
	default:
		return http.StatusOK
	}
}

func (h *HTTP) request(c echo.Context) error {
	var req Request
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	// The key is stored with the action: masked like any text a client sends.
	key := pan.Mask(c.Request().Header.Get("Idempotency-Key"))
	out, err := h.svc.Request(c.Request().Context(), c.Param("id"), key, req)
	if out.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	if err != nil {
		if e, ok := errs.As(err); ok && out.Action.ID != "" {
			// A failed or in-doubt provider call: the action exists; say which.
			e.WithDetails(map[string]any{"action": out.Action})
		}
		return err
	}
	if out.Action.Status == StatusRefused && out.Action.Error != nil {
		// A replay of an action that policy refused on re-check.
		return errs.Coded(errs.ECONFLICT, out.Action.Error.Code, "%s", out.Action.Error.Message).WithDetails(map[string]any{"action": out.Action})
	}
	if out.Action.Status == StatusFailed && out.Action.Error != nil {
		return errs.Coded(errs.EUNPROCESSABLE, "provider_refused", "%s", out.Action.Error.Message).WithDetails(map[string]any{"action": out.Action})
	}
	return c.JSON(statusOf(out.Action), out.Action)
}

// preview answers what a request with this body would do now (200, also
// when policy would refuse it: allowed false and the refusal). It needs no
// Idempotency-Key, records and audits nothing and never acts at the provider.
func (h *HTTP) preview(c echo.Context) error {
	var req Request
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	out, err := h.svc.Preview(c.Request().Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *HTTP) forCase(c echo.Context) error {
	list, err := h.svc.ForCase(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"data": list})
}

func (h *HTTP) get(c echo.Context) error {
	a, err := h.svc.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

type decision struct {
	Reason string `json:"reason"`
}

func (h *HTTP) decide(approve bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var d decision
		if err := httpx.Bind(c, &d); err != nil {
			return err
		}
		a, err := h.svc.Decide(c.Request().Context(), c.Param("id"), approve, d.Reason)
		if err != nil {
			if e, ok := errs.As(err); ok && a.ID != "" {
				e.WithDetails(map[string]any{"action": a})
			}
			return err
		}
		return c.JSON(http.StatusOK, a)
	}
}

func (h *HTTP) showPolicy(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"policy": h.policy, "roles": auth.Table()})
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, errs.Coded(errs.EINVALID, "invalid_time", "%s must be an RFC 3339 time (e.g. 2026-11-23T00:00:00Z)", name)
	}
	return t, nil
}

func (h *HTTP) listAudit(c echo.Context) error {
	page, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	f := audit.Filter{CaseID: c.QueryParam("case"), Actor: c.QueryParam("actor"), ActorKind: auth.ActorKind(c.QueryParam("actor_kind")), Action: c.QueryParam("action")}
	if f.From, err = parseTime("from", c.QueryParam("from")); err != nil {
		return err
	}
	if f.To, err = parseTime("to", c.QueryParam("to")); err != nil {
		return err
	}
	format, err := export.FormatOf(c)
	if err != nil {
		return err
	}
	if format != export.JSON {
		return export.Respond(c, format, "audit", audit.ExportColumns, export.Pages(func(ctx context.Context, p httpx.PageRequest) (httpx.List[audit.Entry], error) {
			return h.audit.List(ctx, f, p)
		}))
	}
	list, err := h.audit.List(c.Request().Context(), f, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}
