// Package web is the agent console: server-rendered pages (html/template,
// embedded) over the same services the API uses, with password sign-in,
// or single sign-on through an OpenID Connect provider (oidc.go),
// server-side sessions in the database, CSRF tokens on every form and
// strict security headers. htmx (vendored, static/VENDORED.md) refreshes
// the live part of a case page; every form also works as a plain POST.
//
// Routes (the API stays at /api/v1):
//
//	GET  /login                      sign-in form
//	POST /login                      sign in (CSRF, rate-limited) → 303 /
//	GET  /login/oidc                 single sign-on: state, nonce, PKCE → 302 to the provider (404 when off)
//	GET  /login/oidc/callback        the provider's answer: verified ID token → an existing active user's session → 303 /
//	POST /logout                     sign out (CSRF) → 303 /login
//	GET  /                           queues (?view=open|mine|unassigned|breached|due_soon|approvals|filter, ?saved=<view id>, &sort=, &cursor=)
//	GET  /cases/:id/next             303 to the next case of the queue in ?q= (or back to the queue)
//	POST /views                      save the queue's filter as a view (cases.Service.SaveView) → 303 /?saved=<id>
//	POST /views/:id/delete           delete one of my views (cases.Service.DeleteView) → 303 /
//	POST /cases/bulk                 one action on the selected cases (cases.Service.Bulk), a result per case
//	GET  /cases/:id                  case page
//	GET  /cases/:id/fragment         the live part of the case page (#case-live), polled
//	POST /cases/:id/transitions      fire an event (cases.Service.Transition)
//	POST /cases/:id/notes            add a note (cases.Service.AddNote)
//	POST /cases/:id/assign           assign to me (cases.Service.Assign)
//	POST /actions/:id/decide         approve or reject a pending action (actions.Service.Decide) → 303 /?view=approvals
//	GET  /customers?q=               customer search (billing.Store.SearchCustomers); one exact hit → 303 /customers/:id
//	GET  /customers/:id              Customer 360: billing objects, timeline, every case, dispute facts (facts:read)
//	POST /customers/:id/erase        erase the customer's personal data (privacy.Eraser; customers:erase) → 303 /customers/:id?done=erased
//	GET  /password/set?token=…       set a password through a one-time link (no session; login CSRF pattern)
//	POST /password/set               set it (auth.UserStore.UsePasswordLink) → a page that says sign in
//	GET  /admin                      the admin screens the role may open
//	GET  /admin/users                users (users:manage); POST /admin/users creates one
//	POST /admin/users/:id/role       change a user's role (auth.UserStore.Update)
//	POST /admin/users/:id/active     deactivate or reactivate a user (auth.UserStore.Update)
//	POST /admin/users/:id/link       make a one-time password link, shown once
//	GET  /admin/tokens               API tokens (tokens:manage); POST /admin/tokens issues one, secret shown once
//	POST /admin/tokens/:id/revoke    revoke a token (auth.TokenStore.Revoke)
//	GET  /admin/webhooks             webhook inbox by status (webhook_events:read)
//	GET  /admin/webhooks/:id         one event, without its payload
//	POST /admin/webhooks/:id/replay  replay a dead-lettered event (webhooks.Inbox.Replay, as recourse replay)
//	GET  /admin/policy               the policy in force (policy:read), as GET /api/v1/policy
//	GET  /admin/audit                the audit log (audit:read), filtered and keyset-paged as GET /api/v1/audit
//	GET  /admin/notifications        notification deliveries by status and destination (notifications:read), as GET /api/v1/notifications
//	POST /admin/notifications/:id/replay  a failed delivery back to pending (notifications.Store.Replay; notifications:replay)
//	GET  /export/cases.csv           every case of a queue (the query GET / takes) as CSV, as GET /api/v1/cases?format=csv (cases:read)
//	GET  /export/audit.csv           the audit log for the page's filters as CSV (audit:read)
//	GET  /export/webhook-events.csv  the webhook inbox for ?status= as CSV, no payloads (webhook_events:read)
//	POST /cases/:id/actions          request an action (actions.Service.Request; the form's idempotency_key) → 303 /cases/:id?action=
//	POST /cases/:id/actions/preview  what policy says of an action form (actions.Service.Preview), a fragment
//	GET  /cases/:id/evidence         dispute workbench (disputes.Workbench; facts:read, as the API)
//	GET  /cases/:id/evidence/packet.pdf  the rebuttal packet, framable by the console only (SAMEORIGIN)
//	POST /cases/:id/evidence         save edited fields at the form's version (Workbench.PatchVersion)
//	POST /cases/:id/evidence/assemble    assemble the evidence (Workbench.Assemble)
//	POST /cases/:id/evidence/actions     stage, submit or accept (actions.Service.Request, form idempotency key)
//	GET  /reports                    KPIs and reports (reports.Service; reports:read): picker, chart, table
//	GET  /reports/export             the report's CSV (reports.ExportColumns through export.Respond)
//	GET  /static/*                   stylesheet, htmx and console.js (countdowns, times, shortcuts)
package web

