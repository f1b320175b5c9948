package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// testRedirectURL is the callback registered with the test provider. The
// test's browser does not follow the provider's redirect; it takes the code
// and state from it and calls the console's callback itself, so this URL
// need not be the test server's.
const testRedirectURL = "http://127.0.0.1:1/login/oidc/callback"

// idp is mockoidc on loopback, with one twist the tests switch on: a
// tampered ID token (a claim changed after signing).
type idp struct {
	m      *mockoidc.MockOIDC
	tamper atomic.Bool
}

// testKey is one RSA key for every test provider (generating one per test
// costs more than the tests).
var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func startIdP(t *testing.T, ln net.Listener) *idp {
	t.Helper()
	m, err := mockoidc.NewServer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{m: m}
	if err := m.AddMiddleware(p.tampering); err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// tampering rewrites the ID token's email to sam@example.com (keeping the
// signature) while p.tamper is on.
func (p *idp) tampering(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mockoidc.TokenEndpoint || !p.tamper.Load() {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		parts := strings.Split(body["id_token"].(string), ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		claims["email"] = "sam@example.com"
		payload, _ = json.Marshal(claims)
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		body["id_token"] = strings.Join(parts, ".")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

func (p *idp) options(o *Options) {
	o.OIDC = OIDC{Issuer: p.m.Issuer(), ClientID: p.m.ClientID, ClientSecret: p.m.ClientSecret, RedirectURL: testRedirectURL}
	o.Audit = audit.New(o.DB, o.Clock)
}

// ssoUser is who the provider signs in next: its ID token's claims are
// built here, on the console's clock, and edit changes them before
// signing.
type ssoUser struct {
	email    string
	verified any // true, false, "true", or nil for no email_verified claim
	now      func() time.Time
	edit     func(jwt.MapClaims)
}

func (u ssoUser) ID() string { return "sub-" + u.email }

func (u ssoUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.ID(), "email": u.email})
}

func (u ssoUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	now := u.now()
	c := jwt.MapClaims{"iss": base.Issuer, "aud": []string(base.Audience), "sub": u.ID(), "jti": base.ID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "nonce": base.Nonce, "email": u.email}
	if u.verified != nil {
		c["email_verified"] = u.verified
	}
	if u.edit != nil {
		u.edit(c)
	}
	return c, nil
}

// ssoEnv is a console with single sign-on through a test provider.
type ssoEnv struct {
	*env
	d   *db.DB
	idp *idp
}

func newSSOEnv(t *testing.T, d *db.DB) *ssoEnv {
	t.Helper()
	p := startIdP(t, nil)
	return &ssoEnv{env: newEnvWith(t, d, p.options), d: d, idp: p}
}

// next queues who the provider signs in next.
func (se *ssoEnv) next(u ssoUser) {
	if u.now == nil {
		u.now = se.clock.Now
	}
	se.idp.m.QueueUser(u)
}

// ssoBegin follows the SSO button to the provider and the provider back,
// and returns the callback's query (code and state) without calling it.
func (b *browser) ssoBegin() url.Values {
	t := b.en.t
	t.Helper()
	start := b.get("/login/oidc")
	if start.status != http.StatusFound {
		t.Fatalf("GET /login/oidc: %d %s", start.status, start.body)
	}
	r, err := b.c.Get(start.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Body.Close()
	back, err := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(back.String(), testRedirectURL+"?") {
		t.Fatalf("provider answered %d, Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	return back.Query()
}

func (b *browser) ssoCallback(q url.Values) resp {
	return b.get("/login/oidc/callback?" + q.Encode())
}

func cookieIn(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (se *ssoEnv) failures(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := se.d.Gorm.Table("login_attempts").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// A person the provider vouches for signs in as the existing user with
// that email (any case), through the same sessions as a password: the
// cookie, idle expiry, sign-out; both sign-ins are audited.
func TestSSOSignIn(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		se := newSSOEnv(t, d)
		ada := se.user("ada@example.com", "Ada", auth.RoleAgent)
		b := se.browser()

		lp := b.get("/login")
		want(t, lp, http.StatusOK, `<a class="sso" id="sso" href="/login/oidc">Sign in with single sign-on</a>`, `id="password"`)

		start := b.get("/login/oidc")
		if start.status != http.StatusFound {
			t.Fatalf("start: %d %s", start.status, start.body)
		}
		to, _ := url.Parse(start.header.Get("Location"))
		q := to.Query()
		if to.Scheme+"://"+to.Host+to.Path != se.idp.m.AuthorizationEndpoint() || q.Get("response_type") != "code" ||
			q.Get("client_id") != se.idp.m.ClientID || q.Get("redirect_uri") != testRedirectURL ||
			q.Get("scope") != "openid email profile" || q.Get("code_challenge_method") != "S256" ||
			len(q.Get("code_challenge")) != 43 || len(q.Get("state")) != 43 || len(q.Get("nonce")) != 43 {
			t.Fatalf("authorization request %s", to)
		}
		ck := cookieIn(start.header, ssoCookie)
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/login/oidc" || ck.MaxAge != 600 ||
			strings.Contains(ck.Value, q.Get("code_challenge")) || !strings.HasPrefix(ck.Value, q.Get("state")+".") {
			t.Fatalf("attempt cookie %+v", ck)
		}

		se.next(ssoUser{email: "ADA@Example.com", verified: true})
		cb := b.ssoCallback(b.ssoBegin())
		if cb.status != http.StatusSeeOther || cb.header.Get("Location") != "/" {
			t.Fatalf("callback: %d %s", cb.status, cb.body)
		}
		sess := cookieIn(cb.header, CookieName)
		if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.MaxAge != int((12*time.Hour).Seconds()) {
			t.Fatalf("session cookie %+v", sess)
		}
		if gone := cookieIn(cb.header, ssoCookie); gone == nil || gone.MaxAge >= 0 || gone.Path != "/login/oidc" {
			t.Fatalf("attempt cookie not cleared: %+v", gone)
		}
		qp := b.get("/")
		want(t, qp, http.StatusOK, "<h1>Queues</h1>", `<span id="whoami">Ada · agent</span>`)
		if n := se.failures(t); n != 0 {
			t.Fatalf("%d failures after a sign-in", n)
		}

		// The entry in the audit log names Ada and how she signed in.
		var entries []struct {
			Actor, ObjectID, Detail string
			ActorUserID             *int64
		}
		if err := d.Gorm.Table("audit_log").Where("action = ?", "console.sign_in").Find(&entries).Error; err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Actor != "Ada" || entries[0].ActorUserID == nil || *entries[0].ActorUserID != ada.UserID ||
			!strings.HasPrefix(entries[0].Detail, "method=oidc ip=127.0.0.1") {
			t.Fatalf("audit %+v", entries)
		}
		b.mustLogin("ada@example.com")
		var pw int64
		if err := d.Gorm.Table("audit_log").Where("action = ? AND detail LIKE ?", "console.sign_in", "method=password%").Count(&pw).Error; err != nil || pw != 1 {
			t.Fatalf("password sign-ins audited: %d %v", pw, err)
		}

		// Same session rules: sign-out needs the CSRF token and ends it.
		// (An ID token that expires this very second is still good.)
		c := se.browser()
		se.next(ssoUser{email: "ada@example.com", verified: true, edit: func(c jwt.MapClaims) { c["exp"] = se.clock.Now().Unix() }})
		if p := c.ssoCallback(c.ssoBegin()); p.status != http.StatusSeeOther {
			t.Fatalf("second sign-in: %d %s", p.status, p.body)
		}
		page := c.get("/")
		want(t, c.post("/logout", url.Values{}), http.StatusForbidden)
		if p := c.post("/logout", url.Values{"csrf": {csrfOf(t, page)}}); p.status != http.StatusSeeOther {
			t.Fatalf("logout: %d", p.status)
		}
		if p := c.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Fatalf("after logout: %d", p.status)
		}
		// And idle expiry: 30 minutes unused ends the first browser's session.
		se.clock.Advance(30 * time.Minute)
		if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Fatalf("after the idle timeout: %d", p.status)
		}
	})
}

// Each way a callback can be wrong signs nobody in, says why, and counts
// as a failed sign-in from the client's address.
func TestSSORefusals(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		se := newSSOEnv(t, d)
		se.user("ada@example.com", "Ada", auth.RoleAgent)
		ben := se.user("ben@example.com", "Ben", auth.RoleAgent)
		if _, err := se.users.Deactivate(context.Background(), ben.UserID); err != nil {
			t.Fatal(err)
		}
		ok := func() ssoUser { return ssoUser{email: "ada@example.com", verified: true} }
		with := func(edit func(jwt.MapClaims)) ssoUser { u := ok(); u.edit = edit; return u }
		cases := []struct {
			name   string
			user   ssoUser
			mangle func(url.Values) url.Values // the callback's query
			before func(*browser)              // after the provider, before the callback
			status int
			says   string
		}{
			{name: "state mismatch", user: ok(), status: http.StatusBadRequest, says: "does not belong to the sign-in started in this browser",
				mangle: func(q url.Values) url.Values { q.Set("state", strings.Repeat("A", 43)); return q }},
			{name: "no state", user: ok(), status: http.StatusBadRequest, says: "does not belong",
				mangle: func(q url.Values) url.Values { q.Del("state"); return q }},
			{name: "no attempt cookie", user: ok(), status: http.StatusBadRequest, says: "expired or was started in another browser",
				before: func(b *browser) {
					u, _ := url.Parse(se.srv.URL + "/login/oidc")
					b.c.Jar.SetCookies(u, []*http.Cookie{{Name: ssoCookie, Value: "", Path: "/login/oidc", MaxAge: -1}})
				}},
			{name: "PKCE verifier of another attempt", user: ok(), status: http.StatusUnauthorized, says: "did not confirm the sign-in",
				before: func(b *browser) {
					u, _ := url.Parse(se.srv.URL + "/login/oidc")
					for _, c := range b.c.Jar.Cookies(u) {
						if c.Name == ssoCookie {
							parts := strings.Split(c.Value, ".")
							parts[2] = strings.Repeat("v", 43)
							b.c.Jar.SetCookies(u, []*http.Cookie{{Name: ssoCookie, Value: strings.Join(parts, "."), Path: "/login/oidc"}})
						}
					}
				}},
			{name: "provider error", user: ok(), status: http.StatusUnauthorized, says: "did not sign you in (access_denied)",
				mangle: func(q url.Values) url.Values { q.Del("code"); q.Set("error", "access_denied"); return q }},
			{name: "provider error not echoed", user: ok(), status: http.StatusUnauthorized, says: "did not sign you in (unknown)",
				mangle: func(q url.Values) url.Values { q.Set("error", "<b>call 555</b>"); return q }},
			{name: "wrong code", user: ok(), status: http.StatusUnauthorized, says: "did not confirm the sign-in",
				mangle: func(q url.Values) url.Values { q.Set("code", "forged"); return q }},
			{name: "nonce mismatch", user: with(func(c jwt.MapClaims) { c["nonce"] = "another-attempt" }), status: http.StatusUnauthorized, says: "does not belong to this attempt"},
			{name: "no nonce", user: with(func(c jwt.MapClaims) { delete(c, "nonce") }), status: http.StatusUnauthorized, says: "does not belong to this attempt"},
			{name: "expired id token", user: with(func(c jwt.MapClaims) { c["exp"] = se.clock.Now().Add(-time.Second).Unix() }), status: http.StatusUnauthorized, says: "could not be verified"},
			{name: "wrong audience", user: with(func(c jwt.MapClaims) { c["aud"] = []string{"another-client"} }), status: http.StatusUnauthorized, says: "could not be verified"},
			{name: "wrong issuer", user: with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" }), status: http.StatusUnauthorized, says: "could not be verified"},
			{name: "tampered id token", user: ok(), status: http.StatusUnauthorized, says: "could not be verified",
				before: func(*browser) { se.idp.tamper.Store(true) }},
			{name: "email not verified", user: ssoUser{email: "ada@example.com", verified: false}, status: http.StatusForbidden, says: "has not verified your email address ada@example.com"},
			{name: "email_verified missing", user: ssoUser{email: "ada@example.com"}, status: http.StatusForbidden, says: "has not verified your email"},
			{name: "email_verified a string", user: ssoUser{email: "ada@example.com", verified: "true"}, status: http.StatusForbidden, says: "has not verified your email"},
			{name: "no email", user: ssoUser{verified: true}, status: http.StatusForbidden, says: "did not tell Recourse your email address"},
			{name: "unknown email", user: ssoUser{email: "zoe@example.com", verified: true}, status: http.StatusForbidden, says: "There is no Recourse account for zoe@example.com. Ask an admin"},
			{name: "deactivated user", user: ssoUser{email: "ben@example.com", verified: true}, status: http.StatusForbidden, says: "is deactivated. Ask an admin"},
		}
		for i, tc := range cases {
			b := se.browser()
			se.next(tc.user)
			q := b.ssoBegin()
			if tc.mangle != nil {
				q = tc.mangle(q)
			}
			if tc.before != nil {
				tc.before(b)
			}
			p := b.ssoCallback(q)
			se.idp.tamper.Store(false)
			if p.status != tc.status || !strings.Contains(p.body, tc.says) {
				t.Fatalf("%s: %d, want %d saying %q:\n%s", tc.name, p.status, tc.status, tc.says, p.body)
			}
			if strings.Contains(p.body, "<b>") {
				t.Fatalf("%s: the provider's text is echoed", tc.name)
			}
			if ck := cookieIn(p.header, CookieName); ck != nil {
				t.Fatalf("%s: a session cookie was set", tc.name)
			}
			if gone := cookieIn(p.header, ssoCookie); gone == nil || gone.MaxAge >= 0 {
				t.Fatalf("%s: the attempt cookie stays", tc.name)
			}
			if r := b.get("/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
				t.Fatalf("%s: signed in after a refusal (%d)", tc.name, r.status)
			}
			if n := se.failures(t); n != int64(i+1) {
				t.Fatalf("%s: %d failed sign-ins recorded, want %d", tc.name, n, i+1)
			}
		}
		var sessions int64
		if err := d.Gorm.Table("console_sessions").Count(&sessions).Error; err != nil || sessions != 0 {
			t.Fatalf("sessions: %d %v", sessions, err)
		}

		// A callback is good once: replaying a successful one finds no attempt.
		b := se.browser()
		se.next(ok())
		q := b.ssoBegin()
		if p := b.ssoCallback(q); p.status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d %s", p.status, p.body)
		}
		want(t, b.ssoCallback(q), http.StatusBadRequest, "expired or was started in another browser")
	})
}

// Failed single sign-ins count toward the per-address limit password
// sign-ins have: at 19 one more attempt may start; at 20 both routes, and
// password sign-in, answer 429.
func TestSSORateLimit(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		se := newSSOEnv(t, d)
		se.user("ada@example.com", "Ada", auth.RoleAgent)
		b := se.browser()
		for i := 0; i < MaxFailuresPerIP-1; i++ {
			want(t, b.get("/login/oidc/callback?state=x&code=y"), http.StatusBadRequest)
		}
		se.next(ssoUser{email: "zoe@example.com", verified: true})
		want(t, b.ssoCallback(b.ssoBegin()), http.StatusForbidden, "no Recourse account")
		want(t, b.get("/login/oidc"), http.StatusTooManyRequests, "Too many failed sign-ins")
		want(t, b.get("/login/oidc/callback?state=x&code=y"), http.StatusTooManyRequests)
		want(t, b.login("ada@example.com", password), http.StatusTooManyRequests)
		se.clock.Advance(LoginWindow + time.Second)
		se.next(ssoUser{email: "ada@example.com", verified: true})
		if p := b.ssoCallback(b.ssoBegin()); p.status != http.StatusSeeOther {
			t.Fatalf("after the window: %d %s", p.status, p.body)
		}
	})
}

