package cases

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/looplab/fsm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/export"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Register adds the case routes to g, the authenticated /api/v1 group:
//
//	GET   /cases                     list (filters, sort, keyset cursor)      cases:read
//	POST  /cases                     open a manual case                       cases:write
//	GET   /cases/:id                 case, linked objects, timeline           cases:read
//	GET   /cases/:id/timeline        timeline, oldest first                   cases:read
//	POST  /cases/:id/transitions     fire an event (disputes: disputes:work)  cases:write
//	POST  /cases/:id/assign          assignee and/or team                     cases:write
//	POST  /cases/:id/notes           internal note (card numbers masked)      cases:write
//	POST  /cases/:id/escalate        move to an escalation team               cases:write
//	PATCH /cases/:id                 priority, tags, business line            cases:write
//	GET   /case-kinds                every kind's lifecycle and diagram       cases:read
//	POST  /cases/bulk                one op on ≤100 cases, a result per case  cases:write
//	GET   /views, POST /views, DELETE /views/:id   saved views (views.go)     cases:read
func (s *Service) Register(g *echo.Group) {
	read := auth.Require(auth.PermCasesRead)
	write := auth.Require(auth.PermCasesWrite)
	g.GET("/cases", s.handleList, read)
	g.POST("/cases", s.handleCreate, write)
	g.GET("/cases/:id", s.handleGet, read)
	g.GET("/cases/:id/timeline", s.handleTimeline, read)
	g.POST("/cases/:id/transitions", s.handleTransition, write)
	g.POST("/cases/:id/assign", s.handleAssign, write)
	g.POST("/cases/:id/notes", s.handleNote, write)
	g.POST("/cases/:id/escalate", s.handleEscalate, write)
	g.PATCH("/cases/:id", s.handlePatch, write)
	g.GET("/case-kinds", s.handleKinds, read)
	s.registerExternal(g)
	g.POST("/cases/bulk", s.handleBulk, write)
	s.RegisterViews(g)
}

// principal returns the authenticated caller; Require has run before.
func principal(c echo.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(c.Request().Context())
	if !ok {
		return auth.Principal{}, errs.New(errs.EUNAUTHORIZED, "authentication required")
	}
	return p, nil
}

// forViewer trims a case's allowed transitions to what the caller may fire.
func forViewer(p auth.Principal, c Case) Case {
	if checkCaseAccess(p, c, true) != nil {
		c.AllowedTransitions = []string{}
	}
	return c
}

// listParams are the query parameters GET /cases accepts.
var listParams = map[string]bool{"kind": true, "state": true, "status": true, "assignee": true, "team": true,
	"priority": true, "business_line": true, "customer": true, "subject": true, "needs_attention": true, "sla": true,
	"created_after": true, "created_before": true, "sort": true, "limit": true, "cursor": true, "format": true}

// parseFilter reads the list filters, refusing unknown parameters and bad
// values (EINVALID).
// MaxFilterValueLen bounds the free-text filters (assignee, business_line,
// customer, subject): provider ids and names are far shorter.
const MaxFilterValueLen = 255

func parseFilter(c echo.Context) (Filter, error) { return ParseFilter(c.QueryParams()) }

