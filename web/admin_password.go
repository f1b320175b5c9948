package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// registerPasswordLinks adds the one-time password link pages, outside the
// signed-in group: whoever holds the link is not signed in yet.
func (con *Console) registerPasswordLinks(g *echo.Group) {
	g.GET("/password/set", con.passwordSetPage)
	g.POST("/password/set", con.passwordSet)
}

type passwordSetPage struct {
	page
	Token     string
	For       auth.User
	Usable    bool // the link works: show the form
	MinLength int
	Done      bool
}

// passwordSetPage is GET /password/set?token=: the form, with a CSRF token
// in a cookie and in the form (the sign-in form's double submit), if the
// link still works.
func (con *Console) passwordSetPage(c echo.Context) error {
	return con.showPasswordSet(c, http.StatusOK, c.QueryParam("token"), nil)
}

func (con *Console) showPasswordSet(c echo.Context, status int, tok string, failure error) error {
	csrf, err := con.loginCSRF(c)
	if err != nil {
		return con.fail(c, err)
	}
	pg := passwordSetPage{page: con.basePage(c, "Set your password"), Token: tok, MinLength: auth.MinPasswordLength}
	pg.CSRF = csrf
	u, err := con.opt.Users.PasswordLinkUser(c.Request().Context(), tok)
	if err != nil {
		status = con.withError(c, &pg.page, err)
	} else {
		pg.For, pg.Usable = u, true
	}
	if failure != nil {
		status = con.withError(c, &pg.page, failure)
	}
	return con.render(c, status, "admin_password_set.html", pg)
}

// loginCSRF returns the pre-session CSRF token, kept from the cookie when
// the browser holds one (see showLogin), and sets the cookie.
func (con *Console) loginCSRF(c echo.Context) (string, error) {
	var tok string
	if ck, err := c.Cookie(loginCSRFCookie); err == nil && len(ck.Value) == 64 && isHex(ck.Value) {
		tok = ck.Value
	} else if tok, err = randomHex(32); err != nil {
		return "", err
	}
	con.setCookie(c, loginCSRFCookie, tok, 3600)
	return tok, nil
}

// passwordSet is POST /password/set: token, password and its repetition,
// through auth.UserStore.UsePasswordLink (the rules of recourse user
// password; single use; the user's sessions end).
func (con *Console) passwordSet(c echo.Context) error {
	ck, err := c.Cookie(loginCSRFCookie)
	if err != nil || !sameToken(c.FormValue("csrf"), ck.Value) {
		return con.renderError(c, http.StatusForbidden, "This form has expired. Open the link again and retry.")
	}
	tok, pw := c.FormValue("token"), c.FormValue("password")
	if pw != c.FormValue("confirm") {
		return con.showPasswordSet(c, http.StatusOK, tok, errs.Coded(errs.EINVALID, "passwords_differ", "the two passwords differ; type the same password twice"))
	}
	u, err := con.opt.Users.UsePasswordLink(c.Request().Context(), tok, pw)
	if err != nil {
		return con.showPasswordSet(c, http.StatusOK, tok, err)
	}
	pg := passwordSetPage{page: con.basePage(c, "Password set"), For: u, Done: true}
	return con.render(c, http.StatusOK, "admin_password_set.html", pg)
}
