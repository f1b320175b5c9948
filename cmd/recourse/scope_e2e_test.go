package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// What a route does with a scope (README "Scoping"). Every route of the
// router, API and console, has one decision in scopeRoutes; a route added
// without one, or a decision left for a route that is gone, fails
// TestScopeRouteTableIsComplete.
type scopeKind string

const (
	// public: no principal (probes, sign-in, signed webhooks, static files).
	scopePublic scopeKind = "public"
	// open: signed in, but no customer data (the case vocabulary, policy).
	scopeOpen scopeKind = "open"
	// list: lists, search, queues, exports: filtered to the scope.
	scopeList scopeKind = "list"
	// read: one object by id; out of scope answers 404 like a missing id.
	scopeRead scopeKind = "read"
	// write: an action or change on one object by id; out of scope 404 and
	// nothing changes.
	scopeWrite scopeKind = "write"
	// refused: spans every customer (inbox, audit, events, notifications,
	// dispute stats, users, tokens, erasure): 403 scope_restricted.
	scopeRefused scopeKind = "refused"
	// own: the caller's own things (saved views), no customer data.
	scopeOwn scopeKind = "own"
	// report: an aggregate computed over the scope's cases (and their
	// customers' billing rows): every report, grouped by business line and
	// by team, names none of B's (apac) and still counts A's (emea), and
	// the volume report opens exactly the cases the caller's own case list
	// holds, fewer than an unrestricted admin's.
	scopeReport scopeKind = "report"
)

// scopeRoute is the decision for one route: what it does with a scope, the
// kind of object its :id names, the permission a role needs (BFLA; "" for
// any signed-in role) and, for writes, a body that would succeed in scope.
type scopeRoute struct {
	kind scopeKind
	obj  string // case, customer, subscription, invoice, charge, refund, dispute, efw, action, ticket
	perm auth.Permission
	body map[string]any
	// form is a console write's form (csrf added).
	form url.Values
	// showsA: the scoped caller must see A here (the filter is not empty).
	showsA bool
	// note says why, where the decision is not obvious.
	note string
}

