package web

import (
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// routeAccess is the access decision for every console route: public, any
// signed-in user (perm ""), or a permission of the API's table. A route
// the console registers without an entry here fails TestEveryRouteDecided,
// so no screen ships without someone deciding who may see it.
var routeAccess = map[string]struct {
	public bool
	perm   auth.Permission
}{
	"GET /static/*":                        {public: true},
	"GET /favicon.ico":                     {public: true},
	"GET /login":                           {public: true},
	"POST /login":                          {public: true},
	"POST /logout":                         {},
	"GET /":                                {},
	"GET /cases/:id":                       {perm: auth.PermCasesRead},
	"GET /cases/:id/fragment":              {perm: auth.PermCasesRead},
	"POST /cases/:id/transitions":          {perm: auth.PermCasesWrite},
	"POST /cases/:id/notes":                {perm: auth.PermCasesWrite},
	"POST /cases/:id/assign":               {perm: auth.PermCasesWrite},
	"POST /actions/:id/decide":             {perm: auth.PermActionsApprove},
	"GET /?view=approvals":                 {perm: auth.PermActionsApprove},
	"GET /login/oidc":                      {public: true},
	"GET /login/oidc/callback":             {public: true},
	"GET /password/set":                    {public: true},
	"POST /password/set":                   {public: true},
	"GET /admin":                           {},
	"GET /admin/users":                     {perm: auth.PermUsersManage},
	"POST /admin/users":                    {perm: auth.PermUsersManage},
	"POST /admin/users/:id/role":           {perm: auth.PermUsersManage},
	"POST /admin/users/:id/active":         {perm: auth.PermUsersManage},
	"POST /admin/users/:id/link":           {perm: auth.PermUsersManage},
	"POST /admin/users/:id/scope":          {perm: auth.PermUsersManage},
	"GET /admin/tokens":                    {perm: auth.PermTokensManage},
	"POST /admin/tokens":                   {perm: auth.PermTokensManage},
	"POST /admin/tokens/:id/revoke":        {perm: auth.PermTokensManage},
	"GET /admin/webhooks":                  {perm: auth.PermWebhookEventsRead},
	"GET /admin/webhooks/:id":              {perm: auth.PermWebhookEventsRead},
	"POST /admin/webhooks/:id/replay":      {perm: auth.PermWebhookEventsReplay},
	"GET /admin/policy":                    {perm: auth.PermPolicyRead},
	"GET /admin/audit":                     {perm: auth.PermAuditRead},
	"POST /cases/:id/actions":              {perm: auth.PermActionsRequest},
	"POST /cases/:id/actions/preview":      {perm: auth.PermActionsRequest},
	"GET /cases/:id/next":                  {perm: auth.PermCasesRead},
	"POST /cases/bulk":                     {perm: auth.PermCasesWrite},
	"POST /views":                          {perm: auth.PermCasesRead},
	"POST /views/:id/delete":               {perm: auth.PermCasesRead},
	"GET /cases/:id/evidence":              {perm: auth.PermFactsRead},
	"GET /cases/:id/evidence/packet.pdf":   {perm: auth.PermFactsRead},
	"POST /cases/:id/evidence":             {perm: auth.PermDisputesWork},
	"POST /cases/:id/evidence/assemble":    {perm: auth.PermDisputesWork},
	"POST /cases/:id/evidence/actions":     {perm: auth.PermDisputesWork},
	"GET /customers":                       {perm: auth.PermBillingRead},
	"GET /customers/:id":                   {perm: auth.PermBillingRead},
	"POST /customers/:id/erase":            {perm: auth.PermCustomersErase},
	"GET /admin/notifications":             {perm: auth.PermNotificationsRead},
	"POST /admin/notifications/:id/replay": {perm: auth.PermNotificationsReplay},
	"GET /export/cases.csv":                {perm: auth.PermCasesRead},
	"GET /export/audit.csv":                {perm: auth.PermAuditRead},
	"GET /export/webhook-events.csv":       {perm: auth.PermWebhookEventsRead},
	"GET /reports":                         {perm: auth.PermReportsRead},
	"GET /reports/export":                  {perm: auth.PermReportsRead},
}

var allRoles = []auth.Role{auth.RoleAgent, auth.RoleAnalyst, auth.RoleSupervisor, auth.RoleAdmin}

// consoleRoutes lists "METHOD path" of every route Register adds.
func consoleRoutes(t *testing.T, d *db.DB) []string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	con, err := New(Options{DB: d, Clock: clock.NewManual(time.Now()), Log: log, Users: auth.NewUserStore(d, clock.System{}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	e := httpx.New(httpx.Options{Logger: log})
	before := map[string]bool{}
	for _, r := range e.Routes() {
		before[r.Method+" "+r.Path] = true
	}
	con.Register(e)
	var out []string
	for _, r := range e.Routes() {
		k := r.Method + " " + r.Path
		if before[k] || r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Every route has an access decision, and every decision names a route
// (a renamed route must be re-decided, not silently dropped).
func TestEveryRouteDecided(t *testing.T) {
	t.Parallel()
	d := dbtest.Migrate(t, dbtest.Open(t, db.SQLite))
	routes := consoleRoutes(t, d)
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r] = true
		if _, ok := routeAccess[r]; !ok {
			t.Errorf("console route %q has no access decision in routeAccess", r)
		}
	}
	for k := range routeAccess {
		base, _, _ := strings.Cut(strings.Split(k, "?")[0], "#")
		if !seen[base] {
			t.Errorf("routeAccess names %q, which the console does not register", k)
		}
	}
}

// Walks every console route logged out, without CSRF, and as each role
// the route's permission excludes: each answer refuses and carries none of
// the case's data.
func TestEveryRouteRefusesWhoMayNot(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		owner := en.user("own@example.com", "Owner", auth.RoleSupervisor)
		cs := openCase(t, en, owner, "Marker-Title-7731")
		const marker = "Marker-Title-7731"
		for _, r := range allRoles {
			en.user(string(r)+"@example.com", "User "+string(r), r)
		}
		target := func(path string) string {
			path = strings.ReplaceAll(path, ":id", cs.ID)
			return path
		}
		check := func(t *testing.T, what string, p resp, statuses ...int) {
			t.Helper()
			ok := false
			for _, s := range statuses {
				ok = ok || p.status == s
			}
			if !ok {
				t.Errorf("%s: status %d, want one of %v", what, p.status, statuses)
			}
			if strings.Contains(p.body, marker) || strings.Contains(p.body, cs.ID) && p.status != http.StatusNotFound {
				t.Errorf("%s: the answer carries the case's data", what)
			}
		}
		keys := make([]string, 0, len(routeAccess))
		for k := range routeAccess {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			acc := routeAccess[k]
			if acc.public {
				continue
			}
			method, rest, _ := strings.Cut(k, " ")
			path, _, _ := strings.Cut(target(rest), "#")
			path = strings.TrimSuffix(path, "*")
			out := en.browser()
			if method == http.MethodGet {
				p := out.get(path)
				check(t, "logged out "+k, p, http.StatusSeeOther)
				if loc := p.header.Get("Location"); loc != "/login" {
					t.Errorf("logged out %s: sent to %q, want /login", k, loc)
				}
			} else {
				check(t, "logged out "+k, out.post(path, url.Values{"csrf": {"x"}, "event": {"x"}, "body": {"x"}}), http.StatusUnauthorized)
				in := en.browser()
				in.mustLogin("own@example.com")
				check(t, "no CSRF "+k, in.post(path, url.Values{"event": {"x"}, "body": {"x"}, "decision": {"approve"}}), http.StatusForbidden)
			}
			if acc.perm == "" {
				continue
			}
			for _, role := range allRoles {
				if auth.Allowed(role, acc.perm) {
					continue
				}
				b := en.browser()
				b.mustLogin(string(role) + "@example.com")
				who := string(role) + " " + k
				if method == http.MethodGet {
					check(t, who, b.get(path), http.StatusForbidden, http.StatusNotFound)
					continue
				}
				tok := csrfOf(t, b.get("/"))
				check(t, who, b.post(path, url.Values{"csrf": {tok}, "event": {"x"}, "body": {"x"}, "decision": {"approve"}, "reason": {"x"}}),
					http.StatusForbidden, http.StatusNotFound)
			}
		}
	})
}
