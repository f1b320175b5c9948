package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// queue is one tab of the queues page: a named filter of GET /cases.
type queue struct {
	View  string
	Label string
	Empty string
	// Perm is what the viewer needs to see the tab (empty: cases:read).
	Perm auth.Permission
	// Href is where the tab links (built-in tabs: /?view=View).
	Href string
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

// filterTab is the queue of a filter built on the page (view=filter); it
// is a tab only while shown.
var filterTab = queue{View: "filter", Label: "Filtered", Empty: "No case matches this filter."}

// sortOption is one choice of the sort control.
type sortOption struct {
	Value cases.Sort
	Label string
}

var sortOptions = []sortOption{
	{cases.SortSLA, "SLA due, soonest first"}, {cases.SortSLADesc, "SLA due, latest first"},
	{cases.SortPriority, "Priority, highest first"}, {cases.SortPriorityDesc, "Priority, lowest first"},
	{cases.SortCreatedDesc, "Created, newest first"}, {cases.SortCreated, "Created, oldest first"},
	{cases.SortUpdatedDesc, "Updated, most recent first"}, {cases.SortUpdated, "Updated, least recent first"},
}

type queueRow struct {
	Case cases.Case
	SLA  slaClock
	// Customer is the linked customer's email when the mirror knows it,
	// else its id ("" when the case has no customer).
	Customer string
	// URL opens the case, carrying the queue so "next case" knows it.
	URL string
}

// bulkRow is the outcome of a bulk action on one case.
type bulkRow struct {
	CaseID string
	Title  string
	OK     bool
	Code   string
	Error  string
}

// param is one hidden input.
type param struct{ Name, Value string }

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
	// Saved is the saved view shown (nil for a built-in tab); Owned says the
	// viewer may delete it.
	Saved *cases.SavedView
	Owned bool
	// Sort is the order shown; Keep are the inputs that keep the queue
	// when the sort changes; Query is this queue's URL query (no cursor),
	// and FilterQuery its case filter as GET /cases parameters (what "Save
	// view" keeps).
	Sort        cases.Sort
	Sorts       []sortOption
	Keep        []param
	Query       string
	FilterQuery string
	// Export downloads every case of the queue as CSV (/export/cases.csv
	// with Query).
	Export string
	F      cases.Filter
	// Choices for the filter and bulk forms.
	Kinds      []cases.Kind
	Priorities []cases.Priority
	AllTeams   []cases.Team
	EscTeams   []cases.Team
	Events     []string
	CanWrite   bool
	Results    []bulkRow
}

// queueState is a queue resolved from the page's query: its tab, the
// saved view (if any), and the case filter it lists.
type queueState struct {
	view   queue
	saved  *cases.SavedView
	team   cases.Team
	filter cases.Filter
	// keep are the parameters that name the queue (not sort, not cursor).
	keep url.Values
}

// resolveQueue reads which queue q asks for. ENOTFOUND for an unknown view
// or a saved view the viewer may not use, EFORBIDDEN for a tab their role
// may not see, EINVALID (the list's own codes) for a bad filter or sort.
func (con *Console) resolveQueue(ctx context.Context, p auth.Principal, teams []cases.Team, q url.Values) (queueState, error) {
	st := queueState{keep: url.Values{}}
	if s := q.Get("saved"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return st, errs.Coded(errs.ENOTFOUND, "not_found", "There is no saved view %q.", s)
		}
		v, err := con.opt.Cases.View(ctx, p, id)
		if err != nil {
			return st, err
		}
		f, err := v.Filter()
		if err != nil {
			return st, err
		}
		st.saved, st.filter = &v, f
		st.view = queue{View: "saved", Label: v.Name, Empty: "No case matches this view."}
		st.keep.Set("saved", s)
		return st, con.overrideSort(&st, q)
	}
	view := q.Get("view")
	if view == "" {
		view = "open"
	}
	if view == filterTab.View {
		fq := url.Values{}
		for _, k := range []string{"kind", "state", "status", "assignee", "team", "priority", "business_line", "sla", "sort"} {
			if v := q.Get(k); v != "" {
				fq.Set(k, v)
			}
		}
		f, err := cases.ParseFilter(fq)
		if err != nil {
			return st, err
		}
		st.view, st.filter = filterTab, f
		st.keep = f.Values()
		st.keep.Del("sort")
		st.keep.Set("view", view)
		return st, nil
	}
	found := false
	for _, t := range queueTabs {
		if t.View == view {
			st.view, found = t, true
		}
	}
	if !found || (view == "team" && len(teams) == 0) {
		return st, errs.Coded(errs.ENOTFOUND, "not_found", "There is no queue called “%s”.", view)
	}
	if st.view.Perm != "" && !auth.Allowed(p.Role, st.view.Perm) {
		return st, errs.Coded(errs.EFORBIDDEN, "forbidden", "Your role may not see this queue.")
	}
	st.keep.Set("view", view)
	f := cases.Filter{Status: cases.StatusOpen, Sort: cases.SortCreatedDesc}
	switch view {
	case "mine":
		f.Assignee = p.Name
	case "team":
		st.team = teams[0]
		for _, t := range teams {
			if string(t) == q.Get("team") {
				st.team = t
			}
		}
		f.Team = st.team
		st.keep.Set("team", string(st.team))
	case "unassigned":
		f.Assignee = "none"
	case "breached":
		f.SLA, f.Sort = cases.SLABreached, cases.SortSLA
	case "due_soon":
		f.SLA, f.Sort = cases.SLADueSoon, cases.SortSLA
	}
	st.filter = f
	return st, con.overrideSort(&st, q)
}