import (
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/ratelimit"
	"github.com/recourse-hq/recourse/notifications"
	"github.com/recourse-hq/recourse/privacy"
	"github.com/recourse-hq/recourse/reports"
	"github.com/recourse-hq/recourse/webhooks"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the session cookie.
const CookieName = "recourse_session"

// loginCSRFCookie carries the sign-in form's CSRF token before there is a
// session (double submit).
const loginCSRFCookie = "recourse_login_csrf"

// ContentSecurityPolicy is sent with every console response: no inline
// script or style, nothing from elsewhere, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Rate limits of failed sign-ins over LoginWindow.
const (
	LoginWindow          = 15 * time.Minute
	MaxFailuresPerEmail  = 5
	MaxFailuresPerIP     = 20
	maxFormBytes         = 64 << 10
	sessionTouchInterval = time.Second
)

// Options wires the console.
type Options struct {
	DB      *db.DB
	Clock   clock.Clock
	Log     *slog.Logger
	Users   *auth.UserStore
	Cases   *cases.Service
	Billing *billing.Store
	// Actions lists the approvals inbox and serves the case page's action
	// forms (nil: empty inbox, no forms).
	Actions *actions.Service
	// Facts shows a customer's dispute facts on the Customer 360 to roles
	// with facts:read (nil: not shown).
	Facts disputes.FactReader
	// IdleTimeout ends a session unused this long; SessionMax ends it this
	// long after sign-in.
	IdleTimeout, SessionMax time.Duration
	// SecureCookies marks the cookie Secure over plain HTTP too (TLS ends
	// at a proxy).
	SecureCookies bool
	// Admin screens (admin.go); a nil service leaves its screen empty.
	Tokens *auth.TokenStore
	Inbox  *webhooks.Inbox
	// Replayed (may be nil) is called after each replay: it counts it, as
	// the API does, and wakes the local webhook worker.
	Replayed func()
	// Audit is the audit log the admin screen reads; sign-ins are
	// recorded in it too (nil: not recorded).
	Audit *audit.Log
	// Policy is the whole policy document in force, as GET /api/v1/policy
	// shows it.
	Policy any
	// PasswordLinkTTL is how long a one-time password link works (0: 24h);
	// PublicURL is the console's address in such links.
	PasswordLinkTTL time.Duration
	PublicURL       string
	// OIDC turns on single sign-on through an OpenID Connect provider
	// (zero Issuer: off).
	OIDC OIDC
	// Workbench is the dispute evidence workbench (nil: its pages answer
	// 503).
	Workbench *disputes.Workbench
	// Notifications lists deliveries and replays failed ones on the admin
	// screen, as GET/POST /api/v1/notifications (nil: the screen answers
	// 503).
	Notifications *notifications.Store
	// Reports answers the Reports page (reports:read; nil: it answers 503).
	Reports *reports.Service
	// IPLimit and UserLimit are the console's abuse limits (nil: none): a
	// bucket per client address, taken before the session is read (the
	// sign-in page included), and one per signed-in user. Over either the
	// console answers a 429 page with Retry-After. The failed sign-in
	// limits (LoginWindow) apply besides.
	IPLimit, UserLimit *ratelimit.Limiter
	// Eraser erases a customer's personal data from the Customer 360
	// (customers:erase; nil: no form, and the route answers 503).
	Eraser *privacy.Eraser
	// RateLimited counts refusals by scope ("ip", "console"; nil: not
	// counted).
	RateLimited *prometheus.CounterVec
}

// Console serves the agent console.
type Console struct {
	opt      Options
	sessions *sessionStore
	tmpl     *template.Template
	// zoned is a copy of tmpl never executed (html/template clones only
	// those), cloned per viewer time zone into byZone (see templatesIn).
	zoned  *template.Template
	byZone sync.Map
	sso    *sso // nil: single sign-on is off
}

// New parses the embedded templates and returns the console.
func New(opt Options) (*Console, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	zoned, err := t.Clone()
	if err != nil {
		return nil, err
	}
	con := &Console{opt: opt, tmpl: t, zoned: zoned,
		sessions: &sessionStore{db: opt.DB, idle: opt.IdleTimeout, max: opt.SessionMax, touchEvery: sessionTouchInterval}}
	if opt.OIDC.Issuer != "" {
		con.sso = newSSO(opt.OIDC, opt.Clock)
	}
	return con, nil
}

// Register adds the console's routes to e.
func (con *Console) Register(e *echo.Echo) {
	static, _ := fs.Sub(staticFS, "static")
	g := e.Group("", con.headers, con.bodyLimit(maxFormBytes), con.limit("ip"))
	g.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServer(http.FS(static)))))
	// Browsers ask for a favicon by themselves; it must not bounce to /login.
	g.GET("/favicon.ico", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	g.GET("/login", con.loginPage)
	g.POST("/login", con.login)
	con.registerPasswordLinks(g)
	g.GET("/login/oidc", con.ssoStart)
	g.GET("/login/oidc/callback", con.ssoCallback)
	s := g.Group("", con.session, con.limit("console"))
	s.POST("/logout", con.logout)
	s.GET("/", con.queues)
	s.GET("/cases/:id", con.casePage)
	s.GET("/cases/:id/fragment", con.caseFragment)
	s.POST("/cases/:id/transitions", con.transition)
	s.POST("/cases/:id/notes", con.note)
	s.POST("/cases/:id/assign", con.assign)
	s.POST("/actions/:id/decide", con.decide)
	s.GET("/customers", con.customers)
	s.GET("/customers/:id", con.customerPage)
	s.POST("/customers/:id/erase", con.eraseCustomer, con.require(auth.PermCustomersErase))
	con.registerAdmin(s)
	s.POST("/cases/:id/actions", con.requestAction)
	s.POST("/cases/:id/actions/preview", con.previewAction)
	s.GET("/cases/:id/next", con.nextCase)
	s.POST("/views", con.saveView)
	s.POST("/views/:id/delete", con.deleteView)
	s.POST("/cases/bulk", con.bulk)
	s.GET("/reports", con.reportsPage)
	s.GET("/reports/export", con.reportsExport)
	con.registerWorkbench(e)
	s.RouteNotFound("/*", func(c echo.Context) error {
		return con.renderError(c, http.StatusNotFound, "There is no such page.")
	})
}

