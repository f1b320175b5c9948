package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// decide is POST /actions/:id/decide: decision (approve|reject) and reason,
// through actions.Service.Decide as the signed-in principal, exactly as
// POST /api/v1/actions/:id/approve|reject. Success: 303 to the approvals
// inbox; an error (four eyes, policy refusal on re-check, already decided)
// renders the inbox again with the API's code, message and status.
func (con *Console) decide(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermActionsApprove) {
		return con.renderError(c, http.StatusForbidden, "Your role may not approve or reject actions.")
	}
	if con.opt.Actions == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "Actions are not available on this server.")
	}
	var approve bool
	switch c.FormValue("decision") {
	case "approve":
		approve = true
	case "reject":
	default:
		return con.afterDecide(c, errs.Coded(errs.EINVALID, "invalid_decision", "choose Approve or Reject"), "")
	}
	_, err := con.opt.Actions.Decide(c.Request().Context(), c.Param("id"), approve, c.FormValue("reason"))
	if err != nil {
		return con.afterDecide(c, err, "")
	}
	return con.afterDecide(c, nil, c.FormValue("decision"))
}

// decidedNotices are the notices after a decision, by ?decided= (a fixed
// set: the URL never carries text to show).
var decidedNotices = map[string]string{
	"approve": "Approved. The case shows the action's result.",
	"reject":  "Rejected. The action will not be executed.",
}

func (con *Console) afterDecide(c echo.Context, err error, decision string) error {
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/?view=approvals&decided="+url.QueryEscape(decision))
	}
	status := http.StatusInternalServerError
	if e, ok := errs.As(err); ok {
		status = httpx.StatusOf(e.Kind)
	}
	if status >= 500 {
		con.opt.Log.Error("console: decide action", "action", c.Param("id"), "err", err)
	}
	return con.showQueue(c, status, "approvals", err, "")
}
