package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// adminScreen is one admin screen and the API permission that opens it:
// the console shows a screen to exactly the roles the API serves its data to.
type adminScreen struct {
	Path, Label, About string
	Perm               auth.Permission
}

var adminScreens = []adminScreen{
	{"/admin/users", "Users", "People who work in Recourse: roles, deactivation, one-time password links.", auth.PermUsersManage},
	{"/admin/tokens", "API tokens", "Tokens for integrations and scripts: create one (its secret is shown once) or revoke it.", auth.PermTokensManage},
	{"/admin/webhooks", "Webhook events", "The webhook inbox: what arrived, what failed, dead letters to replay.", auth.PermWebhookEventsRead},
	{"/admin/notifications", "Notifications", "Slack and webhook notifications: what was delivered, what failed and why, replay what failed.", auth.PermNotificationsRead},
	{"/admin/policy", "Policy in force", "The actions and SLA policy this server runs with, and who may do what.", auth.PermPolicyRead},
	{"/admin/audit", "Audit log", "Who did what, when, to which case or object.", auth.PermAuditRead},
}

// adminScreensFor returns the screens p may open (by role, and within a
// scope only those a scope can narrow).
func adminScreensFor(p auth.Principal) []adminScreen {
	var out []adminScreen
	for _, s := range adminScreens {
		if auth.Permits(p, s.Perm) {
			out = append(out, s)
		}
	}
	return out
}

func init() {
	// The layout's nav shows the Admin link to roles with at least one
	// admin screen.
	funcs["adminNav"] = func(p *auth.Principal) bool { return p != nil && len(adminScreensFor(*p)) > 0 }
	funcs["adminScreens"] = func(p *auth.Principal) []adminScreen {
		if p == nil {
			return nil
		}
		return adminScreensFor(*p)
	}
}

// registerAdmin adds the admin screens to the signed-in group s. Each
// route asks for the API's permission before its handler runs, so a role
// without it never gets the data.
func (con *Console) registerAdmin(s *echo.Group) {
	s.GET("/admin", con.adminIndex)
	users, tokens := con.require(auth.PermUsersManage), con.require(auth.PermTokensManage)
	s.GET("/admin/users", con.adminUsers, users)
	s.POST("/admin/users", con.adminCreateUser, users)
	s.POST("/admin/users/:id/role", con.adminUserRole, users)
	s.POST("/admin/users/:id/active", con.adminUserActive, users)
	s.POST("/admin/users/:id/link", con.adminUserLink, users)
	s.POST("/admin/users/:id/scope", con.adminUserScope, users)
	s.GET("/admin/tokens", con.adminTokens, tokens)
	s.POST("/admin/tokens", con.adminCreateToken, tokens)
	s.POST("/admin/tokens/:id/revoke", con.adminRevokeToken, tokens)
	s.GET("/admin/webhooks", con.adminWebhooks, con.require(auth.PermWebhookEventsRead))
	s.GET("/admin/webhooks/:id", con.adminWebhook, con.require(auth.PermWebhookEventsRead))
	s.POST("/admin/webhooks/:id/replay", con.adminReplay, con.require(auth.PermWebhookEventsReplay))
	s.GET("/admin/policy", con.adminPolicy, con.require(auth.PermPolicyRead))
	s.GET("/admin/audit", con.adminAudit, con.require(auth.PermAuditRead))
	s.GET("/admin/notifications", con.adminNotifications, con.require(auth.PermNotificationsRead))
	s.POST("/admin/notifications/:id/replay", con.adminReplayNotification, con.require(auth.PermNotificationsReplay))
	con.registerExports(s)
}

// require renders the 403 page, and runs nothing else, unless the
// signed-in role has perm.
func (con *Console) require(perm auth.Permission) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, _ := auth.FromContext(c.Request().Context())
			if !auth.Allowed(p.Role, perm) {
				return con.renderError(c, http.StatusForbidden, "Your role ("+string(p.Role)+") may not open this page: it needs "+string(perm)+".")
			}
			if !auth.Permits(p, perm) {
				return con.renderError(c, http.StatusForbidden, "Your access is limited to "+p.Scope.String()+"; this page spans every team and business line.")
			}
			return next(c)
		}
	}
}

type adminIndexPage struct {
	page
	Screens []adminScreen
}

// adminIndex is GET /admin: the screens the role may open.
func (con *Console) adminIndex(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	screens := adminScreensFor(p)
	if len(screens) == 0 {
		return con.renderError(c, http.StatusForbidden, "Your role ("+string(p.Role)+") has no admin screens.")
	}
	return con.render(c, http.StatusOK, "admin_index.html", adminIndexPage{page: con.basePage(c, "Admin"), Screens: screens})
}

// statusOf is the HTTP status the API answers err with.
func statusOf(err error) int {
	if e, ok := errs.As(err); ok {
		return httpx.StatusOf(e.Kind)
	}
	return http.StatusInternalServerError
}

// withError puts err on pg inline (the API's code and message) and returns
// the status to render with; internal errors are logged, not shown.
func (con *Console) withError(c echo.Context, pg *page, err error) int {
	pg.Error, pg.ErrorCode = inlineError(err)
	status := statusOf(err)
	if status >= 500 {
		con.opt.Log.Error("console admin request failed", "path", c.Request().URL.Path, "err", err)
	}
	return status
}

// adminPage returns a paging request from ?cursor= (the API's cursors).
func adminPageRequest(c echo.Context, limit int) httpx.PageRequest {
	return httpx.PageRequest{Limit: limit, Cursor: c.QueryParam("cursor")}
}