var scopeRoutes = map[string]scopeRoute{
	// --- probes, documents, doors ---
	"GET /healthz":                       {kind: scopePublic},
	"GET /readyz":                        {kind: scopePublic},
	"GET /metrics":                       {kind: scopePublic, note: "counts by kind and status, no ids"},
	"GET /api/v1/openapi.json":           {kind: scopePublic},
	"POST /webhooks/stripe":              {kind: scopePublic, note: "signed by the provider, no user"},
	"POST /webhooks/escalations/:source": {kind: scopePublic, note: "signed by the source, no user"},
	"GET /static/*":                      {kind: scopePublic},
	"GET /favicon.ico":                   {kind: scopePublic},
	"GET /login":                         {kind: scopePublic},
	"POST /login":                        {kind: scopePublic},
	"GET /login/oidc":                    {kind: scopePublic},
	"GET /login/oidc/callback":           {kind: scopePublic},
	"GET /password/set":                  {kind: scopePublic},
	"POST /password/set":                 {kind: scopePublic},
	"POST /logout":                       {kind: scopeOwn, note: "ends the caller's own session; walked last"},
	"GET /api/v1/case-kinds":             {kind: scopeOpen, perm: auth.PermCasesRead},
	"GET /api/v1/policy":                 {kind: scopeOpen, perm: auth.PermPolicyRead},
	"GET /api/v1/policies":               {kind: scopeOpen, perm: auth.PermPolicyRead, note: "the merchant's terms, no customer data"},
	"GET /api/v1/policies/:key/:version": {kind: scopeOpen, perm: auth.PermPolicyRead},
	"POST /api/v1/policies":              {kind: scopeOpen, perm: auth.PermPolicyDocsWrite, body: map[string]any{"key": "terms", "version": "scope-2", "title": "Terms", "body": "Be nice.", "effective_at": "2026-01-01T00:00:00Z"}},
	"GET /admin/policy":                  {kind: scopeOpen, perm: auth.PermPolicyRead},
	"GET /admin":                         {kind: scopeOpen, note: "lists the admin screens the caller may open"},

	// --- cases (API) ---
	"GET /api/v1/cases":                            {kind: scopeList, perm: auth.PermCasesRead, showsA: true},
	"POST /api/v1/cases":                           {kind: scopeWrite, obj: "customer", perm: auth.PermCasesWrite, body: map[string]any{"kind": "billing_inquiry", "channel": "email", "title": "Scope walk", "business_line": "emea"}, note: "a new case must be in scope, and so must its customer"},
	"GET /api/v1/cases/:id":                        {kind: scopeRead, obj: "case", perm: auth.PermCasesRead},
	"GET /api/v1/cases/:id/timeline":               {kind: scopeRead, obj: "case", perm: auth.PermCasesRead},
	"POST /api/v1/cases/:id/transitions":           {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, body: map[string]any{"event": "start_review", "reason": "scope walk"}},
	"POST /api/v1/cases/:id/assign":                {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, body: map[string]any{"assignee": "walker"}},
	"POST /api/v1/cases/:id/notes":                 {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, body: map[string]any{"body": "scope walk"}},
	"POST /api/v1/cases/:id/escalate":              {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, body: map[string]any{"team": "finance", "reason": "scope walk"}},
	"PATCH /api/v1/cases/:id":                      {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, body: map[string]any{"priority": "urgent"}},
	"POST /api/v1/cases/bulk":                      {kind: scopeWrite, obj: "bulk", perm: auth.PermCasesWrite, body: map[string]any{"op": "assign", "assignee": "walker"}, note: "out-of-scope ids answer not_found per case, like unknown ids"},
	"POST /api/v1/cases/:id/external-tickets":      {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, body: map[string]any{"system": "zendesk", "ticket_id": "scope-walk-1"}},
	"GET /api/v1/external-tickets/:system/:ticket": {kind: scopeRead, obj: "ticket", perm: auth.PermCasesRead},
	"GET /api/v1/views":                            {kind: scopeOwn, perm: auth.PermCasesRead},
	"POST /api/v1/views":                           {kind: scopeOwn, perm: auth.PermCasesRead, body: map[string]any{"name": "walk", "filters": map[string]any{"team": "disputes"}}},
	"DELETE /api/v1/views/:id":                     {kind: scopeOwn, perm: auth.PermCasesRead},

	// --- disputes workbench and facts ---
	"GET /api/v1/cases/:id/evidence":            {kind: scopeRead, obj: "dispute_case", perm: auth.PermDisputesWork},
	"PATCH /api/v1/cases/:id/evidence":          {kind: scopeWrite, obj: "dispute_case", perm: auth.PermDisputesWork, body: map[string]any{"fields": map[string]any{"product_description": "scope walk"}}},
	"POST /api/v1/cases/:id/evidence/assemble":  {kind: scopeWrite, obj: "dispute_case", perm: auth.PermDisputesWork},
	"GET /api/v1/cases/:id/evidence/packet.pdf": {kind: scopeRead, obj: "dispute_case", perm: auth.PermDisputesWork},
	"GET /api/v1/customers/:id/facts":           {kind: scopeRead, obj: "customer", perm: auth.PermFactsRead},
	"POST /api/v1/customers/:id/facts":          {kind: scopeWrite, obj: "customer", perm: auth.PermFactsWrite, body: map[string]any{"facts": []map[string]any{{"id": "walk-1", "kind": "login", "occurred_at": "2026-01-01T00:00:00Z", "ip": "203.0.113.9"}}}},
	"GET /api/v1/disputes/stats":                {kind: scopeRefused, perm: auth.PermDisputesStats, note: "aggregates over the whole desk"},

	// --- actions ---
	"POST /api/v1/cases/:id/actions":         {kind: scopeWrite, obj: "dispute_case", perm: auth.PermActionsRequest, body: map[string]any{"type": "accept_dispute", "reason": "scope walk"}},
	"POST /api/v1/cases/:id/actions/preview": {kind: scopeWrite, obj: "dispute_case", perm: auth.PermActionsRequest, body: map[string]any{"type": "accept_dispute", "reason": "scope walk"}},
	"GET /api/v1/cases/:id/actions":          {kind: scopeRead, obj: "case", perm: auth.PermCasesRead},
	"GET /api/v1/actions/:id":                {kind: scopeRead, obj: "action", perm: auth.PermCasesRead},
	"POST /api/v1/actions/:id/approve":       {kind: scopeWrite, obj: "action", perm: auth.PermActionsApprove, body: map[string]any{"reason": "scope walk"}},
	"POST /api/v1/actions/:id/reject":        {kind: scopeWrite, obj: "action", perm: auth.PermActionsApprove, body: map[string]any{"reason": "scope walk"}},

	// --- the billing mirror ---
	"GET /api/v1/customers":                {kind: scopeList, obj: "search", perm: auth.PermBillingRead, showsA: true},
	"GET /api/v1/customers/:id":            {kind: scopeRead, obj: "customer", perm: auth.PermBillingRead},
	"GET /api/v1/customers/:id/timeline":   {kind: scopeRead, obj: "customer", perm: auth.PermBillingRead},
	"GET /api/v1/subscriptions/:id":        {kind: scopeRead, obj: "subscription", perm: auth.PermBillingRead},
	"GET /api/v1/invoices/:id":             {kind: scopeRead, obj: "invoice", perm: auth.PermBillingRead},
	"GET /api/v1/charges/:id":              {kind: scopeRead, obj: "charge", perm: auth.PermBillingRead},
	"GET /api/v1/refunds/:id":              {kind: scopeRead, obj: "refund", perm: auth.PermBillingRead},
	"GET /api/v1/disputes/:id":             {kind: scopeRead, obj: "dispute", perm: auth.PermBillingRead},
	"GET /api/v1/early-fraud-warnings/:id": {kind: scopeRead, obj: "efw", perm: auth.PermBillingRead},
	"POST /api/v1/customers/:id/erase":     {kind: scopeRefused, perm: auth.PermCustomersErase, body: map[string]any{"reason": "scope walk"}, note: "erasure rewrites every case of the customer, in scope or not"},

	// --- across every customer: refused within a scope ---
	"GET /api/v1/audit":                      {kind: scopeRefused, perm: auth.PermAuditRead},
	"GET /api/v1/events":                     {kind: scopeRefused, perm: auth.PermEventsRead},
	"GET /api/v1/notifications":              {kind: scopeRefused, perm: auth.PermNotificationsRead},
	"POST /api/v1/notifications/:id/replay":  {kind: scopeRefused, perm: auth.PermNotificationsReplay},
	"GET /api/v1/webhook-events":             {kind: scopeRefused, perm: auth.PermWebhookEventsRead},
	"GET /api/v1/webhook-events/:id":         {kind: scopeRefused, perm: auth.PermWebhookEventsRead},
	"POST /api/v1/webhook-events/:id/replay": {kind: scopeRefused, perm: auth.PermWebhookEventsReplay},
	"POST /api/v1/webhook-events/replay":     {kind: scopeRefused, perm: auth.PermWebhookEventsReplay},
	"GET /api/v1/reports":                    {kind: scopeOpen, perm: auth.PermReportsRead, note: "the reports' names and parameters, no figures"},
	"GET /api/v1/reports/:name":              {kind: scopeReport, perm: auth.PermReportsRead},
	"GET /api/v1/users":                      {kind: scopeRefused, perm: auth.PermUsersManage},
	"POST /api/v1/users":                     {kind: scopeRefused, perm: auth.PermUsersManage, body: map[string]any{"email": "walk@example.com", "display_name": "Walk", "role": "agent"}},
	"GET /api/v1/users/:id":                  {kind: scopeRefused, perm: auth.PermUsersManage},
	"PATCH /api/v1/users/:id":                {kind: scopeRefused, perm: auth.PermUsersManage, body: map[string]any{"scope": map[string]any{"teams": []string{}, "business_lines": []string{}}}, note: "a scoped admin cannot widen any scope, their own included"},
	"GET /api/v1/tokens":                     {kind: scopeRefused, perm: auth.PermTokensManage},
	"POST /api/v1/tokens":                    {kind: scopeRefused, perm: auth.PermTokensManage, body: map[string]any{"user_id": 1, "name": "walk"}},
	"DELETE /api/v1/tokens/:id":              {kind: scopeRefused, perm: auth.PermTokensManage},

	// --- the console ---
	"GET /":                                {kind: scopeList, perm: auth.PermCasesRead, showsA: true},
	"GET /cases/:id":                       {kind: scopeRead, obj: "case", perm: auth.PermCasesRead},
	"GET /cases/:id/fragment":              {kind: scopeRead, obj: "case", perm: auth.PermCasesRead},
	"GET /cases/:id/next":                  {kind: scopeRead, obj: "case", perm: auth.PermCasesRead},
	"POST /cases/:id/transitions":          {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, form: url.Values{"event": {"start_review"}}},
	"POST /cases/:id/notes":                {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, form: url.Values{"body": {"scope walk"}}},
	"POST /cases/:id/assign":               {kind: scopeWrite, obj: "case", perm: auth.PermCasesWrite, form: url.Values{"assignee": {"walker"}}},
	"POST /cases/:id/actions":              {kind: scopeWrite, obj: "dispute_case", perm: auth.PermActionsRequest, form: url.Values{"type": {"accept_dispute"}, "reason": {"scope walk"}, "key": {"walk-console"}}},
	"POST /cases/:id/actions/preview":      {kind: scopeWrite, obj: "dispute_case", perm: auth.PermActionsRequest, form: url.Values{"type": {"accept_dispute"}, "reason": {"scope walk"}}},
	"POST /actions/:id/decide":             {kind: scopeWrite, obj: "action", perm: auth.PermActionsApprove, form: url.Values{"decision": {"approve"}, "reason": {"scope walk"}}},
	"GET /cases/:id/evidence":              {kind: scopeRead, obj: "dispute_case", perm: auth.PermDisputesWork},
	"POST /cases/:id/evidence":             {kind: scopeWrite, obj: "dispute_case", perm: auth.PermDisputesWork, form: url.Values{"product_description": {"scope walk"}}},
	"POST /cases/:id/evidence/actions":     {kind: scopeWrite, obj: "dispute_case", perm: auth.PermDisputesWork, form: url.Values{"type": {"stage_evidence"}}},
	"POST /cases/:id/evidence/assemble":    {kind: scopeWrite, obj: "dispute_case", perm: auth.PermDisputesWork},
	"GET /cases/:id/evidence/packet.pdf":   {kind: scopeRead, obj: "dispute_case", perm: auth.PermDisputesWork},
	"GET /customers":                       {kind: scopeList, obj: "search", perm: auth.PermBillingRead, showsA: true},
	"GET /customers/:id":                   {kind: scopeRead, obj: "customer", perm: auth.PermBillingRead},
	"POST /customers/:id/erase":            {kind: scopeRefused, perm: auth.PermCustomersErase, form: url.Values{"reason": {"scope walk"}}, note: "erasure rewrites every case of the customer, in scope or not"},
	"POST /cases/bulk":                     {kind: scopeWrite, obj: "bulk", perm: auth.PermCasesWrite, form: url.Values{"op": {"assign_me"}}},
	"POST /views":                          {kind: scopeOwn, perm: auth.PermCasesRead, form: url.Values{"name": {"walk"}, "team": {"disputes"}}},
	"POST /views/:id/delete":               {kind: scopeOwn, perm: auth.PermCasesRead},
	"GET /export/cases.csv":                {kind: scopeList, perm: auth.PermCasesRead, showsA: true},
	"GET /export/audit.csv":                {kind: scopeRefused, perm: auth.PermAuditRead},
	"GET /export/webhook-events.csv":       {kind: scopeRefused, perm: auth.PermWebhookEventsRead},
	"GET /reports":                         {kind: scopeReport, perm: auth.PermReportsRead},
	"GET /reports/export":                  {kind: scopeReport, perm: auth.PermReportsRead},
	"GET /admin/users":                     {kind: scopeRefused, perm: auth.PermUsersManage},
	"POST /admin/users":                    {kind: scopeRefused, perm: auth.PermUsersManage, form: url.Values{"email": {"walk2@example.com"}, "display_name": {"Walk"}, "role": {"agent"}}},
	"POST /admin/users/:id/role":           {kind: scopeRefused, perm: auth.PermUsersManage, form: url.Values{"role": {"admin"}}},
	"POST /admin/users/:id/active":         {kind: scopeRefused, perm: auth.PermUsersManage, form: url.Values{"active": {"false"}}},
	"POST /admin/users/:id/scope":          {kind: scopeRefused, perm: auth.PermUsersManage, form: url.Values{"teams": {""}, "business_lines": {""}}, note: "clearing a scope widens it"},
	"POST /admin/users/:id/link":           {kind: scopeRefused, perm: auth.PermUsersManage},
	"GET /admin/tokens":                    {kind: scopeRefused, perm: auth.PermTokensManage},
	"POST /admin/tokens":                   {kind: scopeRefused, perm: auth.PermTokensManage, form: url.Values{"user_id": {"1"}, "name": {"walk"}}},
	"POST /admin/tokens/:id/revoke":        {kind: scopeRefused, perm: auth.PermTokensManage},
	"GET /admin/webhooks":                  {kind: scopeRefused, perm: auth.PermWebhookEventsRead},
	"GET /admin/webhooks/:id":              {kind: scopeRefused, perm: auth.PermWebhookEventsRead},
	"POST /admin/webhooks/:id/replay":      {kind: scopeRefused, perm: auth.PermWebhookEventsReplay},
	"GET /admin/audit":                     {kind: scopeRefused, perm: auth.PermAuditRead},
	"GET /admin/notifications":             {kind: scopeRefused, perm: auth.PermNotificationsRead},
	"POST /admin/notifications/:id/replay": {kind: scopeRefused, perm: auth.PermNotificationsReplay},
}