// ParseFilter reads list filters from query parameters exactly as
// GET /cases does (limit and cursor are accepted and left to the caller),
// refusing unknown or repeated parameters (one value each: the query's
// complexity is bounded), free text over MaxFilterValueLen and bad
// values: EINVALID with the
// code of the first bad parameter (invalid_parameter, invalid_kind,
// invalid_sort, …). Saved views and the console validate with it.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, vs := range q {
		if !listParams[k] {
			return f, errs.Coded(errs.EINVALID, "invalid_parameter", "unknown query parameter %q", k)
		}
		if len(vs) > 1 {
			return f, errs.Coded(errs.EINVALID, "invalid_parameter", "query parameter %q given more than once", k)
		}
	}
	var err error
	if v := q.Get("kind"); v != "" {
		if f.Kind, err = ParseKind(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("state"); v != "" {
		known := false
		for _, lc := range lifecycles {
			if (f.Kind == "" || lc.Kind == f.Kind) && lc.HasState(v) {
				known = true
			}
		}
		if !known {
			return f, errs.Coded(errs.EINVALID, "invalid_state", "%q is not a state of %s cases", v, orAll(f.Kind))
		}
		f.State = v
	}
	if v := q.Get("status"); v != "" {
		if f.Status, err = ParseStatus(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("assignee"); v != "" {
		f.Assignee = v
	}
	if v := q.Get("team"); v != "" {
		if f.Team, err = ParseTeam(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("priority"); v != "" {
		if f.Priority, err = ParsePriority(v); err != nil {
			return f, err
		}
	}
	for _, k := range []string{"assignee", "business_line", "customer", "subject"} {
		if v := q.Get(k); utf8.RuneCountInString(v) > MaxFilterValueLen {
			return f, errs.Coded(errs.EINVALID, "invalid_parameter", "%s may be at most %d characters", k, MaxFilterValueLen)
		}
	}
	f.BusinessLine = q.Get("business_line")
	f.Customer = q.Get("customer")
	f.Subject = q.Get("subject")
	switch v := q.Get("needs_attention"); v {
	case "":
	case "true", "false":
		b := v == "true"
		f.NeedsAttention = &b
	default:
		return f, errs.Coded(errs.EINVALID, "invalid_needs_attention", "needs_attention must be true or false (got %q)", v)
	}
	switch v := SLAFilter(q.Get("sla")); v {
	case "", SLABreached, SLADueSoon:
		f.SLA = v
	default:
		return f, errs.Coded(errs.EINVALID, "invalid_sla", "sla must be breached or due_soon (got %q)", v)
	}
	for name, dst := range map[string]*time.Time{"created_after": &f.CreatedAfter, "created_before": &f.CreatedBefore} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, errs.Coded(errs.EINVALID, "invalid_"+name, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
			}
			*dst = t.UTC()
		}
	}
	if f.Sort, err = ParseSort(q.Get("sort")); err != nil {
		return f, err
	}
	return f, nil
}

func orAll(k Kind) string {
	if k == "" {
		return "any"
	}
	return string(k)
}

func (s *Service) handleList(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	f, err := parseFilter(c)
	if err != nil {
		return err
	}
	page, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	format, err := export.FormatOf(c)
	if err != nil {
		return err
	}
	if format != export.JSON {
		return export.Respond(c, format, "cases", ExportColumns, export.Pages(func(ctx context.Context, pg httpx.PageRequest) (httpx.List[Case], error) {
			l, err := s.List(ctx, f, pg)
			for i := range l.Data {
				l.Data[i] = forViewer(p, l.Data[i])
			}
			return l, err
		}))
	}
	list, err := s.List(c.Request().Context(), f, page)
	if err != nil {
		return err
	}
	for i := range list.Data {
		list.Data[i] = forViewer(p, list.Data[i])
	}
	return c.JSON(http.StatusOK, list)
}

// caseDetail is GET /cases/{id}: the case, its linked mirrored objects and
// its timeline.
type caseDetail struct {
	Case
	Linked   Linked          `json:"linked"`
	Timeline []TimelineEntry `json:"timeline"`
	// ExternalTickets are the tickets elsewhere (Zendesk, in-app
	// escalations…) the case came from or is linked to.
	ExternalTickets []ExternalTicket `json:"external_tickets"`
}

func (s *Service) handleGet(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	cs, err := s.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	tl, err := s.st.timeline(ctx, s.db.Gorm, cs.ID)
	if err != nil {
		return err
	}
	ext, err := s.ExternalTickets(ctx, cs.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, caseDetail{Case: forViewer(p, cs), Linked: s.LinkedObjects(ctx, cs), Timeline: tl, ExternalTickets: ext})
}

func (s *Service) handleTimeline(c echo.Context) error {
	tl, err := s.Timeline(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"data": tl})
}

// linksRequest are the links an agent may give a manual case.
type linksRequest struct {
	Customer     *string `json:"customer"`
	Subscription *string `json:"subscription"`
	Invoice      *string `json:"invoice"`
	Charge       *string `json:"charge"`
	Dispute      *string `json:"dispute"`
	Refund       *string `json:"refund"`
}

// createRequest is the body of POST /cases.
type createRequest struct {
	Kind         string       `json:"kind"`
	Channel      string       `json:"channel"`
	Priority     *string      `json:"priority"`
	Title        string       `json:"title"`
	Description  *string      `json:"description"`
	Links        linksRequest `json:"links"`
	BusinessLine *string      `json:"business_line"`
	Tags         []string     `json:"tags"`
}

func (s *Service) handleCreate(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req createRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	kind, err := ParseKind(req.Kind)
	if err != nil {
		return err
	}
	in := ManualCase{Kind: kind, Channel: Channel(req.Channel), Title: req.Title, Description: deref(req.Description),
		BusinessLine: deref(req.BusinessLine), Tags: req.Tags,
		Links: Links{Customer: req.Links.Customer, Subscription: req.Links.Subscription, Invoice: req.Links.Invoice,
			Charge: req.Links.Charge, Dispute: req.Links.Dispute, Refund: req.Links.Refund}}
	if req.Priority != nil {
		if in.Priority, err = ParsePriority(*req.Priority); err != nil {
			return err
		}
	}
	cs, err := s.OpenManual(c.Request().Context(), p, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, forViewer(p, cs))
}

// transitionRequest is the body of POST /cases/{id}/transitions.
type transitionRequest struct {
	Event   string `json:"event"`
	Reason  string `json:"reason"`
	Version *int64 `json:"version"`
}

func (s *Service) handleTransition(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req transitionRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Event) == "" {
		return errs.Coded(errs.EINVALID, "invalid_event", "event is required")
	}
	cs, err := s.Transition(c.Request().Context(), p, c.Param("id"), TransitionRequest{Event: req.Event, Reason: req.Reason, Version: req.Version})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, forViewer(p, cs))
}

