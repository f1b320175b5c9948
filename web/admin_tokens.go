package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

type tokenView struct {
	auth.Token
	Owner string
}

type newTokenForm struct {
	UserID int64
	Name   string
	Role   string
}

type tokensPage struct {
	page
	Tokens []tokenView
	Users  []auth.User // active users, who may get a token
	Roles  []auth.Role
	Form   newTokenForm
}

var tokenNotices = map[string]string{
	"revoked": "Token revoked. Requests with it are refused from now on.",
}

// adminTokens is GET /admin/tokens: every token without its secret, as
// GET /api/v1/tokens.
func (con *Console) adminTokens(c echo.Context) error {
	return con.showTokens(c, http.StatusOK, nil, newTokenForm{})
}

func (con *Console) showTokens(c echo.Context, status int, failure error, form newTokenForm) error {
	ctx := c.Request().Context()
	pg := tokensPage{page: con.basePage(c, "API tokens"), Roles: auth.Roles(), Form: form}
	pg.Notice = tokenNotices[c.QueryParam("done")]
	if failure != nil {
		status = con.withError(c, &pg.page, failure)
		pg.Notice = ""
	}
	if con.opt.Tokens == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "API tokens are not available on this server.")
	}
	toks, err := con.opt.Tokens.List(ctx)
	if err != nil {
		return con.fail(c, err)
	}
	users, err := con.opt.Users.All(ctx)
	if err != nil {
		return con.fail(c, err)
	}
	names := map[int64]string{}
	for _, u := range users {
		names[u.ID] = u.DisplayName
		if u.Email != nil {
			names[u.ID] += " <" + *u.Email + ">"
		}
		if u.Active {
			pg.Users = append(pg.Users, u)
		}
	}
	for _, t := range toks {
		pg.Tokens = append(pg.Tokens, tokenView{Token: t, Owner: names[t.UserID]})
	}
	return con.render(c, status, "admin_tokens.html", pg)
}

type tokenCreatedPage struct {
	page
	Token  auth.Token
	Owner  auth.User
	Secret string
}

// adminCreateToken is POST /admin/tokens: user, label and optionally a role
// below the user's, through auth.TokenStore.Issue as POST /api/v1/tokens.
// The secret is on this response only: it is never stored and cannot be
// shown again.
func (con *Console) adminCreateToken(c echo.Context) error {
	ctx := c.Request().Context()
	if con.opt.Tokens == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "API tokens are not available on this server.")
	}
	form := newTokenForm{Name: strings.TrimSpace(c.FormValue("name")), Role: c.FormValue("role")}
	form.UserID, _ = strconv.ParseInt(c.FormValue("user_id"), 10, 64)
	var err error
	var role auth.Role
	if form.UserID <= 0 {
		err = errs.Coded(errs.EINVALID, "user_required", "choose the user the token belongs to")
	} else if form.Role != "" {
		role, err = auth.ParseRole(form.Role)
	}
	var secret string
	var tok auth.Token
	if err == nil {
		secret, tok, err = con.opt.Tokens.Issue(ctx, form.UserID, form.Name, role)
	}
	if err != nil {
		return con.showTokens(c, http.StatusOK, err, form)
	}
	owner, err := con.opt.Users.Get(ctx, tok.UserID)
	if err != nil {
		return con.fail(c, err)
	}
	return con.render(c, http.StatusCreated, "admin_token_created.html",
		tokenCreatedPage{page: con.basePage(c, "Token created"), Token: tok, Owner: owner, Secret: secret})
}

// adminRevokeToken is POST /admin/tokens/:id/revoke, as
// DELETE /api/v1/tokens/{id}.
func (con *Console) adminRevokeToken(c echo.Context) error {
	if con.opt.Tokens == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "API tokens are not available on this server.")
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		err = errs.Invalid("token id must be a number")
	} else {
		err = con.opt.Tokens.Revoke(c.Request().Context(), id)
	}
	if err != nil {
		return con.showTokens(c, http.StatusOK, err, newTokenForm{})
	}
	return c.Redirect(http.StatusSeeOther, "/admin/tokens?done=revoked")
}