// bodyLimit caps a form's body at n bytes: a larger declared body gets a
// 413 page; an undeclared one is cut at n (http.MaxBytesReader), so the
// form fails to parse and its CSRF check refuses it.
func (con *Console) bodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > n {
				return con.renderError(c, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("This form is too large (more than %d KiB). Shorten what you typed and try again.", n>>10))
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, n)
			return next(c)
		}
	}
}

// limit is the console's rate limit of scope "ip" (per client address) or
// "console" (per signed-in user, after con.session): over it, a 429 page
// with Retry-After.
func (con *Console) limit(scope string) echo.MiddlewareFunc {
	r := ratelimit.Rule{Limiter: con.opt.IPLimit, Key: func(c echo.Context) string { return ratelimit.AddressKey(clientIP(c)) }}
	if scope == "console" {
		r = ratelimit.Rule{Limiter: con.opt.UserLimit, Key: func(c echo.Context) string {
			if p, ok := auth.FromContext(c.Request().Context()); ok && p.UserID != 0 {
				return "user:" + strconv.FormatInt(p.UserID, 10)
			}
			return ""
		}}
	}
	if con.opt.RateLimited != nil {
		r.Limited = con.opt.RateLimited.WithLabelValues(scope)
	}
	r.Deny = func(c echo.Context, d ratelimit.Decision) error {
		return con.renderError(c, http.StatusTooManyRequests,
			fmt.Sprintf("Too many requests. Wait %d seconds and try again.", d.RetryAfterSeconds()))
	}
	return r.Middleware()
}