// walkReport asks report route r (the API's /reports/:name, the console's
// /reports or /reports/export) for every report, grouped by business line
// and by team where the report can be, as JSON, CSV or the page, through
// get (the walker's client): each answer is 200, holds none of B's
// markers nor B's business line (apac), and the business-line groupings
// of the case reports show A's (emea). Then the volume report's opened
// total is the number of cases the walker's own case list holds, and less
// than an unrestricted admin's: the figures count A's cases and not B's.
func walkReport(t *testing.T, in *instance, r, walker, admin string, w scopeWorld, get func(path string) (int, string)) {
	t.Helper()
	// From a month before the earlier of now and A's dispute to two days
	// after the later (the story's clock, not now, sets when the provider
	// created the dispute: it may be ahead).
	now := time.Now().UTC()
	start, end := now, now
	if _, dp := in.do("GET", "/api/v1/disputes/"+w.objA["dispute"], admin, nil, nil); dp != nil {
		if c, err := time.Parse(time.RFC3339, fmt.Sprint(dp["created"])); err == nil {
			if c.Before(start) {
				start = c
			}
			if c.After(end) {
				end = c
			}
		}
	}
	rng := "from=" + start.AddDate(0, -1, 0).Format(time.DateOnly) + "&to=" + end.AddDate(0, 0, 2).Format(time.DateOnly) + "&interval=month"
	path := strings.SplitN(r, " ", 2)[1]
	for _, v := range []struct{ report, groupBy, wantA string }{
		{"volume", "business_line", "emea"}, {"volume", "team", ""}, {"resolution", "business_line", ""},
		{"team", "team", ""}, {"team", "agent", ""}, {"recovery", "", ""}, {"root_causes", "", ""},
		{"disputes", "business_line", "emea"}, {"disputes", "reason", ""},
	} {
		q := rng
		if v.groupBy != "" {
			q += "&group_by=" + v.groupBy
		}
		var paths []string
		switch path {
		case "/api/v1/reports/:name":
			base := "/api/v1/reports/" + v.report + "?" + q
			paths = []string{base, base + "&format=csv"}
		default:
			paths = []string{path + "?report=" + v.report + "&" + q}
		}
		for _, p := range paths {
			code, body := get(p)
			if code != 200 {
				t.Errorf("GET %s: %d %.300s", p, code, body)
				continue
			}
			if l := leaks(body, append([]string{"apac"}, w.markersB...), p); l != nil {
				t.Errorf("GET %s leaks %v", p, l)
			}
			if v.wantA != "" && !strings.Contains(body, v.wantA) {
				t.Errorf("GET %s never shows A's %s: the scope hides everything\n%.300s", p, v.wantA, body)
			}
		}
	}
	if path != "/api/v1/reports/:name" {
		return
	}
	opened := func(token string) (float64, int) {
		code, m := in.do("GET", "/api/v1/reports/volume?"+rng, token, nil, nil)
		if code != 200 {
			t.Fatalf("volume: %d %v", code, m)
		}
		_, list := in.do("GET", "/api/v1/cases?limit=100", token, nil, nil)
		return m["totals"].([]any)[0].(map[string]any)["opened"].(float64), len(list["data"].([]any))
	}
	gotW, listW := opened(walker)
	gotAdmin, listAdmin := opened(admin)
	if int(gotW) != listW || int(gotAdmin) != listAdmin || gotW >= gotAdmin || gotW == 0 {
		t.Errorf("volume opened: walker %v (lists %d), admin %v (lists %d): want the walker's own cases, fewer than all", gotW, listW, gotAdmin, listAdmin)
	}
	// Of the two disputes (A's and B's) the walker counts A's. (An
	// unrestricted answer reads whole months from the rollup, which the
	// ops loop refreshes: not compared here.)
	code, m := in.do("GET", "/api/v1/reports/disputes?"+rng, walker, nil, nil)
	if n := m["totals"].(map[string]any)["count"]; code != 200 || n != 1.0 {
		t.Errorf("disputes: walker counts %v (%d), want A's one", n, code)
	}
	if mon, _ := m["monitoring"].([]any); len(mon) != 0 {
		t.Errorf("disputes: a scoped answer holds the account's monitoring %v", mon)
	}
}

