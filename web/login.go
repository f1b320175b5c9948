package web

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

type loginPage struct {
	page
	Email string
	// SSO is the single sign-on button's text (empty: no button).
	SSO string
}

// loginPage shows the sign-in form with a fresh CSRF token (double submit:
// the same value in a cookie and in the form).
func (con *Console) loginPage(c echo.Context) error {
	return con.showLogin(c, http.StatusOK, "", "")
}

func (con *Console) showLogin(c echo.Context, status int, email, msg string) error {
	// Keep a token the browser already holds: another tab's form (or a
	// request the browser makes by itself) must not expire this one.
	var tok string
	if ck, err := c.Cookie(loginCSRFCookie); err == nil && len(ck.Value) == 64 && isHex(ck.Value) {
		tok = ck.Value
	} else if tok, err = randomHex(32); err != nil {
		return con.fail(c, err)
	}
	con.setCookie(c, loginCSRFCookie, tok, 3600)
	pg := con.basePage(c, "Sign in")
	pg.CSRF, pg.Error = tok, msg
	lp := loginPage{page: pg, Email: email}
	if con.sso != nil {
		lp.SSO = con.sso.cfg.Label
	}
	return con.render(c, status, "login.html", lp)
}

// login checks the form's CSRF token, the rate limits, then the password;
// on success it starts a session and sends the browser to the queues.
func (con *Console) login(c echo.Context) error {
	ck, err := c.Cookie(loginCSRFCookie)
	if err != nil || !sameToken(c.FormValue("csrf"), ck.Value) {
		return con.renderError(c, http.StatusForbidden, "This sign-in form has expired. Reload the page and try again.")
	}
	ctx := c.Request().Context()
	email := strings.ToLower(strings.TrimSpace(c.FormValue("email")))
	if len(email) > 254 {
		email = email[:254]
	}
	ip := clientIP(c)
	now := con.opt.Clock.Now()
	byEmail, byIP, err := con.sessions.failures(ctx, email, ip, now.Add(-LoginWindow))
	if err != nil {
		return con.fail(c, err)
	}
	if byEmail >= MaxFailuresPerEmail || byIP >= MaxFailuresPerIP {
		c.Response().Header().Set("Retry-After", "900")
		return con.renderError(c, http.StatusTooManyRequests, "Too many failed sign-ins. Wait 15 minutes and try again, or ask an admin to reset your password.")
	}
	p, err := con.opt.Users.CheckPassword(ctx, email, c.FormValue("password"))
	if err != nil {
		if !errs.Is(err, errs.EUNAUTHORIZED) {
			return con.fail(c, err)
		}
		if err := con.sessions.recordFailure(ctx, email, ip, now, now.Add(-LoginWindow)); err != nil {
			return con.fail(c, err)
		}
		return con.showLogin(c, http.StatusUnauthorized, email, "Wrong email or password")
	}
	if err := con.sessions.clearFailures(ctx, email); err != nil {
		return con.fail(c, err)
	}
	return con.startSession(c, p, "password")
}

// startSession signs p in: a new server-side session (audited as
// console.sign_in with how), its cookie, and the queues. Every way of
// signing in ends here, so sessions expire, end and carry CSRF tokens alike.
func (con *Console) startSession(c echo.Context, p auth.Principal, how string) error {
	ctx := c.Request().Context()
	ip := clientIP(c)
	var audited func(tx *gorm.DB) error
	if con.opt.Audit != nil {
		audited = func(tx *gorm.DB) error {
			return con.opt.Audit.Record(auth.WithPrincipal(ctx, p), tx, audit.Entry{Action: "console.sign_in",
				ObjectType: "user", ObjectID: strconv.FormatInt(p.UserID, 10), Detail: "method=" + how + " ip=" + ip})
		}
	}
	tok, _, err := con.sessions.create(ctx, p.UserID, con.opt.Clock.Now(), ip, c.Request().UserAgent(), audited)
	if err != nil {
		return con.fail(c, err)
	}
	con.setCookie(c, CookieName, tok, int(con.opt.SessionMax.Seconds()))
	con.setCookie(c, loginCSRFCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, "/")
}

// logout ends the session (the CSRF token was checked by the session
// middleware).
func (con *Console) logout(c echo.Context) error {
	if s, ok := c.Get("session").(session); ok {
		if err := con.sessions.delete(c.Request().Context(), s.ID); err != nil {
			return con.fail(c, err)
		}
	}
	con.clearCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

// clientIP is the client's address as the server's IPExtractor finds it
// (httpx.ClientIP: the peer, or what a trusted proxy forwarded), else the
// peer's. Forwarded headers are never trusted on their own: a client could
// name any address in them and escape the per-IP limit.
func clientIP(c echo.Context) string {
	if e := c.Echo(); e != nil && e.IPExtractor != nil {
		return c.RealIP()
	}
	r := c.Request()
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// isHex reports whether s is lower-case hexadecimal.
func isHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
