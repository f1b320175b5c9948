package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
)

const password = "correct horse battery"

// env is a console over a fresh database, served over real HTTP.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	clock *clock.Manual
	users *auth.UserStore
	cases *cases.Service
}

func newEnv(t *testing.T, d *db.DB) *env {
	t.Helper()
	return newEnvWith(t, d, nil)
}

// newEnvWith is newEnv; with, when set, adds to the options (e.g. an
// actions service over the case service).
func newEnvWith(t *testing.T, d *db.DB, with func(*Options)) *env {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	cs, err := cases.NewService(cases.Options{DB: d, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	users := auth.NewUserStore(d, clk, nil)
	con, err := newWith(Options{DB: d, Clock: clk, Log: log, Users: users, Cases: cs,
		IdleTimeout: 30 * time.Minute, SessionMax: 12 * time.Hour}, with)
	if err != nil {
		t.Fatal(err)
	}
	e := httpx.New(httpx.Options{Logger: log})
	con.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, clock: clk, users: users, cases: cs}
}

func newWith(opt Options, with func(*Options)) (*Console, error) {
	if with != nil {
		with(&opt)
	}
	return New(opt)
}

func (en *env) user(email, name string, role auth.Role) auth.Principal {
	en.t.Helper()
	ctx := context.Background()
	u, err := en.users.Create(ctx, auth.NewUser{Email: email, DisplayName: name, Role: role})
	if err != nil {
		en.t.Fatal(err)
	}
	if err := en.users.SetPassword(ctx, u.ID, password); err != nil {
		en.t.Fatal(err)
	}
	return auth.Principal{Kind: auth.ActorUser, UserID: u.ID, Name: u.DisplayName, Role: role}
}

// browser is one cookie jar that does not follow redirects.
type browser struct {
	en *env
	c  *http.Client
}

func (en *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{en: en, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) resp {
	b.en.t.Helper()
	r, err := b.c.Do(req)
	if err != nil {
		b.en.t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, header: r.Header, body: string(body)}
}

func (b *browser) get(path string) resp {
	req, _ := http.NewRequest(http.MethodGet, b.en.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) resp {
	req, _ := http.NewRequest(http.MethodPost, b.en.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, p resp) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field in page (%d):\n%s", p.status, p.body)
	}
	return m[1]
}

func (b *browser) login(email, pw string) resp {
	b.en.t.Helper()
	lp := b.get("/login")
	return b.post("/login", url.Values{"csrf": {csrfOf(b.en.t, lp)}, "email": {email}, "password": {pw}})
}

func (b *browser) mustLogin(email string) {
	b.en.t.Helper()
	if p := b.login(email, password); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		b.en.t.Fatalf("login %s: %d %s", email, p.status, p.body)
	}
}

func want(t *testing.T, p resp, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d:\n%s", p.status, status, p.body)
	}
	for _, s := range contains {
		if !strings.Contains(p.body, s) {
			t.Fatalf("page lacks %q:\n%s", s, p.body)
		}
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		en.user("ada@example.com", "Ada", auth.RoleAgent)
		b := en.browser()

		lp := b.get("/login")
		want(t, lp, http.StatusOK, `<form method="post" action="/login">`, `id="email"`, `id="password" type="password"`, `id="login"`)

		// Unauthenticated pages go to /login.
		if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Fatalf("GET / without session: %d %s", p.status, p.header.Get("Location"))
		}
		if p := b.get("/cases/x"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Fatalf("GET /cases/x without session: %d", p.status)
		}

		// Wrong password, unknown email: 401 and the same message.
		want(t, b.login("ada@example.com", "wrong password!!"), http.StatusUnauthorized, `class="error"`, "Wrong email or password")
		want(t, b.login("nobody@example.com", password), http.StatusUnauthorized, "Wrong email or password")

		// No CSRF token on the sign-in form: 403.
		want(t, b.post("/login", url.Values{"email": {"ada@example.com"}, "password": {password}}), http.StatusForbidden)

		p := b.login("ada@example.com", password)
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
			t.Fatalf("login: %d %s", p.status, p.body)
		}
		var ck *http.Cookie
		for _, c := range (&http.Response{Header: p.header}).Cookies() {
			if c.Name == CookieName {
				ck = c
			}
		}
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure {
			t.Fatalf("session cookie: %+v", ck)
		}
		var n int64
		if err := d.Gorm.Table("console_sessions").Where("id = ?", hashToken(ck.Value)).Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("session row by token hash: %d %v", n, err)
		}
		q := b.get("/")
		want(t, q, http.StatusOK, "<h1>Queues</h1>", "Ada")

		// Logout needs the CSRF token, then ends the session.
		want(t, b.post("/logout", url.Values{}), http.StatusForbidden)
		lo := b.post("/logout", url.Values{"csrf": {csrfOf(t, q)}})
		if lo.status != http.StatusSeeOther || lo.header.Get("Location") != "/login" {
			t.Fatalf("logout: %d", lo.status)
		}
		if p := b.get("/"); p.status != http.StatusSeeOther {
			t.Fatalf("after logout: %d", p.status)
		}
		if err := d.Gorm.Table("console_sessions").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("sessions after logout: %d %v", n, err)
		}
	})
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		b := en.browser()
		for _, path := range []string{"/login", "/", "/static/console.css", "/static/htmx.min.js"} {
			p := b.get(path)
			h := p.header
			if h.Get("Content-Security-Policy") != ContentSecurityPolicy || h.Get("X-Frame-Options") != "DENY" ||
				h.Get("Referrer-Policy") != "same-origin" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("%s: headers %v", path, h)
			}
			if h.Get("Strict-Transport-Security") != "" {
				t.Fatalf("%s: HSTS over plain HTTP", path)
			}
		}
		if p := b.get("/static/htmx.min.js"); p.status != 200 || !strings.Contains(p.body, "htmx") {
			t.Fatalf("htmx: %d", p.status)
		}
		// No inline script or style in any template.
		lp := b.get("/login")
		if strings.Contains(lp.body, "<script>") || strings.Contains(lp.body, "style=") || strings.Contains(lp.body, "<style") {
			t.Fatalf("inline script or style:\n%s", lp.body)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		en.user("ada@example.com", "Ada", auth.RoleAgent)

		// Idle: used just before 30 minutes passes it lives (and is renewed);
		// 30 minutes of silence ends it.
		b := en.browser()
		b.mustLogin("ada@example.com")
		en.clock.Advance(30*time.Minute - time.Second)
		want(t, b.get("/"), http.StatusOK)
		en.clock.Advance(30*time.Minute - time.Second)
		want(t, b.get("/"), http.StatusOK)
		en.clock.Advance(30 * time.Minute)
		if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Fatalf("after idle timeout: %d", p.status)
		}

		// Absolute: a session kept busy still ends 12 hours after sign-in.
		b2 := en.browser()
		b2.mustLogin("ada@example.com")
		start := en.clock.Now()
		for en.clock.Now().Before(start.Add(12*time.Hour - 20*time.Minute)) {
			en.clock.Advance(20 * time.Minute)
			want(t, b2.get("/"), http.StatusOK)
		}
		en.clock.Set(start.Add(12*time.Hour - time.Second))
		want(t, b2.get("/"), http.StatusOK)
		en.clock.Set(start.Add(12 * time.Hour))
		if p := b2.get("/"); p.status != http.StatusSeeOther {
			t.Fatalf("after absolute expiry: %d", p.status)
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		en.user("ada@example.com", "Ada", auth.RoleAgent)
		en.user("bob@example.com", "Bob", auth.RoleAgent)
		b := en.browser()
		for i := 0; i < MaxFailuresPerEmail; i++ {
			want(t, b.login("ada@example.com", "not the password"), http.StatusUnauthorized)
		}
		// At the limit: even the right password is refused, 429.
		p := b.login("ada@example.com", password)
		want(t, p, http.StatusTooManyRequests, "Too many failed sign-ins")
		// Another account from the same address still signs in.
		b.mustLogin("bob@example.com")
		// After the window the account may try again.
		en.clock.Advance(LoginWindow + time.Second)
		en.browser().mustLogin("ada@example.com")

		// Per IP: 20 failures over any accounts, then 429.
		c := en.browser()
		for i := 0; i < MaxFailuresPerIP; i++ {
			want(t, c.login("x"+strconv.Itoa(i)+"@example.com", "not the password"), http.StatusUnauthorized)
		}
		want(t, c.login("bob@example.com", password), http.StatusTooManyRequests)
	})
}