// Without an issuer there is no button and the routes do not exist.
func TestSSOOff(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		en.user("ada@example.com", "Ada", auth.RoleAgent)
		b := en.browser()
		if lp := b.get("/login"); strings.Contains(lp.body, "/login/oidc") || strings.Contains(lp.body, "single sign-on") {
			t.Fatalf("login page offers single sign-on:\n%s", lp.body)
		}
		want(t, b.get("/login/oidc"), http.StatusNotFound)
		want(t, b.get("/login/oidc/callback?state=x&code=y"), http.StatusNotFound)
		b.mustLogin("ada@example.com")
		want(t, b.get("/login/oidc"), http.StatusNotFound)
	})
}

// A provider that cannot be reached: password sign-in still works, the
// SSO button explains (503), and once the provider answers the next try
// discovers it — no restart.
func TestSSOProviderDown(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		en := newEnvWith(t, d, func(opt *Options) {
			opt.OIDC = OIDC{Issuer: "http://" + addr + "/oidc", ClientID: "recourse", RedirectURL: testRedirectURL, Label: "Sign in with Okta"}
		})
		en.user("ada@example.com", "Ada", auth.RoleAgent)
		b := en.browser()
		want(t, b.get("/login"), http.StatusOK, `id="sso" href="/login/oidc">Sign in with Okta</a>`)
		p1 := b.get("/login/oidc")
		want(t, p1, http.StatusServiceUnavailable, "cannot reach your identity provider", "sign in with your password")
		if p1.header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		b.mustLogin("ada@example.com")

		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Skipf("port %s taken meanwhile: %v", addr, err)
		}
		p := startIdP(t, ln)
		// Within ssoRetryAfter the last error stands; after it, discovery
		// is tried again and succeeds.
		want(t, b.get("/login/oidc"), http.StatusServiceUnavailable)
		en.clock.Advance(ssoRetryAfter)
		if r := b.get("/login/oidc"); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), p.m.AuthorizationEndpoint()+"?") {
			t.Fatalf("after the provider came up: %d %s", r.status, r.header.Get("Location"))
		}
	})
}
