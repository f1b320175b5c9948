package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// queue is one tab of the queues page: a named filter of GET /cases.
type queue struct {
	View  string
	Label string
	Empty string
	// Perm is what the viewer needs to see the tab (empty: cases:read).
	Perm auth.Permission
}

var queueTabs = []queue{
	{View: "open", Label: "All open", Empty: "No open cases. New ones appear here as Stripe reports them or agents open them."},
	{View: "mine", Label: "My cases", Empty: "No open case is assigned to you. Pick one from Unassigned and press “Assign to me”."},
	{View: "team", Label: "My team's", Empty: "No open case is with your team."},
	{View: "unassigned", Label: "Unassigned", Empty: "Every open case has someone on it."},
	{View: "breached", Label: "Breached", Empty: "No open case has breached its SLA."},
	{View: "due_soon", Label: "Due soon", Empty: "No open case is close to its SLA deadline."},
	{View: "approvals", Label: "Waiting for approval", Perm: auth.PermActionsApprove,
		Empty: "No action is waiting for approval."},
}

type queueRow struct {
	Case cases.Case
	SLA  slaClock
}

type queuesPage struct {
	page
	View queue
	Tabs []queue
	Rows []queueRow
	Next string
	// Teams are the viewer's teams that cases are routed to (view team).
	Teams  []cases.Team
	Team   cases.Team
	Filter bool // the view lists cases (approvals lists actions)
	// Approvals are the actions waiting for a decision (view approvals).
	Approvals []actions.Action
}

// queues is GET /: the case queues, one filter per tab, keyset-paged.
func (con *Console) queues(c echo.Context) error {
	return con.showQueue(c, http.StatusOK, c.QueryParam("view"), nil, decidedNotices[c.QueryParam("decided")])
}

// showQueue renders queue view with status; failure (from a decision on
// the approvals view) is shown inline by the API's code.
func (con *Console) showQueue(c echo.Context, status int, view string, failure error, notice string) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermCasesRead) {
		return con.renderError(c, http.StatusForbidden, "Your role may not read cases.")
	}
	if view == "" {
		view = "open"
	}
	pg := queuesPage{page: con.basePage(c, "Queues")}
	pg.Notice = notice
	if failure != nil {
		pg.Error, pg.ErrorCode = inlineError(failure)
	}
	found := false
	teams, err := con.teamsOf(c, p)
	if err != nil {
		return con.fail(c, err)
	}
	pg.Teams = teams
	for _, q := range queueTabs {
		if q.View == "team" && len(teams) == 0 {
			continue
		}
		if q.Perm != "" && !auth.Allowed(p.Role, q.Perm) {
			if q.View == view {
				return con.renderError(c, http.StatusForbidden, "Your role may not see this queue.")
			}
			continue
		}
		pg.Tabs = append(pg.Tabs, q)
		if q.View == view {
			pg.View, found = q, true
		}
	}
	if !found {
		return con.renderError(c, http.StatusNotFound, "There is no queue called “"+view+"”.")
	}
	f := cases.Filter{Status: cases.StatusOpen, Sort: cases.SortCreatedDesc}
	switch view {
	case "mine":
		f.Assignee = p.Name
	case "team":
		pg.Team = teams[0]
		for _, t := range teams {
			if string(t) == c.QueryParam("team") {
				pg.Team = t
			}
		}
		f.Team = pg.Team
	case "unassigned":
		f.Assignee = "none"
	case "breached":
		f.SLA, f.Sort = cases.SLABreached, cases.SortSLA
	case "due_soon":
		f.SLA, f.Sort = cases.SLADueSoon, cases.SortSLA
	case "approvals":
		if con.opt.Actions != nil {
			list, err := con.opt.Actions.PendingApproval(c.Request().Context(), 200)
			if err != nil {
				return con.fail(c, err)
			}
			pg.Approvals = list
		}
		return con.render(c, status, "queues.html", pg)
	}
	pg.Filter = true
	list, err := con.opt.Cases.List(c.Request().Context(), f, httpx.PageRequest{Limit: 50, Cursor: c.QueryParam("cursor")})
	if err != nil {
		return con.fail(c, err)
	}
	now, soon := con.opt.Clock.Now(), con.opt.Cases.SLAPolicy().DueSoon.D()
	for _, cs := range list.Data {
		pg.Rows = append(pg.Rows, queueRow{Case: cases.ForViewer(p, cs), SLA: slaOf(cs, now, soon)})
	}
	if list.NextCursor != nil {
		pg.Next = *list.NextCursor
	}
	return con.render(c, status, "queues.html", pg)
}

// teamsOf returns the viewer's teams that are case teams.
func (con *Console) teamsOf(c echo.Context, p auth.Principal) ([]cases.Team, error) {
	if con.opt.Users == nil || p.UserID == 0 {
		return nil, nil
	}
	u, err := con.opt.Users.Get(c.Request().Context(), p.UserID)
	if err != nil {
		return nil, err
	}
	var out []cases.Team
	for _, t := range u.Teams {
		if ct, err := cases.ParseTeam(t); err == nil {
			out = append(out, ct)
		}
	}
	return out, nil
}