func openCase(t *testing.T, en *env, p auth.Principal, title string) cases.Case {
	t.Helper()
	customer := "cus_console"
	cs, err := en.cases.OpenManual(context.Background(), p, cases.ManualCase{Kind: cases.KindRefundRequest,
		Channel: cases.ChannelEmail, Title: title, Links: cases.Links{Customer: &customer}})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestCasePage(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		ada := en.user("ada@example.com", "Ada", auth.RoleAgent)
		cs := openCase(t, en, ada, "Refund <b>please</b>")
		b := en.browser()
		b.mustLogin("ada@example.com")

		q := b.get("/?view=unassigned")
		want(t, q, http.StatusOK, `<table id="cases">`, `data-case-id="`+cs.ID+`"`, `href="/cases/`+cs.ID+`?q=sort%3D-created_at%26view%3Dunassigned"`, "Refund &lt;b&gt;please&lt;/b&gt;")
		want(t, b.get("/?view=mine"), http.StatusOK, `class="empty"`)

		cp := b.get("/cases/" + cs.ID)
		want(t, cp, http.StatusOK, `<h1>Refund &lt;b&gt;please&lt;/b&gt;</h1>`, `id="state"`, `id="priority"`, `id="case-live"`,
			`hx-get="/cases/`+cs.ID+`/fragment"`, `hx-trigger="every 5s"`, `<ol id="timeline"`, `id="billing-timeline"`,
			`<form method="post" action="/cases/`+cs.ID+`/transitions"`, `<button type="submit" name="event" value="start">`,
			`<form id="note-form" method="post" action="/cases/`+cs.ID+`/notes">`, `id="note-body"`, `id="add-note"`, `id="assign-me"`)
		tok := csrfOf(t, cp)
		version := strconv.FormatInt(cs.Version, 10)

		// Without the session's CSRF token nothing changes.
		want(t, b.post("/cases/"+cs.ID+"/transitions", url.Values{"event": {"start"}, "version": {version}}), http.StatusForbidden)
		want(t, b.post("/cases/"+cs.ID+"/notes", url.Values{"csrf": {"forged"}, "body": {"hi"}}), http.StatusForbidden)

		// A transition, a note and an assignment through the console change
		// the case as the service sees it.
		if p := b.post("/cases/"+cs.ID+"/transitions", url.Values{"csrf": {tok}, "event": {"start"}, "reason": {"looking"}, "version": {version}}); p.status != http.StatusSeeOther {
			t.Fatalf("transition: %d %s", p.status, p.body)
		}
		if p := b.post("/cases/"+cs.ID+"/notes", url.Values{"csrf": {tok}, "body": {"card 4242 4242 4242 4242 called"}}); p.status != http.StatusSeeOther {
			t.Fatalf("note: %d %s", p.status, p.body)
		}
		if p := b.post("/cases/"+cs.ID+"/assign", url.Values{"csrf": {tok}}); p.status != http.StatusSeeOther {
			t.Fatalf("assign: %d %s", p.status, p.body)
		}
		got, err := en.cases.Get(context.Background(), cs.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != "in_progress" || got.Assignee == nil || *got.Assignee != "Ada" {
			t.Fatalf("case after console: %+v", got)
		}
		tl, _ := en.cases.Timeline(context.Background(), cs.ID)
		var note string
		for _, e := range tl {
			if e.Type == cases.EntryNote {
				note = *e.Body
			}
			if e.Type == cases.EntryTransition && e.Actor != "Ada" {
				t.Fatalf("transition actor %q", e.Actor)
			}
		}
		if note != "card **** **** **** 4242 called" {
			t.Fatalf("note %q", note)
		}
		fr := b.get("/cases/" + cs.ID + "/fragment")
		want(t, fr, http.StatusOK, `id="case-live"`, `id="state" class="state">in_progress<`, "card **** **** **** 4242 called")
		want(t, b.get("/?view=mine"), http.StatusOK, `data-case-id="`+cs.ID+`"`)

		// A stale version: a message, and the case is not changed.
		p := b.post("/cases/"+cs.ID+"/transitions", url.Values{"csrf": {tok}, "event": {"refund"}, "version": {version}})
		want(t, p, http.StatusConflict, `class="error"`, `data-code="version_conflict"`, "Someone else changed this case")
		if got, _ := en.cases.Get(context.Background(), cs.ID); got.State != "in_progress" {
			t.Fatalf("stale transition applied: %s", got.State)
		}
		// An event the state does not allow: inline error from the API's code.
		cur, _ := en.cases.Get(context.Background(), cs.ID)
		p = b.post("/cases/"+cs.ID+"/transitions", url.Values{"csrf": {tok}, "event": {"customer_replied"}, "version": {strconv.FormatInt(cur.Version, 10)}})
		want(t, p, http.StatusConflict, `data-code="illegal_transition"`)
		want(t, b.get("/cases/nope"), http.StatusNotFound)
	})
}