// routerRoutes builds the service as serve does and returns every
// "METHOD path" it routes (Echo's own catch-alls left out).
func routerRoutes(t *testing.T) map[string]bool {
	t.Helper()
	env := map[string]string{"RECOURSE_SQLITE_PATH": filepath.Join(t.TempDir(), "routes.db"),
		"RECOURSE_ESCALATION_SOURCES": "inapp:generic:whsec_" + "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
	cfg, err := config.Load([]string{}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newService(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	out := map[string]bool{}
	for _, r := range s.echo.Routes() {
		if !httpMethods[r.Method] || strings.HasSuffix(r.Name, "echo_route_not_found") || (strings.HasSuffix(r.Path, "/*") && r.Path != "/static/*") {
			continue
		}
		out[r.Method+" "+r.Path] = true
	}
	return out
}

// Every route of the router — API and console — has a scoping decision,
// and every decision a route.
func TestScopeRouteTableIsComplete(t *testing.T) {
	t.Parallel()
	routed := routerRoutes(t)
	var missing, stale []string
	for r := range routed {
		if _, ok := scopeRoutes[r]; !ok {
			missing = append(missing, r)
		}
	}
	for r := range scopeRoutes {
		if !routed[r] {
			stale = append(stale, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, r := range missing {
		t.Errorf("route %s has no scoping decision: add it to scopeRoutes (and enforce it)", r)
	}
	for _, r := range stale {
		t.Errorf("scopeRoutes decides %s, which the router does not serve", r)
	}
	for r, d := range scopeRoutes {
		if (d.kind == scopeRead || d.kind == scopeWrite) && d.obj == "" {
			t.Errorf("%s: a by-id decision names its object", r)
		}
		if d.kind == scopeRefused && !auth.UnscopedOnly(d.perm) {
			t.Errorf("%s is refused within a scope, but its permission %q is not unscoped-only", r, d.perm)
		}
	}
	if len(routed) < 100 {
		t.Errorf("only %d routes: is the router built as serve builds it?", len(routed))
	}
}

// scopeWorld is what the walk seeds: customer A (in the walker's scope)
// and customer B (out of it), each with a lost chargeback told by signed
// Stripe webhooks.
type scopeWorld struct {
	objA, objB map[string]string // object kind → id (case, dispute_case, customer, charge, …)
	markersB   []string          // B's ids, email, name and IP: none may appear to the walker
	markerA    string            // A's customer id: must appear where the route lists A
	emailA     string
	emailB     string
}

// seedScopeWorld posts two chargeback stories, puts A's cases on business
// line emea and B's on apac, and gives B an action, an external ticket and
// evidence facts.
func seedScopeWorld(t *testing.T, in *instance, admin string) scopeWorld {
	t.Helper()
	g := stripetest.New(91)
	start := time.Now().Add(-30 * 24 * time.Hour).UTC()
	w := scopeWorld{objA: map[string]string{}, objB: map[string]string{}}
	kinds := map[string]string{"customer": "customer", "charge": "charge", "dispute": "dispute", "invoice": "invoice",
		"subscription": "subscription", "refund": "refund", "radar.early_fraud_warning": "efw"}
	var custB map[string]any
	for i, objs := range []map[string]string{w.objA, w.objB} {
		for _, e := range g.ChargebackLost(start) {
			if e.Type == "charge.dispute.updated" || e.Type == "charge.dispute.closed" {
				continue // the dispute stays open: work remains on it
			}
			if k := kinds[fmt.Sprint(e.Object["object"])]; k != "" && objs[k] == "" {
				objs[k] = e.Object["id"].(string)
			}
			if e.Type == "customer.created" {
				if i == 0 {
					w.emailA = e.Object["email"].(string)
				} else {
					custB = e.Object
					w.emailB = e.Object["email"].(string)
				}
			}
			in.post(e)
		}
	}
	in.drained(admin)
	for i, objs := range []map[string]string{w.objA, w.objB} {
		bl := []string{"emea", "apac"}[i]
		cs := in.casesOf(admin, objs["customer"])
		if len(cs) == 0 {
			t.Fatalf("customer %s has no case", objs["customer"])
		}
		for _, c := range cs {
			id := c["id"].(string)
			if code, m := in.do("PATCH", "/api/v1/cases/"+id, admin, jsonBody(map[string]any{"business_line": bl}), nil); code != 200 {
				t.Fatalf("business line of %s: %d %v", id, code, m)
			}
			if objs["case"] == "" {
				objs["case"] = id
			}
			if c["kind"] == "dispute" && objs["dispute_case"] == "" {
				objs["dispute_case"] = id
			}
			if i == 1 {
				w.markersB = append(w.markersB, id)
			}
		}
		if objs["dispute_case"] == "" {
			t.Fatalf("customer %s has no dispute case", objs["customer"])
		}
	}
	for _, objs := range []map[string]string{w.objA, w.objB} {
		if code, m := in.do("POST", "/api/v1/cases/"+objs["dispute_case"]+"/evidence/assemble", admin, nil, nil); code != 200 {
			t.Fatalf("assemble evidence: %d %v", code, m)
		}
	}
	if code, m := in.do("POST", "/api/v1/policies", admin, jsonBody(map[string]any{"key": "terms", "version": "scope-1", "title": "Terms",
		"body": "Be nice.", "effective_at": "2026-01-01T00:00:00Z"}), nil); code != 201 && code != 200 {
		t.Fatalf("policy: %d %v", code, m)
	}
	// B's action (any action row of B), ticket and facts.
	code, a := in.do("POST", "/api/v1/cases/"+w.objB["dispute_case"]+"/actions", admin,
		jsonBody(map[string]any{"type": "stage_evidence", "reason": "seed", "params": map[string]any{}}), map[string]string{"Idempotency-Key": "seed-b"})
	if id, ok := a["id"].(string); ok && id != "" {
		w.objB["action"] = id
	} else {
		t.Logf("no action for B (%d %v): actions by id are walked with an unknown id only", code, a)
		w.objB["action"] = "act_none"
	}
	if code, m := in.do("POST", "/api/v1/cases/"+w.objB["case"]+"/external-tickets", admin,
		jsonBody(map[string]any{"system": "zendesk", "ticket_id": "b-ticket-77"}), nil); code != 201 {
		t.Fatalf("B's ticket: %d %v", code, m)
	}
	w.objB["ticket"] = "zendesk/b-ticket-77"
	// A view another person shares, whose filter names B.
	if code, m := in.do("POST", "/api/v1/views", admin, jsonBody(map[string]any{"name": "b-watch", "shared": true,
		"filters": map[string]any{"customer": w.objB["customer"]}}), nil); code != 201 {
		t.Fatalf("B's shared view: %d %v", code, m)
	}
	w.objA["ticket"] = "zendesk/a-ticket-none"
	if code, m := in.do("POST", "/api/v1/customers/"+w.objB["customer"]+"/facts", admin, jsonBody(map[string]any{"facts": []map[string]any{
		{"id": "b-login", "kind": "login", "occurred_at": start.Add(time.Hour).Format(time.RFC3339), "ip": "198.51.100.66"}}}), nil); code != 200 {
		t.Fatalf("B's facts: %d %v", code, m)
	}
	w.markerA = w.objA["customer"]
	w.markersB = append(w.markersB, w.objB["customer"], w.emailB, "198.51.100.66", w.objB["dispute"], w.objB["charge"], "b-ticket-77")
	if n, ok := custB["name"].(string); ok && len(n) > 5 {
		w.markersB = append(w.markersB, n)
	}
	return w
}

// snapshotB is B as an unrestricted admin reads it: every case, its
// timeline, the evidence draft, the facts, the action.
func snapshotB(in *instance, admin string, w scopeWorld) string {
	in.t.Helper()
	var b strings.Builder
	for _, c := range in.casesOf(admin, w.objB["customer"]) {
		id := c["id"].(string)
		for _, k := range []string{"state", "status", "version", "priority", "assignee", "team", "business_line", "updated_at", "tags"} {
			fmt.Fprintf(&b, "%s.%s=%v\n", id, k, c[k])
		}
		_, tl := in.do("GET", "/api/v1/cases/"+id+"/timeline", admin, nil, nil)
		fmt.Fprintf(&b, "%s.timeline=%d\n", id, len(fmt.Sprint(tl)))
	}
	_, ev := in.do("GET", "/api/v1/cases/"+w.objB["dispute_case"]+"/evidence", admin, nil, nil)
	fmt.Fprintf(&b, "evidence=%v\n", ev["version"])
	_, f := in.do("GET", "/api/v1/customers/"+w.objB["customer"]+"/facts", admin, nil, nil)
	fmt.Fprintf(&b, "facts=%v\n", f["facts"])
	_, a := in.do("GET", "/api/v1/actions/"+w.objB["action"], admin, nil, nil)
	fmt.Fprintf(&b, "action=%v\n", a["status"])
	return b.String()
}

// pathFor fills route's parameters with objs' ids.
func pathFor(route string, d scopeRoute, objs map[string]string) string {
	path := strings.SplitN(route, " ", 2)[1]
	switch {
	case strings.Contains(path, ":system/:ticket"):
		return strings.Replace(path, ":system/:ticket", objs["ticket"], 1)
	case strings.Contains(path, ":key/:version"):
		return strings.Replace(path, ":key/:version", "terms/scope-1", 1)
	}
	id := objs[d.obj]
	if id == "" {
		id = "zz_none"
	}
	return strings.Replace(path, ":id", id, 1)
}

// missingLike returns an id shaped like id that names nothing.
func missingLike(id string) string {
	if id == "" {
		return "zz_none"
	}
	last := id[len(id)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return id[:len(id)-1] + string(repl)
}

// leaks returns the markers body holds, ignoring the ids the request named
// itself (an error may echo the path: "no case <id>").
func leaks(body string, markers []string, asked ...string) []string {
	for _, a := range asked {
		for _, seg := range strings.FieldsFunc(a, func(r rune) bool { return r == '/' || r == '?' || r == '&' || r == '=' }) {
			if len(seg) > 6 {
				body = strings.ReplaceAll(body, seg, "")
				if u, err := url.QueryUnescape(seg); err == nil {
					body = strings.ReplaceAll(body, u, "")
				}
			}
		}
	}
	var out []string
	for _, m := range markers {
		if m != "" && strings.Contains(body, m) {
			out = append(out, m)
		}
	}
	return out
}

// consoleSession signs email in to the console and returns a client with
// its cookie and the session's CSRF token.
func consoleSession(t *testing.T, in *instance, email, password string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: apispectest.Transport(t, nil), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		resp, err := c.Get(in.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var resp *http.Response
	var err error
	// A second try: on a loaded machine a pooled connection the server
	// has just closed answers a POST with EOF, which net/http never retries.
	for try := 0; try < 2; try++ {
		m := consoleCSRF.FindStringSubmatch(get("/login"))
		if m == nil {
			t.Fatalf("no csrf on the sign-in page")
		}
		if resp, err = c.PostForm(in.url+"/login", url.Values{"csrf": {m[1]}, "email": {email}, "password": {password}}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Fatalf("sign in %s: %d", email, resp.StatusCode)
	}
	m := consoleCSRF.FindStringSubmatch(get("/customers"))
	if m == nil {
		t.Fatalf("no csrf for %s", email)
	}
	return c, m[1]
}

func consoleDo(t *testing.T, in *instance, c *http.Client, csrf, method, path string, form url.Values) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodGet {
		resp, err = c.Get(in.url + path)
	} else {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("csrf", csrf)
		resp, err = c.PostForm(in.url+path, f)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if loc := resp.Header.Get("Location"); loc != "" {
		b = append(b, "\nLocation: "+loc...) // where a redirect points is shown too
	}
	return resp.StatusCode, string(b)
}

// The scope walk (issue 12, OWASP API1 and API5): an admin limited to team
// disputes and business line emea walks every route of the API and the
// console and sees, reads and changes nothing of customer B (apac): lists,
// search, exports and console pages never show B's case ids, customer id,
// email, name or IP; every by-id read and write of B answers exactly as
// an unknown id does (404) and B is unchanged in the database; the routes
// that span every customer answer 403. Then each lower role, unscoped,
// walks every route it lacks the permission of and is refused (BFLA). A
// scope change reaches an existing token and session at once.
func TestScopeWalk(t *testing.T) {
	mock := stripemock.Start(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": mock.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin := in.token("admin")
			w := seedScopeWorld(t, in, admin)

			// The walker: an admin (every permission) limited by scope, over
			// the API (a token issued before the scope is set) and the console.
			code, u := in.do("POST", "/api/v1/users", admin, jsonBody(map[string]any{"email": "walker@example.com", "display_name": "Walker", "role": "admin"}), nil)
			if code != 201 {
				t.Fatalf("walker: %d %v", code, u)
			}
			uid := fmt.Sprint(u["id"])
			code, tk := in.do("POST", "/api/v1/tokens", admin, jsonBody(map[string]any{"user_id": u["id"], "name": "walker"}), nil)
			if code != 201 {
				t.Fatalf("walker's token: %d %v", code, tk)
			}
			walker := tk["token"].(string)
			scope := map[string]any{"scope": map[string]any{"teams": []string{"disputes"}, "business_lines": []string{"emea"}}}
			if code, m := in.do("PATCH", "/api/v1/users/"+uid, admin, jsonBody(scope), nil); code != 200 {
				t.Fatalf("scope the walker: %d %v", code, m)
			}
			withStdin("walker console pw1\n", func() {
				in.mustCLI("user", "create", "--email", "walker-console@example.com", "--name", "Walker Console", "--role", "admin", "--password-stdin")
			})
			if out := in.mustCLI("user", "scope", "walker-console@example.com", "--teams", "disputes", "--business-lines", "emea"); !strings.Contains(out, "teams=disputes business_lines=emea") {
				t.Fatalf("user scope: %q", out)
			}
			cc, csrf := consoleSession(t, in, "walker-console@example.com", "walker console pw1")

			before := snapshotB(in, admin, w)
			routes := make([]string, 0, len(scopeRoutes))
			for r := range scopeRoutes {
				routes = append(routes, r)
			}
			sort.Strings(routes)
			walked := map[scopeKind]int{}
			for _, r := range routes {
				d := scopeRoutes[r]
				method := strings.SplitN(r, " ", 2)[0]
				api := strings.Contains(r, " /api/v1/")
				if d.kind == scopePublic || r == "POST /logout" {
					continue
				}
				call := func(path string, body map[string]any, form url.Values) (int, string, string) {
					if api {
						var b []byte
						if body != nil || method != http.MethodGet && method != http.MethodDelete {
							b = jsonBody(body)
						}
						code, m := in.do(method, path, walker, b, map[string]string{"Idempotency-Key": "walk-" + path})
						return code, errCode(m), fmt.Sprint(m)
					}
					code, page := consoleDo(t, in, cc, csrf, method, path, form)
					return code, "", page
				}
				walked[d.kind]++
				switch d.kind {
				case scopeOpen, scopeOwn:
					if strings.Contains(r, ":id") {
						continue // the caller's own view, made by the POST
					}
					code, _, body := call(pathFor(r, d, w.objA), d.body, d.form)
					if code >= 400 && !(code == 409 && method == http.MethodPost) {
						t.Errorf("%s: %d, want success\n%.300s", r, code, body)
					}
					if l := leaks(body, w.markersB); l != nil {
						t.Errorf("%s leaks %v", r, l)
					}
				case scopeList:
					variants := []string{""}
					switch {
					case d.obj == "search":
						variants = []string{"?q=" + url.QueryEscape(w.emailB), "?q=" + w.objB["customer"], "?q=" + w.objB["dispute"], "?q=" + w.objB["charge"], "?q=b-ticket-77", "?q=" + url.QueryEscape(w.emailA)}
					case r == "GET /":
						variants = []string{"", "?view=open", "?view=unassigned", "?view=breached", "?view=due_soon", "?view=approvals", "?view=filter&team=disputes", "?view=filter&business_line=apac"}
					case r == "GET /api/v1/cases":
						variants = []string{"", "?format=csv", "?format=jsonl", "?customer=" + w.objB["customer"], "?subject=" + w.objB["dispute"], "?business_line=apac"}
					}
					sawA := false
					for _, v := range variants {
						path := strings.SplitN(r, " ", 2)[1] + v
						var code int
						var body string
						if api {
							code, _, body = in.raw(path, walker, nil)
						} else {
							code, body = consoleDo(t, in, cc, csrf, method, path, nil)
						}
						if code != 200 && !(code == 303 && !api) {
							t.Errorf("GET %s: %d", path, code)
						}
						if l := leaks(body, w.markersB, v); l != nil {
							t.Errorf("GET %s leaks %v", path, l)
						}
						sawA = sawA || strings.Contains(body, w.markerA) || strings.Contains(body, w.objA["case"])
					}
					if d.showsA && !sawA {
						t.Errorf("%s never shows A: the filter hides everything", r)
					}
				case scopeRead, scopeWrite:
					if d.obj == "bulk" {
						body, form := map[string]any{}, url.Values{}
						for k, v := range d.body {
							body[k] = v
						}
						for k, v := range d.form {
							form[k] = v
						}
						body["case_ids"] = []string{w.objB["case"], missingLike(w.objB["case"])}
						form["case"] = []string{w.objB["case"], missingLike(w.objB["case"])}
						code, _, out := call(strings.SplitN(r, " ", 2)[1], body, form)
						if api && code != 200 {
							t.Errorf("%s: %d %s", r, code, out)
						}
						if l := leaks(out, w.markersB, w.objB["case"]); l != nil {
							t.Errorf("%s leaks %v", r, l)
						}
						if strings.Count(out, "not_found") < 2 && api {
							t.Errorf("%s: B's case is not refused like an unknown one: %s", r, out)
						}
						continue
					}
					if r == "POST /api/v1/cases" {
						for _, links := range []map[string]any{{"customer": w.objB["customer"]}, {"charge": w.objB["charge"]}} {
							body := map[string]any{}
							for k, v := range d.body {
								body[k] = v
							}
							body["links"] = links
							code, m := in.do("POST", "/api/v1/cases", walker, jsonBody(body), nil)
							if code != 404 || errCode(m) != "not_found" {
								t.Errorf("open a case on B %v: %d %v", links, code, m)
							}
						}
						body := map[string]any{}
						for k, v := range d.body {
							body[k] = v
						}
						body["links"] = map[string]any{"customer": w.objA["customer"]}
						body["business_line"] = "apac"
						if code, m := in.do("POST", "/api/v1/cases", walker, jsonBody(body), nil); code != 400 || errCode(m) != "out_of_scope" {
							t.Errorf("open an apac case on A: %d %v", code, m)
						}
						continue
					}
					pathB := pathFor(r, d, w.objB)
					missing := map[string]string{}
					for k, v := range w.objB {
						missing[k] = missingLike(v)
					}
					missing["ticket"] = "zendesk/none-77"
					codeB, errB, bodyB := call(pathB, d.body, d.form)
					codeM, errM, _ := call(pathFor(r, d, missing), d.body, d.form)
					if codeB != 404 {
						t.Errorf("%s on B (%s): %d %.300s, want 404", r, pathB, codeB, bodyB)
					}
					if codeB != codeM || errB != errM {
						t.Errorf("%s: B answers %d %s, an unknown id %d %s: existence leaks", r, codeB, errB, codeM, errM)
					}
					if l := leaks(bodyB, w.markersB, pathB); l != nil {
						t.Errorf("%s on B leaks %v", r, l)
					}
					if d.kind == scopeRead && w.objA[d.obj] != "" && d.obj != "ticket" {
						if code, _, body := call(pathFor(r, d, w.objA), nil, nil); code != 200 && !(code == 303 && !api) {
							t.Errorf("%s on A: %d %.300s, want 200", r, code, body)
						}
					}
				case scopeReport:
					walkReport(t, in, r, walker, admin, w, func(path string) (int, string) {
						if api {
							code, _, body := in.raw(path, walker, nil)
							return code, body
						}
						return consoleDo(t, in, cc, csrf, http.MethodGet, path, nil)
					})
				case scopeRefused:
					code, ec, body := call(pathFor(r, d, w.objB), d.body, d.form)
					if code != 403 || (api && ec != "scope_restricted") {
						t.Errorf("%s: %d %s %.200s, want 403 scope_restricted", r, code, ec, body)
					}
				}
			}
			if after := snapshotB(in, admin, w); after != before {
				t.Errorf("B changed during the walk:\nbefore\n%s\nafter\n%s", before, after)
			}
			t.Logf("walked %v", walked)

			// A scope change applies to the existing token and session at once.
			if code, _ := in.do("GET", "/api/v1/cases/"+w.objB["case"], walker, nil, nil); code != 404 {
				t.Fatalf("scoped read of B: %d", code)
			}
			in.mustCLI("user", "scope", "walker@example.com", "--clear")
			if code, _ := in.do("GET", "/api/v1/cases/"+w.objB["case"], walker, nil, nil); code != 200 {
				t.Errorf("after --clear, the same token reads B: %d, want 200", code)
			}
			in.mustCLI("user", "scope", "walker@example.com", "--business-lines", "apac")
			if code, _ := in.do("GET", "/api/v1/cases/"+w.objA["case"], walker, nil, nil); code != 404 {
				t.Errorf("rescoped to apac, the token reads A: %d, want 404", code)
			}
			in.mustCLI("user", "scope", "walker-console@example.com", "--business-lines", "apac")
			if code, _ := consoleDo(t, in, cc, csrf, "GET", "/cases/"+w.objB["case"], nil); code != 200 {
				t.Errorf("rescoped to apac, the session reads B: %d, want 200", code)
			}
			if code, _ := consoleDo(t, in, cc, csrf, "GET", "/cases/"+w.objA["case"], nil); code != 404 {
				t.Errorf("rescoped to apac, the session reads A: %d, want 404", code)
			}

			// Handing a case out of one's scope is allowed, and it then leaves
			// the view (the walker is on apac now: B's case is theirs).
			if code, m := in.do("POST", "/api/v1/cases/"+w.objB["case"]+"/escalate", walker, jsonBody(map[string]any{"team": "finance", "reason": "hand-off"}), nil); code != 200 {
				t.Errorf("hand B's case to finance: %d %v", code, m)
			}
			in.mustCLI("user", "scope", "walker@example.com", "--teams", "disputes", "--business-lines", "apac")
			if code, _ := in.do("GET", "/api/v1/cases/"+w.objB["case"], walker, nil, nil); code != 404 {
				t.Errorf("the case handed to finance is still in a disputes scope: %d", code)
			}

			// BFLA: each lower role, unscoped, on every route it lacks.
			for _, role := range []auth.Role{auth.RoleAgent, auth.RoleAnalyst, auth.RoleSupervisor} {
				tok := in.token(string(role))
				email := "bfla-" + string(role) + "@example.com"
				withStdin("bfla password 12\n", func() {
					in.mustCLI("user", "create", "--email", email, "--name", "BFLA "+string(role), "--role", string(role), "--password-stdin")
				})
				rc, rcsrf := consoleSession(t, in, email, "bfla password 12")
				refused := 0
				for _, r := range routes {
					d := scopeRoutes[r]
					if d.perm == "" || auth.Allowed(role, d.perm) || d.kind == scopePublic {
						continue
					}
					method := strings.SplitN(r, " ", 2)[0]
					path := pathFor(r, d, w.objA)
					var code int
					var body string
					if strings.Contains(r, " /api/v1/") {
						var b []byte
						if method != http.MethodGet && method != http.MethodDelete {
							b = jsonBody(d.body)
						}
						var m map[string]any
						code, m = in.do(method, path, tok, b, map[string]string{"Idempotency-Key": "bfla-" + path})
						body = fmt.Sprint(m)
					} else {
						code, body = consoleDo(t, in, rc, rcsrf, method, path, d.form)
					}
					if code != 403 {
						t.Errorf("%s as %s: %d %.200s, want 403 (needs %s)", r, role, code, body, d.perm)
					}
					refused++
				}
				t.Logf("%s refused on %d routes", role, refused)
			}
			if after := snapshotB(in, admin, w); after == "" {
				t.Error("no snapshot")
			}
		})
	}
}
