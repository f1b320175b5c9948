package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// backQuery is the queue a form came from (its hidden "back" input), to
// show again after the form.
func backQuery(c echo.Context) url.Values {
	q, err := url.ParseQuery(c.FormValue("back"))
	if err != nil {
		return url.Values{}
	}
	q.Del("cursor")
	return q
}

// saveView is POST /views: name, shared, query (GET /cases parameters) →
// cases.Service.SaveView as the signed-in user, exactly as POST
// /api/v1/views; 303 to the new view's tab, or the queue again with the
// API's error inline.
func (con *Console) saveView(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermCasesRead) {
		return con.renderError(c, http.StatusForbidden, "Your role may not read cases.")
	}
	filters, err := url.ParseQuery(c.FormValue("query"))
	if err != nil {
		filters = url.Values{"query": {"malformed"}} // refused by the validation below as an unknown parameter
	}
	v, err := con.opt.Cases.SaveView(c.Request().Context(), p, cases.NewView{Name: c.FormValue("name"), Filters: filters,
		Shared: c.FormValue("shared") == "on"})
	if err != nil {
		return con.renderQueue(c, statusOf(err), backQuery(c), err, "", nil)
	}
	return c.Redirect(http.StatusSeeOther, "/?saved="+strconv.FormatInt(v.ID, 10))
}

// deleteView is POST /views/:id/delete: the signed-in user's view, through
// cases.Service.DeleteView (ENOTFOUND for anyone else's) → 303 /.
func (con *Console) deleteView(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermCasesRead) {
		return con.renderError(c, http.StatusForbidden, "Your role may not read cases.")
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return con.renderError(c, http.StatusNotFound, "There is no such saved view.")
	}
	if err := con.opt.Cases.DeleteView(c.Request().Context(), p, id); err != nil {
		return con.fail(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/?deleted=view")
}

// bulk is POST /cases/bulk: the selected rows (case, with each row's
// version in v_<id>) and a button op (assign_me, assign, escalate,
// transition) → cases.Service.Bulk, the function behind POST
// /api/v1/cases/bulk. The queue is shown again with a result per case.
func (con *Console) bulk(c echo.Context) error {
	p, ok := con.requireWrite(c)
	if !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not change cases.")
	}
	form, err := c.FormParams()
	if err != nil {
		return con.renderError(c, http.StatusBadRequest, "The form could not be read.")
	}
	req := cases.BulkRequest{CaseIDs: form["case"], Versions: map[string]int64{}, Reason: form.Get("reason")}
	for _, id := range req.CaseIDs {
		if v, err := strconv.ParseInt(form.Get("v_"+id), 10, 64); err == nil {
			req.Versions[id] = v
		}
	}
	switch op := form.Get("op"); op {
	case "assign_me":
		req.Op, req.Assignee = cases.BulkAssign, &p.Name
	case "assign":
		name := strings.TrimSpace(form.Get("assignee"))
		req.Op, req.Assignee = cases.BulkAssign, &name
	case "escalate":
		t := cases.Team(form.Get("team"))
		req.Op, req.Team = cases.BulkEscalate, &t
	case "transition":
		req.Op, req.Event = cases.BulkTransition, form.Get("event")
	default:
		req.Op = cases.BulkOp(op)
	}
	back := backQuery(c)
	if len(req.CaseIDs) == 0 {
		return con.renderQueue(c, http.StatusBadRequest, back, errs.Coded(errs.EINVALID, "invalid_case_ids", "Select at least one case."), "", nil)
	}
	results, err := con.opt.Cases.Bulk(c.Request().Context(), p, req)
	if err != nil {
		return con.renderQueue(c, statusOf(err), back, err, "", nil)
	}
	rows := make([]bulkRow, len(results))
	okN := 0
	for i, r := range results {
		rows[i] = bulkRow{CaseID: r.CaseID, OK: r.OK}
		if r.Case != nil {
			rows[i].Title = r.Case.Title
			okN++
		}
		if r.Error != nil {
			rows[i].Code, rows[i].Error = r.Error.Code, r.Error.Message
		}
	}
	notice := strconv.Itoa(okN) + " of " + strconv.Itoa(len(rows)) + " cases changed."
	return con.renderQueue(c, http.StatusOK, back, nil, notice, rows)
}