func TestRoleVisibility(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		en.user("ada@example.com", "Ada", auth.RoleAgent)
		en.user("sam@example.com", "Sam", auth.RoleSupervisor)
		agent := en.browser()
		agent.mustLogin("ada@example.com")
		q := agent.get("/")
		want(t, q, http.StatusOK, `href="/?view=mine"`, `href="/?view=unassigned"`, `href="/?view=breached"`, `href="/?view=due_soon"`)
		if strings.Contains(q.body, "view=approvals") {
			t.Fatal("an agent sees the approvals queue")
		}
		want(t, agent.get("/?view=approvals"), http.StatusForbidden)
		sup := en.browser()
		sup.mustLogin("sam@example.com")
		want(t, sup.get("/"), http.StatusOK, `href="/?view=approvals"`)
		want(t, sup.get("/?view=approvals"), http.StatusOK, "No action is waiting for approval.")

		// My team's: only for users in a case team, listing that team's cases.
		if strings.Contains(q.body, "view=team") {
			t.Fatal("a user without teams sees a team queue")
		}
		ctx := context.Background()
		u, err := en.users.Create(ctx, auth.NewUser{Email: "tia@example.com", DisplayName: "Tia", Role: auth.RoleAgent, Teams: []string{"support"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := en.users.SetPassword(ctx, u.ID, password); err != nil {
			t.Fatal(err)
		}
		cs := openCase(t, en, auth.Principal{Kind: auth.ActorUser, UserID: u.ID, Name: "Tia", Role: auth.RoleAgent}, "For support")
		tia := en.browser()
		tia.mustLogin("tia@example.com")
		want(t, tia.get("/"), http.StatusOK, `href="/?view=team"`)
		want(t, tia.get("/?view=team"), http.StatusOK, `data-case-id="`+cs.ID+`"`, "My team&#39;s: support")
	})
}

// A browser fetches /favicon.ico (and other tabs load /login) by itself
// between showing the sign-in form and posting it: neither may replace the
// form's CSRF token, or a real browser could never sign in.
func TestLoginSurvivesBackgroundRequests(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		en.user("ada@example.com", "Ada", auth.RoleAgent)
		b := en.browser()
		form := csrfOf(t, b.get("/login"))
		if p := b.get("/favicon.ico"); p.status != http.StatusNoContent {
			t.Fatalf("favicon: %d %s", p.status, p.header.Get("Location"))
		}
		if again := csrfOf(t, b.get("/login")); again != form {
			t.Fatalf("a second /login replaced the form's token")
		}
		if p := b.post("/login", url.Values{"csrf": {form}, "email": {"ada@example.com"}, "password": {password}}); p.status != http.StatusSeeOther {
			t.Fatalf("sign-in with the first form: %d %s", p.status, p.body)
		}
		// A cookie that is not one of ours is replaced, not echoed.
		other := en.browser()
		u, _ := url.Parse(en.srv.URL)
		other.c.Jar.SetCookies(u, []*http.Cookie{{Name: "recourse_login_csrf", Value: "<script>"}})
		if tok := csrfOf(t, other.get("/login")); tok == "<script>" || len(tok) != 64 {
			t.Fatalf("a foreign cookie became the token: %q", tok)
		}
	})
}
