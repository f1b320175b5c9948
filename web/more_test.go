package web

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
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

// Over TLS the cookie is Secure and HSTS is sent; with SecureCookies the
// cookie is Secure over plain HTTP too.
func TestSecureCookieAndHSTS(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	cs, err := cases.NewService(cases.Options{DB: d, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	users := auth.NewUserStore(d, clk, nil)
	u, err := users.Create(context.Background(), auth.NewUser{Email: "ada@example.com", DisplayName: "Ada", Role: auth.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword(context.Background(), u.ID, password); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		tls, secureOn bool
	}{{"tls", true, false}, {"plain with secure cookies", false, true}, {"plain", false, false}} {
		con, err := New(Options{DB: d, Clock: clk, Log: log, Users: users, Cases: cs, IdleTimeout: 30 * time.Minute, SessionMax: 12 * time.Hour, SecureCookies: tc.secureOn})
		if err != nil {
			t.Fatal(err)
		}
		e := httpx.New(httpx.Options{Logger: log})
		con.Register(e)
		var srv *httptest.Server
		if tc.tls {
			srv = httptest.NewTLSServer(e)
		} else {
			srv = httptest.NewServer(e)
		}
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := client.Get(srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		buf := new(strings.Builder)
		_, _ = io.Copy(buf, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); (got != "") != tc.tls {
			t.Fatalf("%s: HSTS %q", tc.name, got)
		}
		m := csrfField.FindStringSubmatch(buf.String())
		if m == nil {
			t.Fatalf("%s: no csrf", tc.name)
		}
		// The jar keeps Secure cookies for https only, so send the token
		// cookie by hand as a browser would.
		form := url.Values{"csrf": {m[1]}, "email": {"ada@example.com"}, "password": {password}}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: loginCSRFCookie, Value: m[1]})
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var sc *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == CookieName {
				sc = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || sc == nil || sc.Secure != (tc.tls || tc.secureOn) || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode {
			t.Fatalf("%s: %d cookie %+v", tc.name, resp.StatusCode, sc)
		}
		srv.Close()
	}
}

// The queue pages by keyset: 50 a page and a next link to the rest.
func TestQueuePaging(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		ada := en.user("ada@example.com", "Ada", auth.RoleAgent)
		for i := 0; i < 52; i++ {
			openCase(t, en, ada, "case "+string(rune('A'+i%26)))
			en.clock.Advance(time.Second)
		}
		b := en.browser()
		b.mustLogin("ada@example.com")
		p1 := b.get("/?view=open")
		want(t, p1, http.StatusOK, `id="next"`)
		if n := strings.Count(p1.body, "<tr data-case-id="); n != 50 {
			t.Fatalf("first page has %d rows", n)
		}
		m := nextLink.FindStringSubmatch(p1.body)
		if m == nil {
			t.Fatal("no next link")
		}
		p2 := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
		want(t, p2, http.StatusOK)
		if n := strings.Count(p2.body, "<tr data-case-id="); n != 2 || strings.Contains(p2.body, `id="next"`) {
			t.Fatalf("second page has %d rows:\n%s", n, p2.body)
		}
	})
}

var nextLink = regexp.MustCompile(`id="next" rel="next" href="([^"]+)"`)
