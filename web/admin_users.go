package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

type userView struct {
	auth.User
	LastSignIn *time.Time
	Self       bool
}

// newUserForm keeps what was typed when creating a user fails.
type newUserForm struct {
	Email, Name, Role string
}

type usersPage struct {
	page
	Users []userView
	Roles []auth.Role
	Next  string
	Form  newUserForm
}

// userNotices are the notices after a change, by ?done= (a fixed set: the
// URL never carries text to show).
var userNotices = map[string]string{
	"created":     "User created. Make them a one-time password link so they can sign in.",
	"role":        "Role changed. Their API tokens keep their own role, never above the user's.",
	"deactivated": "User deactivated: they are signed out and every API token they held is revoked.",
	"reactivated": "User reactivated. Their old tokens stay revoked; make them a password link or a new token if needed.",
	"scope":       "Scope changed. It applies to their API tokens and console sessions at their next request.",
}

// adminUsers is GET /admin/users: every user, a page at a time, as
// GET /api/v1/users lists them.
func (con *Console) adminUsers(c echo.Context) error {
	return con.showUsers(c, http.StatusOK, nil, newUserForm{Role: string(auth.RoleAgent)})
}

func (con *Console) showUsers(c echo.Context, status int, failure error, form newUserForm) error {
	ctx := c.Request().Context()
	pg := usersPage{page: con.basePage(c, "Users"), Roles: auth.Roles(), Form: form}
	pg.Notice = userNotices[c.QueryParam("done")]
	if failure != nil {
		status = con.withError(c, &pg.page, failure)
		pg.Notice = ""
	}
	list, err := con.opt.Users.List(ctx, auth.UserFilter{}, adminPageRequest(c, 100))
	if err != nil {
		return con.fail(c, err)
	}
	ids := make([]int64, len(list.Data))
	for i, u := range list.Data {
		ids[i] = u.ID
	}
	last, err := con.sessions.lastSignIns(ctx, ids)
	if err != nil {
		return con.fail(c, err)
	}
	for _, u := range list.Data {
		v := userView{User: u, Self: pg.User != nil && pg.User.UserID == u.ID}
		if t, ok := last[u.ID]; ok {
			v.LastSignIn = &t
		}
		pg.Users = append(pg.Users, v)
	}
	if list.NextCursor != nil {
		pg.Next = *list.NextCursor
	}
	return con.render(c, status, "admin_users.html", pg)
}

// adminCreateUser is POST /admin/users: email, name and role, through
// auth.UserStore.Create as POST /api/v1/users.
func (con *Console) adminCreateUser(c echo.Context) error {
	form := newUserForm{Email: strings.TrimSpace(c.FormValue("email")), Name: c.FormValue("name"), Role: c.FormValue("role")}
	role, err := auth.ParseRole(form.Role)
	if err == nil {
		_, err = con.opt.Users.Create(c.Request().Context(), auth.NewUser{Email: form.Email, DisplayName: form.Name, Role: role})
	}
	if err != nil {
		return con.showUsers(c, http.StatusOK, err, form)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users?done=created")
}

func formUserID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.Invalid("user id must be a positive number")
	}
	return id, nil
}