// overrideSort applies ?sort= over the queue's own order.
func (con *Console) overrideSort(st *queueState, q url.Values) error {
	if s := q.Get("sort"); s != "" {
		o, err := cases.ParseSort(s)
		if err != nil {
			return err
		}
		st.filter.Sort = o
	}
	return nil
}

// queryOf is the URL query of st in its current sort (no cursor).
func (st queueState) query() url.Values {
	q := url.Values{}
	for k, vs := range st.keep {
		q[k] = vs
	}
	if st.filter.Sort != "" {
		q.Set("sort", string(st.filter.Sort))
	}
	return q
}

// queues is GET /: the case queues, one filter per tab (built-in, saved
// views, or a filter built on the page), sortable, keyset-paged.
func (con *Console) queues(c echo.Context) error {
	notice := decidedNotices[c.QueryParam("decided")]
	if c.QueryParam("deleted") == "view" {
		notice = "The saved view was deleted."
	}
	return con.renderQueue(c, http.StatusOK, c.QueryParams(), nil, notice, nil)
}

// showQueue renders queue view with status; failure (from a decision on
// the approvals view) is shown inline by the API's code.
func (con *Console) showQueue(c echo.Context, status int, view string, failure error, notice string) error {
	return con.renderQueue(c, status, url.Values{"view": {view}}, failure, notice, nil)
}