// headers sets the security headers on every console response.
func (con *Console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		if c.Request().TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

type ctxSession struct{}

// session admits only requests with a live session: the session user's
// principal (exactly the API's) goes into the request context. Without
// one, a GET is sent to /login and anything else refused 401. Every POST
// must carry the session's CSRF token (403 otherwise).
func (con *Console) session(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		tok := ""
		if ck, err := r.Cookie(CookieName); err == nil {
			tok = ck.Value
		}
		poll := strings.HasSuffix(r.URL.Path, "/fragment")
		sess, p, err := con.sessions.authenticate(r.Context(), tok, con.opt.Clock.Now(), !poll)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				return con.fail(c, err)
			}
			if tok != "" {
				con.clearCookie(c)
			}
			if r.Method == http.MethodGet {
				if r.Header.Get("HX-Request") == "true" {
					c.Response().Header().Set("HX-Redirect", "/login")
					return c.NoContent(http.StatusUnauthorized)
				}
				return c.Redirect(http.StatusSeeOther, "/login")
			}
			return con.renderError(c, http.StatusUnauthorized, "Your session has ended. Sign in again.")
		}
		if r.Method == http.MethodPost && !sameToken(c.FormValue("csrf"), sess.CSRF) {
			return con.renderError(c, http.StatusForbidden, "This form has expired or did not come from Recourse. Reload the page and try again.")
		}
		c.Set("session", sess)
		c.SetRequest(r.WithContext(auth.WithPrincipal(r.Context(), p)))
		return next(c)
	}
}

func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (con *Console) secure(c echo.Context) bool {
	return c.Request().TLS != nil || con.opt.SecureCookies
}

func (con *Console) setCookie(c echo.Context, name, value string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: con.secure(c), MaxAge: maxAge})
}

func (con *Console) clearCookie(c echo.Context) { con.setCookie(c, CookieName, "", -1) }

// page is what every full page template gets.
type page struct {
	Title     string
	User      *auth.Principal
	CSRF      string
	CanDo     func(auth.Permission) bool
	Error     string
	ErrorCode string
	Notice    string
	// Search is the customer search the header's box shows;
	// CanSearch (billing:read) shows the box at all.
	Search    string
	CanSearch bool
}

func (con *Console) basePage(c echo.Context, title string) page {
	pg := page{Title: title, CanDo: func(auth.Permission) bool { return false }}
	if p, ok := auth.FromContext(c.Request().Context()); ok {
		pg.User = &p
		pg.CanDo = func(perm auth.Permission) bool { return auth.Permits(p, perm) }
		pg.CanSearch = con.opt.Billing != nil && auth.Allowed(p.Role, auth.PermBillingRead)
	}
	if s, ok := c.Get("session").(session); ok {
		pg.CSRF = s.CSRF
	}
	return pg
}

func (con *Console) render(c echo.Context, status int, name string, data any) error {
	var b strings.Builder
	if err := con.templatesIn(c.Request()).ExecuteTemplate(&b, name, data); err != nil {
		con.opt.Log.Error("console: render template", "template", name, "err", err)
		return c.String(http.StatusInternalServerError, "Something went wrong on our side.")
	}
	return c.HTML(status, b.String())
}

type errorPage struct {
	page
	Status  int
	Message string
}

func (con *Console) renderError(c echo.Context, status int, msg string) error {
	pg := con.basePage(c, http.StatusText(status))
	return con.render(c, status, "error.html", errorPage{page: pg, Status: status, Message: msg})
}

// fail renders err as the API would classify it; internal errors are logged
// and never shown.
func (con *Console) fail(c echo.Context, err error) error {
	e, ok := errs.As(err)
	if !ok || e.Kind == errs.EINTERNAL {
		con.opt.Log.Error("console request failed", "path", c.Request().URL.Path, "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
		return con.renderError(c, http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.")
	}
	return con.renderError(c, httpx.StatusOf(e.Kind), e.Message)
}
