package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// caseLive is the part of the case page that a poll refreshes (#case-live):
// the header (state, priority, assignee, SLA) and the timeline.
type caseLive struct {
	Case     cases.Case
	SLA      slaClock
	Timeline []cases.TimelineEntry
}

type casePage struct {
	page
	Live caseLive
	// Case is the case as this page was rendered; its version goes with
	// the transition form so a stale edit is refused, not applied.
	Case           cases.Case
	Linked         cases.Linked
	External       []cases.ExternalTicket // tickets in other desks linked to the case
	Billing        []billing.TimelineEntry
	CanWrite       bool
	CanAssignSelf  bool
	Reason, Body   string
	BillingMissing bool
	// Actions: the action forms, their previews and the case's actions (actionforms.go).
	Actions actionsPanel
	// QueueQuery is the queue the case was opened from (?q=, the queue
	// page's query); NextURL opens the next case of that queue (key n).
	QueueQuery string
	NextURL    string
}

func (con *Console) loadLive(c echo.Context, id string) (caseLive, error) {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	cs, err := con.opt.Cases.Get(ctx, id)
	if err != nil {
		return caseLive{}, err
	}
	tl, err := con.opt.Cases.Timeline(ctx, id)
	if err != nil {
		return caseLive{}, err
	}
	return caseLive{Case: cases.ForViewer(p, cs), SLA: slaOf(cs, con.opt.Clock.Now(), con.opt.Cases.SLAPolicy().DueSoon.D()), Timeline: tl}, nil
}

// showCase renders the case page with status, and msg (from an error with
// code) shown inline.
func (con *Console) showCase(c echo.Context, status int, id string, failure error, reason, body string) error {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	if !auth.Allowed(p.Role, auth.PermCasesRead) {
		return con.renderError(c, http.StatusForbidden, "Your role may not read cases.")
	}
	live, err := con.loadLive(c, id)
	if err != nil {
		return con.fail(c, err)
	}
	pg := casePage{page: con.basePage(c, live.Case.Title), Live: live, Case: live.Case, Reason: reason, Body: body,
		CanWrite: auth.Allowed(p.Role, auth.PermCasesWrite)}
	pg.CanAssignSelf = pg.CanWrite && live.Case.IsOpen() && (live.Case.Assignee == nil || *live.Case.Assignee != p.Name)
	if q, err := url.ParseQuery(c.QueryParam("q")); err == nil {
		pg.QueueQuery = q.Encode()
	}
	pg.NextURL = "/cases/" + url.PathEscape(live.Case.ID) + "/next?" + url.Values{"q": {pg.QueueQuery}}.Encode()
	if failure != nil {
		pg.Error, pg.ErrorCode = inlineError(failure)
	}
	pg.Linked = con.opt.Cases.LinkedObjects(ctx, live.Case)
	if pg.External, err = con.opt.Cases.ExternalTickets(ctx, live.Case.ID); err != nil {
		con.opt.Log.Warn("console: external tickets", "case", live.Case.ID, "err", err)
	}
	pg.Actions = con.actionsPanel(c, live.Case, pg.Linked)
	if cust := live.Case.Links.Customer; cust != nil && con.opt.Billing != nil && auth.Allowed(p.Role, auth.PermBillingRead) {
		list, err := con.opt.Billing.Timeline(ctx, *cust, httpx.PageRequest{Limit: 50})
		if err != nil {
			con.opt.Log.Warn("console: billing timeline", "customer", *cust, "err", err)
			pg.BillingMissing = true
		} else {
			pg.Billing = list.Data
		}
	}
	return con.render(c, status, "case.html", pg)
}

// inlineError turns a service error into a message for the page, by the
// API's code. Internal errors are not shown.
func inlineError(err error) (msg, code string) {
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.EINTERNAL {
		return "Something went wrong on our side; nothing was changed. Try again in a moment.", "internal"
	}
	switch e.Code {
	case "version_conflict":
		return "Someone else changed this case while you were looking at it, so your change was not applied. The case below is as it is now; check it and try again.", e.Code
	case "illegal_transition":
		return "That step is no longer possible from the case's current state: " + e.Message, e.Code
	}
	return e.Message, e.Code
}

// casePage is GET /cases/:id.
func (con *Console) casePage(c echo.Context) error {
	return con.showCase(c, http.StatusOK, c.Param("id"), nil, "", "")
}

// caseFragment is GET /cases/:id/fragment: #case-live alone, for the poll.
func (con *Console) caseFragment(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermCasesRead) {
		return c.NoContent(http.StatusForbidden)
	}
	live, err := con.loadLive(c, c.Param("id"))
	if err != nil {
		if e, ok := errs.As(err); ok && e.Kind != errs.EINTERNAL {
			return c.NoContent(httpx.StatusOf(e.Kind))
		}
		con.opt.Log.Error("console: case fragment", "err", err)
		return c.NoContent(http.StatusInternalServerError)
	}
	return con.render(c, http.StatusOK, "case-live", live)
}

// afterWrite answers a case form: back to the case page on success (303),
// else the page again with the error inline and the API's status.
func (con *Console) afterWrite(c echo.Context, id string, err error, reason, body string) error {
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/cases/"+id)
	}
	status := http.StatusInternalServerError
	if e, ok := errs.As(err); ok {
		status = httpx.StatusOf(e.Kind)
	}
	if status == http.StatusNotFound {
		return con.fail(c, err)
	}
	if status >= 500 {
		con.opt.Log.Error("console: case write", "case", id, "err", err)
	}
	return con.showCase(c, status, id, err, reason, body)
}

func (con *Console) requireWrite(c echo.Context) (auth.Principal, bool) {
	p, _ := auth.FromContext(c.Request().Context())
	return p, auth.Allowed(p.Role, auth.PermCasesWrite)
}

// transition is POST /cases/:id/transitions: event, reason, version.
func (con *Console) transition(c echo.Context) error {
	p, ok := con.requireWrite(c)
	id := c.Param("id")
	if !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not change cases.")
	}
	event, reason := strings.TrimSpace(c.FormValue("event")), c.FormValue("reason")
	req := cases.TransitionRequest{Event: event, Reason: reason}
	if v := c.FormValue("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return con.afterWrite(c, id, errs.Coded(errs.EINVALID, "invalid_version", "version must be a whole number"), reason, "")
		}
		req.Version = &n
	}
	if event == "" {
		return con.afterWrite(c, id, errs.Coded(errs.EINVALID, "invalid_event", "choose a step"), reason, "")
	}
	_, err := con.opt.Cases.Transition(c.Request().Context(), p, id, req)
	return con.afterWrite(c, id, err, reason, "")
}

// note is POST /cases/:id/notes: body.
func (con *Console) note(c echo.Context) error {
	p, ok := con.requireWrite(c)
	id := c.Param("id")
	if !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not add notes.")
	}
	body := c.FormValue("body")
	_, err := con.opt.Cases.AddNote(c.Request().Context(), p, id, body)
	return con.afterWrite(c, id, err, "", body)
}

// assign is POST /cases/:id/assign: assign the case to the signed-in user.
func (con *Console) assign(c echo.Context) error {
	p, ok := con.requireWrite(c)
	id := c.Param("id")
	if !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not assign cases.")
	}
	name := p.Name
	_, err := con.opt.Cases.Assign(c.Request().Context(), p, id, cases.AssignRequest{Assignee: &name})
	return con.afterWrite(c, id, err, "", "")
}