// optString is a JSON field that may be absent, null or a string.
type optString struct {
	Set   bool
	Value *string
}

// UnmarshalJSON records that the field was present; null leaves Value nil.
func (o *optString) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	o.Value = &s
	return nil
}

// assignRequest is the body of POST /cases/{id}/assign.
type assignRequest struct {
	Assignee optString `json:"assignee"`
	Team     *string   `json:"team"`
}

func (s *Service) handleAssign(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req assignRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	ar := AssignRequest{Assignee: req.Assignee.Value, Unassign: req.Assignee.Set && req.Assignee.Value == nil}
	if req.Team != nil {
		t, err := ParseTeam(*req.Team)
		if err != nil {
			return err
		}
		ar.Team = &t
	}
	cs, err := s.Assign(c.Request().Context(), p, c.Param("id"), ar)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, forViewer(p, cs))
}

// noteRequest is the body of POST /cases/{id}/notes.
type noteRequest struct {
	Body string `json:"body"`
}

func (s *Service) handleNote(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req noteRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	e, err := s.AddNote(c.Request().Context(), p, c.Param("id"), req.Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}

// escalateRequest is the body of POST /cases/{id}/escalate.
type escalateRequest struct {
	Team   string `json:"team"`
	Reason string `json:"reason"`
}

func (s *Service) handleEscalate(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req escalateRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	cs, err := s.Escalate(c.Request().Context(), p, c.Param("id"), Team(req.Team), req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, forViewer(p, cs))
}

// patchRequest is the body of PATCH /cases/{id}.
type patchRequest struct {
	Priority     *string   `json:"priority"`
	Tags         *[]string `json:"tags"`
	BusinessLine optString `json:"business_line"`
	// NeedsAttention false clears the flag (a person has looked).
	NeedsAttention *bool  `json:"needs_attention"`
	Version        *int64 `json:"version"`
}

func (s *Service) handlePatch(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req patchRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	ur := UpdateRequest{Tags: req.Tags, Version: req.Version, BusinessLine: req.BusinessLine.Value,
		ClearBusinessLine: req.BusinessLine.Set && req.BusinessLine.Value == nil, NeedsAttention: req.NeedsAttention}
	if req.Priority != nil {
		pr, err := ParsePriority(*req.Priority)
		if err != nil {
			return err
		}
		ur.Priority = &pr
	}
	cs, err := s.Update(c.Request().Context(), p, c.Param("id"), ur)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, forViewer(p, cs))
}

// kindInfo describes one kind for clients: what GET /case-kinds serves.
type kindInfo struct {
	Kind            Kind              `json:"kind"`
	Team            Team              `json:"team"`
	DefaultPriority Priority          `json:"default_priority"`
	Manual          bool              `json:"manual"`
	Initial         string            `json:"initial"`
	InquiryInitial  string            `json:"inquiry_initial,omitempty"`
	States          []string          `json:"states"`
	Closed          map[string]string `json:"closed_states"`
	Events          []eventInfo       `json:"events"`
	Mermaid         string            `json:"mermaid"`
	// SLARoles gives every state its SLA role: running, paused or stopped.
	SLARoles map[string]SLARole `json:"sla_roles"`
}

type eventInfo struct {
	Name   string   `json:"name"`
	From   []string `json:"from"`
	To     string   `json:"to"`
	Manual bool     `json:"manual"`
}

func (s *Service) handleKinds(c echo.Context) error {
	out := make([]kindInfo, 0, len(lifecycles))
	for _, lc := range lifecycles {
		ki := kindInfo{Kind: lc.Kind, Team: lc.Team, DefaultPriority: lc.DefaultPriority, Initial: lc.Initial,
			InquiryInitial: lc.InquiryInitial, States: lc.States(), Closed: lc.Closed}
		ki.SLARoles = lc.slaRoles()
		for _, k := range ManualKinds() {
			ki.Manual = ki.Manual || k == lc.Kind
		}
		for _, e := range lc.Events {
			from := append([]string(nil), e.Src...)
			sort.Strings(from)
			ki.Events = append(ki.Events, eventInfo{Name: e.Name, From: from, To: e.Dst, Manual: lc.IsManual(e.Name)})
		}
		d, err := lc.Diagram()
		if err != nil {
			return err
		}
		ki.Mermaid = d
		out = append(out, ki)
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

// Diagram renders the kind's lifecycle as a Mermaid state diagram (from its
// initial state), its states styled by SLA role (see slaClasses).
func (lc Lifecycle) Diagram() (string, error) {
	d, err := fsm.VisualizeWithType(lc.machine(lc.Initial), fsm.MERMAID)
	if err != nil {
		return "", err
	}
	return d + lc.slaClasses(), nil
}

// ForViewer returns c as principal p may act on it: its allowed transitions
// emptied when p may not fire them (the API's rule, for the console).
func ForViewer(p auth.Principal, c Case) Case { return forViewer(p, c) }