// adminUserRole is POST /admin/users/:id/role, as PATCH /api/v1/users/{id}
// with a role (the last active admin is never demoted).
func (con *Console) adminUserRole(c echo.Context) error {
	id, err := formUserID(c)
	if err != nil {
		return con.showUsers(c, http.StatusOK, err, newUserForm{Role: string(auth.RoleAgent)})
	}
	role, err := auth.ParseRole(c.FormValue("role"))
	if err == nil {
		_, err = con.opt.Users.Update(c.Request().Context(), id, auth.UserPatch{Role: &role})
	}
	if err != nil {
		return con.showUsers(c, http.StatusOK, err, newUserForm{Role: string(auth.RoleAgent)})
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users?done=role")
}

// adminUserActive is POST /admin/users/:id/active (active=true|false), as
// PATCH /api/v1/users/{id} with active: never the last active admin, never
// yourself.
func (con *Console) adminUserActive(c echo.Context) error {
	id, err := formUserID(c)
	var active bool
	if err == nil {
		switch c.FormValue("active") {
		case "true":
			active = true
		case "false":
		default:
			err = errs.Coded(errs.EINVALID, "invalid_active", "choose Deactivate or Reactivate")
		}
	}
	if err == nil {
		_, err = con.opt.Users.Update(c.Request().Context(), id, auth.UserPatch{Active: &active})
	}
	if err != nil {
		return con.showUsers(c, http.StatusOK, err, newUserForm{Role: string(auth.RoleAgent)})
	}
	done := "deactivated"
	if active {
		done = "reactivated"
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users?done="+done)
}

// adminUserScope is POST /admin/users/:id/scope (teams, business_lines:
// comma-separated; both empty clears the scope), as PATCH
// /api/v1/users/{id} with a scope: known teams only, audited user.scope.
// A scoped admin never reaches it (users:manage is refused within a scope).
func (con *Console) adminUserScope(c echo.Context) error {
	id, err := formUserID(c)
	if err == nil {
		sc := auth.Scope{Teams: splitComma(c.FormValue("teams")), BusinessLines: splitComma(c.FormValue("business_lines"))}
		_, err = con.opt.Users.Update(c.Request().Context(), id, auth.UserPatch{Scope: &sc})
	}
	if err != nil {
		return con.showUsers(c, http.StatusOK, err, newUserForm{Role: string(auth.RoleAgent)})
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users?done=scope")
}

// splitComma reads a comma-separated form value, dropping empty items.
func splitComma(v string) []string {
	out := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

type linkPage struct {
	page
	For  auth.User
	URL  string
	Link auth.PasswordLink
}

// adminUserLink is POST /admin/users/:id/link: a one-time password link for
// the user, shown on this response only (never in a URL the browser keeps).
func (con *Console) adminUserLink(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := formUserID(c)
	var u auth.User
	if err == nil {
		u, err = con.opt.Users.Get(ctx, id)
	}
	var tok string
	var link auth.PasswordLink
	if err == nil {
		tok, link, err = con.opt.Users.CreatePasswordLink(ctx, id, con.opt.PasswordLinkTTL)
	}
	if err != nil {
		return con.showUsers(c, http.StatusOK, err, newUserForm{Role: string(auth.RoleAgent)})
	}
	pg := linkPage{page: con.basePage(c, "Password link"), For: u, URL: PasswordLinkURL(con.opt.PublicURL, tok), Link: link}
	return con.render(c, http.StatusCreated, "admin_link.html", pg)
}

// DefaultPublicURL is where links point when no public URL is configured.
const DefaultPublicURL = "http://localhost:8080"

// PasswordLinkURL is the address of the one-time password link with token
// tok on the console at base (DefaultPublicURL when empty).
func PasswordLinkURL(base, tok string) string {
	if base == "" {
		base = DefaultPublicURL
	}
	return strings.TrimRight(base, "/") + "/password/set?token=" + url.QueryEscape(tok)
}

// lastSignIns returns, for each of ids with a console session on record,
// when the latest one began: the last sign-in as far as the console still
// knows (sessions are deleted when they end).
func (s *sessionStore) lastSignIns(ctx context.Context, ids []int64) (map[int64]time.Time, error) {
	out := map[int64]time.Time{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		UserID    int64
		CreatedAt time.Time
	}
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		rows = rows[:0]
		return g.Model(&sessionRow{}).Select("user_id, created_at").Where("user_id IN ?", ids).Scan(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("read last sign-ins: %w", err)
	}
	for _, r := range rows {
		if r.CreatedAt.After(out[r.UserID]) {
			out[r.UserID] = r.CreatedAt.UTC()
		}
	}
	return out, nil
}

func init() {
	funcs["join"] = strings.Join // a user's scope, as the scope form takes it
}
