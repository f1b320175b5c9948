package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/export"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/webhooks"
)

// The console's CSV downloads. The API serves the same lists as CSV
// (?format=csv) to bearer tokens, which a browser session does not have; these
// routes stream the same lists through the same code (internal/export and
// each package's ExportColumns) with the session's principal, behind the
// API's permission for each list.
func (con *Console) registerExports(s *echo.Group) {
	s.GET("/export/cases.csv", con.exportCases, con.require(auth.PermCasesRead))
	s.GET("/export/audit.csv", con.exportAudit, con.require(auth.PermAuditRead))
	s.GET("/export/webhook-events.csv", con.exportWebhookEvents, con.require(auth.PermWebhookEventsRead))
}

// exportFailed answers an export that could not start (a bad filter, the
// database down) with the console's error page rather than a file: no
// byte of the CSV has been written yet.
func (con *Console) exportFailed(c echo.Context, err error) error {
	if c.Response().Committed {
		// Mid-stream: the status is out; the body ends early and the
		// error is logged, as the API does.
		con.opt.Log.Warn("console export ended early", "path", c.Request().URL.Path, "err", err)
		return nil
	}
	c.Response().Header().Del(echo.HeaderContentDisposition)
	return con.fail(c, err)
}

// exportCases is GET /export/cases.csv?<a queue's query>: every case of the
// queue GET / shows for the same query (built-in tab, saved view or filter,
// resolved by resolveQueue), as GET /api/v1/cases?format=csv streams it
// (cases.ExportColumns, cases.ForViewer), all pages.
func (con *Console) exportCases(c echo.Context) error {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	teams, err := con.teamsOf(c, p)
	if err != nil {
		return con.fail(c, err)
	}
	q := c.QueryParams()
	q.Del("cursor")
	st, err := con.resolveQueue(ctx, p, teams, q)
	if err != nil {
		return con.fail(c, err)
	}
	if st.view.View == "approvals" {
		return con.fail(c, errs.Coded(errs.ENOTFOUND, "not_found", "The approvals inbox lists actions, not cases; it has no case export."))
	}
	name := "cases-" + st.view.View
	if st.saved != nil {
		name = "cases-saved-view"
	}
	err = export.Respond(c, export.CSV, name, cases.ExportColumns, export.Pages(func(ctx context.Context, pg httpx.PageRequest) (httpx.List[cases.Case], error) {
		l, err := con.opt.Cases.List(ctx, st.filter, pg)
		for i := range l.Data {
			l.Data[i] = cases.ForViewer(p, l.Data[i])
		}
		return l, err
	}))
	if err != nil {
		return con.exportFailed(c, err)
	}
	return nil
}

// auditQuery reads the audit page's filters (actor, action, case, from,
// to) as the page and its export both take them.
func auditQuery(q url.Values) (auditForm, audit.Filter, error) {
	form := auditForm{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Case: strings.TrimSpace(q.Get("case")), From: q.Get("from"), To: q.Get("to")}
	f := audit.Filter{Actor: form.Actor, Action: form.Action, CaseID: form.Case}
	var err error
	if f.From, err = parseAuditTime("from", form.From, false); err == nil {
		f.To, err = parseAuditTime("to", form.To, true)
	}
	return form, f, err
}

// values is the form as a query, empty fields left out.
func (f auditForm) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"actor": f.Actor, "action": f.Action, "case": f.Case, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// exportAudit is GET /export/audit.csv?actor=&action=&case=&from=&to=: the
// audit log the page shows for the same filters, as
// GET /api/v1/audit?format=csv streams it (audit.ExportColumns).
func (con *Console) exportAudit(c echo.Context) error {
	if con.opt.Audit == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The audit log is not available on this server.")
	}
	_, f, err := auditQuery(c.QueryParams())
	if err != nil {
		return con.fail(c, err)
	}
	if err := export.Respond(c, export.CSV, "audit", audit.ExportColumns, export.Pages(func(ctx context.Context, p httpx.PageRequest) (httpx.List[audit.Entry], error) {
		return con.opt.Audit.List(ctx, f, p)
	})); err != nil {
		return con.exportFailed(c, err)
	}
	return nil
}

// exportWebhookEvents is GET /export/webhook-events.csv?status=: the inbox
// the page shows for that status, without payloads, as
// GET /api/v1/webhook-events?format=csv streams it (webhooks.ExportColumns).
func (con *Console) exportWebhookEvents(c echo.Context) error {
	if con.opt.Inbox == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The webhook inbox is not available on this server.")
	}
	var f webhooks.Filter
	if s := c.QueryParam("status"); s != "" {
		st, err := webhooks.ParseStatus(s)
		if err != nil {
			return con.fail(c, err)
		}
		f.Status = st
	}
	if err := export.Respond(c, export.CSV, "webhook-events", webhooks.ExportColumns, export.Pages(func(ctx context.Context, p httpx.PageRequest) (httpx.List[webhooks.Record], error) {
		return con.opt.Inbox.List(ctx, f, p)
	})); err != nil {
		return con.exportFailed(c, err)
	}
	return nil
}