// renderQueue renders the queue q names with status, failure inline,
// notice, and the results of a bulk action above it.
func (con *Console) renderQueue(c echo.Context, status int, q url.Values, failure error, notice string, results []bulkRow) error {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	if !auth.Allowed(p.Role, auth.PermCasesRead) {
		return con.renderError(c, http.StatusForbidden, "Your role may not read cases.")
	}
	pg := queuesPage{page: con.basePage(c, "Queues"), Sorts: sortOptions, Kinds: cases.Kinds(), Priorities: cases.Priorities(),
		AllTeams: cases.Teams(), EscTeams: cases.EscalationTeams(), CanWrite: auth.Allowed(p.Role, auth.PermCasesWrite),
		Results: results}
	pg.Notice = notice
	if failure != nil {
		pg.Error, pg.ErrorCode = inlineError(failure)
	}
	teams, err := con.teamsOf(c, p)
	if err != nil {
		return con.fail(c, err)
	}
	pg.Teams = teams
	st, err := con.resolveQueue(ctx, p, teams, q)
	if err != nil {
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.EINVALID {
			return con.fail(c, err)
		}
		// A bad filter or sort in the URL: the open queue, the error inline.
		pg.Error, pg.ErrorCode = inlineError(err)
		status = http.StatusBadRequest
		if st, err = con.resolveQueue(ctx, p, teams, url.Values{"view": {"open"}}); err != nil {
			return con.fail(c, err)
		}
	}
	pg.View, pg.Team, pg.Saved, pg.F, pg.Sort = st.view, st.team, st.saved, st.filter, st.filter.Sort
	if pg.Saved != nil {
		pg.Owned = pg.Saved.OwnerID == p.UserID
	}
	for _, t := range queueTabs {
		if t.View == "team" && len(teams) == 0 {
			continue
		}
		if t.Perm != "" && !auth.Allowed(p.Role, t.Perm) {
			continue
		}
		t.Href = "/?view=" + t.View
		pg.Tabs = append(pg.Tabs, t)
	}
	if st.view.View == filterTab.View {
		t := filterTab
		t.Href = "/?" + st.query().Encode()
		pg.Tabs = append(pg.Tabs, t)
	}
	if p.UserID != 0 {
		views, err := con.opt.Cases.Views(ctx, p)
		if err != nil {
			return con.fail(c, err)
		}
		for _, v := range views {
			pg.Tabs = append(pg.Tabs, queue{View: "saved-" + strconv.FormatInt(v.ID, 10), Label: v.Name,
				Href: "/?saved=" + strconv.FormatInt(v.ID, 10)})
		}
		if pg.Saved != nil {
			pg.View.View = "saved-" + strconv.FormatInt(pg.Saved.ID, 10)
		}
	}
	if st.view.View == "approvals" {
		if con.opt.Actions != nil {
			list, err := con.opt.Actions.PendingApproval(ctx, 200)
			if err != nil {
				return con.fail(c, err)
			}
			pg.Approvals = list
		}
		return con.render(c, status, "queues.html", pg)
	}
	pg.Filter = true
	for k, vs := range st.keep {
		pg.Keep = append(pg.Keep, param{k, vs[0]})
	}
	query := st.query()
	pg.Query = query.Encode()
	pg.Export = "/export/cases.csv?" + pg.Query
	pg.FilterQuery = st.filter.Values().Encode()
	list, err := con.opt.Cases.List(ctx, st.filter, httpx.PageRequest{Limit: 50, Cursor: q.Get("cursor")})
	if err != nil {
		if e, ok := errs.As(err); ok && e.Kind == errs.EINVALID {
			pg.Error, pg.ErrorCode = inlineError(err)
			return con.render(c, http.StatusBadRequest, "queues.html", pg)
		}
		return con.fail(c, err)
	}
	now, soon := con.opt.Clock.Now(), con.opt.Cases.SLAPolicy().DueSoon.D()
	emails := con.customerEmails(ctx, p, list.Data)
	seen := map[string]bool{}
	caseQuery := url.Values{"q": {pg.Query}}.Encode()
	for _, cs := range list.Data {
		cs = cases.ForViewer(p, cs)
		row := queueRow{Case: cs, SLA: slaOf(cs, now, soon), URL: "/cases/" + cs.ID + "?" + caseQuery}
		if id := cs.Links.Customer; id != nil {
			row.Customer = *id
			if e := emails[*id]; e != "" {
				row.Customer = e
			}
		}
		for _, ev := range cs.AllowedTransitions {
			if !seen[ev] {
				seen[ev] = true
				pg.Events = append(pg.Events, ev)
			}
		}
		pg.Rows = append(pg.Rows, row)
	}
	if list.NextCursor != nil {
		nq := st.query()
		nq.Set("cursor", *list.NextCursor)
		pg.Next = "/?" + nq.Encode()
	}
	return con.render(c, status, "queues.html", pg)
}

// customerEmails reads the email of each distinct linked customer from the
// mirror, best effort, when the viewer may read billing objects (the API's
// rule for customers).
func (con *Console) customerEmails(ctx context.Context, p auth.Principal, list []cases.Case) map[string]string {
	out := map[string]string{}
	if con.opt.Billing == nil || !auth.Allowed(p.Role, auth.PermBillingRead) {
		return out
	}
	var ids []string
	seen := map[string]bool{}
	for _, cs := range list {
		if id := cs.Links.Customer; id != nil && !seen[*id] {
			seen[*id] = true
			ids = append(ids, *id)
		}
	}
	emails, err := con.opt.Billing.CustomerEmails(ctx, ids)
	if err != nil {
		con.opt.Log.Warn("console: customer emails for a queue", "err", err)
		return out
	}
	return emails
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

// nextCase is GET /cases/:id/next?q=<queue query>: 303 to the case after
// :id in that queue (its filter and sort), or back to the queue after the
// last one. The queue is resolved exactly as GET / resolves it.
func (con *Console) nextCase(c echo.Context) error {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	if !auth.Allowed(p.Role, auth.PermCasesRead) {
		return con.renderError(c, http.StatusForbidden, "Your role may not read cases.")
	}
	q, err := url.ParseQuery(c.QueryParam("q"))
	if err != nil {
		q = url.Values{}
	}
	teams, err := con.teamsOf(c, p)
	if err != nil {
		return con.fail(c, err)
	}
	st, err := con.resolveQueue(ctx, p, teams, q)
	if err != nil || st.view.View == "approvals" {
		if err == nil {
			err = errs.Coded(errs.ENOTFOUND, "not_found", "The approvals inbox has no next case.")
		}
		return con.fail(c, err)
	}
	next, ok, err := con.opt.Cases.NextAfter(ctx, st.filter, c.Param("id"))
	if err != nil {
		return con.fail(c, err)
	}
	query := st.query().Encode()
	if !ok {
		return c.Redirect(http.StatusSeeOther, "/?"+query)
	}
	return c.Redirect(http.StatusSeeOther, "/cases/"+next.ID+"?"+url.Values{"q": {query}}.Encode())
}
